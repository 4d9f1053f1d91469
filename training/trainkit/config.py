"""Training recipes: a YAML file of sections, dotted command-line overrides, and validation with helpful errors.

A recipe has five sections::

    model:  {preset: NAME, <config overrides>}  |  {image_size, net, quantizer, ...}  |  {pretrained: PATH}
    data:   DataSection fields
    loss:   vistok.losses.LossConfig fields
    train:  TrainSection fields
    output: OutputSection fields

Any field can be overridden on the command line as ``--section.field VALUE`` (or ``--section.field=VALUE``);
``--model.quantizer.codebook_size 1024`` reaches into the model's nested specs and ``--model '{...}'`` replaces a
whole section. A few short aliases exist
(``--dataset``, ``--max_steps``, ``--output_dir``, ``--mixed_precision`` …, see ``ALIASES``). Unknown sections or
fields, presets, quantizer / net types and options raise a ValueError listing the valid ones and the closest match;
the model section is validated by building its config (on the meta device: no weights) when the recipe is read.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vistok.losses import LossConfig
from vistok.registry import did_you_mean


@dataclass
class DataSection:
    dataset: str = "samples"  # samples | celeba64 | imagenet256 | a 🤗 Hub id | a local folder / parquet file
    train_split: str = "train"
    eval_split: str = "test"  # for the reconstruction grids
    image_size: int | None = None  # default: the model's image_size
    streaming: bool = False
    image_column: str | None = None
    num_samples: int | None = None  # keep the first N training samples (samples: number of crops)
    hflip: bool | None = None  # default: on for training
    num_workers: int = 0


@dataclass
class TrainSection:
    seed: int = 0
    max_steps: int = 1000  # optimiser steps
    batch_size: int = 32  # global: images per optimiser step, over all processes and accumulation micro-steps
    gradient_accumulation_steps: int = 1
    optimizer: str = "adam"  # adam | adamw
    lr: float = 4e-4
    scale_lr: bool = False  # use lr × batch_size (Taming's base-learning-rate convention)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    eps: float = 1e-8
    lr_schedule: str = "constant"  # constant | cosine (both after linear warm-up)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    discriminator_lr: float | None = None  # default: lr (after scaling)
    discriminator_betas: tuple[float, float] | None = None  # default: betas
    grad_clip: float | None = None  # max global grad norm; None = off
    mixed_precision: str = "no"  # no | bf16 | fp16
    ema_decay: float | None = None  # EMA of the tokenizer's weights; the exported tokenizer is the EMA one
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile the encoder and decoder
    deterministic: bool = False  # deterministic kernels where PyTorch has them (bit-exact resumes on GPUs)
    find_unused_parameters: bool = False


@dataclass
class OutputSection:
    dir: str = "runs/vistok"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    image_every: int = 1000
    num_images: int = 8
    tracker: str = "tensorboard"  # tensorboard | none
    progress_bar: bool = True
    push_to_hub: str | None = None  # repo id to upload the final tokenizer to
    hub_private: bool = False


SECTIONS: dict[str, type] = {"data": DataSection, "loss": LossConfig, "train": TrainSection, "output": OutputSection}
MODEL_KEYS = ("preset", "pretrained", "image_size", "num_channels", "net", "quantizer", "source", "metadata")
ALIASES = {
    "dataset": "data.dataset",
    "max_steps": "train.max_steps",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "mixed_precision": "train.mixed_precision",
    "output_dir": "output.dir",
    "push_to_hub": "output.push_to_hub",
    "preset": "model.preset",
}
CHOICES = {
    ("train", "optimizer"): ("adam", "adamw"),
    ("train", "lr_schedule"): ("constant", "cosine"),
    ("train", "mixed_precision"): ("no", "bf16", "fp16"),
    ("output", "tracker"): ("tensorboard", "none"),
}


@dataclass
class Recipe:
    model: dict[str, Any]
    data: DataSection = field(default_factory=DataSection)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainSection = field(default_factory=TrainSection)
    output: OutputSection = field(default_factory=OutputSection)
    source: str | None = None  # the YAML file it came from

    def to_dict(self) -> dict[str, Any]:
        out = {"model": self.model}
        for name in SECTIONS:
            out[name] = _plain(dataclasses.asdict(getattr(self, name)))
        return out


def _plain(value: Any) -> Any:
    """Tuples → lists, recursively (YAML / JSON friendly)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _unknown(kind: str, names: list[str], valid: list[str] | tuple[str, ...]) -> str:
    hints = did_you_mean(names, valid)
    return f"unknown {kind}(s) {names}{hints}; valid {kind}s: {', '.join(map(str, valid))}"


# ------------------------------------------------------------------------------------------------ YAML
class RecipeLoader(yaml.SafeLoader):
    """YAML 1.2 scalars: only true/false are booleans (``mixed_precision: no`` stays the string "no") and
    ``1e-4`` is a float (PyYAML's YAML 1.1 rules read it as a string)."""


RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
RecipeLoader.add_implicit_resolver(  # after int, which therefore still wins for "123"
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=RecipeLoader)  # noqa: S506 (a SafeLoader subclass)


# ------------------------------------------------------------------------------------------ value coercion
def _parse_scalar(text: str) -> Any:
    """Command-line text → YAML 1.2 value (see :class:`RecipeLoader`)."""
    value = read_yaml(text) if text.strip() else ""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert ``value`` to the field's annotated type (``int``, ``float | None``, ``tuple[float, float]`` …)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in members:
                return None
        errors = []
        for member in members:
            if member is type(None):
                continue
            try:
                return _coerce(value, member, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0] if errors else f"{where}: cannot be {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if args and origin is tuple and len(args) == len(value):
            return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
        if args and origin is tuple and Ellipsis not in typing.get_args(annotation):
            raise ValueError(f"{where}: expected {len(args)} values, got {value!r}")
        inner = args[0] if args else Any
        return origin(_coerce(v, inner, where) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ValueError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        number = value
        if isinstance(number, str):
            try:
                number = float(number)
            except ValueError:
                _fail(where, "an integer", value)
        if isinstance(number, float) and number.is_integer():
            return int(number)
        if isinstance(number, int) and not isinstance(number, bool):
            return number
        _fail(where, "an integer", value)
    if annotation is float:
        if isinstance(value, bool):
            return _fail(where, "a number", value)
        try:
            return float(value)
        except (TypeError, ValueError):
            return _fail(where, "a number", value)
    if annotation is str:
        if isinstance(value, (dict, list)):
            return _fail(where, "a string", value)
        return str(value)
    if annotation is dict or typing.get_origin(annotation) is dict:
        if not isinstance(value, dict):
            return _fail(where, "a mapping", value)
        return dict(value)
    return value


def _fail(where: str, expected: str, value: Any) -> typing.NoReturn:
    raise ValueError(f"{where}: expected {expected}, got {value!r}")


def _build_section(name: str, values: dict[str, Any]) -> Any:
    cls = SECTIONS[name]
    if not isinstance(values, dict):
        raise ValueError(f"section {name!r} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(_unknown(f"{name} option", unknown, valid))
    kwargs = {key: _coerce(value, hints[key], f"{name}.{key}") for key, value in values.items()}
    for (section, key), choices in CHOICES.items():
        if section == name and key in kwargs and kwargs[key] not in choices:
            raise ValueError(f"{name}.{key} must be one of {list(choices)}, got {kwargs[key]!r}")
    return cls(**kwargs)


def _check_model(model: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(model, dict) or not model:
        raise ValueError(f"the model section must be a mapping such as {{preset: NAME}}; got {model!r}")
    unknown = sorted(set(model) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(_unknown("model option", unknown, MODEL_KEYS))
    if "preset" not in model and "pretrained" not in model and "net" not in model and "quantizer" not in model:
        raise ValueError("the model section needs `preset: NAME`, `pretrained: PATH` or a full config (net, quantizer)")
    if "pretrained" not in model:
        _check_model_config(model)
    return model


def _check_model_config(model: dict[str, Any]) -> None:
    """Every name (preset, quantizer / net types and options: vistok's registries name the closest valid one) and
    every value, by building the tokenizer's config on the meta device (no weights, no memory)."""
    import torch

    from .model import build_tokenizer

    try:
        with torch.device("meta"):
            build_tokenizer(model)
    except ValueError as err:
        raise ValueError(f"model: {err}") from None


def recipe_from_dict(raw: dict[str, Any], source: str | None = None) -> Recipe:
    """Validate a raw recipe mapping (as read from YAML, overrides applied) into a :class:`Recipe`."""
    if not isinstance(raw, dict):
        raise ValueError(f"a recipe must be a mapping of sections, got {type(raw).__name__}")
    valid_sections = ["model", *SECTIONS]
    unknown = sorted(set(raw) - set(valid_sections))
    if unknown:
        raise ValueError(f"unknown recipe section(s) {unknown}; valid sections: {valid_sections}")
    if "model" not in raw:
        raise ValueError("the recipe has no model section (e.g. `model: {preset: vqvae-celeba64-vq-d4}`)")
    sections = {name: _build_section(name, raw.get(name) or {}) for name in SECTIONS}
    return Recipe(model=_check_model(dict(raw["model"])), source=source, **sections)


# --------------------------------------------------------------------------------------- CLI overrides
def parse_overrides(args: list[str]) -> list[tuple[str, Any]]:
    """``["--train.lr", "1e-4", "--data.hflip=false"]`` → ``[("train.lr", 1e-4), ("data.hflip", False)]``."""
    pairs: list[tuple[str, Any]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"expected --section.field VALUE, got {arg!r}")
        key, eq, text = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or (args[i + 1].startswith("--") and not _is_number(args[i + 1])):
                raise ValueError(f"option --{key} needs a value")
            text = args[i + 1]
            i += 1
        # the shorthands also take the dashed spelling of the vistok commands (--output-dir = --output_dir)
        pairs.append((ALIASES.get(key, ALIASES.get(key.replace("-", "_"), key)), _parse_scalar(text)))
        i += 1
    return pairs


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def apply_overrides(raw: dict[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    """Set each dotted key in a copy of ``raw`` (section names and fields are validated later)."""
    out = copy.deepcopy(raw) if raw else {}
    valid_sections = ["model", *SECTIONS]
    for dotted, value in overrides:
        parts = dotted.split(".")
        if parts[0] not in valid_sections:
            raise ValueError(
                f"unknown option --{dotted}{did_you_mean(parts[0], [*valid_sections, *ALIASES])}; use "
                f"--section.field with a section in {valid_sections} or one of the aliases "
                f"{sorted('--' + a for a in ALIASES)}"
            )
        if len(parts) == 1:  # a whole section, e.g. --model '{preset: vqvae-celeba64-vq-d8}'
            if not isinstance(value, dict):
                raise ValueError(f"--{dotted} replaces a whole section and needs a mapping, got {value!r}")
            out[dotted] = value
            continue
        if parts[0] != "model" and len(parts) != 2:
            raise ValueError(f"unknown option --{dotted}: {parts[0]} fields are not nested")
        node = out.setdefault(parts[0], {})
        for part in parts[1:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--{dotted}: {part!r} is not a mapping")
        node[parts[-1]] = value
    return out


def load_recipe(path: str | Path | None, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe (optional) and apply command-line overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"recipe {str(path)!r} not found")
        raw = read_yaml(path.read_text()) or {}
    raw = apply_overrides(raw, parse_overrides(overrides or []))
    return recipe_from_dict(raw, source=str(path) if path is not None else None)


def dump_recipe(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False)

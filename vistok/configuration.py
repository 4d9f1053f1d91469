"""``VisTokenizerConfig``: the single source of truth a tokenizer is rebuilt from."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from transformers import PreTrainedConfig

from . import nets, quantizers  # noqa: F401  (fill the NETS / QUANTIZERS registries)
from .layouts import layout_for
from .model_ids import RECORD_KEY, validate_record
from .registry import NETS, QUANTIZERS, normalize_spec

DEFAULT_NET = {"type": "simple_cnn"}
DEFAULT_QUANTIZER = {"type": "vq"}
# The largest native resolution a config may record: far above any tokenizer's (a few thousand pixels), far below
# sizes whose buffers or position embeddings could not be allocated. Images of other sizes still go through a grid
# tokenizer at run time.
MAX_IMAGE_SIZE = 16384
MAX_CHANNELS = 1024


class InvalidConfigError(ValueError):
    """A config (or a ``config.json``) that does not describe a tokenizer; the message names the option (and the
    file, when one was read) and what was expected."""


class NotATokenizerFolderError(OSError):
    """A local folder without the ``config.json`` every vistok tokenizer folder has."""

# Keyword arguments that are not dataclass fields but that transformers itself passes to a config's constructor or
# writes into config.json (``from_dict`` / ``to_dict`` / ``from_pretrained`` bookkeeping). Anything else that is
# not a field is a mistake and is refused instead of being stored as a stray attribute.
TRANSFORMERS_BOOKKEEPING_KEYS = frozenset(
    {
        "model_type",
        "torch_dtype",
        "name_or_path",
        "_name_or_path",
        "_commit_hash",
        "output_attentions",
        "attn_implementation",
        "experts_implementation",
        "_attn_implementation_internal",
        "_experts_implementation_internal",
    }
)


class VisTokenizerConfig(PreTrainedConfig):
    """Configuration of a :class:`~vistok.VisTokenizer`.

    Args:
        image_size: native square resolution (the image processor resizes / crops to it). Any H, W divisible by
            the downsample factor works at run time.
        num_channels: image channels (3 for RGB).
        net: ``{"type": <registered net>, **options}``, e.g. ``{"type": "vqgan", "channel_multiplier": [1, 2, 2, 4]}``.
        quantizer: ``{"type": <registered quantizer>, **options}``, e.g. ``{"type": "fsq", "levels": [8, 5, 5, 5]}``.
        preset: name of the preset this config came from, if any.
        source: where the hyper-parameters come from (seed table row, paper), for model cards.
        metadata: free-form JSON metadata that lives with the weights (origin, licence, training recipe, metrics).

    Both specs are validated and completed with their defaults at construction: unknown types or options raise a
    ``ValueError`` that lists the valid ones, and so does an unknown keyword argument (it would otherwise be
    stored as an attribute that nothing reads).
    """

    model_type = "vistok"

    image_size: int = 64
    num_channels: int = 3
    net: dict | None = None
    quantizer: dict | None = None
    preset: str | None = None
    source: str | None = None
    metadata: dict | None = None

    def __post_init__(self, **kwargs: Any):
        try:
            self._validate(kwargs)
        except InvalidConfigError:
            raise
        except ValueError as err:  # the registries' and layouts' refusals: one kind of error for a bad config
            raise InvalidConfigError(str(err)) from err
        super().__post_init__(**kwargs)
        try:
            self._validate_derived()
        except InvalidConfigError:
            raise
        except ValueError as err:
            raise InvalidConfigError(str(err)) from err

    def _validate(self, kwargs: dict[str, Any]) -> None:
        unknown = sorted(set(kwargs) - TRANSFORMERS_BOOKKEEPING_KEYS)
        if unknown:
            raise InvalidConfigError(
                f"Unknown VisTokenizerConfig option(s) {unknown}; valid options: {', '.join(vistok_fields())} "
                "(quantizer and net options go inside the quantizer / net dicts, e.g. "
                "quantizer={'type': 'vq', 'codebook_size': 1024})"
            )
        for name, limit in (("image_size", MAX_IMAGE_SIZE), ("num_channels", MAX_CHANNELS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidConfigError(f"VisTokenizerConfig.{name} must be a positive integer, got {value!r}")
            if value > limit:
                raise InvalidConfigError(
                    f"VisTokenizerConfig.{name} is {value:,}, more than the {limit:,} vistok accepts (no tokenizer "
                    f"has a native {name.replace('_', ' ')} near it): the value is a mistake"
                )
        for name, registry, default in (("net", NETS, DEFAULT_NET), ("quantizer", QUANTIZERS, DEFAULT_QUANTIZER)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                example = {"type": value if isinstance(value, str) and value in registry.names() else
                           registry.names()[0]}
                raise InvalidConfigError(
                    f"VisTokenizerConfig.{name} must be a dict with a 'type' key and that {name}'s options, e.g. "
                    f"{example!r} (types: {', '.join(registry.names())}); got the {type(value).__name__} {value!r}"
                )
            setattr(self, name, normalize_spec(registry, dict(value or default)))
        if self.metadata is not None and not isinstance(self.metadata, dict):
            raise InvalidConfigError(
                f"VisTokenizerConfig.metadata must be a dict (JSON object) of free-form metadata, got the "
                f"{type(self.metadata).__name__} {self.metadata!r}"
            )
        self.metadata = dict(self.metadata or {})
        if self.metadata.get(RECORD_KEY) is not None:  # how a multimodal model numbers the codes (vistok.model_ids)
            validate_record(self.metadata[RECORD_KEY], self.quantizer.get("codebook_size"))
        for name in ("preset", "source"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidConfigError(
                    f"VisTokenizerConfig.{name} must be a string or null, got the {type(value).__name__} {value!r}"
                )

    def _validate_derived(self) -> None:
        if self.image_size % self.downsample_factor:
            raise InvalidConfigError(
                f"image_size {self.image_size} is not divisible by the net's downsample factor "
                f"{self.downsample_factor}"
            )
        family = self.net_family()
        fixed = getattr(family, "image_size", None) if family.latent_kind == "sequence" else None
        if fixed is not None and fixed != self.image_size:
            raise InvalidConfigError(
                f"image_size {self.image_size} differs from the {self.net['type']} net's image_size {fixed}: a "
                "sequence tokenizer's position embeddings fix its resolution; give both the same value"
            )
        self.token_layout  # noqa: B018  (refuses a layout the net and quantizer cannot form together)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs: Any):
        """transformers' lookup of ``config.json`` for the name as :func:`vistok.resolver.resolve` reads it
        (bundled and zoo names included; presets, near misses and missing local paths refused at once), refusing
        ``config.json`` files that are not vistok's (:func:`check_is_vistok_config`)."""
        from .resolver import PRESET, ZOO, UnknownNameError, load_zoo_entry, preset_message, resolve

        resolved = resolve(pretrained_model_name_or_path)
        if resolved.kind == PRESET:
            raise UnknownNameError(preset_message(resolved.target))
        if resolved.kind == ZOO:  # the converted entry's config (converted on first use)
            return load_zoo_entry(resolved).config.to_dict(), kwargs
        check_local_folder(resolved.path, kwargs.get("subfolder") or "")
        config_dict, kwargs = super().get_config_dict(resolved.path, **kwargs)
        if not config_dict:  # transformers answers {} for a repo without config.json
            raise NotATokenizerFolderError(
                f"{str(pretrained_model_name_or_path)!r} is not a vistok tokenizer: it has no config.json. "
                f"{CONVERTERS_HINT}."
            )
        check_is_vistok_config(config_dict, str(pretrained_model_name_or_path))
        return config_dict, kwargs

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args: Any, **kwargs: Any):
        """transformers' ``from_pretrained``; a ``config.json`` that does not describe a tokenizer raises
        :class:`InvalidConfigError` naming the file."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except InvalidConfigError as err:
            where = config_file_label(pretrained_model_name_or_path, kwargs.get("subfolder") or "")
            if where in str(err):
                raise
            raise InvalidConfigError(f"{where}: {err}") from err

    @classmethod
    def _dict_from_json_file(cls, json_file: str | os.PathLike) -> dict[str, Any]:
        """The JSON object in ``json_file``; anything else (an array, a string, null) raises
        :class:`InvalidConfigError` naming the file (transformers names it for text that is not JSON)."""
        value = super()._dict_from_json_file(json_file)
        if not isinstance(value, dict):
            kind = {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
                type(value), "a number"
            )
            raise InvalidConfigError(
                f"{str(json_file)!r} holds {kind}, not a JSON object: a vistok config.json maps option names to "
                "values (model_type, image_size, net, quantizer, …), as save_pretrained writes it"
            )
        return value

    def net_family(self):
        """The configured :class:`~vistok.nets.NetFamily` instance."""
        spec = dict(self.net)
        return NETS.get(spec.pop("type"))(**spec)

    @property
    def downsample_factor(self) -> int:
        return self.net_family().downsample_factor

    @property
    def latent_size(self) -> int:
        """Latent positions per side at ``image_size`` (grid and multi-scale layouts: tokens per side of the finest
        grid)."""
        return self.image_size // self.downsample_factor

    @property
    def latent_hw(self) -> tuple[int, int]:
        """(h, w) of the latent at ``image_size``: (H/f, W/f) for grid nets, (1, L) for sequence nets."""
        family = self.net_family()
        if family.latent_kind == "sequence":
            return (1, int(family.num_latent_tokens))
        return (self.latent_size, self.latent_size)

    @property
    def token_layout(self):
        """The :class:`~vistok.layouts.TokenLayout` of this tokenizer's indices (grid, sequence or multi-scale)."""
        family = self.net_family()
        spec = dict(self.quantizer)
        return layout_for(family.latent_kind, family.num_latent_tokens, QUANTIZERS.get(spec.pop("type")), spec)

    def tokens_per_image(self) -> int:
        """Tokens one image at ``image_size`` becomes."""
        return self.token_layout.tokens_per_image(self.latent_hw)


# What to do with a config.json written by another library (model_type or diffusers class → advice).
FOREIGN_CONFIG_ADVICE = {
    "VQModel": "it is a diffusers VQModel: import it with VisTokenizer.from_diffusers(<folder or repo>)",
    "multi_modality": "it is a DeepSeek Janus / Janus-Pro multimodal model: vistok loads its image-generation "
    "tokenizer with `vistok convert janus <folder> <output>` (deepseek-ai/Janus-Pro-1B and -7B load directly through "
    "the zoo: VisTokenizer.from_pretrained('deepseek-ai/Janus-Pro-1B'))",
    "janus": "transformers implements it: load it with transformers' own classes (e.g. JanusForConditionalGeneration), "
    "then VisTokenizer.from_transformers(model)",
    "janus_vqgan": "transformers implements it: load it with transformers (JanusVQVAE), then "
    "VisTokenizer.from_transformers(module)",
    "chameleon_vqgan": "transformers implements it: load it with transformers (ChameleonVQVAE), then "
    "VisTokenizer.from_transformers(module)",
    "emu3_vqgan": "transformers implements it: load it with transformers (Emu3VQVAE), then "
    "VisTokenizer.from_transformers(module)",
}
CONVERTERS_HINT = (
    "vistok loads folders written by VisTokenizer.save_pretrained and the published tokenizers of its zoo "
    "(`vistok zoo list`); it converts upstream checkpoints with `vistok convert ORIGIN <checkpoint> <output folder>` "
    "(`vistok convert --help` lists the formats) and diffusers VQModels (VisTokenizer.from_diffusers)"
)


def config_file_label(name: str | os.PathLike, subfolder: str = "") -> str:
    """How messages name the ``config.json`` of ``name``: its path for a local folder, else "config.json of <repo>"."""
    folder = Path(name) / subfolder
    if folder.is_dir():
        return str(folder / "config.json")
    return f"config.json of {str(name)!r}" + (f" (subfolder {subfolder!r})" if subfolder else "")


def check_local_folder(name: str | os.PathLike, subfolder: str = "") -> None:
    """For a local folder: raise :class:`NotATokenizerFolderError` when it has no ``config.json`` (naming what it
    holds), and ``OSError`` when an interrupted ``save_pretrained`` left its files half replaced. Other names pass."""
    from .atomic import incomplete_folder_message

    folder = Path(name) / subfolder
    if not folder.is_dir():
        return
    incomplete = incomplete_folder_message(folder)
    if incomplete:
        raise OSError(incomplete[0].upper() + incomplete[1:])
    if not (folder / "config.json").is_file():
        held = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        shown = ", ".join(held[:8]) + (", …" if len(held) > 8 else "") if held else "nothing"
        raise NotATokenizerFolderError(
            f"{str(folder)!r} is not a vistok tokenizer folder: it has no config.json (it holds {shown}); a "
            f"tokenizer folder holds config.json and model.safetensors, as save_pretrained writes them. "
            f"{CONVERTERS_HINT}."
        )


def check_is_vistok_config(config_dict: dict[str, Any], name: str) -> None:
    """Raise ``ValueError`` when ``config_dict`` (a loaded ``config.json``) is not a vistok tokenizer's: naming the
    ``model_type`` found, the one expected, and the converter or library that fits when one is known."""
    found = config_dict.get("model_type")
    if found == VisTokenizerConfig.model_type:
        return
    kind = found or config_dict.get("_class_name")
    described = f"model_type {found!r}" if found else (
        f"diffusers class {kind!r}" if kind else "no model_type"
    )
    advice = FOREIGN_CONFIG_ADVICE.get(kind)
    raise ValueError(
        f"{name!r} is not a vistok tokenizer: its config.json has {described}, vistok expects model_type "
        f"{VisTokenizerConfig.model_type!r}. " + (f"{advice[0].upper()}{advice[1:]}. " if advice else "")
        + f"{CONVERTERS_HINT}."
    )


def vistok_fields() -> list[str]:
    """The options :class:`VisTokenizerConfig` adds to transformers' ``PreTrainedConfig``, in declaration order."""
    inherited = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    return [f.name for f in dataclasses.fields(VisTokenizerConfig) if f.name not in inherited]

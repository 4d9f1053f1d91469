"""LlamaGen VQ tokenizers (VQ-16, VQ-8; c2i and t2i) → vistok.

vistok's ``vqgan`` net uses LlamaGen's module layout, so the weights map one to one; only the quantizer differs:
``quantize.embedding.weight`` becomes ``quantizer.codebook`` and ``quantize.codebook_used`` (a training-time queue of
recent indices) is dropped. LlamaGen's checkpoints are ``{"model", "optimizer", "steps", "args", …}`` dicts, with
``"ema"`` when trained with EMA; the EMA weights are preferred.

What shapes cannot tell comes from the stored training arguments when present (``codebook_l2_norm``,
``commit_loss_beta``, ``entropy_loss_ratio``, ``dropout_p`` → net ``dropout``, ``image_size``); otherwise LlamaGen's defaults apply — in particular
l2-normalised codes, as in every released LlamaGen VQ model.

LlamaGen's ``VQModelHF`` (``PyTorchModelHubMixin``, e.g. the Hub repo ``FoundationVision/vq-ds16-c2i``) saves a
folder instead: ``model.safetensors`` (the bare state dict, LlamaGen's keys) and ``config.json`` (its ``ModelArgs``
dataclass as a flat JSON object). Those fields play the training arguments' part and must agree with the tensors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..convert.containers import describe_layout, select_state_dict, strip_prefix
from ..convert.origins import Origin, Release, reported_metric
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..convert.vqgan_layout import build_tokenizer, infer_vqgan_config
from ..preprocessing import Preprocessing
from .base import ConverterOption, conversion_metadata, register_family
from .records import MIT, ZooEntry, imagenet_vqgan_preset

LLAMAGEN = Origin(
    name="LlamaGen",
    url="https://github.com/FoundationVision/LlamaGen",
    license="mit",
    paper_title="Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation",
    paper_authors="Peize Sun, Yi Jiang, Shoufa Chen, Shilong Zhang, Bingyue Peng, Ping Luo, Zehuan Yuan",
    paper_venue="arXiv:2406.06525 (2024)",
    paper_url="https://arxiv.org/abs/2406.06525",
    citation="""@article{sun2024autoregressive,
  title={Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation},
  author={Sun, Peize and Jiang, Yi and Chen, Shoufa and Zhang, Shilong and Peng, Bingyue and Luo, Ping and Yuan, Zehuan},
  journal={arXiv preprint arXiv:2406.06525},
  year={2024}
}""",
)
PAPER = "Sun et al., Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation (2024)"
# LlamaGen's VectorQuantizer: ||z_q − sg(z)||² + commit_loss_beta·||sg(z_q) − z||² with commit_loss_beta = 0.25,
# plus entropy_loss_ratio (0 in vq_train.py's defaults) times its entropy loss. The presets, their training recipe
# and the converter's defaults all read them from here.
LLAMAGEN_QUANTIZER_LOSS = {"commitment_weight": 0.25, "codebook_weight": 1.0, "entropy_weight": 0.0}

PRESETS = tuple(
    imagenet_vqgan_preset(
        f"vqgan-llamagen-vq{factor}",
        f"LlamaGen VQ-{factor}, 256px → {256 // factor}x{256 // factor} tokens, l2-normalised codebook 16384 x 8",
        mult,
        {"type": "vq", "codebook_size": 16384, "codebook_dim": 8, "l2_norm": True, **LLAMAGEN_QUANTIZER_LOSS},
        PAPER,
        "vqgan-llamagen.yaml",
    )
    for factor, mult in ((16, [1, 1, 2, 2, 4]), (8, [1, 2, 2, 4]))
)
VQ16 = Release(
    LLAMAGEN,
    "VQ-16",
    ("vq_ds16_c2i.pt", "vq_ds16_t2i.pt"),
    (1, 1, 2, 2, 4),
    (16384, 8),
    (
        reported_metric("rfid", 2.19, "LlamaGen paper / README", LLAMAGEN.paper_url, protocol="llamagen"),
        reported_metric("psnr", 20.79, "LlamaGen paper / README", LLAMAGEN.paper_url, protocol="llamagen"),
        reported_metric(
            "ssim", 0.675, "LlamaGen paper / README", LLAMAGEN.paper_url, note="SSIM computed with data_range 2",
            protocol="llamagen",
        ),
    ),
    metrics_checkpoints=("vq_ds16_c2i.pt",),
)
VQ8 = Release(
    LLAMAGEN,
    "VQ-8",
    ("vq_ds8_c2i.pt",),
    (1, 2, 2, 4),
    (16384, 8),
    (reported_metric("rfid", 0.59, "LlamaGen README", LLAMAGEN.url, protocol="llamagen"),),
    metrics_checkpoints=("vq_ds8_c2i.pt",),
)

# The c2i VQ-16 / VQ-8 files of FoundationVision/LlamaGen, the t2i VQ-16 of peizesun/llamagen_t2i (file names as in
# LlamaGen's README download links) and the PyTorchModelHubMixin repo FoundationVision/vq-ds16-c2i (VQModelHF:
# config.json with the ModelArgs + model.safetensors).
ENTRIES = (
    ZooEntry(
        name="vqgan-llamagen-vq16",
        description="LlamaGen VQ-16 (class-to-image), 256px → 16x16 tokens, codebook 16384 x 8",
        origin=LLAMAGEN,
        license=MIT,
        converter="llamagen",
        image_size=256,
        repo_id="FoundationVision/LlamaGen",
        filenames=("vq_ds16_c2i.pt",),
        preset="vqgan-llamagen-vq16",
        reported_metrics=VQ16.reported_metrics,
    ),
    ZooEntry(
        name="vqgan-llamagen-vq8",
        description="LlamaGen VQ-8 (class-to-image), 256px → 32x32 tokens, codebook 16384 x 8",
        origin=LLAMAGEN,
        license=MIT,
        converter="llamagen",
        image_size=256,
        repo_id="FoundationVision/LlamaGen",
        filenames=("vq_ds8_c2i.pt",),
        preset="vqgan-llamagen-vq8",
        reported_metrics=VQ8.reported_metrics,
    ),
    ZooEntry(
        name="vqgan-llamagen-vq16-t2i",
        description="LlamaGen VQ-16 (text-to-image tokenizer), 256px → 16x16 tokens, codebook 16384 x 8",
        origin=LLAMAGEN,
        license=MIT,
        converter="llamagen",
        image_size=256,
        repo_id="peizesun/llamagen_t2i",
        filenames=("vq_ds16_t2i.pt",),
        preset="vqgan-llamagen-vq16",
        notes=("The t2i tokenizer was trained on other data than the c2i one; the c2i numbers do not apply to it.",),
    ),
    ZooEntry(
        name="vqgan-llamagen-vq16-hf",
        description="LlamaGen VQ-16 c2i as LlamaGen's PyTorchModelHubMixin repo, 256px → 16x16 tokens",
        origin=LLAMAGEN,
        license=MIT,
        converter="llamagen",
        image_size=256,
        repo_id="FoundationVision/vq-ds16-c2i",
        filenames=("model.safetensors",),
        companion_files=("config.json",),
        preset="vqgan-llamagen-vq16",
        reported_metrics=VQ16.reported_metrics,
        notes=(
            "Written by LlamaGen's VQModelHF (PyTorchModelHubMixin) from vq_ds16_c2i.pt's weights: config.json "
            "holds the ModelArgs, model.safetensors the weights.",
        ),
    ),
)

WEIGHT_ENTRIES = ("ema", "model", "state_dict")
DROPPED_KEYS = ("quantize.codebook_used",)
DEFAULT_IMAGE_SIZE = 256
VQ_MODELS = {"VQ-16": (1, 1, 2, 2, 4), "VQ-8": (1, 2, 2, 4)}  # LlamaGen's named VQ architectures
# What PyTorchModelHubMixin writes: the weights (safetensors; older huggingface_hub versions pickled them) and the
# config.json of LlamaGen's ModelArgs fields.
MIXIN_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
MODEL_ARGS_FIELDS = (
    "codebook_size",
    "codebook_embed_dim",
    "codebook_l2_norm",
    "codebook_show_usage",
    "commit_loss_beta",
    "entropy_loss_ratio",
    "encoder_ch_mult",
    "decoder_ch_mult",
    "z_channels",
    "dropout_p",
)
TRAINING_ARGS = "the checkpoint's training args"
MIXIN_CONFIG = "config.json"


def _says(source: str) -> str:
    return f"{source} {'say' if source == TRAINING_ARGS else 'says'}"


def _whose(source: str) -> str:
    return "the training args'" if source == TRAINING_ARGS else f"{source}'s"


def llamagen_to_vistok(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Rename a LlamaGen VQ state dict into vistok's layout (tensors are not copied)."""
    state_dict = strip_prefix(state_dict)
    if "quantize.embedding.weight" not in state_dict or not any(
        k.startswith("encoder.conv_blocks.") for k in state_dict
    ):
        raise CheckpointError(
            f"this is not a LlamaGen VQ checkpoint: it looks like {describe_layout(state_dict)}; `vistok convert "
            "llamagen` expects encoder.conv_blocks.* and quantize.embedding.weight"
        )
    out = {}
    for key, value in state_dict.items():
        if key in DROPPED_KEYS:
            continue
        out["quantizer.codebook" if key == "quantize.embedding.weight" else key] = value
    return out


def _training_args(checkpoint: Any) -> dict[str, Any]:
    args = checkpoint.get("args") if isinstance(checkpoint, dict) else None
    if args is None:
        return {}
    values = vars(args) if hasattr(args, "__dict__") else dict(args) if isinstance(args, dict) else {}
    return {k: v for k, v in values.items() if isinstance(v, (str, int, float, bool, type(None)))}


def llamagen_quantizer_options(
    args: dict[str, Any],
    codebook_size: int,
    codebook_dim: int,
    codebook_l2_norm: bool | None = None,
    source: str = TRAINING_ARGS,
) -> tuple[dict[str, Any], list[str]]:
    """The ``vq`` options shapes cannot tell, from LlamaGen's training arguments (defaults when absent), and
    notes saying which were assumed or overridden.

    ``codebook_l2_norm`` (when not None) is the caller's answer to whether codes are l2-normalised; it wins over
    the training args and over the default. Cross-checks ``codebook_size`` / ``codebook_embed_dim`` in ``args``
    against the codebook's shape. ``source`` names where ``args`` come from, in messages and notes.
    """
    for name, actual in (("codebook_size", codebook_size), ("codebook_embed_dim", codebook_dim)):
        if name in args and args[name] is not None and int(args[name]) != actual:
            raise CheckpointError(f"{_says(source)} {name}={args[name]} but its codebook tensor has {actual}")
    notes = []
    stored = args.get("codebook_l2_norm")
    if codebook_l2_norm is not None:
        if not isinstance(codebook_l2_norm, bool):
            raise ValueError(f"codebook_l2_norm must be True, False or None, got {codebook_l2_norm!r}")
        options: dict[str, Any] = {"l2_norm": codebook_l2_norm}
        if stored is None:
            notes.append(
                f"l2_norm={codebook_l2_norm} given by the caller (the checkpoint stores no codebook_l2_norm)"
            )
        elif bool(stored) != codebook_l2_norm:
            notes.append(
                f"l2_norm={codebook_l2_norm} given by the caller overrides {_whose(source)} "
                f"codebook_l2_norm={stored}"
            )
    elif stored is not None:
        options = {"l2_norm": bool(stored)}
    else:
        options = {"l2_norm": True}
        notes.append(
            "l2_norm=True assumed: the checkpoint stores no codebook_l2_norm; LlamaGen's VQ models use it "
            "(pass codebook_l2_norm=False / --codebook-l2-norm false if this one does not)"
        )
    if args.get("commit_loss_beta") is not None:
        options["commitment_weight"] = float(args["commit_loss_beta"])
    if args.get("entropy_loss_ratio"):
        # LlamaGen's entropy loss uses softmax(−d / 0.01), vistok's default entropy_temperature.
        options["entropy_weight"] = float(args["entropy_loss_ratio"])
    return options, notes


def llamagen_net_options(args: dict[str, Any], source: str = TRAINING_ARGS) -> dict[str, Any]:
    """The ``vqgan`` net options shapes cannot tell, from LlamaGen's training arguments: ``dropout_p`` (the
    residual blocks' dropout, active only in training) becomes ``dropout``. Empty when the args do not store it."""
    dropout = args.get("dropout_p")
    if dropout is None:
        return {}
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise CheckpointError(f"{_says(source)} dropout_p={dropout!r}; expected a probability in [0, 1)")
    return {"dropout": float(dropout)}


def _check_model_name(args: dict[str, Any], inferred: dict[str, Any]) -> list[str]:
    """A note when the training args name a LlamaGen model whose architecture differs from the tensors'."""
    name = args.get("vq_model")
    expected = VQ_MODELS.get(name) if isinstance(name, str) else None
    actual = inferred["net"]["channel_multiplier"]
    if expected is not None and list(expected) != actual:
        return [
            f"the training args name vq_model={name!r} (channel multipliers {list(expected)}) but the tensors "
            f"have {actual}; the architecture follows the tensors"
        ]
    return []


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(size, filter="bicubic", size_rule="round", box_prehalve=True, crop_offset="floor",
                         follows="LlamaGen's center_crop_arr (ADM)")

@register_family(
    "llamagen",
    origin=LLAMAGEN,
    summary="LlamaGen VQ-16 / VQ-8: .pt training checkpoint, a bare state dict, or a VQModelHF (mixin) folder",
    weights_help="auto (= ema, else model, else state_dict), ema, model or state_dict",
    options=(
        ConverterOption(
            "--codebook-l2-norm",
            "codebook_l2_norm",
            "whether the codes are l2-normalised (default: the checkpoint's training args, else true as in every "
            "released LlamaGen VQ model)",
            choices=("true", "false"),
            parse=lambda text: text == "true",
        ),
    ),
    presets=PRESETS,
    releases=(VQ16, VQ8),
    entries=ENTRIES,
    preprocessing=_preprocessing,
)
def convert_llamagen(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
    codebook_l2_norm: bool | None = None,
):
    """Convert a LlamaGen VQ checkpoint into a :class:`~vistok.VisTokenizer` (eval mode).

    Args:
        checkpoint: path to the ``.pt`` file (or a ``.safetensors`` state dict), or a folder saved by LlamaGen's
            ``VQModelHF`` (PyTorchModelHubMixin: ``config.json`` + ``model.safetensors``) or that folder's weight
            file, whose sibling ``config.json`` is then read too.
        weights: ``"auto"`` (``ema`` if present, else ``model``, else ``state_dict``) or one of those names.
        image_size: native resolution recorded in the config; default the checkpoint's ``args.image_size`` or 256.
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).
        codebook_l2_norm: whether the codes are l2-normalised before the lookup (cosine search). ``None`` takes the
            checkpoint's ``args.codebook_l2_norm`` (a mixin folder's ``config.json`` ``codebook_l2_norm``), or
            ``True`` (every released LlamaGen VQ model) when there is none; ``True`` / ``False`` override both,
            and the override is noted in the metadata.

    The architecture is inferred from the tensor shapes and cross-checked (a mixin ``config.json`` whose
    ``ModelArgs`` contradict the tensors is refused); origin, licence, paper, converter code hash and the
    release's reported numbers go into ``config.metadata``.
    """
    weight_file, model_args = _mixin_files(checkpoint)
    loaded = load_checkpoint(weight_file, trust_checkpoint=trust_checkpoint)
    state_dict, which = select_state_dict(loaded, WEIGHT_ENTRIES, weights)
    state_dict = llamagen_to_vistok(state_dict)
    inferred = infer_vqgan_config(state_dict)
    if model_args is None:
        args, source = _training_args(loaded), TRAINING_ARGS
        extra: dict[str, Any] = {"training_args": args} if args else {}
    else:
        args, source = model_args, MIXIN_CONFIG
        _check_model_args(model_args, inferred)
        extra = {"model_args": model_args, "format": "PyTorchModelHubMixin folder (LlamaGen's VQModelHF)"}
    quantizer, notes = llamagen_quantizer_options(
        args, inferred["codebook_size"], inferred["codebook_dim"], codebook_l2_norm, source
    )
    notes += _check_model_name(args, inferred)
    size = image_size or _usable_image_size(args.get("image_size"), inferred) or DEFAULT_IMAGE_SIZE
    if isinstance(loaded, dict) and isinstance(loaded.get("steps"), int):
        extra["training_steps"] = loaded["steps"]
    metadata = conversion_metadata(LLAMAGEN, "llamagen", inferred, weight_file, which, extra, notes)
    release = metadata["origin"].get("release", "VQ model")
    return build_tokenizer(
        state_dict,
        quantizer,
        size,
        metadata,
        source=f"converted from {LLAMAGEN.name} {release} ({weight_file.name})",
        net_options=llamagen_net_options(args, source),
    )


def _mixin_files(checkpoint: str | os.PathLike) -> tuple[Path, dict[str, Any] | None]:
    """The weight file to load and, when it is a PyTorchModelHubMixin weight file with a ``config.json`` of
    LlamaGen ``ModelArgs`` beside it, those fields (``None`` otherwise: a plain checkpoint)."""
    path = Path(checkpoint)
    if path.is_dir():
        weight_file = next((path / name for name in MIXIN_WEIGHT_FILES if (path / name).is_file()), None)
        if weight_file is None:
            held = ", ".join(sorted(p.name for p in path.iterdir())[:12]) or "nothing"
            raise CheckpointError(
                f"the folder {str(path)!r} holds none of {list(MIXIN_WEIGHT_FILES)} (LlamaGen's "
                f"PyTorchModelHubMixin layout: config.json + model.safetensors); it holds {held}. For a .pt "
                "checkpoint pass the file itself"
            )
    else:
        weight_file = path
    config = weight_file.parent / "config.json"
    if weight_file.name not in MIXIN_WEIGHT_FILES or not config.is_file():
        return weight_file, None
    try:
        values = json.loads(config.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{str(config)!r} (beside {weight_file.name}) is not valid JSON: {err}"
        ) from err
    if not isinstance(values, dict) or not set(values) & set(MODEL_ARGS_FIELDS):
        # Not LlamaGen's ModelArgs (e.g. a vistok folder's config.json): the tensors alone decide.
        return weight_file, None
    return weight_file, values


def _check_model_args(model_args: dict[str, Any], inferred: dict[str, Any]) -> None:
    """Refuse a mixin ``config.json`` whose architecture fields contradict the tensors (the codebook fields are
    checked by :func:`llamagen_quantizer_options`)."""
    expected = {
        "encoder_ch_mult": inferred["net"]["channel_multiplier"],
        "decoder_ch_mult": inferred["net"]["channel_multiplier"],
        "z_channels": inferred["net"]["latent_channels"],
    }
    for name, actual in expected.items():
        if name in model_args and model_args[name] != actual:
            raise CheckpointError(
                f"config.json says {name}={model_args[name]!r} but the weights have {actual!r}; the config and the "
                "weights do not belong together (vistok follows the tensors, so it refuses rather than guess)"
            )
    stored = model_args.get("codebook_l2_norm")
    if stored is not None and not isinstance(stored, bool):
        raise CheckpointError(f"config.json says codebook_l2_norm={stored!r}; expected true or false")


def _usable_image_size(value: Any, inferred: dict[str, Any]) -> int | None:
    factor = 2 ** (len(inferred["net"]["channel_multiplier"]) - 1)
    if isinstance(value, int) and value > 0 and value % factor == 0:
        return value
    return None

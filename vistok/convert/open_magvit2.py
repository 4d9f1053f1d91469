"""Open-MAGVIT2 tokenizers (SEED-Voken ``lfqgan.VQModel`` Lightning ``.ckpt`` files) → vistok.

The files are Lightning training checkpoints without hyper-parameters (see ``shared/reference/README.md``): the
raw ``encoder.*`` / ``decoder.*`` weights, ``loss.*`` (LPIPS, discriminator) and ``model_ema.*`` LitEma shadows.
Upstream evaluates inside ``ema_scope()``, so the EMA weights are the released model and the default here
(:mod:`.lightning_ema`). LFQ has no tensors, so the whole tokenizer is the improved-model encoder / decoder,
whose module names are vistok's ``magvit2`` net's: the keys map unchanged and the architecture is inferred from
the shapes (:mod:`.magvit2_layout`), the codebook being 2^(latent channels).

Open-MAGVIT2's LFQ numbers bits from channel 0 = least significant (index = Σ_c bit_c·2^c), vistok's default is
channel 0 = most significant; the converted quantizer says ``bit_order: "lsb_first"``, so a converted model
gives upstream's indices with upstream's weights and latent channel order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..presets import OPEN_MAGVIT2_LFQ_OPTIONS
from .lightning_ema import lightning_state_dict, select_lightning_weights
from .magvit2_layout import infer_magvit2_net, load_converted
from .origins import IMAGENET_128, OPEN_MAGVIT2, conversion_metadata, reported_metric
from .safe_load import CheckpointError, load_checkpoint

WHAT = "an Open-MAGVIT2"
DEFAULT_IMAGE_SIZE = 256
TOKENIZER_PREFIXES = ("encoder.", "decoder.")
DOCS_URL = "https://github.com/TencentARC/SEED-Voken/blob/main/docs/Open-MAGVIT2.md"


def _reported(metric: str, value: float, **extra: Any) -> dict[str, Any]:
    return reported_metric(metric, value, "SEED-Voken docs/Open-MAGVIT2.md", DOCS_URL, **extra)


# Released files: native resolution and the numbers their authors report (ImageNet val, 16x16 tokens).
RELEASE_FILES: dict[str, dict[str, Any]] = {
    "imagenet_256_L.ckpt": {
        "image_size": 256,
        "reported_metrics": (
            _reported("rfid", 1.17),
            _reported("psnr", 21.90),
            _reported("codebook_usage", 1.0),
        ),
    },
    "imagenet_128_L.ckpt": {
        "image_size": 128,
        "reported_metrics": (
            _reported("rfid", 1.18, dataset=IMAGENET_128),
            _reported("psnr", 25.08, dataset=IMAGENET_128),
            _reported("codebook_usage", 1.0, dataset=IMAGENET_128),
        ),
    },
    "pretrain256_16384.ckpt": {"image_size": 256, "reported_metrics": ()},
    "pretrain256_262144.ckpt": {"image_size": 256, "reported_metrics": ()},
}


def refuse_other_layouts(state_dict: dict[str, Any]) -> None:
    """:class:`CheckpointError` saying what the checkpoint is instead, unless it has the Open-MAGVIT2 layout
    (improved-model ``encoder.*`` / ``decoder.*`` and no quantizer tensors: LFQ has none)."""
    keys = list(state_dict)
    if any(k.startswith("quantize.embedding_proj.") for k in keys):
        raise CheckpointError(
            "this looks like a SimVQ checkpoint (quantize.embedding_proj.*), not Open-MAGVIT2: convert it with "
            "`vistok convert simvq`"
        )
    quantizer = [k for k in keys if k.startswith(("quantize.", "quant_conv.", "post_quant_conv."))]
    if quantizer:
        raise CheckpointError(
            f"this is not an Open-MAGVIT2 checkpoint: it holds quantizer tensors ({', '.join(quantizer[:3])}), "
            "while Open-MAGVIT2's LFQ has none and no quant_conv. A learned codebook with quant_conv and a "
            "Taming-style encoder (encoder.mid.block_1) is an IBQ or Taming VQGAN checkpoint; convert it with "
            "their converter"
        )
    if not any(k.startswith("encoder.down.") for k in keys) or not any(
        k.startswith("decoder.up.") for k in keys
    ):
        shown = ", ".join(k for k in keys[:5])
        raise CheckpointError(
            f"this is not an Open-MAGVIT2 checkpoint: its state_dict has no encoder.down.* / decoder.up.* tensors "
            f"(it starts with {shown})"
        )
    if any(k.startswith(("encoder.mid.", "decoder.mid.")) for k in keys):
        raise CheckpointError(
            "this is not an Open-MAGVIT2 checkpoint: it has Taming-style encoder.mid.* / decoder.mid.* blocks "
            "(an IBQ or Taming VQGAN), while the improved model has mid_block.*"
        )


def is_tokenizer_key(key: str) -> bool:
    return key.startswith(TOKENIZER_PREFIXES)


def convert_open_magvit2(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert an Open-MAGVIT2 Lightning checkpoint into a :class:`~vistok.VisTokenizer` (eval mode).

    Args:
        checkpoint: the ``.ckpt`` file (e.g. ``imagenet_256_L.ckpt``).
        weights: ``"auto"`` (the EMA shadows when the file has them, as upstream evaluates; else the raw
            weights), ``"ema"`` or ``"raw"``.
        image_size: native resolution recorded in the config; default the release's (128 for
            ``imagenet_128_L.ckpt``), else 256.
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).

    The net is ``magvit2`` with the shapes' architecture, the quantizer ``lfq`` with ``codebook_dim`` = latent
    channels, ``bit_order="lsb_first"`` (upstream's index convention) and Open-MAGVIT2's LFQ loss options
    (:data:`vistok.presets.OPEN_MAGVIT2_LFQ_OPTIONS`, from ``imagenet_lfqgan_256_L.yaml``).
    Raises :class:`CheckpointError` for files that are not Open-MAGVIT2 Lightning checkpoints (naming what they
    look like) and when EMA weights are asked for but missing.
    """
    loaded = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    state_dict = lightning_state_dict(loaded, WHAT)
    refuse_other_layouts(state_dict)
    selected, which = select_lightning_weights(state_dict, is_tokenizer_key, weights, what=WHAT)
    inferred = infer_magvit2_net(selected)
    net = inferred["net"]
    if not net["adaptive_norm"]:
        raise CheckpointError(
            "this checkpoint's decoder has no adaptive group norms (decoder.adaptive.*), which every Open-MAGVIT2 "
            "decoder has; without quantizer tensors it is neither Open-MAGVIT2 nor SimVQ"
        )
    del net["adaptive_norm"]  # the magvit2 default
    bits = net["latent_channels"]
    quantizer = {"type": "lfq", "codebook_dim": bits, **OPEN_MAGVIT2_LFQ_OPTIONS}

    name = Path(checkpoint).name
    release = RELEASE_FILES.get(name)
    notes = [
        "LFQ bit order: upstream's index is sum_c bit_c * 2^c (channel 0 = least significant bit); the quantizer "
        "uses bit_order='lsb_first', so indices equal upstream's and the weights are unchanged",
        f"weights: {'the EMA shadows (model_ema.*), which upstream evaluates under ema_scope()' if which == 'ema' else 'the raw training weights (no EMA)'}",
        f"GroupNorm groups: {net['norm_groups']} assumed (upstream's; shapes do not tell)",
        "LFQ loss options from imagenet_lfqgan_256_L.yaml (codebook_weight 0.1 -> entropy_weight, commit_weight "
        "0.25, sample/batch entropy weights 1.0, temperature 0.01)",
    ]
    size = image_size or (release["image_size"] if release else None)
    if size is None:
        size = DEFAULT_IMAGE_SIZE
        notes.append(
            f"image_size {size} assumed (the file name is not a known release; pass image_size to change)"
        )
    extra: dict[str, Any] = {
        "dropped_entries": sorted(
            {key.split(".")[0] + ".*" for key in state_dict} - {"encoder.*", "decoder.*"}
        )
    }
    for key in ("global_step", "epoch"):
        if isinstance(loaded.get(key), int):
            extra[f"training_{key}"] = loaded[key]
    summary = {"net": net, "codebook_size": 2**bits, "codebook_dim": bits}
    metadata = conversion_metadata(OPEN_MAGVIT2, "open-magvit2", summary, checkpoint, which, extra, notes)
    if release and release["reported_metrics"] and net["latent_channels"] == 18:
        metadata["origin"]["release"] = name.removesuffix(".ckpt")
        metadata["reported_metrics"] = [
            {**m, "applies_to": f"Open-MAGVIT2 {name} as released by its authors"}
            for m in release["reported_metrics"]
        ]
    config = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from Open-MAGVIT2 ({name})",
        "metadata": metadata,
    }
    return load_converted(selected, config, "Open-MAGVIT2")

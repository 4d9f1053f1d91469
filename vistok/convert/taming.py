"""Taming-Transformers VQGAN checkpoints (Lightning ``.ckpt``: f16-1024, f16-16384, f8, …) → vistok.

Taming's modules map onto vistok's ``vqgan`` layout by renaming: ``encoder.down.{i}.block.{j}`` →
``encoder.conv_blocks.{i}.res.{j}`` (``attn`` and ``downsample`` keep their names), ``mid.block_1 / attn_1 /
block_2`` → ``mid.0 / 1 / 2``, decoder ``up.{i}`` (indexed by resolution level) → ``conv_blocks.{L−1−i}`` (decode
order), ``quantize.embedding.weight`` → ``quantizer.codebook``. ``loss.*`` (discriminator, LPIPS) is dropped.

Taming's quantizer is a plain nearest-neighbour VQ (vistok ``vq`` with ``l2_norm=False``). Its loss puts β on the
codebook term — ``||sg(z_q) − z||² + β·||z_q − sg(z)||²``, β = 0.25, the "legacy" form diffusers also keeps — so the
converted quantizer uses ``commitment_weight=1.0, codebook_weight=0.25`` and its loss equals Taming's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .containers import describe_layout, select_state_dict, strip_prefix
from .origins import TAMING, conversion_metadata
from .safe_load import CheckpointError, load_checkpoint
from .vqgan_layout import build_tokenizer, infer_vqgan_config

WEIGHT_ENTRIES = ("state_dict", "model")
DROPPED_PREFIXES = ("loss.", "model_ema.")
DEFAULT_IMAGE_SIZE = 256
TAMING_BETA = 0.25
TAMING_QUANTIZER = {"l2_norm": False, "commitment_weight": 1.0, "codebook_weight": TAMING_BETA}

_MID = {"block_1": "0", "attn_1": "1", "block_2": "2"}
_ENCODER_LEVEL = re.compile(r"^encoder\.down\.(\d+)\.(block|attn|downsample)\.(.*)$")
_DECODER_LEVEL = re.compile(r"^decoder\.up\.(\d+)\.(block|attn|upsample)\.(.*)$")
_MID_KEY = re.compile(r"^(encoder|decoder)\.mid\.(block_1|attn_1|block_2)\.(.*)$")


def _level_part(kind: str, rest: str) -> str:
    return f"res.{rest}" if kind == "block" else f"{kind}.{rest}"


def taming_to_vistok(state_dict: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Rename a Taming VQGAN state dict into vistok's layout.

    Returns ``(vistok_state_dict, dropped_keys)``; ``loss.*`` and ``model_ema.*`` entries are dropped. Raises
    :class:`CheckpointError` for layouts vistok cannot express (Gumbel quantizer, index remapping, 3×3 conv
    shortcuts) or for state dicts that are not Taming VQGANs at all.
    """
    state_dict = strip_prefix(state_dict)
    keys = list(state_dict)
    if any(k.startswith(("quantize.embed.", "quantize.proj.")) for k in keys):
        raise CheckpointError(
            "this is a Taming Gumbel-softmax VQGAN (quantize.proj / quantize.embed); vistok's vq quantizer is a "
            "nearest-neighbour VQ and cannot express it"
        )
    if "quantize.used" in state_dict:
        raise CheckpointError(
            "this VQGAN remaps its indices (quantize.used); vistok cannot express index remapping"
        )
    if any(".conv_shortcut." in k for k in keys):
        raise CheckpointError(
            "this VQGAN uses 3x3 conv shortcuts (conv_shortcut); vistok's vqgan uses 1x1 (nin_shortcut)"
        )
    if "quantize.embedding.weight" not in state_dict or not any(k.startswith("encoder.down.") for k in keys):
        raise CheckpointError(f"not a Taming VQGAN state dict: found {describe_layout(state_dict)}")
    up_levels = {int(m.group(1)) for m in map(_DECODER_LEVEL.match, keys) if m}
    num_levels = max(up_levels) + 1 if up_levels else 0

    out: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in state_dict.items():
        if key.startswith(DROPPED_PREFIXES):
            dropped.append(key)
            continue
        out[_rename(key, num_levels)] = value
    return out, dropped


def _rename(key: str, num_levels: int) -> str:
    if key == "quantize.embedding.weight":
        return "quantizer.codebook"
    if m := _ENCODER_LEVEL.match(key):
        return f"encoder.conv_blocks.{m.group(1)}.{_level_part(m.group(2), m.group(3))}"
    if m := _DECODER_LEVEL.match(key):
        return f"decoder.conv_blocks.{num_levels - 1 - int(m.group(1))}.{_level_part(m.group(2), m.group(3))}"
    if m := _MID_KEY.match(key):
        return f"{m.group(1)}.mid.{_MID[m.group(2)]}.{m.group(3)}"
    return key  # conv_in / norm_out / conv_out / quant_conv / post_quant_conv keep their names


def convert_taming(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert a Taming VQGAN checkpoint (Lightning ``.ckpt`` or a bare state dict) into a
    :class:`~vistok.VisTokenizer` (eval mode).

    Args:
        checkpoint: path to the ``.ckpt`` / ``.pt`` file (or a ``.safetensors`` state dict).
        weights: ``"auto"`` (``state_dict``) or the name of the entry holding the weights.
        image_size: native resolution recorded in the config (default 256, Taming's ImageNet models).
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).
    """
    loaded = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    state_dict, which = select_state_dict(loaded, WEIGHT_ENTRIES, weights)
    state_dict, dropped = taming_to_vistok(state_dict)
    inferred = infer_vqgan_config(state_dict)
    extra: dict[str, Any] = (
        {"dropped_entries": sorted({k.split(".")[0] + ".*" for k in dropped})} if dropped else {}
    )
    if isinstance(loaded, dict):
        for name in ("global_step", "epoch"):
            if isinstance(loaded.get(name), int):
                extra[f"training_{name}"] = loaded[name]
    metadata = conversion_metadata(TAMING, "taming", inferred, checkpoint, which, extra)
    source = (
        f"converted from {TAMING.name} {metadata['origin'].get('release', 'VQGAN')} ({Path(checkpoint).name})"
    )
    return build_tokenizer(
        state_dict, dict(TAMING_QUANTIZER), image_size or DEFAULT_IMAGE_SIZE, metadata, source
    )

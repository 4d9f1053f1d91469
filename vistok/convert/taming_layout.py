"""The Taming-Transformers VQGAN state-dict layout, shared by every family whose networks are Taming's (Taming's
own VQGANs, IBQ): renaming its keys into vistok's ``vqgan`` net and refusing the variants vistok cannot express.

Taming's modules map onto vistok's ``vqgan`` layout by renaming: ``encoder.down.{i}.block.{j}`` →
``encoder.conv_blocks.{i}.res.{j}`` (``attn`` and ``downsample`` keep their names), ``mid.block_1 / attn_1 /
block_2`` → ``mid.0 / 1 / 2``, decoder ``up.{i}`` (indexed by resolution level) → ``conv_blocks.{L−1−i}`` (decode
order), ``quantize.embedding.weight`` → ``quantizer.codebook``. ``loss.*`` (discriminator, LPIPS) is dropped.
EMAVQ checkpoints (``quantize.embedding.{weight, cluster_size, embed_avg}``) keep their EMA statistics, see
:mod:`.taming_ema`.
"""

from __future__ import annotations

import re
from typing import Any

from .containers import describe_layout, strip_prefix
from .safe_load import CheckpointError
from .taming_ema import STATISTICS as EMA_STATISTICS
from .taming_ema import ema_quantizer_to_vistok, is_ema_quantizer

DROPPED_PREFIXES = ("loss.", "model_ema.")
QUANTIZER_PREFIX = "quantize."
PLAIN_CODEBOOK = "quantize.embedding.weight"
_MID = {"block_1": "0", "attn_1": "1", "block_2": "2"}
_ENCODER_LEVEL = re.compile(r"^encoder\.down\.(\d+)\.(block|attn|downsample)\.(.*)$")
_DECODER_LEVEL = re.compile(r"^decoder\.up\.(\d+)\.(block|attn|upsample)\.(.*)$")
_MID_KEY = re.compile(r"^(encoder|decoder)\.mid\.(block_1|attn_1|block_2)\.(.*)$")


def _level_part(kind: str, rest: str) -> str:
    return f"res.{rest}" if kind == "block" else f"{kind}.{rest}"


def taming_to_vistok(state_dict: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Rename a Taming VQGAN state dict into vistok's layout.

    Returns ``(vistok_state_dict, dropped_keys)``; ``loss.*`` and ``model_ema.*`` entries are dropped. An EMA
    quantizer's codebook and statistics become ``quantizer.{codebook, ema_cluster_size, ema_embed_sum}`` in (K, D)
    order (see :mod:`.taming_ema`). Raises :class:`CheckpointError`, saying what the checkpoint looks like and why
    it is refused, for layouts vistok cannot express (Gumbel quantizer, index remapping, 3×3 conv shortcuts,
    unknown quantizer tensors) or for state dicts that are not Taming VQGANs at all.
    """
    converted, dropped, _ = convert_state_dict(state_dict)
    return converted, dropped


def convert_state_dict(state_dict: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    """:func:`taming_to_vistok` plus notes on what the conversion changed (for ``converter.notes``)."""
    state_dict = strip_prefix(state_dict)
    refuse_unsupported(state_dict)
    keys = list(state_dict)
    up_levels = {int(m.group(1)) for m in map(_DECODER_LEVEL.match, keys) if m}
    num_levels = max(up_levels) + 1 if up_levels else 0

    out: dict[str, Any] = {}
    dropped: list[str] = []
    notes: list[str] = []
    if is_ema_quantizer(state_dict):
        out, ema_notes = ema_quantizer_to_vistok(state_dict)
        notes += ema_notes
    for key, value in state_dict.items():
        if key.startswith(DROPPED_PREFIXES):
            dropped.append(key)
        elif not key.startswith(QUANTIZER_PREFIX):
            out[_rename(key, num_levels)] = value
    if not is_ema_quantizer(state_dict):
        out["quantizer.codebook"] = state_dict[PLAIN_CODEBOOK]
    return out, dropped, notes


def refuse_unsupported(state_dict: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` naming what the checkpoint is and why vistok cannot convert it, unless it is
    a Taming VQGAN with a nearest-code quantizer (``VectorQuantizer``, ``VectorQuantizer2`` or
    ``EMAVectorQuantizer``) without index remapping."""
    keys = list(state_dict)
    gumbel = [k for k in keys if k.startswith(("quantize.embed.", "quantize.proj."))]
    if gumbel:
        raise CheckpointError(
            f"this looks like a Taming GumbelQuantize checkpoint ({', '.join(gumbel[:3])}): not supported, because "
            "a Gumbel VQGAN picks each code as the argmax of a learned 1x1 projection's logits (quantize.proj), not "
            "as the nearest codebook entry, and vistok's vq quantizer has no such projection"
        )
    if "quantize.used" in state_dict:
        used = tuple(state_dict["quantize.used"].shape)
        raise CheckpointError(
            f"this looks like a Taming VQGAN trained with index remapping (quantize.used, shape {used}): not "
            "supported, because its token ids are positions in that list of used codes (unknown codes go to a "
            "random or extra id) while vistok's token ids are always codebook rows"
        )
    shortcuts = [k for k in keys if ".conv_shortcut." in k]
    if shortcuts:
        raise CheckpointError(
            f"this looks like a Taming VQGAN built with 3x3 conv shortcuts ({shortcuts[0]}, …): not supported, "
            "because vistok's vqgan residual blocks use Taming's default 1x1 nin_shortcut, which has other weights "
            "and computes something else"
        )
    if not any(k.startswith("encoder.down.") for k in keys) or not any(
        k.startswith("decoder.up.") for k in keys
    ):
        raise CheckpointError(
            f"this is not a Taming VQGAN checkpoint: it looks like {describe_layout(state_dict)}; `vistok convert "
            "taming` expects encoder.down.*, decoder.up.* and quantize.embedding.weight"
        )
    known = {PLAIN_CODEBOOK, *EMA_STATISTICS}
    unknown = [k for k in keys if k.startswith(QUANTIZER_PREFIX) and k not in known]
    if unknown:
        raise CheckpointError(
            f"this looks like a Taming VQGAN whose quantizer holds tensors vistok does not know "
            f"({', '.join(unknown[:4])}): not supported, because they do not come from Taming's VectorQuantizer, "
            "VectorQuantizer2 or EMAVectorQuantizer, and dropping them could change which codes are chosen"
        )
    if PLAIN_CODEBOOK not in state_dict:
        raise CheckpointError(
            "this looks like a Taming VQGAN without a codebook (no quantize.embedding.weight): nothing to "
            f"tokenize with; found {describe_layout(state_dict)}"
        )


def rename_key(key: str, num_levels: int) -> str:
    """One Taming key in vistok's layout (``num_levels``: the decoder's level count, which fixes the decode-order
    index of ``decoder.up.{i}``); quantizer keys are not handled here. For a part of a state dict (an encoder
    without its decoder) where :func:`convert_state_dict` does not apply."""
    return _rename(key, num_levels)


def _rename(key: str, num_levels: int) -> str:
    if m := _ENCODER_LEVEL.match(key):
        return f"encoder.conv_blocks.{m.group(1)}.{_level_part(m.group(2), m.group(3))}"
    if m := _DECODER_LEVEL.match(key):
        return f"decoder.conv_blocks.{num_levels - 1 - int(m.group(1))}.{_level_part(m.group(2), m.group(3))}"
    if m := _MID_KEY.match(key):
        return f"{m.group(1)}.mid.{_MID[m.group(2)]}.{m.group(3)}"
    return key  # conv_in / norm_out / conv_out / quant_conv / post_quant_conv keep their names

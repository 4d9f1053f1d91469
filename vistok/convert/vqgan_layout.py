"""Infer a ``vqgan`` tokenizer's hyper-parameters from a state dict in vistok's layout, and load it.

Upstream converters first rename keys into vistok's layout (``encoder.conv_blocks.{i}.res.{j}`` …,
``quantizer.codebook``); everything here then works from tensor shapes alone, so it runs on meta tensors too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from .safe_load import CheckpointError
from .shapes import tensor_shape

_LEVEL_KEY = re.compile(r"^(encoder|decoder)\.conv_blocks\.(\d+)\.(res|attn)\.(\d+)\.")


def _shape(state_dict: Mapping[str, torch.Tensor], key: str, what: str) -> tuple[int, ...]:
    return tensor_shape(state_dict, key, what, "the expected layout")


def _count(state_dict: Mapping[str, torch.Tensor]) -> dict[tuple[str, int, str], int]:
    """(side, level, 'res'|'attn') → number of blocks."""
    counts: dict[tuple[str, int, str], set[int]] = {}
    for key in state_dict:
        match = _LEVEL_KEY.match(key)
        if match:
            side, level, kind, index = match.groups()
            counts.setdefault((side, int(level), kind), set()).add(int(index))
    out = {}
    for slot, indices in counts.items():
        if indices != set(range(len(indices))):
            raise CheckpointError(
                f"{slot[0]} level {slot[1]} has non-contiguous {slot[2]} blocks {sorted(indices)}"
            )
        out[slot] = len(indices)
    return out


def infer_vqgan_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Hyper-parameters of the ``vqgan`` net and of the codebook, from tensor shapes only.

    Returns ``{"num_channels", "net": {type, base_channels, channel_multiplier, num_res_blocks, latent_channels,
    attention_levels}, "codebook_size", "codebook_dim"}``. Encoder and decoder are cross-checked against each
    other (widths, block counts, attention levels); any inconsistency raises :class:`CheckpointError` naming it.
    GroupNorm's group count cannot be read from shapes; the upstream value (32) is assumed.
    """
    conv_in = _shape(state_dict, "encoder.conv_in.weight", "encoder input conv")
    base, num_channels = conv_in[0], conv_in[1]
    counts = _count(state_dict)
    levels = sorted({level for side, level, kind in counts if side == "encoder" and kind == "res"})
    if not levels or levels != list(range(len(levels))):
        raise CheckpointError(
            f"could not find the encoder's resolution levels (found level indices {levels})"
        )
    num_levels = len(levels)
    res_blocks = {counts[("encoder", level, "res")] for level in levels}
    if len(res_blocks) != 1:
        raise CheckpointError(
            f"encoder levels have different numbers of residual blocks {sorted(res_blocks)}"
        )
    num_res_blocks = res_blocks.pop()

    widths = []
    for level in levels:
        out_ch = _shape(
            state_dict, f"encoder.conv_blocks.{level}.res.{num_res_blocks - 1}.conv2.weight", "level width"
        )[0]
        if out_ch % base:
            raise CheckpointError(
                f"encoder level {level} width {out_ch} is not a multiple of the base width {base}"
            )
        widths.append(out_ch)
    mult = [w // base for w in widths]

    attention_levels = [lv for lv in levels if counts.get(("encoder", lv, "attn"), 0)]
    for level in attention_levels:
        if counts[("encoder", level, "attn")] != num_res_blocks:
            raise CheckpointError(f"encoder level {level} has attention after only some residual blocks")
    for i in range(num_levels):
        level = num_levels - 1 - i
        res = counts.get(("decoder", i, "res"), 0)
        if res != num_res_blocks + 1:
            raise CheckpointError(
                f"decoder block {i} has {res} residual blocks; expected {num_res_blocks + 1} (encoder has "
                f"{num_res_blocks} per level)"
            )
        attn = counts.get(("decoder", i, "attn"), 0)
        if bool(attn) != (level in attention_levels) or attn not in (0, res):
            raise CheckpointError(
                f"attention differs between encoder and decoder at level {level} (encoder attention levels "
                f"{attention_levels}); vistok's vqgan uses the same attention levels on both sides"
            )
        width = _shape(state_dict, f"decoder.conv_blocks.{i}.res.{res - 1}.conv2.weight", "decoder width")[0]
        if width != widths[level]:
            raise CheckpointError(
                f"decoder width {width} at level {level} differs from the encoder's {widths[level]}"
            )

    latent_channels = _shape(state_dict, "encoder.conv_out.weight", "encoder output conv")[0]
    decoder_in = _shape(state_dict, "decoder.conv_in.weight", "decoder input conv")
    if decoder_in[1] != latent_channels or decoder_in[0] != widths[-1]:
        raise CheckpointError(
            f"decoder input conv {decoder_in[:2]} does not match latent channels {latent_channels} and the "
            f"bottleneck width {widths[-1]}"
        )
    out_channels = _shape(state_dict, "decoder.conv_out.weight", "decoder output conv")[0]
    if out_channels != num_channels:
        raise CheckpointError(
            f"the decoder outputs {out_channels} channels but the encoder reads {num_channels}"
        )

    codebook = _shape(state_dict, "quantizer.codebook", "VQ codebook")
    if len(codebook) != 2:
        raise CheckpointError(f"the codebook must be a (K, D) matrix, got shape {codebook}")
    quant_conv = _shape(state_dict, "quant_conv.weight", "quant_conv")
    if quant_conv[:2] != (codebook[1], latent_channels):
        raise CheckpointError(
            f"quant_conv maps {quant_conv[1]} → {quant_conv[0]} channels but the latents have {latent_channels} "
            f"and the codes {codebook[1]}"
        )
    return {
        "num_channels": num_channels,
        "net": {
            "type": "vqgan",
            "base_channels": base,
            "channel_multiplier": mult,
            "num_res_blocks": num_res_blocks,
            "latent_channels": latent_channels,
            "attention_levels": attention_levels,
        },
        "codebook_size": codebook[0],
        "codebook_dim": codebook[1],
    }


def build_tokenizer(
    state_dict: Mapping[str, torch.Tensor],
    quantizer: dict[str, Any],
    image_size: int,
    metadata: dict[str, Any],
    source: str | None = None,
    net_options: dict[str, Any] | None = None,
):
    """A :class:`~vistok.VisTokenizer` with the architecture inferred from ``state_dict`` and those weights.

    ``quantizer`` holds the options that shapes cannot tell (e.g. ``l2_norm``, loss weights); type, size and dim
    come from the codebook. ``net_options`` likewise adds ``vqgan`` net options that shapes cannot tell (e.g.
    ``dropout``). The result is in eval mode; ``state_dict``'s tensors become its weights where they can as they
    are (see :mod:`vistok.convert.with_weights`), so no random model is built and no second copy made.
    """
    from ..configuration import VisTokenizerConfig
    from .with_weights import tokenizer_with_weights

    inferred = infer_vqgan_config(state_dict)
    factor = 2 ** (len(inferred["net"]["channel_multiplier"]) - 1)
    if image_size % factor:
        raise ValueError(f"image_size {image_size} must be a multiple of the downsample factor {factor}")
    config = VisTokenizerConfig(
        image_size=image_size,
        num_channels=inferred["num_channels"],
        net={**inferred["net"], **(net_options or {})},
        quantizer={
            "type": "vq",
            "codebook_size": inferred["codebook_size"],
            "codebook_dim": inferred["codebook_dim"],
            **quantizer,
        },
        source=source,
        metadata=metadata,
    )
    return tokenizer_with_weights(config, state_dict, metadata.get("origin", {}).get("name", "upstream"))

"""Infer a ``magvit2`` net's hyper-parameters from the tensor shapes of an Open-MAGVIT2 / SimVQ state dict.

Both projects use the same "improved" encoder / decoder (``improved_model.py``) with the same module names as
vistok's ``magvit2`` net, so the keys are ``encoder.*`` / ``decoder.*`` unchanged. Their Lightning checkpoints
store no hyper-parameters, so everything here comes from shapes alone (it runs on meta tensors too):
``base_channels`` and the image channels from ``encoder.conv_in``, the level widths (hence
``channel_multiplier``) from each level's last block, ``num_res_blocks`` from the block indices,
``latent_channels`` from ``encoder.conv_out``, and ``adaptive_norm`` from whether ``decoder.adaptive.*`` exists.
Encoder and decoder are cross-checked; any inconsistency raises :class:`CheckpointError` naming it. GroupNorm's
group count cannot be read from shapes; upstream's 32 is assumed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from .safe_load import CheckpointError
from .shapes import check_latent_convs, count_numbered, encoder_levels, tensor_shape

UPSTREAM_NORM_GROUPS = 32
_BLOCK_KEY = re.compile(r"^(encoder\.down|decoder\.up)\.(\d+)\.block\.(\d+)\.")
_MID_KEY = re.compile(r"^(encoder|decoder)\.mid_block\.(\d+)\.")
_ADAPTIVE_KEY = re.compile(r"^decoder\.adaptive\.(\d+)\.")


def _shape(state_dict: Mapping[str, torch.Tensor], key: str, what: str) -> tuple[int, ...]:
    return tensor_shape(state_dict, key, what, "the improved-model layout")


def infer_magvit2_net(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``{"num_channels", "net": {type "magvit2", base_channels, channel_multiplier, num_res_blocks,
    latent_channels, adaptive_norm}}`` from the shapes of an improved-model ``encoder.*`` / ``decoder.*`` state
    dict (other keys are ignored). Raises :class:`CheckpointError` naming the first inconsistency."""
    conv_in = _shape(state_dict, "encoder.conv_in.weight", "encoder input conv")
    base, num_channels = conv_in[0], conv_in[1]
    blocks: dict[tuple[str, int], set[int]] = {}
    mids: dict[str, set[int]] = {"encoder": set(), "decoder": set()}
    adaptive: set[int] = set()
    for key in state_dict:
        if m := _BLOCK_KEY.match(key):
            blocks.setdefault((m.group(1), int(m.group(2))), set()).add(int(m.group(3)))
        elif m := _MID_KEY.match(key):
            mids[m.group(1)].add(int(m.group(2)))
        elif m := _ADAPTIVE_KEY.match(key):
            adaptive.add(int(m.group(1)))
    levels_blocks = {lvl: found for (side, lvl), found in blocks.items() if side == "encoder.down"}
    num_res_blocks, widths = encoder_levels(state_dict, levels_blocks, base, "base_channels", "the improved-model layout")
    levels = len(widths)
    for i in range(levels):
        has_down = f"encoder.down.{i}.downsample.weight" in state_dict
        if has_down != (i < levels - 1):
            raise CheckpointError(
                f"encoder level {i} {'has' if has_down else 'lacks'} a downsample conv; expected one after every "
                "level but the last"
            )
    for side in ("encoder", "decoder"):
        mid = count_numbered(mids[side], f"{side}.mid_block blocks")
        if mid != num_res_blocks:
            raise CheckpointError(f"{side} has {mid} mid blocks; expected num_res_blocks = {num_res_blocks}")

    decoder_levels = count_numbered(
        {lvl for side, lvl in blocks if side == "decoder.up"}, "decoder levels (decoder.up.*)"
    )
    if decoder_levels != levels:
        raise CheckpointError(f"the decoder has {decoder_levels} levels, the encoder {levels}")
    for i in range(levels):
        count = count_numbered(blocks[("decoder.up", i)], f"decoder.up.{i} blocks")
        if count != num_res_blocks:
            raise CheckpointError(
                f"decoder level {i} has {count} residual blocks; the encoder has {num_res_blocks}"
            )
        width = _shape(state_dict, f"decoder.up.{i}.block.{count - 1}.conv2.weight", "decoder width")[0]
        if width != widths[i]:
            raise CheckpointError(
                f"decoder width {width} at level {i} differs from the encoder's {widths[i]}"
            )
        has_up = f"decoder.up.{i}.upsample.conv1.weight" in state_dict
        if has_up != (i > 0):
            raise CheckpointError(
                f"decoder level {i} {'has' if has_up else 'lacks'} an upsampler; expected one at every level but 0"
            )
    if adaptive and count_numbered(adaptive, "decoder.adaptive norms") != levels:
        raise CheckpointError(f"the decoder has {len(adaptive)} adaptive norms for {levels} levels")

    latent_channels = check_latent_convs(state_dict, widths[-1], num_channels, "the improved-model layout")
    return {
        "num_channels": num_channels,
        "net": {
            "type": "magvit2",
            "base_channels": base,
            "channel_multiplier": [w // base for w in widths],
            "num_res_blocks": num_res_blocks,
            "latent_channels": latent_channels,
            "norm_groups": UPSTREAM_NORM_GROUPS,
            "adaptive_norm": bool(adaptive),
        },
    }


def load_converted(state_dict: Mapping[str, torch.Tensor], config_kwargs: dict[str, Any], what: str):
    """A :class:`~vistok.VisTokenizer` (eval mode) built from ``config_kwargs`` holding exactly ``state_dict``
    (vistok keys). Raises :class:`CheckpointError` when any tensor is missing, unexpected or of another shape:
    loading only the matching ones would leave weights random or drop some. ``state_dict``'s tensors become the
    weights where they can as they are (see :mod:`vistok.convert.with_weights`): no random model, no second copy."""
    from ..configuration import VisTokenizerConfig
    from .with_weights import tokenizer_with_weights

    config = VisTokenizerConfig(**config_kwargs)
    return tokenizer_with_weights(config, state_dict, what)

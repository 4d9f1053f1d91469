"""Reading an architecture off a state dict's shapes: the two checks every converter's inference makes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .safe_load import CheckpointError


def tensor_shape(state_dict: Mapping[str, Any], key: str, what: str, layout: str) -> tuple[int, ...]:
    """The shape of ``state_dict[key]``; :class:`CheckpointError` naming the tensor (``what`` it is) and the
    ``layout`` the file therefore does not have when it is missing."""
    if key not in state_dict:
        raise CheckpointError(f"missing tensor {key!r} ({what}); the file does not have {layout}")
    return tuple(state_dict[key].shape)


def count_numbered(indices: set[int], what: str) -> int:
    """How many numbered modules (``down.0``, ``down.1``, …) there are; :class:`CheckpointError` unless they are
    numbered 0..n−1 without gaps."""
    if indices != set(range(len(indices))):
        raise CheckpointError(f"{what} are numbered {sorted(indices)}; expected 0..{len(indices) - 1}")
    return len(indices)


def check_latent_convs(
    state_dict: Mapping[str, Any], bottleneck: int, num_channels: int, layout: str, kernel: int = 1
) -> int:
    """Cross-check the ``kernel``×``kernel`` ``encoder.conv_out`` and ``decoder.conv_in`` and the
    ``decoder.conv_out`` of a conv net whose deepest level is ``bottleneck`` channels wide and whose encoder reads
    ``num_channels``; returns the latent channels. :class:`CheckpointError` saying which conv disagrees."""
    latent = tensor_shape(state_dict, "encoder.conv_out.weight", "encoder output conv", layout)
    if latent[1:] != (bottleneck, kernel, kernel):
        raise CheckpointError(
            f"encoder.conv_out has shape {latent}; expected a {kernel}x{kernel} conv from the bottleneck width "
            f"{bottleneck}"
        )
    decoder_in = tensor_shape(state_dict, "decoder.conv_in.weight", "decoder input conv", layout)
    if decoder_in[:2] != (bottleneck, latent[0]) or (kernel != 1 and decoder_in[2:] != (kernel, kernel)):
        raise CheckpointError(
            f"decoder.conv_in has shape {decoder_in}; expected a {kernel}x{kernel} conv from {latent[0]} latent "
            f"channels to the bottleneck width {bottleneck}"
        )
    out_channels = tensor_shape(state_dict, "decoder.conv_out.weight", "decoder output conv", layout)[0]
    if out_channels != num_channels:
        raise CheckpointError(f"the decoder outputs {out_channels} channels but the encoder reads {num_channels}")
    return latent[0]


def encoder_levels(
    state_dict: Mapping[str, Any],
    level_blocks: Mapping[int, set[int]],
    base: int,
    base_name: str,
    layout: str,
    block: str = "block",
) -> tuple[int, list[int]]:
    """``(num_res_blocks, widths)`` of the encoder levels ``encoder.down.0 … n−1``, given the residual-block numbers
    found per level (``level_blocks[i]``, from keys ``encoder.down.{i}.{block}.{j}.…``): every level has the same
    number of blocks, numbered without gaps, and a width (its last block's ``conv2`` output) that is a multiple of
    the ``base`` width (``base_name`` names it in the message). :class:`CheckpointError` saying what differs."""
    levels = count_numbered(set(level_blocks), "encoder levels (encoder.down.*)")
    if not levels:
        raise CheckpointError(f"no encoder.down.*.{block}.* tensors: not {layout}")
    counts = {count_numbered(level_blocks[i], f"encoder.down.{i}.{block}") for i in range(levels)}
    if len(counts) != 1 or 0 in counts:
        raise CheckpointError(f"encoder levels have different numbers of residual blocks {sorted(counts)}")
    num_res_blocks = counts.pop()
    widths = []
    for i in range(levels):
        key = f"encoder.down.{i}.{block}.{num_res_blocks - 1}.conv2.weight"
        width = tensor_shape(state_dict, key, "encoder width", layout)[0]
        if width % base:
            raise CheckpointError(f"encoder level {i} has width {width}, not a multiple of {base_name} {base}")
        widths.append(width)
    return num_res_blocks, widths

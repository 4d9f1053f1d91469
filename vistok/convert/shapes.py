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

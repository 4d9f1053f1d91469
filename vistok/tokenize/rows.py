"""Token rows ⇄ a tokenizer's indices: the storage dtype of a codebook, and rows turned back into ``decode``'s input.

A token dataset stores each image's tokens as one flat row of ``N`` integers in the layout's reading order
(:meth:`vistok.layouts.TokenLayout.flatten`), with the layout's JSON spec (``{"layout": "grid", "shape": [h, w]}``,
``{"layout": "sequence", "length": L}`` or ``{"layout": "multiscale", "scales": [[1, 1], …]}``) recorded beside
them. :func:`rows_to_indices` needs only that spec, not the tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

MANIFEST_NAME = "vistok_tokens.json"
# (largest codebook it holds, numpy dtype name): the smallest unsigned type that holds every id of the codebook
_STORAGE_DTYPES = ((1 << 8, "uint8"), (1 << 16, "uint16"), (1 << 32, "uint32"))


def token_storage_dtype(codebook_size: int) -> str:
    """The smallest integer dtype name (``uint8``/``uint16``/``uint32``/``int64``) whose range holds the ids
    ``0 … codebook_size − 1``."""
    if not isinstance(codebook_size, int) or codebook_size <= 0:
        raise ValueError(f"codebook_size must be a positive int, got {codebook_size!r}")
    for limit, name in _STORAGE_DTYPES:
        if codebook_size <= limit:
            return name
    return "int64"


def tokens_in_spec(layout_spec: dict[str, Any]) -> int:
    """How many tokens one row of a dataset with this layout spec holds; ``ValueError`` for a malformed spec."""
    kind = layout_spec.get("layout") if isinstance(layout_spec, dict) else None
    try:
        if kind == "grid":
            h, w = layout_spec["shape"]
            return int(h) * int(w)
        if kind == "sequence":
            return int(layout_spec["length"])
        if kind == "multiscale":
            return sum(int(h) * int(w) for h, w in layout_spec["scales"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed token layout spec {layout_spec!r}: {err}") from err
    raise ValueError(
        f"unknown token layout spec {layout_spec!r}: expected a dict with 'layout' grid (shape), sequence (length) "
        "or multiscale (scales), as vistok.layouts writes it"
    )


def rows_to_indices(rows: Any, layout_spec: dict[str, Any]) -> torch.Tensor | list[torch.Tensor]:
    """Stored token rows → exactly what the tokenizer's ``encode(x).indices`` returned, ready for ``tok.decode``.

    ``rows``: one row (N,) or a batch (B, N) — a list of lists (``ds[0:8]["indices"]``), numpy array or tensor —
    in the layout's reading order. ``layout_spec``: the dataset's layout (:func:`read_layout`). Returns int64
    (B, h, w) for a grid, (B, L) for a sequence, a list of (B, p, p) per scale (coarse to fine) for multi-scale.
    ``ValueError`` when the rows do not have the spec's number of tokens.
    """
    expected = tokens_in_spec(layout_spec)
    if isinstance(rows, torch.Tensor):
        flat = rows.to(torch.int64)
    else:
        flat = torch.from_numpy(np.asarray(rows).astype(np.int64, copy=False))
    if flat.ndim == 1:
        flat = flat[None]
    if flat.ndim != 2 or flat.shape[1] != expected:
        raise ValueError(
            f"token rows must have shape (N,) or (B, N) with N = {expected} tokens for layout {layout_spec}, got "
            f"shape {tuple(flat.shape)}"
        )
    kind = layout_spec["layout"]
    if kind == "grid":
        return flat.reshape(flat.shape[0], *(int(s) for s in layout_spec["shape"]))
    if kind == "sequence":
        return flat
    out, start = [], 0
    for h, w in layout_spec["scales"]:
        out.append(flat[:, start : start + h * w].reshape(flat.shape[0], int(h), int(w)))
        start += h * w
    return out


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest (``vistok_tokens.json``) of a token dataset written by ``vistok tokenize``."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {folder} is not a complete token dataset written by `vistok tokenize` (an unfinished "
            "run has no manifest: finish it with --resume)"
        )
    return json.loads(path.read_text())


def read_layout(folder: str | Path) -> dict[str, Any]:
    """The token layout spec recorded in a token dataset folder (for :func:`rows_to_indices`)."""
    return read_manifest(folder)["token_layout"]

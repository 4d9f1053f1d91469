"""Exact, memory-bounded nearest-code search: the hot path of every VQ quantizer.

The textbook search materialises an N × K distance matrix and is memory-bound. Here the distance block is
computed a chunk of rows at a time, sized to ``max_chunk_bytes``, with the argmin taken per chunk, so peak extra
memory never depends on N·K.
"""

from __future__ import annotations

import torch

__all__ = ["nearest_code"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_inputs(z: torch.Tensor, codebook: torch.Tensor, max_chunk_bytes: int) -> None:
    if not isinstance(z, torch.Tensor) or not isinstance(codebook, torch.Tensor):
        raise TypeError("nearest_code expects torch.Tensor inputs for z and codebook")
    if z.dim() != 2 or codebook.dim() != 2:
        raise ValueError(
            f"nearest_code expects z of shape (N, D) and codebook of shape (K, D); "
            f"got z {tuple(z.shape)} and codebook {tuple(codebook.shape)}"
        )
    if z.shape[1] != codebook.shape[1]:
        raise ValueError(f"z has dim {z.shape[1]} but the codebook has dim {codebook.shape[1]}")
    if codebook.shape[0] == 0:
        raise ValueError("the codebook is empty (K = 0)")
    if z.dtype not in _FLOAT_DTYPES or codebook.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"nearest_code expects floating-point inputs; got {z.dtype} and {codebook.dtype}")
    if z.dtype != codebook.dtype:
        raise TypeError(f"z ({z.dtype}) and codebook ({codebook.dtype}) must have the same dtype")
    if z.device != codebook.device:
        raise ValueError(f"z ({z.device}) and codebook ({codebook.device}) must be on the same device")
    if max_chunk_bytes <= 0:
        raise ValueError(f"max_chunk_bytes must be positive; got {max_chunk_bytes}")


@torch.no_grad()
def nearest_code(
    z: torch.Tensor,
    codebook: torch.Tensor,
    *,
    cosine: bool = False,
    max_chunk_bytes: int = 64 * 2**20,
) -> torch.Tensor:
    """Index of the nearest code for each row of ``z``.

    z: (N, D) float; codebook: (K, D) float, same dtype and device. Returns (N,) int64 indices of the nearest
    code by squared L2 distance. ``cosine=True`` declares that both inputs are already l2-normalised, so the
    search may use argmax of z·c. Exact: identical to brute-force argmin of ||z||² + ||c||² − 2 z·c (ties
    aside). Peak extra memory stays within ``max_chunk_bytes`` whatever N and K are. Builds no autograd graph.
    """
    _check_inputs(z, codebook, max_chunk_bytes)
    n, k = z.shape[0], codebook.shape[0]
    out = torch.empty(n, dtype=torch.int64, device=z.device)
    if n == 0:
        return out
    codebook32 = codebook.float()
    # Half squared norms: argmin(||c||² − 2 z·c) = argmin(½||c||² − z·c), and ½ scaling is exact.
    half_sq_norm = 0.5 * codebook32.pow(2).sum(dim=1)
    rows, cols = chunk_shape(n, k, max_chunk_bytes)
    for start in range(0, n, rows):
        block = z[start : start + rows].float()
        best_val = best_idx = None
        for k0 in range(0, k, cols):
            codes_t = codebook32[k0 : k0 + cols].t()
            if cosine:
                dist = torch.mm(block, codes_t).neg_()
            else:
                dist = torch.addmm(half_sq_norm[k0 : k0 + cols], block, codes_t, alpha=-1.0)
            val, idx = dist.min(dim=1)
            if best_val is None:
                best_val, best_idx = val, idx
            else:
                better = val < best_val  # strict: the lower index wins ties, like argmin
                best_val = torch.where(better, val, best_val)
                best_idx = torch.where(better, idx + k0, best_idx)
        out[start : start + rows] = best_idx
    return out


def chunk_shape(n: int, k: int, max_chunk_bytes: int) -> tuple[int, int]:
    """(rows, codes) of one fp32 distance block such that the block and its temporaries fit ``max_chunk_bytes``.

    The budget is split between the distance block and its per-row reductions; at least one row and one code.
    """
    budget_floats = max(1, max_chunk_bytes // (2 * 4))
    cols = min(k, budget_floats)
    rows = max(1, min(n, budget_floats // cols))
    return rows, cols

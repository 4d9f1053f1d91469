"""Exact, memory-bounded nearest-code search: the hot path of every VQ quantizer.

Written the textbook way (materialise the N × K matrix ||z||² + ||c||² − 2 z·c, then argmin) the search is
memory-bound and its memory grows with N·K. Here:

* the distance is ½||c||² − z·c, one ``addmm`` with the bias and the sign folded in (the row constant ||z||²
  and the positive factor 2 do not change the argmin, and halving is exact in floating point);
* the block of rows is sized so the distance block stays in the CPU's L2 cache and within ``max_chunk_bytes``;
* the argmin is taken in two levels: a vectorised ``amin`` over groups of columns, an argmin over the group
  minima, then an argmin inside the winning group only. This is ~10× cheaper than ``argmin`` over the whole
  block and keeps argmin's rule that the first (lowest) index wins a tie.

On CUDA a fused Triton kernel (``search_triton.py``) is used when Triton is importable; it never materialises
the distance matrix and returns the same indices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["SearchPlan", "nearest_code", "plan_search"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Distance block per chunk on CPU: fits a 1 MiB L2 with room for the inputs.
_CPU_BLOCK_BYTES = 512 * 2**10
# Fewest rows per block, so the matrix product keeps enough rows to run at full speed when D is large.
_MIN_ROWS_FOR_DIM = ((128, 128), (32, 64), (0, 16))


@dataclass(frozen=True)
class SearchPlan:
    """How one search is cut into blocks.

    rows: z rows per block; codes: codes per block (the padded K unless that would overflow the budget);
    group: width of the column groups of the two-level argmin (divides ``codes``);
    padded_codes: K rounded up to a multiple of ``group`` (padding codes have distance +inf and never win).
    """

    rows: int
    codes: int
    group: int
    padded_codes: int
    dim: int

    @property
    def peak_bytes(self) -> int:
        """Upper bound on the extra bytes the search holds at once, the (N,) int64 output aside."""
        return _block_bytes(self.rows, self.codes, self.group, self.dim)


# Per row of a block: a float32 copy of its z row aside, ~8 int64/float scalars of indices, minima and gathers.
_ROW_OVERHEAD_BYTES = 64


def _block_bytes(rows: int, codes: int, group: int, dim: int) -> int:
    distances = rows * codes * 4
    group_minima = rows * (codes // group) * 4 + rows * group * 4
    codebook_copy = codes * (dim + 1) * 4
    return distances + group_minima + codebook_copy + rows * (dim * 4 + _ROW_OVERHEAD_BYTES)


def plan_search(n: int, k: int, d: int, max_chunk_bytes: int, *, block_bytes: int = _CPU_BLOCK_BYTES) -> SearchPlan:
    """Block sizes for searching ``n`` vectors of dim ``d`` among ``k`` codes.

    The distance block aims at ``block_bytes`` (cache-sized on CPU) and the whole working set, float32 copies
    of the codebook slice and of the z block included, stays within ``max_chunk_bytes`` (``peak_bytes``).
    Budgets too small for even one row against one code give the smallest possible block (1 × 1).
    """
    if n < 0 or k <= 0 or d <= 0:
        raise ValueError(f"plan_search needs n >= 0, k > 0, d > 0; got n={n}, k={k}, d={d}")
    if max_chunk_bytes <= 0:
        raise ValueError(f"max_chunk_bytes must be positive; got {max_chunk_bytes}")
    group = 1 << max(3, min(8, round(math.log2(2 * math.sqrt(k)))))
    group = min(group, 1 << (k - 1).bit_length())
    padded = -(-k // group) * group
    min_rows = min(max(n, 1), next(rows for dim, rows in _MIN_ROWS_FOR_DIM if d >= dim))
    codes = padded
    if _block_bytes(min_rows, codes, group, d) > max_chunk_bytes:
        # Slice the codebook: the largest multiple of the group that fits beside min_rows rows.
        per_code = min_rows * (4 + 4 / group) + (d + 1) * 4
        room = max_chunk_bytes - _block_bytes(min_rows, 0, group, d)
        codes = int(max(room, 0) // per_code) // group * group
        if codes < group:  # not even one group fits: one row at a time, plain argmin over small slices
            min_rows, group, padded = 1, 1, k
            room = max_chunk_bytes - _block_bytes(1, 0, 1, d)
            codes = max(1, min(k, int(max(room, 0) // (8 + (d + 1) * 4))))
    rows = max(min_rows, block_bytes // (4 * codes))
    while rows > min_rows and _block_bytes(rows, codes, group, d) > max_chunk_bytes:
        rows = max(min_rows, min(rows - 1, int(rows * max_chunk_bytes / _block_bytes(rows, codes, group, d))))
    rows = max(1, min(rows, n))
    return SearchPlan(rows=rows, codes=codes, group=group, padded_codes=padded, dim=d)


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
    if z.shape[1] == 0:
        raise ValueError("vectors of dimension 0 have no nearest code")
    if z.dtype not in _FLOAT_DTYPES or codebook.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"nearest_code expects floating-point inputs; got {z.dtype} and {codebook.dtype}")
    if z.dtype != codebook.dtype:
        raise TypeError(f"z ({z.dtype}) and codebook ({codebook.dtype}) must have the same dtype")
    if z.device != codebook.device:
        raise ValueError(f"z ({z.device}) and codebook ({codebook.device}) must be on the same device")
    if max_chunk_bytes <= 0:
        raise ValueError(f"max_chunk_bytes must be positive; got {max_chunk_bytes}")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _half_sq_norms(codebook: torch.Tensor, dtype: torch.dtype, slice_codes: int) -> torch.Tensor:
    """½||c||² of every code, (K,) in ``dtype``, computed ``slice_codes`` codes at a time to bound temporaries."""
    out = torch.empty(codebook.shape[0], dtype=dtype, device=codebook.device)
    for start in range(0, codebook.shape[0], slice_codes):
        codes = codebook[start : start + slice_codes].to(dtype)
        out[start : start + slice_codes] = 0.5 * (codes * codes).sum(dim=1)
    return out


def _codebook_slice(codebook, half_sq_norms, start: int, width: int, dtype: torch.dtype):
    """(codes (width, D), bias (width,)) for codes start… start+width; rows past K are 0 with bias +inf."""
    codes = codebook[start : start + width].to(dtype)
    bias = half_sq_norms[start : start + width]
    if codes.shape[0] < width:
        pad = width - codes.shape[0]
        codes = torch.cat([codes, codes.new_zeros(pad, codes.shape[1])])
        bias = torch.cat([bias, bias.new_full((pad,), math.inf)])
    return codes, bias


def _first_argmin(dist: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(min value, first index of the min) of each row of ``dist`` (R, C), C a multiple of ``group``."""
    rows, cols = dist.shape
    if group == 1 or cols == group:
        values, index = dist.min(dim=1)
        return values, index
    grouped = dist.view(rows, cols // group, group)
    group_minima = grouped.amin(dim=2)
    best_group = group_minima.argmin(dim=1)
    winners = grouped[torch.arange(rows, device=dist.device), best_group]
    inner = winners.argmin(dim=1)
    values = winners.gather(1, inner[:, None]).squeeze(1)
    return values, best_group * group + inner


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
    code by squared L2 distance. ``cosine=True`` declares that both inputs are already l2-normalised (the
    CUDA kernel may then skip the norms); the result is the same either way. Exact: identical to brute-force
    argmin of ||z||² + ||c||² − 2 z·c computed in float32 (float64 for float64 inputs; half and bfloat16 inputs
    are upcast), ties and rounding-level near-ties aside; the lowest index wins an exact tie. Peak extra memory
    stays within ``max_chunk_bytes`` whatever N and K are. Builds no autograd graph.
    """
    _check_inputs(z, codebook, max_chunk_bytes)
    if z.is_cuda:
        fused = _fused_cuda_search()
        if fused is not None:
            return fused(z, codebook, cosine=cosine)
    return _nearest_code_blocked(z, codebook, max_chunk_bytes)


def _fused_cuda_search():
    """The Triton kernel's entry point, or None when Triton is missing or unusable."""
    try:
        from vistok.quantizers import search_triton
    except ImportError:
        return None
    return search_triton.nearest_code_triton if search_triton.available() else None


def _nearest_code_blocked(z: torch.Tensor, codebook: torch.Tensor, max_chunk_bytes: int) -> torch.Tensor:
    n, d = z.shape
    k = codebook.shape[0]
    out = torch.empty(n, dtype=torch.int64, device=z.device)
    if n == 0:
        return out
    dtype = _compute_dtype(z.dtype)
    block_bytes = _CPU_BLOCK_BYTES if z.device.type == "cpu" else max_chunk_bytes
    plan = plan_search(n, k, d, max_chunk_bytes, block_bytes=block_bytes)
    half_sq_norms = _half_sq_norms(codebook, dtype, plan.codes)
    if plan.codes >= k:  # the common case: the whole (padded) codebook in one block, prepared once
        codes, bias = _codebook_slice(codebook, half_sq_norms, 0, plan.codes, dtype)
        codes_t = codes.t()
        buffer = torch.empty(plan.rows, plan.codes, dtype=dtype, device=z.device)
        for start in range(0, n, plan.rows):
            block = z[start : start + plan.rows].to(dtype)
            dist = torch.addmm(bias, block, codes_t, alpha=-1.0, out=buffer[: block.shape[0]])
            out[start : start + plan.rows] = _first_argmin(dist, plan.group)[1]
        return out
    for start in range(0, n, plan.rows):
        block = z[start : start + plan.rows].to(dtype)
        best_value = best_index = None
        for k0 in range(0, k, plan.codes):
            codes, bias = _codebook_slice(codebook, half_sq_norms, k0, plan.codes, dtype)
            dist = torch.addmm(bias, block, codes.t(), alpha=-1.0)
            value, index = _first_argmin(dist, plan.group)
            if best_value is None:
                best_value, best_index = value, index
            else:
                better = value < best_value  # strict: an earlier slice keeps a tie, like argmin
                best_value = torch.where(better, value, best_value)
                best_index = torch.where(better, index + k0, best_index)
        out[start : start + plan.rows] = best_index
    return out

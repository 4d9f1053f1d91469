"""Exact, memory-bounded nearest-code search: the hot path of every VQ quantizer.

One entry point, :func:`nearest_code`. The textbook search materialises the N × K matrix
||z||² + ||c||² − 2 z·c and takes its argmin; its memory grows with N·K. Here instead:

* the distance is ½||c||² − z·c: one ``addmm`` with the bias and the sign folded in (the row constant ||z||²
  and the factor 2 do not change the argmin, and halving is exact in floating point);
* z is searched a block of rows at a time (and the codebook a slice at a time when even one block against the
  whole codebook would not fit), so the extra memory stays within ``max_chunk_bytes`` whatever N and K are;
* on CPU the argmin is taken in two levels, a vectorised ``amin`` over groups of codes, an ``argmin`` over the
  group minima, then an ``argmin`` inside the winning group only: several times cheaper than ``argmin`` over
  the whole block, with the same rule that the first (lowest) index wins a tie. For small D the block is laid
  out codes-major (K × rows), which the matrix product writes about twice as fast there;
* on CUDA with Triton installed, small D (≤ ``TRITON_MAX_DIM``) goes through the fused kernel of
  ``search_triton.py``, which never materialises distances; wider codes are faster through cuBLAS here.

The search never changes torch's thread settings; on CUDA it turns TF32 matrix products off for its own
duration only if they are on (TF32 would make the search inexact).
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import torch

__all__ = ["DEFAULT_MAX_CHUNK_BYTES", "TRITON_MAX_DIM", "nearest_code"]

DEFAULT_MAX_CHUNK_BYTES = 64 * 2**20
# Widest code searched by the Triton kernel on CUDA. Measured (benchmarks/results/search_cuda.json, H100) the
# kernel beats cuBLAS at D = 8 (3.5 vs 10.4 ms) and D = 64 (0.45 vs 0.53 ms) and loses at D = 256 (1.8 vs 1.5 ms);
# issue 14 measured the same order on an H200 (D = 8: 3.7 vs 8.9 ms; D = 256: 1.9 vs 1.3 ms).
TRITON_MAX_DIM = 64
# Up to this dimension CPU blocks are laid out codes-major: with a tiny inner dimension the product is bound by
# writing its output, which is faster in that layout (2× at D = 8, K = 16384 on the benchmark machine).
_CODES_MAJOR_MAX_DIM = 32
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Per row of a block beyond its distances: index, minimum and gather temporaries (~8 scalars).
_ROW_OVERHEAD_BYTES = 64


@torch.no_grad()
def nearest_code(
    z: torch.Tensor, codebook: torch.Tensor, *, max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES
) -> torch.Tensor:
    """Index of the nearest code for each row of ``z``.

    z: (N, D) float; codebook: (K, D) float, same dtype and device. Returns (N,) int64 indices on z's device.
    Exact: identical to the brute-force argmin of ||z||² + ||c||² − 2 z·c computed in float32 (float64 for
    float64 inputs; float16 and bfloat16 are upcast), rounding-level near-ties aside; the lowest index wins an
    exact tie. Extra memory stays within ``max_chunk_bytes`` (bytes) whatever N and K are, the (N,) output
    aside, unless the budget is below what one row against one code needs. Builds no autograd graph; autocast
    and TF32 settings do not change the result.
    """
    _check_inputs(z, codebook, max_chunk_bytes)
    if z.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=z.device)
    if z.is_cuda and z.dtype != torch.float64 and z.shape[1] <= TRITON_MAX_DIM:
        fused = _triton_search()
        if fused is not None:
            return fused(z, codebook)
    return _nearest_code_blocked(z, codebook, max_chunk_bytes)


def _check_inputs(z, codebook, max_chunk_bytes) -> None:
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
    if isinstance(max_chunk_bytes, bool) or not isinstance(max_chunk_bytes, int) or max_chunk_bytes <= 0:
        raise ValueError(f"max_chunk_bytes must be a positive int (bytes); got {max_chunk_bytes!r}")


@functools.cache
def _triton_search():
    """The Triton kernel's entry point, or None where Triton is not installed (imported on first CUDA use)."""
    try:
        from .search_triton import nearest_code_triton
    except ImportError:
        return None
    return nearest_code_triton


# ------------------------------------------------------------------------------------------- blocked search
@dataclass(frozen=True)
class _Plan:
    """How a search is cut: ``rows`` z rows per block against ``codes`` codes at a time (all K, padded to a
    multiple of ``group``, unless the budget forces slices); ``group``: code-group size of the two-level
    argmin; ``codes_major``: blocks laid out (codes, rows)."""

    rows: int
    codes: int
    group: int
    codes_major: bool


def _working_set_bytes(rows: int, codes: int, group: int, dim: int, itemsize: int) -> int:
    """Upper bound on the bytes one block holds: distances, group minima, the prepared codes (converted copy,
    their squares and biases) and the converted z block."""
    distances = rows * codes
    group_minima = rows * (codes // group + group)
    prepared_codes = codes * (2 * dim + 1)
    return (distances + group_minima + prepared_codes + rows * dim) * itemsize + rows * _ROW_OVERHEAD_BYTES


def _plan(n: int, k: int, d: int, budget: int, itemsize: int, cpu: bool) -> _Plan:
    """Block sizes whose working set fits ``budget``: cache-sized blocks on CPU, the largest blocks on GPU
    (fewer kernel launches; its plain argmin is fast). A budget below one row against one group of codes gives
    single rows against slices of the codebook, and below even one code the 1 × 1 block."""
    if cpu:
        group = min(1 << max(3, min(8, round(math.log2(2 * math.sqrt(k))))), 1 << (k - 1).bit_length())
        codes_major = d <= _CODES_MAJOR_MAX_DIM
        target_bytes = (4 if codes_major else 1) * 2**20
        # fewest rows keep the matrix product at full speed; the most keep a block in cache
        fewest, most = (32, 1024) if codes_major else (128 if d >= 128 else 64 if d >= 48 else 16, 512)
    else:
        group, codes_major, target_bytes, fewest, most = k, False, budget, 1, n
    fewest = min(fewest, n)
    codes = -(-k // group) * group

    def fits(rows: int, codes: int, group: int) -> bool:
        return _working_set_bytes(rows, codes, group, d, itemsize) <= budget

    if not fits(fewest, codes, group):
        # slice the codebook: the most whole groups of codes that fit beside `fewest` rows
        codes_major = False
        room = budget - _working_set_bytes(fewest, 0, group, d, itemsize)
        per_code = (fewest * (1 + 1 / group) + 2 * d + 1) * itemsize
        codes = int(max(room, 0) // per_code) // group * group
        if codes < group:
            fewest, group = 1, 1
            room = budget - _working_set_bytes(1, 0, 1, d, itemsize)
            codes = max(1, min(k, int(max(room, 0) // ((2 * d + 3) * itemsize))))
    rows = min(most, max(fewest, target_bytes // (itemsize * codes)))
    while rows > fewest and not fits(rows, codes, group):
        shrunk = rows * budget // _working_set_bytes(rows, codes, group, d, itemsize)
        rows = max(fewest, min(rows - 1, shrunk))
    return _Plan(max(1, min(rows, n)), codes, group, codes_major)


def _nearest_code_blocked(z: torch.Tensor, codebook: torch.Tensor, max_chunk_bytes: int) -> torch.Tensor:
    """The blocked matrix-product search (any device); same contract as :func:`nearest_code`."""
    n, d = z.shape
    k = codebook.shape[0]
    dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    plan = _plan(n, k, d, max_chunk_bytes, dtype.itemsize, cpu=z.device.type == "cpu")
    out = torch.empty(n, dtype=torch.int64, device=z.device)
    rows_arange = torch.arange(plan.rows, device=z.device)
    with torch.autocast(z.device.type, enabled=False), _no_tf32(z.device):
        if plan.codes >= k:  # the whole codebook at once: prepare it once, reuse one distance buffer
            codes, bias = _prepare_codes(codebook, 0, plan.codes, plan.group, dtype)
            shape = (plan.codes, plan.rows) if plan.codes_major else (plan.rows, plan.codes)
            buffer = torch.empty(shape, dtype=dtype, device=z.device)
            for start in range(0, n, plan.rows):
                block = z[start : start + plan.rows].to(dtype)
                r = block.shape[0]
                if plan.codes_major:
                    dist = torch.addmm(bias[:, None], codes, block.t(), alpha=-1.0, out=buffer[:, :r])
                    out[start : start + r] = _first_min_codes_major(dist, plan.group, rows_arange[:r])
                else:
                    dist = torch.addmm(bias, block, codes.t(), alpha=-1.0, out=buffer[:r])
                    out[start : start + r] = _first_min_rows_major(dist, plan.group, rows_arange[:r])[1]
            return out
        for start in range(0, n, plan.rows):  # slices of the codebook with a running minimum per row
            block = z[start : start + plan.rows].to(dtype)
            r = block.shape[0]
            best_value = best_index = None
            for k0 in range(0, k, plan.codes):
                codes, bias = _prepare_codes(codebook, k0, plan.codes, plan.group, dtype)
                dist = torch.addmm(bias, block, codes.t(), alpha=-1.0)
                value, index = _first_min_rows_major(dist, plan.group, rows_arange[:r])
                if best_value is None:
                    best_value, best_index = value, index
                else:
                    better = value < best_value  # strict: an earlier slice keeps a tie, like argmin
                    best_value = torch.where(better, value, best_value)
                    best_index = torch.where(better, index + k0, best_index)
            out[start : start + r] = best_index
    return out


def _prepare_codes(codebook, start: int, width: int, group: int, dtype: torch.dtype):
    """(codes (W, D), ½||c||² (W,)) in ``dtype`` for codes start … start+width, W the count rounded up to a
    multiple of ``group``; padding codes are 0 with bias +inf, so they never win."""
    codes = codebook[start : start + width].to(dtype)
    bias = 0.5 * (codes * codes).sum(dim=1)
    pad = -(-codes.shape[0] // group) * group - codes.shape[0]
    if pad:
        codes = torch.cat([codes, codes.new_zeros(pad, codes.shape[1])])
        bias = torch.cat([bias, bias.new_full((pad,), math.inf)])
    return codes.contiguous(), bias


def _first_min_rows_major(dist: torch.Tensor, group: int, rows_arange: torch.Tensor):
    """(min, first index of the min) of each row of ``dist`` (R, C), C a multiple of ``group``."""
    rows, cols = dist.shape
    if group == 1 or cols == group:
        index = dist.argmin(dim=1)  # argmin promises the first index of the min; min(dim) does not
        return dist.gather(1, index[:, None]).squeeze(1), index
    grouped = dist.view(rows, cols // group, group)
    best_group = grouped.amin(dim=2).argmin(dim=1)
    winners = grouped[rows_arange, best_group]
    inner = winners.argmin(dim=1)
    return winners.gather(1, inner[:, None]).squeeze(1), best_group * group + inner


def _first_min_codes_major(dist: torch.Tensor, group: int, rows_arange: torch.Tensor) -> torch.Tensor:
    """First index of the min of each column of ``dist`` (C, R), C a multiple of ``group``."""
    cols, rows = dist.shape
    if cols == group:
        return dist.argmin(dim=0)
    grouped = dist.view(cols // group, group, rows)
    best_group = grouped.amin(dim=1).argmin(dim=0)
    winners = grouped[best_group, :, rows_arange]  # (R, group)
    return best_group * group + winners.argmin(dim=1)


@contextlib.contextmanager
def _no_tf32(device: torch.device):
    """Full float32 matrix products on CUDA for the duration; touches nothing when TF32 is already off."""
    matmul = torch.backends.cuda.matmul
    new_api = hasattr(matmul, "fp32_precision")  # mixing it with allow_tf32 makes torch raise: use one
    if device.type != "cuda" or (matmul.fp32_precision != "tf32" if new_api else not matmul.allow_tf32):
        yield
        return
    previous = matmul.fp32_precision if new_api else matmul.allow_tf32
    if new_api:
        matmul.fp32_precision = "ieee"
    else:
        matmul.allow_tf32 = False
    try:
        yield
    finally:
        if new_api:
            matmul.fp32_precision = previous
        else:
            matmul.allow_tf32 = previous

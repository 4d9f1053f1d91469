"""Certified integer screening: an exact CPU nearest-code search at int8 matrix-product speed.

On CPUs with int8 dot-product instructions (AVX-512 VNNI, AMX) an int8 × int8 → int32 matrix product runs ~8×
faster per thread than the float32 one, and for wide codes the float32 product is nearly the whole cost of an
exact search. This module runs the search on an integer approximation and *proves*, row by row, that the
approximation picked the exact nearest code:

1. each row of z (on its own scale) and the codebook (on one shared scale) is split into two int8 levels,
   ``x ≈ s·(hi + lo/254)`` (about 15 significant bits), and the error ``x − s·(hi + lo/254)`` is measured;
2. two int8 products give ``z·c`` up to that error: ``hi·hi + (hi·lo + lo·hi)/254`` (the lo·lo term is left
   out and bounded instead); integer products are exact, so the only errors are the measured split errors
   and float32 rounding of a few elementwise steps, all bounded per row by ``E`` (Cauchy–Schwarz);
3. a row is *certified* when its best approximate score beats the runner-up by more than ``2E``: then no
   other code can be nearer in exact arithmetic. The best index is kept;
4. the rows that are not certified (exact or near ties, NaN/inf, extreme dynamic range) go through the exact
   float32 blocked search of ``search.py``, which also decides ties by the lowest index.

So the result is the exact nearest code for every row, as the float32 brute force gives it (rounding-level
near-ties aside, where float32 brute force itself is not exact); only the speed depends on the data.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import torch

from . import search

__all__ = [
    "PreparedCodebook",
    "approximate_scores",
    "nearest_code_screened",
    "prepare_codebook",
    "screened_scan",
    "screening_applies",
]

# The two int8 levels: hi in [-127, 127] on scale s, lo in [-127, 127] on scale s/254 (|x/s − hi| ≤ ½).
_LEVEL = 127.0
_LO_SCALE = 254.0
# Widest code for which the combined int32 score 254·(hi·hi) + hi·lo + lo·hi cannot overflow:
# 127² · (254 + 2) · D < 2³¹.
_MAX_DIM = 2**31 // (127 * 127 * 256) - 1
# Smallest int8 scale (max|x| / 127) screened: below it squares and products of the values approach float32's
# underflow, where the relative-rounding bound no longer holds; such rows (or codebooks) use the float32 search.
_MIN_SCALE = 2.0**-40
# Relative slack for the float32 steps of the score (conversion, scaling, bias), per unit of D.
_FLOAT32_SLACK = 2.0**-22
# Below this width the float32 product is cheap next to the screening's own elementwise work (measured on
# AVX-512 VNNI, one thread: 1.0× at D = 64 and 128, 1.5× at D = 256; two threads: 1.15× at D = 256 and
# K = 1024, 1.57× at K = 16384); below this much work (N·K·D) it is not worth it.
_MIN_DIM = 192
_MIN_WORK = 2**26
# Rows per integer product: its two int32 outputs (rows × K) take about this many bytes, within these rows.
_PRODUCT_BYTES = 4 * 2**20
_PRODUCT_ROWS = (16, 512)
# Most rows per super-block: the elementwise steps (split, minima, certificate) run on a super-block at once,
# so a worker thread issues few, large ops (many small ops from two threads contend for the GIL).
_MAX_SUPER_ROWS = 2048
# Bytes per super-block row: one float32 score per code, and the z-side split (~12 floats per dim).
_PER_CODE_BYTES = 4
_PER_DIM_BYTES = 48
# Codes split at a time when preparing the codebook.
_CODEBOOK_SLICE = 1024
_ENV_SWITCH = "VISTOK_SEARCH_SCREENING"


@functools.cache
def _fast_int8_cpu() -> bool:
    """True on CPUs with int8 dot-product instructions (VNNI or AMX); elsewhere int8 products are not faster."""
    probes = ("_is_vnni_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def screening_applies(z: torch.Tensor, codebook: torch.Tensor) -> bool:
    """Whether ``nearest_code`` should screen this search: CPU, float32 or narrower inputs, wide codes, enough
    work, a CPU with fast int8 products, and not switched off with ``VISTOK_SEARCH_SCREENING=0``."""
    n, d = z.shape
    k = codebook.shape[0]
    return (
        z.device.type == "cpu"
        and z.dtype != torch.float64
        and _MIN_DIM <= d <= _MAX_DIM
        and k > 1
        and n * k * d >= _MIN_WORK
        and os.environ.get(_ENV_SWITCH, "1") != "0"
        and _fast_int8_cpu()
    )


def _block_rows(k: int, d: int, budget: int) -> tuple[int, int]:
    """(super-block rows, product rows) within ``budget`` bytes, the first a multiple of the second; (0, 0)
    when not even the fewest rows fit."""
    per_row = k * _PER_CODE_BYTES + d * _PER_DIM_BYTES + 64
    fitting = budget // (8 * k + per_row)  # rows whose products and super-block both fit
    product_rows = min(fitting, max(_PRODUCT_ROWS[0], min(_PRODUCT_ROWS[1], _PRODUCT_BYTES // (8 * k))))
    if product_rows < _PRODUCT_ROWS[0]:
        return 0, 0
    super_rows = min(_MAX_SUPER_ROWS, (budget - product_rows * k * 8) // per_row)
    if super_rows < product_rows:
        return 0, 0
    return super_rows // product_rows * product_rows, product_rows


@torch.no_grad()
def nearest_code_screened(
    z: torch.Tensor, codebook: torch.Tensor, *, max_chunk_bytes: int = 64 * 2**20
) -> torch.Tensor | None:
    """Same contract as :func:`vistok.quantizers.search.nearest_code` on CPU, computed by certified int8
    screening; None when this search cannot be screened within ``max_chunk_bytes`` (non-finite or tiny
    codebook, codes wider than ``_MAX_DIM`` = 519, or a budget too small), so the caller falls back to the
    blocked search.

    Peak extra memory stays within ``max_chunk_bytes`` (the (N,) outputs aside): the split codebook
    (3·K·D bytes and ½||c||²) and the blocks of the worker threads share it; afterwards the rows left
    uncertified are searched in chunks within it.
    """
    search.check_inputs(z, codebook, max_chunk_bytes)
    n, d = z.shape
    k = codebook.shape[0]
    out = torch.empty(n, dtype=torch.int64)
    if n == 0:
        return out
    # the int8 split codebook and ½||c||², plus the temporaries of splitting one slice of it
    codebook_bytes = 3 * k * d + 8 * k + min(k, _CODEBOOK_SLICE) * d * _PER_DIM_BYTES
    workers = search.cpu_workers(n, k, d)
    rows, product_rows = _block_rows(k, d, (max_chunk_bytes - codebook_bytes) // workers)
    if rows == 0:
        return None
    with torch.autocast("cpu", enabled=False):
        half_sq_norms = search.code_half_sq_norms(codebook, torch.float32, _CODEBOOK_SLICE)
        book = prepare_codebook(codebook, half_sq_norms)
        if book is None:
            return None
        group = search.plan_search(rows, k, d, 2**62).group
        scan = functools.partial(
            screened_scan, book=book, rows=rows, product_rows=product_rows, group=group
        )
        if workers == 1:
            scan(z, out)
        else:
            search.run_split(scan, z, out, workers, rows)
    del scan, book
    _search_uncertified(z, codebook, out, max_chunk_bytes)
    return out


def _search_uncertified(z: torch.Tensor, codebook: torch.Tensor, out: torch.Tensor, max_chunk_bytes: int) -> None:
    """Fill the −1 entries of ``out`` with the float32 blocked search, gathering at most a quarter of the budget
    of z rows at a time (the search itself gets the rest)."""
    uncertified = (out < 0).nonzero().squeeze(1)
    if uncertified.numel() == 0:
        return
    row_bytes = z.shape[1] * z.element_size() + 16
    chunk = max(1, max_chunk_bytes // 4 // row_bytes)
    budget = max(1, max_chunk_bytes - chunk * row_bytes)
    for start in range(0, uncertified.numel(), chunk):
        rows = uncertified[start : start + chunk]
        out[rows] = search.nearest_code_blocked(z[rows], codebook, max_chunk_bytes=budget)


def _split(x: torch.Tensor, scale: torch.Tensor | None = None):
    """(hi, lo, scale, error_norm) for the rows of float32 ``x`` (R, D).

    hi, lo: (R, D) int8 with ``x ≈ scale·(hi + lo/254)``; scale: (R,) float32, by default max|x| / 127 per row
    (or the given one, which must be ≥ that); error_norm: (R,) float32, the l2 norm of
    ``x − scale·(hi + lo/254)`` (inf for rows with NaN or inf, which are then never certified; the float32
    rounding of x/s is covered by the bound's rounding term).
    """
    if scale is None:
        scale = x.abs().amax(dim=1) / _LEVEL
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    t = x / scale[:, None]
    hi = t.round().clamp_(-_LEVEL, _LEVEL)
    lo = ((t - hi) * _LO_SCALE).round_().clamp_(-_LEVEL, _LEVEL)
    # measured on t = x/s (values up to 127, so the squares cannot underflow), then scaled back
    error_norm = torch.linalg.vector_norm(t - hi - lo / _LO_SCALE, dim=1) * scale
    error_norm = torch.nan_to_num(error_norm, nan=math.inf)
    return hi.to(torch.int8), lo.to(torch.int8), scale, error_norm


@dataclass
class PreparedCodebook:
    """The codebook's side of the screening, computed once per search.

    hi_t: (D, K) int8 (transposed, contiguous for the product); cross_t: (2D, K) int8, ``[lo; hi]`` so that
    ``[hi_z | lo_z] @ cross_t = hi_z·lo_c + lo_z·hi_c``; scale: the codebook's one scale (a single scale keeps
    the score one fused multiply-add per entry); half_sq_norms: (K,) ½||c||²;
    max_norm, max_error, max_lo_norm: maxima over codes of ||c||, the split error and ||lo_c||.
    """

    hi_t: torch.Tensor
    cross_t: torch.Tensor
    scale: float
    half_sq_norms: torch.Tensor
    max_norm: float
    max_error: float
    max_lo_norm: float
    max_half_sq_norm: float


def prepare_codebook(codebook: torch.Tensor, half_sq_norms: torch.Tensor) -> PreparedCodebook | None:
    """Split a (K, D) float codebook on one scale, ``_CODEBOOK_SLICE`` codes at a time (bounded temporaries);
    None when it cannot be screened (non-finite values, D too wide, all values below ~1e-10)."""
    k, d = codebook.shape
    if d > _MAX_DIM:
        return None
    magnitude = 0.0
    for start in range(0, k, _CODEBOOK_SLICE):
        slice_magnitude = float(codebook[start : start + _CODEBOOK_SLICE].abs().amax())
        if not math.isfinite(slice_magnitude):  # NaN or inf anywhere
            return None
        magnitude = max(magnitude, slice_magnitude)
    scale = magnitude / _LEVEL
    if scale < _MIN_SCALE:  # an all-zero or tiny codebook: nothing to gain, and underflow to guard against
        return None
    hi_t = torch.empty(d, k, dtype=torch.int8)
    cross_t = torch.empty(2 * d, k, dtype=torch.int8)
    max_norm = max_error = max_lo_norm = 0.0
    for start in range(0, k, _CODEBOOK_SLICE):
        codes = codebook[start : start + _CODEBOOK_SLICE].to(torch.float32)
        stop = start + codes.shape[0]
        hi, lo, _, error = _split(codes, torch.full((codes.shape[0],), scale))
        hi_t[:, start:stop] = hi.t()
        cross_t[:d, start:stop] = lo.t()
        cross_t[d:, start:stop] = hi.t()
        max_norm = max(max_norm, float(torch.linalg.vector_norm(codes, dim=1).max()))
        max_error = max(max_error, float(error.max()))
        max_lo_norm = max(max_lo_norm, float(torch.linalg.vector_norm(lo.float(), dim=1).max()))
    return PreparedCodebook(
        hi_t=hi_t,
        cross_t=cross_t,
        scale=scale,
        half_sq_norms=half_sq_norms,
        max_norm=max_norm,
        max_error=max_error,
        max_lo_norm=max_lo_norm,
        max_half_sq_norm=float(half_sq_norms.max()),
    )


def _error_bound(z: torch.Tensor, lo: torch.Tensor, scale, error_norm, book: PreparedCodebook):
    """Per row, an upper bound on |approximate − exact| of every score ½||c||² − z·c, (R,) float32.

    With z = ẑ + e and c = ĉ + f (ẑ, ĉ the two-level approximations): z·c − ẑ·ĉ = ẑ·f + e·c, and the
    computed ẑ·ĉ leaves out s_z s_c lo_z·lo_c / 254². Each term is bounded by Cauchy–Schwarz with the
    maxima over codes; the last term covers float32 rounding of the norms and of the score arithmetic.
    """
    d = z.shape[1]
    z_norm = torch.linalg.vector_norm(z, dim=1)
    approx_norm = z_norm + error_norm
    lo_norm = torch.linalg.vector_norm(lo.float(), dim=1)
    dropped = scale * book.scale * lo_norm * book.max_lo_norm / _LO_SCALE**2
    rounding = (d + 16) * _FLOAT32_SLACK * (book.max_half_sq_norm + approx_norm * (book.max_norm + book.max_error))
    return approx_norm * book.max_error + error_norm * book.max_norm + dropped + rounding


def screened_scan(
    z: torch.Tensor, out: torch.Tensor, *, book: PreparedCodebook, rows: int, product_rows: int, group: int
) -> None:
    """Fill ``out`` (N,) with the nearest code of each row of ``z`` (N, D) where certified, else −1.

    Works ``rows`` rows (a super-block) at a time, the integer products ``product_rows`` rows at a time;
    ``group`` (a divisor of K, or K) sizes the two-level minimum search.
    """
    n = z.shape[0]
    k = book.half_sq_norms.shape[0]
    if k % group:
        group = k
    scores = torch.empty(min(rows, n), k)
    for start in range(0, n, rows):
        block = z[start : start + rows].to(torch.float32)
        r = block.shape[0]
        hi, lo, scale, error_norm = _split(block)
        approximate_scores(hi, lo, scale, book, out=scores[:r], product_rows=product_rows)
        best, runner_up, index = _best_two(scores[:r], group)
        bound = _error_bound(block, lo, scale, error_norm, book)
        certified = ((runner_up - best) > 2 * bound) & (scale >= _MIN_SCALE)  # False for NaN
        out[start : start + r] = torch.where(certified, index, -1)


def approximate_scores(
    hi: torch.Tensor,
    lo: torch.Tensor,
    scale: torch.Tensor,
    book: PreparedCodebook,
    *,
    out: torch.Tensor,
    product_rows: int,
) -> torch.Tensor:
    """Fill ``out`` (R, K) float32 with ½||c||² − ẑ·ĉ for the split rows (hi, lo, scale) of z, ``product_rows``
    rows per integer product; within :func:`_error_bound` of the exact scores."""
    hi_lo = torch.cat([hi, lo], dim=1)
    coefficient = (scale * (-book.scale / _LO_SCALE))[:, None]
    k = book.half_sq_norms.shape[0]
    # two int32 buffers reused by every product: fewer, steadier allocations (each worker thread has its own)
    combined_buffer = torch.empty(min(product_rows, hi.shape[0]), k, dtype=torch.int32)
    exact_buffer = torch.empty_like(combined_buffer)
    for p in range(0, hi.shape[0], product_rows):
        q = min(p + product_rows, hi.shape[0])
        combined, exact = combined_buffer[: q - p], exact_buffer[: q - p]
        # 254·(hi·hi) + (hi·lo + lo·hi), exact in int32 (D ≤ _MAX_DIM) ...
        torch._int_mm(hi_lo[p:q], book.cross_t, out=combined)
        combined.add_(torch._int_mm(hi[p:q], book.hi_t, out=exact), alpha=int(_LO_SCALE))
        # ... then the score ½||c||² − s_z s_c combined / 254 in one fused float32 pass
        torch.addcmul(book.half_sq_norms, combined, coefficient[p:q], out=out[p:q])
    return out


def _best_two(scores: torch.Tensor, group: int):
    """(smallest, second smallest, index of the smallest) of each row of ``scores`` (R, K), K % group == 0.

    Equal smallest values make the two equal (the row is then never certified), so which of them ``index``
    names does not matter.
    """
    rows, k = scores.shape
    grouped = scores.view(rows, k // group, group)
    group_min = grouped.amin(dim=2)  # (R, G)
    best_group = group_min.argmin(dim=1)
    arange = torch.arange(rows, device=scores.device)
    inner = grouped[arange, best_group]  # (R, group), a copy
    inner_index = inner.argmin(dim=1)
    best = inner[arange, inner_index]
    inner[arange, inner_index] = math.inf
    group_min[arange, best_group] = inner.amin(dim=1)
    return best, group_min.amin(dim=1), best_group * group + inner_index

"""Exact, memory-bounded nearest-code search: the hot path of every VQ quantizer.

Written the textbook way (materialise the N × K matrix ||z||² + ||c||² − 2 z·c, then argmin) the search is
memory-bound and its memory grows with N·K. Here:

* the distance is ½||c||² − z·c: one ``addmm`` with the bias and the sign folded in (the row constant ||z||²
  and the positive factor 2 do not change the argmin, and halving is exact in floating point);
* z is processed a block of rows at a time, the block sized for the CPU caches and within ``max_chunk_bytes``;
  for small D the block is laid out codes-major (K × rows), which the matrix product writes faster;
* the argmin is taken in two levels: a vectorised ``amin`` over groups of codes, an argmin over the group
  minima, then an argmin inside the winning group only. That is ~10× cheaper than ``argmin`` over the whole
  block and keeps argmin's rule that the first (lowest) index wins a tie.

On CUDA the fused Triton kernel of ``search_triton.py`` is used when Triton is importable; it never
materialises the distance matrix and returns the same indices. On CPUs with fast int8 products, wide codes
(D ≥ 192) go through the certified int8 screening of ``search_screened.py``, which proves each row's answer
exact and hands the rows it cannot prove back to the blocked path here. The blocked path is the fallback
everywhere else.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

__all__ = ["SearchPlan", "nearest_code", "plan_search"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Up to this dimension the distance block is laid out codes-major (K × rows): with a tiny inner dimension
# the product is bound by writing its output, which runs faster in that layout (measured on AVX-512, 2 cores).
_CODES_MAJOR_MAX_DIM = 32
# Target size of one distance block on CPU, per layout; fewest and most rows per block.
_CPU_BLOCK_BYTES = {"rows": 1 * 2**20, "codes": 4 * 2**20}
_ROWS_RANGE = {"rows": (16, 512), "codes": (32, 1024)}
# Fewest rows per row-major block by dimension, so the product keeps enough rows to run at full speed.
_MIN_ROWS_FOR_DIM = ((128, 128), (48, 64), (0, 16))
# Searches with fewer multiply-adds (N·K·D) than this run on the calling thread alone.
_PARALLEL_MIN_WORK = 2**22
# Per row of a block beyond its distances: index, minimum and gather temporaries (~8 scalars).
_ROW_OVERHEAD_BYTES = 64


@dataclass(frozen=True)
class SearchPlan:
    """How one search is cut into blocks.

    rows: z rows per block; codes: codes per block (the padded K unless that would overflow the budget);
    group: size of the code groups of the two-level argmin (divides ``codes``); padded_codes: K rounded up
    to a multiple of ``group`` (padding codes have distance +inf and never win); codes_major: the block is
    laid out (codes, rows) instead of (rows, codes); itemsize: bytes per float of the computation.
    """

    rows: int
    codes: int
    group: int
    padded_codes: int
    dim: int
    codes_major: bool
    itemsize: int = 4

    @property
    def peak_bytes(self) -> int:
        """Upper bound on the extra bytes the search holds at once, the (N,) int64 output aside."""
        return _working_set_bytes(self.rows, self.codes, self.group, self.dim, self.itemsize)


def _working_set_bytes(rows: int, codes: int, group: int, dim: int, itemsize: int) -> int:
    distances = rows * codes * itemsize
    group_minima = rows * (codes // group + group) * itemsize
    codebook_copy = codes * (dim + 1) * itemsize  # the (padded) codes of a block and their biases
    z_copy = rows * dim * itemsize
    return distances + group_minima + codebook_copy + z_copy + rows * _ROW_OVERHEAD_BYTES


def plan_search(
    n: int,
    k: int,
    d: int,
    max_chunk_bytes: int,
    *,
    itemsize: int = 4,
    block_bytes: int | None = None,
    cpu: bool = True,
) -> SearchPlan:
    """Block sizes for searching ``n`` vectors of dim ``d`` among ``k`` codes.

    The distance block aims at ``block_bytes`` (cache-sized CPU defaults when None) and the whole working set
    (``SearchPlan.peak_bytes``, copies of the codebook slice and of the z block included) stays within
    ``max_chunk_bytes``. A budget too small for one row against one group of codes gives a plain argmin over
    slices of the codebook, one row at a time; below even that the plan is the 1 × 1 block. ``cpu=False``
    (GPUs, whose argmin is fast) keeps the row-major layout and a plain argmin over whole rows.
    """
    if n < 0 or k <= 0 or d <= 0:
        raise ValueError(f"plan_search needs n >= 0, k > 0, d > 0; got n={n}, k={k}, d={d}")
    if max_chunk_bytes <= 0:
        raise ValueError(f"max_chunk_bytes must be positive; got {max_chunk_bytes}")
    budget = max_chunk_bytes
    if cpu:
        group = 1 << max(3, min(8, round(math.log2(2 * math.sqrt(k)))))
        group = min(group, 1 << (k - 1).bit_length())
    else:
        group = k
    padded = -(-k // group) * group
    codes_major = cpu and d <= _CODES_MAJOR_MAX_DIM
    layout = "codes" if codes_major else "rows"
    fewest_rows, most_rows = _ROWS_RANGE[layout]
    if not cpu:  # one block as large as the budget allows: fewer kernel launches
        most_rows = max(n, 1)
    if not codes_major:
        fewest_rows = next(rows for dim, rows in _MIN_ROWS_FOR_DIM if d >= dim)
    fewest_rows = min(max(n, 1), fewest_rows)

    def fits(rows: int, codes: int, group: int) -> bool:
        return _working_set_bytes(rows, codes, group, d, itemsize) <= budget

    codes = padded
    if not fits(fewest_rows, codes, group):
        # Slice the codebook (row-major slices only): the most whole groups that fit beside fewest_rows rows.
        codes_major = False
        per_code = fewest_rows * (1 + 1 / group) * itemsize + (d + 1) * itemsize
        room = budget - _working_set_bytes(fewest_rows, 0, group, d, itemsize)
        codes = int(max(room, 0) // per_code) // group * group
        if codes < group:
            fewest_rows, group, padded = 1, 1, k
            room = budget - _working_set_bytes(1, 0, 1, d, itemsize)
            codes = max(1, min(k, int(max(room, 0) // ((d + 3) * itemsize))))
    target = _CPU_BLOCK_BYTES[layout] if block_bytes is None else block_bytes
    rows = min(most_rows, max(fewest_rows, target // (itemsize * codes)))
    while rows > fewest_rows and not fits(rows, codes, group):
        rows = max(
            fewest_rows,
            min(rows - 1, int(rows * budget / _working_set_bytes(rows, codes, group, d, itemsize))),
        )
    rows = max(1, min(rows, n))
    return SearchPlan(rows, codes, group, padded, d, codes_major, itemsize)


def check_inputs(z: torch.Tensor, codebook: torch.Tensor, max_chunk_bytes: int) -> None:
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
        raise ValueError(f"max_chunk_bytes must be a positive int; got {max_chunk_bytes!r}")


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
    code by squared L2 distance, on z's device. ``cosine=True`` declares that both inputs are already
    l2-normalised (a kernel may then skip the code norms); the result is the same either way. Exact:
    identical to brute-force argmin of ||z||² + ||c||² − 2 z·c computed in float32 (float64 for float64
    inputs; half and bfloat16 inputs are upcast), exact ties and rounding-level near-ties aside; the lowest
    index wins an exact tie. Peak extra memory stays within ``max_chunk_bytes`` whatever N and K are. Builds
    no autograd graph.
    """
    check_inputs(z, codebook, max_chunk_bytes)
    if z.is_cuda and z.dtype != torch.float64:
        fused = _fused_cuda_search()
        if fused is not None:
            return fused(z, codebook, cosine=cosine)
    if z.device.type == "cpu":
        from .search_screened import nearest_code_screened, screening_applies

        if screening_applies(z, codebook):
            screened = nearest_code_screened(z, codebook, max_chunk_bytes=max_chunk_bytes)
            if screened is not None:
                return screened
    return nearest_code_blocked(z, codebook, max_chunk_bytes=max_chunk_bytes)


def _fused_cuda_search():
    """The Triton kernel's entry point, or None when Triton is missing or unusable here."""
    try:
        from vistok.quantizers import search_triton
    except ImportError:
        return None
    return search_triton.nearest_code_triton if search_triton.available() else None


@torch.no_grad()
def nearest_code_blocked(z: torch.Tensor, codebook: torch.Tensor, *, max_chunk_bytes: int = 64 * 2**20):
    """The blocked matrix-product search (any device): same contract as :func:`nearest_code`.

    On a multi-threaded CPU, large searches are split into contiguous row ranges run concurrently by
    single-threaded workers (the budget is shared between them): thousands of small multi-threaded ops
    would each end in a thread barrier, which stalls badly whenever another process holds a core.
    """
    check_inputs(z, codebook, max_chunk_bytes)
    n, d = z.shape
    k = codebook.shape[0]
    out = torch.empty(n, dtype=torch.int64, device=z.device)
    if n == 0:
        return out
    dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    itemsize = 8 if dtype == torch.float64 else 4
    cpu = z.device.type == "cpu"
    workers = cpu_workers(n, k, d) if cpu else 1
    plan = plan_search(
        -(-n // workers),
        k,
        d,
        max_chunk_bytes // workers,
        itemsize=itemsize,
        block_bytes=None if cpu else max_chunk_bytes,
        cpu=cpu,
    )
    with torch.autocast(z.device.type, enabled=False), _ieee_float32_matmul(z.device):
        half_sq_norms = code_half_sq_norms(codebook, dtype, plan.codes)
        if plan.codes < k:
            scan = functools.partial(_scan_sliced, codebook=codebook, half_sq_norms=half_sq_norms, plan=plan)
        else:
            codes, bias = _codebook_slice(codebook, half_sq_norms, 0, plan.codes, dtype)
            scan = functools.partial(_scan_whole, codes=codes, bias=bias, plan=plan)
        if workers == 1:
            scan(z, out)
        else:
            run_split(scan, z, out, workers, plan.rows)
    return out


def cpu_workers(n: int, k: int, d: int) -> int:
    """How many single-threaded workers share a CPU search: torch's thread count for large searches, else 1."""
    threads = torch.get_num_threads()
    if threads <= 1 or n * k * d < _PARALLEL_MIN_WORK or n < 2 * _ROWS_RANGE["codes"][0]:
        return 1
    return min(threads, n // _ROWS_RANGE["codes"][0])


def run_split(scan, z: torch.Tensor, out: torch.Tensor, workers: int, rows: int) -> None:
    """Run ``scan(z_part, out_part)`` over ``workers`` contiguous row ranges in the single-threaded pool."""
    n = z.shape[0]
    per_worker = math.ceil(n / workers)
    step = math.ceil(per_worker / rows) * rows  # rows per worker, a whole number of blocks
    inference = torch.is_inference_mode_enabled()

    def job(start: int) -> None:
        # Grad and inference modes are per thread: mirror the caller's so `out` can be written.
        with torch.inference_mode(inference), torch.no_grad(), torch.autocast("cpu", enabled=False):
            scan(z[start : start + step], out[start : start + step])

    futures = [_worker_pool(workers).submit(job, start) for start in range(0, n, step)]
    for future in futures:
        future.result()


_POOL_LOCK = threading.Lock()
_POOL: dict = {"executor": None, "size": 0, "pid": None}


def _worker_pool(size: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``size`` threads whose torch ops run single-threaded (recreated after fork)."""
    with _POOL_LOCK:
        if _POOL["executor"] is None or _POOL["size"] != size or _POOL["pid"] != os.getpid():
            if _POOL["executor"] is not None and _POOL["pid"] == os.getpid():
                _POOL["executor"].shutdown(wait=False)
            caller_threads = torch.get_num_threads()
            ready = threading.Barrier(size)
            executor = ThreadPoolExecutor(
                size,
                thread_name_prefix="vistok-search",
                initializer=_single_threaded_worker,
                initargs=(ready,),
            )
            list(executor.map(lambda _: None, range(size)))  # start every worker now
            # set_num_threads(1) in a worker also lowers the default that threads started later take up.
            torch.set_num_threads(caller_threads)
            _POOL.update(executor=executor, size=size, pid=os.getpid())
        return _POOL["executor"]


def _single_threaded_worker(ready: threading.Barrier) -> None:
    torch.set_num_threads(1)
    ready.wait()


@contextlib.contextmanager
def _ieee_float32_matmul(device: torch.device):
    """Full float32 products on CUDA for the duration (TF32 would make the search inexact); no-op elsewhere."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        previous = matmul.fp32_precision
        matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = previous
    else:
        previous = matmul.allow_tf32
        matmul.allow_tf32 = False
        try:
            yield
        finally:
            matmul.allow_tf32 = previous


def _scan_whole(z: torch.Tensor, out: torch.Tensor, *, codes, bias, plan: SearchPlan) -> None:
    """Fill ``out`` with the nearest of the prepared (padded) ``codes`` for each row of ``z``, block by block."""
    n = z.shape[0]
    dtype = codes.dtype
    rows_arange = torch.arange(plan.rows, device=z.device)
    if plan.codes_major:
        buffer = torch.empty(plan.codes, plan.rows, dtype=dtype, device=z.device)
        bias = bias[:, None].contiguous()
        for start in range(0, n, plan.rows):
            block = z[start : start + plan.rows].to(dtype)
            r = block.shape[0]
            dist = torch.addmm(
                bias, codes, block.t(), alpha=-1.0, out=buffer[:, :r] if r < plan.rows else buffer
            )
            out[start : start + r] = _first_argmin_codes_major(dist, plan.group, rows_arange[:r])
        return
    codes_t = codes.t()
    buffer = torch.empty(plan.rows, plan.codes, dtype=dtype, device=z.device)
    for start in range(0, n, plan.rows):
        block = z[start : start + plan.rows].to(dtype)
        r = block.shape[0]
        dist = torch.addmm(bias, block, codes_t, alpha=-1.0, out=buffer[:r])
        out[start : start + r] = _first_argmin_rows_major(dist, plan.group, rows_arange[:r])[1]


def code_half_sq_norms(codebook: torch.Tensor, dtype: torch.dtype, slice_codes: int) -> torch.Tensor:
    """½||c||² of every code, (K,) in ``dtype``, computed ``slice_codes`` codes at a time to bound temporaries."""
    out = torch.empty(codebook.shape[0], dtype=dtype, device=codebook.device)
    for start in range(0, codebook.shape[0], slice_codes):
        codes = codebook[start : start + slice_codes].to(dtype)
        out[start : start + slice_codes] = 0.5 * (codes * codes).sum(dim=1)
    return out


def _codebook_slice(codebook, half_sq_norms, start: int, width: int, dtype: torch.dtype):
    """(codes (width, D), bias (width,)) for codes start … start+width; rows past K are 0 with bias +inf."""
    codes = codebook[start : start + width].to(dtype)
    bias = half_sq_norms[start : start + width]
    if codes.shape[0] < width:
        pad = width - codes.shape[0]
        codes = torch.cat([codes, codes.new_zeros(pad, codes.shape[1])])
        bias = torch.cat([bias, bias.new_full((pad,), math.inf)])
    return codes.contiguous(), bias


def _first_argmin_rows_major(dist: torch.Tensor, group: int, rows_arange: torch.Tensor):
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


def _first_argmin_codes_major(dist: torch.Tensor, group: int, rows_arange: torch.Tensor) -> torch.Tensor:
    """First index of the min of each column of ``dist`` (C, R), C a multiple of ``group``."""
    cols, rows = dist.shape
    if cols == group:
        return dist.argmin(dim=0)
    grouped = dist.view(cols // group, group, rows)
    best_group = grouped.amin(dim=1).argmin(dim=0)
    winners = grouped[best_group, :, rows_arange]  # (R, group)
    return best_group * group + winners.argmin(dim=1)


def _scan_sliced(z: torch.Tensor, out: torch.Tensor, *, codebook, half_sq_norms, plan: SearchPlan) -> None:
    """Codebooks too big for the budget: slices of ``plan.codes`` codes, keeping a running minimum per row."""
    n, k = z.shape[0], codebook.shape[0]
    dtype = half_sq_norms.dtype
    rows_arange = torch.arange(plan.rows, device=z.device)
    for start in range(0, n, plan.rows):
        block = z[start : start + plan.rows].to(dtype)
        r = block.shape[0]
        best_value = best_index = None
        for k0 in range(0, k, plan.codes):
            # the last slice is padded to whole groups only, not to a full slice (a fresh copy per block)
            width = min(plan.codes, -(-(k - k0) // plan.group) * plan.group)
            codes, bias = _codebook_slice(codebook, half_sq_norms, k0, width, dtype)
            dist = torch.addmm(bias, block, codes.t(), alpha=-1.0)
            value, index = _first_argmin_rows_major(dist, plan.group, rows_arange[:r])
            if best_value is None:
                best_value, best_index = value, index
            else:
                better = value < best_value  # strict: an earlier slice keeps a tie, like argmin
                best_value = torch.where(better, value, best_value)
                best_index = torch.where(better, index + k0, best_index)
        out[start : start + r] = best_index

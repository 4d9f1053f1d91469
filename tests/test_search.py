"""Exact nearest-code search: identical indices to brute force, bounded memory, clear errors, no global state."""

import threading

import pytest
import torch
import torch.nn.functional as F

from vistok.quantizers import search
from vistok.quantizers.search import TRITON_MAX_DIM, nearest_code

CUDA = torch.cuda.is_available()


def brute_force(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The textbook search: argmin of ||z||² + ||c||² − 2 z·c over the full N × K matrix."""
    dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    z, codebook = z.to(dtype), codebook.to(dtype)
    dist = (z * z).sum(1, keepdim=True) + (codebook * codebook).sum(1) - 2 * z @ codebook.t()
    return dist.argmin(dim=1)


def random_inputs(n, k, d, *, normalized=False, dtype=torch.float32, seed=0, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=generator)
    codebook = torch.randn(k, d, generator=generator)
    if normalized:
        z, codebook = F.normalize(z, dim=1), F.normalize(codebook, dim=1)
    return z.to(device=device, dtype=dtype), codebook.to(device=device, dtype=dtype)


SHAPES = [
    (1, 1, 1),
    (1, 5, 3),
    (7, 3, 4),
    (257, 1, 5),
    (333, 777, 8),  # K not a multiple of any group or block
    (1000, 1024, 16),
    (300, 600, 64),  # row-major layout
    (70, 4099, 100),
    (129, 512, 256),
]


@pytest.mark.parametrize("n,k,d", SHAPES)
@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_matches_brute_force(n, k, d, normalized, dtype):
    z, codebook = random_inputs(n, k, d, normalized=normalized, dtype=dtype, seed=n + k + d)
    indices = nearest_code(z, codebook)
    assert indices.dtype == torch.int64 and indices.shape == (n,)
    assert torch.equal(indices, brute_force(z, codebook))


@pytest.mark.parametrize("max_chunk_bytes", [3000, 20_000, 200_000])
@pytest.mark.parametrize("n,k,d", [(333, 777, 8), (100, 1000, 64), (5, 4099, 3), (3, 50, 2)])
def test_small_budgets_slice_the_codebook_and_stay_exact(n, k, d, max_chunk_bytes):
    z, codebook = random_inputs(n, k, d, seed=k)
    indices = nearest_code(z, codebook, max_chunk_bytes=max_chunk_bytes)
    assert torch.equal(indices, brute_force(z, codebook))


def test_budget_below_one_row_against_one_code_still_answers():
    z, codebook = random_inputs(6, 20, 3, seed=9)
    assert torch.equal(nearest_code(z, codebook, max_chunk_bytes=1), brute_force(z, codebook))


def test_float64_and_large_scale_inputs():
    z, codebook = random_inputs(200, 300, 12, dtype=torch.float64)
    assert torch.equal(nearest_code(z, codebook), brute_force(z, codebook))
    z, codebook = random_inputs(200, 300, 12)
    assert torch.equal(nearest_code(z * 1e4, codebook * 1e4), brute_force(z * 1e4, codebook * 1e4))


@pytest.mark.parametrize("dim", [6, 40])  # codes-major and row-major blocks
@pytest.mark.parametrize("max_chunk_bytes", [64 * 2**20, 2000, 50])  # whole codebook, slices, single codes
def test_exact_ties_go_to_the_lowest_index(dim, max_chunk_bytes):
    # Small integers: every distance is exact in float32 whatever the summation order, so ties are real ties.
    generator = torch.Generator().manual_seed(0)
    base = torch.randint(-3, 4, (40, dim), generator=generator).float()
    codebook = torch.cat([base, base, base])  # every code three times: indices i, i+40, i+80 tie
    z = torch.randint(-4, 5, (300, dim), generator=generator).float()
    expected = brute_force(z, codebook)
    assert (expected < 40).all()
    assert torch.equal(nearest_code(z, codebook, max_chunk_bytes=max_chunk_bytes), expected)


def test_non_contiguous_inputs():
    z, codebook = random_inputs(64, 100, 10, seed=3)
    z_t = z.t().contiguous().t()  # same values, column-major strides
    codebook_t = codebook.t().contiguous().t()
    assert not z_t.is_contiguous() and not codebook_t.is_contiguous()
    assert torch.equal(nearest_code(z_t, codebook_t), brute_force(z, codebook))


def test_builds_no_autograd_graph():
    z, codebook = random_inputs(20, 30, 4)
    z.requires_grad_(True)
    codebook.requires_grad_(True)
    indices = nearest_code(z, codebook)
    assert indices.grad_fn is None and not indices.requires_grad


def test_empty_batch():
    z, codebook = random_inputs(0, 10, 4)
    assert nearest_code(z, codebook).shape == (0,)


def test_inference_mode_and_autocast_do_not_change_the_result():
    z, codebook = random_inputs(2048, 1024, 8, seed=11)
    expected = brute_force(z, codebook)
    with torch.inference_mode():
        assert torch.equal(nearest_code(z, codebook), expected)
        z_inf, codebook_inf = z.clone(), codebook.clone()  # inference tensors
        assert torch.equal(nearest_code(z_inf, codebook_inf), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # must not turn the search into a bf16 search
        assert torch.equal(nearest_code(z, codebook), expected)


def test_no_cosine_argument_that_does_nothing():
    """The old ``cosine=`` flag changed nothing: it is gone, and passing it is an error, not a silent no-op."""
    z, codebook = random_inputs(10, 20, 4, normalized=True)
    with pytest.raises(TypeError, match="cosine"):
        nearest_code(z, codebook, cosine=True)


@pytest.mark.parametrize("n,k,d", [(4096, 1024, 8), (512, 1024, 256)])  # codes-major; wide codes
def test_leaves_thread_settings_alone_and_starts_no_threads(monkeypatch, n, k, d):
    def forbidden(*args):
        raise AssertionError("the search must not change torch's thread settings")

    monkeypatch.setattr(torch, "set_num_threads", forbidden)
    monkeypatch.setattr(torch, "set_num_interop_threads", forbidden)
    threads_before = threading.active_count()
    z, codebook = random_inputs(n, k, d, seed=12)
    assert torch.equal(nearest_code(z, codebook), brute_force(z, codebook))
    assert threading.active_count() == threads_before


def test_uses_no_private_int8_product(monkeypatch):
    """Wide codes on a large search (where the old int8 screening ran) use public float matrix products only."""

    def forbidden(*args, **kwargs):
        raise AssertionError("torch._int_mm is private API")

    monkeypatch.setattr(torch, "_int_mm", forbidden, raising=False)
    z, codebook = random_inputs(1024, 1024, 256, seed=4)
    assert torch.equal(nearest_code(z, codebook), brute_force(z, codebook))
    # on CPUs without int8 dot-product instructions the old screening did not run: check the source as well
    import inspect
    import re

    source = inspect.getsource(search)
    assert not re.search(r"torch\._[a-z]", source) and "search_screened" not in source


PLAN_CASES = [
    (n, k, d, budget, cpu)
    for n in (1, 1000, 10**7)
    for k, d in ((1, 1), (512, 64), (1024, 256), (16384, 8), (4099, 3), (2**20, 256))
    for budget in (10_000, 2**20, 64 * 2**20, 256 * 2**20)
    for cpu in (True, False)
]


@pytest.mark.parametrize("n,k,d,budget,cpu", PLAN_CASES)
def test_plan_working_set_stays_within_budget(n, k, d, budget, cpu):
    plan = search._plan(n, k, d, budget, 4, cpu)
    peak = search._working_set_bytes(plan.rows, plan.codes, plan.group, d, 4)
    one_row_one_code = search._working_set_bytes(1, 1, 1, d, 4)
    assert peak <= max(budget, one_row_one_code)
    assert 1 <= plan.rows <= n
    assert plan.codes % plan.group == 0
    if plan.codes < k:  # sliced codebooks are row-major
        assert not plan.codes_major
    # the plan does not grow with N: a larger N only adds blocks
    larger = search._plan(n * 10, k, d, budget, 4, cpu)
    assert search._working_set_bytes(larger.rows, larger.codes, larger.group, d, 4) <= max(budget, one_row_one_code)


def test_gpu_plan_uses_large_blocks_and_a_plain_argmin():
    plan = search._plan(65536, 1000, 256, 64 * 2**20, 4, cpu=False)
    assert not plan.codes_major and plan.group == plan.codes == 1000
    assert plan.rows > 1000


@pytest.mark.parametrize("max_chunk_bytes", [5_000, 100_000, 2**20])
@pytest.mark.parametrize("d", [16, 64])
def test_distance_blocks_respect_the_budget(monkeypatch, max_chunk_bytes, d):
    """Every distance block the search materialises fits the budget, whatever N is."""
    largest = []
    real_addmm = torch.addmm

    def recording_addmm(*args, **kwargs):
        result = real_addmm(*args, **kwargs)
        largest.append(result.numel() * result.element_size())
        return result

    monkeypatch.setattr(search.torch, "addmm", recording_addmm)
    # Budgets of a few kB make blocks of a few rows and codes: fewer of them keep the test quick.
    n, k = (300, 600) if max_chunk_bytes < 10_000 else (1000, 2000)
    z, codebook = random_inputs(n, k, d, seed=5)
    indices = nearest_code(z, codebook, max_chunk_bytes=max_chunk_bytes)
    monkeypatch.undo()
    assert torch.equal(indices, brute_force(z, codebook))
    assert largest and max(largest) <= max_chunk_bytes


def test_sliced_codebooks_pad_the_last_slice_to_whole_groups_only(monkeypatch):
    """A codebook cut into slices is padded to a multiple of the group, not to a full slice (the padded copy is
    made for every block of rows)."""
    widths = []
    real = search._prepare_codes

    def recording(codebook, start, width, group, dtype):
        codes, bias = real(codebook, start, width, group, dtype)
        widths.append((start, codes.shape[0]))
        return codes, bias

    monkeypatch.setattr(search, "_prepare_codes", recording)
    z, codebook = random_inputs(200, 1064, 16, seed=11)
    budget = 65_000
    plan = search._plan(200, 1064, 16, budget, 4, cpu=True)
    assert plan.codes < 1064 and 1064 % plan.codes <= plan.codes - plan.group  # sliced; a short last slice
    assert torch.equal(nearest_code(z, codebook, max_chunk_bytes=budget), brute_force(z, codebook))
    last_start, last_width = max(widths)
    assert last_start == 1064 // plan.codes * plan.codes
    assert last_width == -(-(1064 - last_start) // plan.group) * plan.group < plan.codes


def test_errors_name_what_was_expected():
    z, codebook = random_inputs(10, 20, 4)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        nearest_code(z[None], codebook)
    with pytest.raises(ValueError, match="dim 4 but the codebook has dim 5"):
        nearest_code(z, torch.randn(20, 5))
    with pytest.raises(TypeError, match="same dtype"):
        nearest_code(z, codebook.double())
    with pytest.raises(TypeError, match="floating-point"):
        nearest_code(z.long(), codebook.long())
    with pytest.raises(ValueError, match="empty"):
        nearest_code(z, codebook[:0])
    with pytest.raises(ValueError, match="max_chunk_bytes"):
        nearest_code(z, codebook, max_chunk_bytes=0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        nearest_code(z.numpy(), codebook)


# ----------------------------------------------------------------------------------------------------- CUDA
def _tf32_matmul(enabled: bool) -> None:
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # one API only: torch refuses reads after mixing the two
        matmul.fp32_precision = "tf32" if enabled else "ieee"
    else:
        matmul.allow_tf32 = enabled


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_device_mismatch_is_an_error():
    z, codebook = random_inputs(10, 20, 4)
    with pytest.raises(ValueError, match="same device"):
        nearest_code(z.cuda(), codebook)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("n,k,d", SHAPES + [(65536, 16384, 8), (4096, 1024, 256)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_both_paths_match_brute_force(n, k, d, dtype):
    z, codebook = random_inputs(n, k, d, normalized=d == 8, dtype=dtype, seed=n + k, device="cuda")
    _tf32_matmul(False)
    expected = brute_force(z, codebook)
    assert torch.equal(nearest_code(z, codebook), expected)
    assert torch.equal(search._nearest_code_blocked(z, codebook, search.DEFAULT_MAX_CHUNK_BYTES), expected)
    fused = search._triton_search()
    if fused is not None:
        assert torch.equal(fused(z, codebook), expected)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("d", [TRITON_MAX_DIM, TRITON_MAX_DIM + 1])
def test_cuda_picks_the_path_by_dimension(monkeypatch, d):
    calls = []
    monkeypatch.setattr(search, "_triton_search", lambda: lambda z, c: calls.append(z.shape) or brute_force(z, c))
    z, codebook = random_inputs(100, 50, d, device="cuda")
    assert torch.equal(nearest_code(z, codebook), brute_force(z, codebook))
    assert len(calls) == (1 if d <= TRITON_MAX_DIM else 0)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_cuda_blocked_path_ignores_tf32_restores_it_and_bounds_memory():
    z, codebook = random_inputs(20000, 4096, 128, device="cuda")
    _tf32_matmul(False)
    expected = brute_force(z, codebook).cpu()
    _tf32_matmul(True)
    try:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        indices = nearest_code(z, codebook, max_chunk_bytes=8 * 2**20)
        peak = torch.cuda.max_memory_allocated() - before
        matmul = torch.backends.cuda.matmul
        assert (matmul.fp32_precision == "tf32") if hasattr(matmul, "fp32_precision") else matmul.allow_tf32
    finally:
        _tf32_matmul(False)
    assert torch.equal(indices.cpu(), expected)
    assert peak <= 8 * 2**20 + indices.numel() * 8 + 2**20  # budget + output + allocator rounding

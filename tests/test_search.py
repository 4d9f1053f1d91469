"""Exact nearest-code search: identical indices to brute force, bounded memory, clear errors."""

import pytest
import torch
import torch.nn.functional as F

from vistok.quantizers import search
from vistok.quantizers.search import nearest_code, nearest_code_blocked, plan_search

CUDA = torch.cuda.is_available()


def brute_force(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The textbook search: argmin of ||z||² + ||c||² − 2 z·c over the full N × K matrix."""
    dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    z, codebook = z.to(dtype), codebook.to(dtype)
    dist = (z * z).sum(1, keepdim=True) + (codebook * codebook).sum(1) - 2 * z @ codebook.t()
    return dist.argmin(dim=1)


def random_inputs(n, k, d, *, cosine=False, dtype=torch.float32, seed=0, device="cpu"):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=generator)
    codebook = torch.randn(k, d, generator=generator)
    if cosine:
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
@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matches_brute_force(n, k, d, cosine, dtype):
    z, codebook = random_inputs(n, k, d, cosine=cosine, dtype=dtype, seed=n + k + d)
    indices = nearest_code(z, codebook, cosine=cosine)
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


@pytest.mark.parametrize("max_chunk_bytes", [64 * 2**20, 2000, 50])
def test_exact_ties_go_to_the_lowest_index(max_chunk_bytes):
    # Small integers: every distance is exact in float32 whatever the summation order, so ties are real ties.
    generator = torch.Generator().manual_seed(0)
    base = torch.randint(-3, 4, (40, 6), generator=generator).float()
    codebook = torch.cat([base, base, base])  # every code three times: indices i, i+40, i+80 tie
    z = torch.randint(-4, 5, (300, 6), generator=generator).float()
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


PLAN_CASES = [
    (n, k, d, budget)
    for n in (1, 1000, 10**7)
    for k, d in ((1, 1), (512, 64), (1024, 256), (16384, 8), (4099, 3), (2**20, 256))
    for budget in (10_000, 2**20, 64 * 2**20, 256 * 2**20)
]


@pytest.mark.parametrize("n,k,d,budget", PLAN_CASES)
def test_plan_working_set_stays_within_budget(n, k, d, budget):
    plan = plan_search(n, k, d, budget)
    smallest_possible = plan_search(1, 1, d, 1).peak_bytes  # one row against one code
    assert plan.peak_bytes <= max(budget, smallest_possible)
    assert 1 <= plan.rows <= n
    assert plan.codes % plan.group == 0 or plan.group == 1
    assert plan.padded_codes >= k and plan.padded_codes % plan.group == 0
    # the plan does not grow with N: a larger N only adds blocks
    assert plan_search(n * 10, k, d, budget).peak_bytes <= max(budget, smallest_possible)


def test_plan_rejects_bad_arguments():
    with pytest.raises(ValueError, match="k > 0"):
        plan_search(10, 0, 4, 1000)
    with pytest.raises(ValueError, match="max_chunk_bytes"):
        plan_search(10, 5, 4, 0)


@pytest.mark.parametrize("max_chunk_bytes", [5_000, 100_000, 2**20])
def test_distance_blocks_respect_the_budget(monkeypatch, max_chunk_bytes):
    """Every distance block the search materialises fits the budget, whatever N is."""
    largest = []
    real_addmm = torch.addmm

    def recording_addmm(*args, **kwargs):
        result = real_addmm(*args, **kwargs)
        largest.append(result.numel() * result.element_size())
        return result

    monkeypatch.setattr(search.torch, "addmm", recording_addmm)
    z, codebook = random_inputs(1000, 2000, 16, seed=5)
    indices = nearest_code(z, codebook, max_chunk_bytes=max_chunk_bytes)
    monkeypatch.undo()
    assert torch.equal(indices, brute_force(z, codebook))
    assert largest and max(largest) <= max_chunk_bytes


def test_sliced_codebooks_pad_the_last_slice_to_whole_groups_only(monkeypatch):
    """A codebook cut into slices is padded to a multiple of the group, not to a full slice: the padded copy is
    made for every block of rows."""
    widths = []
    real = search._codebook_slice

    def recording(codebook, half_sq_norms, start, width, dtype):
        widths.append((start, width))
        return real(codebook, half_sq_norms, start, width, dtype)

    monkeypatch.setattr(search, "_codebook_slice", recording)
    z, codebook = random_inputs(200, 1064, 16, seed=11)  # small enough for one worker: the plan below is its
    budget = 40_000
    plan = plan_search(200, 1064, 16, budget)
    assert plan.codes < 1064 and 1064 % plan.codes <= plan.codes - plan.group  # sliced; a short last slice
    assert torch.equal(nearest_code_blocked(z, codebook, max_chunk_bytes=budget), brute_force(z, codebook))
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


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_device_mismatch_is_an_error():
    z, codebook = random_inputs(10, 20, 4)
    with pytest.raises(ValueError, match="same device"):
        nearest_code(z.cuda(), codebook)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("n,k,d", SHAPES + [(65536, 16384, 8), (4096, 1024, 256)])
@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_brute_force(n, k, d, cosine, dtype):
    z, codebook = random_inputs(n, k, d, cosine=cosine, dtype=dtype, seed=n + k, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    expected = brute_force(z, codebook)
    assert torch.equal(nearest_code(z, codebook, cosine=cosine), expected)
    assert torch.equal(nearest_code_blocked(z, codebook), expected)


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_cuda_blocked_path_ignores_tf32_and_bounds_memory():
    z, codebook = random_inputs(20000, 4096, 32, device="cuda")
    expected = brute_force(z, codebook).cpu()
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        indices = nearest_code_blocked(z, codebook, max_chunk_bytes=8 * 2**20)
        peak = torch.cuda.max_memory_allocated() - before
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    assert torch.equal(indices.cpu(), expected)
    assert peak <= 8 * 2**20 + indices.numel() * 8 + 2**20  # budget + output + allocator rounding


# A search large enough for the multi-worker CPU path (N·K·D above its threshold).
LARGE = (2048, 1024, 8)


def test_inference_mode_and_autocast_do_not_change_the_result():
    z, codebook = random_inputs(*LARGE, seed=11)
    expected = brute_force(z, codebook)
    with torch.inference_mode():
        assert torch.equal(nearest_code(z, codebook), expected)
        z_inf, codebook_inf = z.clone(), codebook.clone()  # inference tensors
        assert torch.equal(nearest_code(z_inf, codebook_inf), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # must not turn the search into a bf16 search
        assert torch.equal(nearest_code(z, codebook), expected)


def test_thread_settings_are_left_as_they_were():
    import threading

    before = torch.get_num_threads()
    z, codebook = random_inputs(*LARGE, seed=12)
    nearest_code(z, codebook)
    assert torch.get_num_threads() == before
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [before]  # threads started later still get the process default


def _search_in_child(queue):
    z, codebook = random_inputs(*LARGE, seed=13)
    queue.put(nearest_code(z, codebook).tolist())  # plain list: a tensor would need the child alive


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_works_in_a_forked_child_after_use_in_the_parent():
    import multiprocessing

    z, codebook = random_inputs(*LARGE, seed=13)
    expected = nearest_code(z, codebook)  # the parent's worker pool now exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_search_in_child, args=(queue,))
    child.start()
    result = queue.get(timeout=60)
    child.join(timeout=60)
    assert result == expected.tolist()


def test_gpu_style_plan_uses_plain_argmin_rows():
    plan = plan_search(65536, 1000, 256, 64 * 2**20, block_bytes=64 * 2**20, cpu=False)
    assert not plan.codes_major and plan.group == plan.codes == plan.padded_codes == 1000
    assert plan.peak_bytes <= 64 * 2**20 and plan.rows > 1000

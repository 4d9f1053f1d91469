"""Certified int8 screening: exact results on random and adversarial inputs, a sound error bound, the fallback."""

import pytest
import torch

from vistok.quantizers import search_screened
from vistok.quantizers.search import nearest_code, nearest_code_blocked
from vistok.quantizers.search_screened import nearest_code_screened, prepare_codebook, screened_scan

from .test_search import brute_force, random_inputs


def screen(z, codebook, **kwargs):
    indices = nearest_code_screened(z, codebook, **kwargs)
    assert indices is not None, "the search was expected to be screened"
    return indices


@pytest.mark.parametrize("n,k,d", [(1, 2, 192), (37, 5, 256), (700, 1000, 256), (1100, 129, 512), (64, 4099, 200)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_matches_brute_force(n, k, d, dtype):
    z, codebook = random_inputs(n, k, d, dtype=dtype, seed=n + k + d)
    assert torch.equal(screen(z, codebook), brute_force(z, codebook))


def test_most_rows_of_ordinary_data_are_certified():
    """The fast path must carry the work: few rows may fall back to the float32 search."""
    z, codebook = random_inputs(2048, 1024, 256, seed=1)
    book = prepare_codebook(codebook, 0.5 * (codebook * codebook).sum(1))
    out = torch.empty(2048, dtype=torch.int64)
    screened_scan(z, out, book=book, rows=1024, product_rows=256, group=64)
    certified = out >= 0
    assert certified.float().mean() > 0.9
    assert torch.equal(out[certified], brute_force(z, codebook)[certified])


def test_error_bound_holds_for_every_score():
    """|approximate − exact| ≤ bound for every (row, code): the float32 scores the search compares, against
    float64, on heavy-tailed, sparse and wide-range data."""
    generator = torch.Generator().manual_seed(0)
    d, k = 256, 300
    z = torch.randn(400, d, generator=generator) ** 3  # heavy tails
    z[:100] *= torch.rand(100, d, generator=generator) < 0.05  # sparse rows
    z[100:200] *= torch.logspace(-9, 9, 100)[:, None]  # rows over eighteen orders of magnitude
    codebook = torch.randn(k, d, generator=generator) * torch.logspace(-3, 3, k)[:, None]
    half = 0.5 * (codebook * codebook).sum(1)
    book = prepare_codebook(codebook, half)
    hi, lo, scale, error_norm = search_screened._split(z)
    approx = search_screened.approximate_scores(hi, lo, scale, book, out=torch.empty(400, k), product_rows=64)
    exact = 0.5 * (codebook.double() ** 2).sum(1) - z.double() @ codebook.double().t()
    bound = search_screened._error_bound(z, lo, scale, error_norm, book).double()
    assert ((approx.double() - exact).abs() <= bound[:, None]).all()


def test_certified_rows_are_exact_on_data_near_codes():
    """Trained-VQ-like data (each z close to a code, some codes nearly duplicated): most rows are certified
    by the int8 screening itself, and every certified answer is the brute-force one."""
    generator = torch.Generator().manual_seed(8)
    codebook = torch.randn(512, 256, generator=generator)
    codebook[256:300] = codebook[:44] + 0.01 * torch.randn(44, 256, generator=generator)
    assignment = torch.randint(0, 512, (3000,), generator=generator)
    z = codebook[assignment] + 0.3 * torch.randn(3000, 256, generator=generator)
    book = prepare_codebook(codebook, 0.5 * (codebook * codebook).sum(1))
    out = torch.empty(3000, dtype=torch.int64)
    screened_scan(z, out, book=book, rows=1024, product_rows=256, group=64)
    certified = out >= 0
    near_duplicate = ((assignment < 44) | ((assignment >= 256) & (assignment < 300))).bool()
    assert certified[~near_duplicate].float().mean() > 0.97  # clear winners are proven
    assert certified[near_duplicate].float().mean() < 0.5  # codes 0.01 apart mostly go to float32
    assert torch.equal(out[certified], brute_force(z, codebook)[certified])
    assert torch.equal(screen(z, codebook), brute_force(z, codebook))


@pytest.mark.parametrize("magnitude", [1e-20, 1e-12, 1e-6])
def test_tiny_values_are_not_lost_to_underflow(magnitude):
    generator = torch.Generator().manual_seed(9)
    codebook = torch.randn(64, 256, generator=generator) * magnitude
    codebook[1] = 0.0
    z = codebook[torch.arange(300) % 64] + 0.1 * magnitude * torch.randn(300, 256, generator=generator)
    indices = nearest_code_screened(z, codebook)
    expected = brute_force(z.double(), codebook.double())
    assert torch.equal(indices if indices is not None else nearest_code(z, codebook), expected)
    z_small = torch.randn(300, 256, generator=generator) * magnitude  # tiny rows against a normal codebook
    normal_codebook = torch.randn(64, 256, generator=generator)
    assert torch.equal(screen(z_small, normal_codebook), brute_force(z_small.double(), normal_codebook.double()))


def test_uncertified_rows_are_searched_within_the_budget(monkeypatch):
    from vistok.quantizers import search

    calls = []
    real = search.nearest_code_blocked

    def spy(z, codebook, *, max_chunk_bytes):
        calls.append((z.shape[0], max_chunk_bytes))
        return real(z, codebook, max_chunk_bytes=max_chunk_bytes)

    monkeypatch.setattr(search, "nearest_code_blocked", spy)
    z, codebook = random_inputs(4000, 64, 256, seed=10)
    codebook = torch.cat([codebook, codebook])  # every row ties: nothing can be certified
    budget = 12 * 2**20
    assert torch.equal(screen(z, codebook, max_chunk_bytes=budget), brute_force(z, codebook))
    assert sum(rows for rows, _ in calls) == 4000 and len(calls) > 1
    for rows, search_budget in calls:
        assert rows * 256 * 4 <= budget // 4 and rows * 256 * 4 + search_budget <= budget + rows * 16


def test_exact_ties_go_to_the_lowest_index():
    z, codebook = random_inputs(300, 64, 256, seed=2)
    codebook = torch.cat([codebook, codebook])  # every code twice: indices 0–63 must win
    z[:50] = codebook[:50]  # rows sitting exactly on a code
    indices = screen(z, codebook)
    assert torch.equal(indices, brute_force(z, codebook))
    assert int(indices.max()) < 64


def test_near_ties_and_outlier_codes():
    z, codebook = random_inputs(500, 256, 256, seed=3)
    codebook[1::2] = codebook[0::2] + 1e-4 * torch.randn(128, 256)  # pairs of codes almost on top of each other
    codebook[7] *= 1e4  # one far outlier stretches the codebook's int8 scale
    z[:20] = 0.0
    indices = screen(z, codebook)
    assert torch.equal(indices, brute_force(z, codebook))


def test_non_finite_rows_fall_back_to_the_float32_search():
    z, codebook = random_inputs(300, 128, 256, seed=4)
    z[3, 5] = float("nan")
    z[7, 0] = float("inf")
    z[11] = 3e38  # finite, but its squared norm overflows float32
    assert torch.equal(screen(z, codebook), nearest_code_blocked(z, codebook))


def test_unscreenable_searches_return_none():
    z, codebook = random_inputs(50, 64, 256, seed=5)
    bad = codebook.clone()
    bad[0, 0] = float("nan")
    assert nearest_code_screened(z, bad) is None
    assert nearest_code_screened(z, codebook, max_chunk_bytes=1000) is None
    wide_z, wide_codebook = random_inputs(4, 8, search_screened._MAX_DIM + 1, seed=5)
    assert nearest_code_screened(wide_z, wide_codebook) is None


def test_small_budget_keeps_memory_and_exactness():
    z, codebook = random_inputs(333, 700, 256, seed=6)
    assert torch.equal(screen(z, codebook, max_chunk_bytes=12 * 2**20), brute_force(z, codebook))


def test_nearest_code_uses_screening_only_where_it_applies(monkeypatch):
    calls = []
    real = search_screened.nearest_code_screened

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(search_screened, "nearest_code_screened", spy)
    monkeypatch.setattr(search_screened, "_fast_int8_cpu", lambda: True)
    monkeypatch.setattr(search_screened, "_MIN_WORK", 0)
    z, codebook = random_inputs(200, 300, 256, seed=7)
    assert torch.equal(nearest_code(z, codebook), brute_force(z, codebook))
    assert len(calls) == 1
    nearest_code(z.double(), codebook.double())  # float64 stays on the float64 search
    nearest_code(z[:, :64].contiguous(), codebook[:, :64].contiguous())  # narrow codes: float32 is as fast
    assert len(calls) == 1
    monkeypatch.setenv("VISTOK_SEARCH_SCREENING", "0")
    nearest_code(z, codebook)
    assert len(calls) == 1

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
    """|approximate − exact| ≤ bound for every (row, code), on heavy-tailed, sparse and wide-range data."""
    generator = torch.Generator().manual_seed(0)
    d, k = 256, 300
    z = torch.randn(400, d, generator=generator) ** 3  # heavy tails
    z[:100] *= torch.rand(100, d, generator=generator) < 0.05  # sparse rows
    z[100:200] *= torch.logspace(-6, 6, 100)[:, None]  # rows over twelve orders of magnitude
    codebook = torch.randn(k, d, generator=generator) * torch.logspace(-3, 3, k)[:, None]
    half = 0.5 * (codebook * codebook).sum(1)
    book = prepare_codebook(codebook, half)
    hi, lo, scale, error_norm = search_screened._split(z)
    combined = 254 * (hi.double() @ book.hi_t.double()) + torch.cat([hi, lo], 1).double() @ book.cross_t.double()
    approx = half.double() - scale.double()[:, None] * book.scale * combined / 254
    exact = 0.5 * (codebook.double() ** 2).sum(1) - z.double() @ codebook.double().t()
    bound = search_screened._error_bound(z, lo, scale, error_norm, book).double()
    assert ((approx - exact).abs() <= bound[:, None]).all()


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

"""Behaviour specific to each quantizer (the shape/IO contract is in test_common.py)."""

from __future__ import annotations

import math
from copy import deepcopy

import pytest
import scipy.stats
import torch

from vistok import QUANTIZERS, VisTokenizerConfig
from vistok.entropy import DENSE_HISTOGRAM_MAX_CODES
from vistok.metrics import CodebookUsage
from vistok.quantizers import FiniteScalarQuantizer, LookupFreeQuantizer, SimVQQuantizer, VectorQuantizer
from vistok.quantizers.base import usage_stats
from vistok.quantizers.fsq import MAX_LEVEL


def latents(b=2, d=4, h=4, w=4, seed=0):
    return torch.randn(b, d, h, w, generator=torch.Generator().manual_seed(seed))


def brute_force_indices(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    d = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.t()
    return d.argmin(1)


@pytest.mark.parametrize("l2_norm", [False, True])
def test_vq_indices_match_brute_force(l2_norm):
    vq = VectorQuantizer(codebook_size=300, codebook_dim=6, l2_norm=l2_norm).eval()
    vq.codebook.data.normal_()
    z = latents(d=6, h=9, w=7)
    out = vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 6)
    codebook = vq.codebook
    if l2_norm:
        flat, codebook = torch.nn.functional.normalize(flat, dim=-1), torch.nn.functional.normalize(codebook, dim=-1)
    assert torch.equal(out.indices.reshape(-1), brute_force_indices(flat, codebook))


def test_l2_normalised_codes_have_unit_norm():
    vq = VectorQuantizer(codebook_size=64, codebook_dim=8, l2_norm=True).eval()
    out = vq(latents(d=8) * 5)
    norms = out.quantized.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    all_codes = vq.indices_to_codes(torch.arange(64).view(1, 8, 8))
    torch.testing.assert_close(all_codes.norm(dim=1), torch.ones(1, 8, 8))


def test_vq_losses_commitment_beta_and_codebook_gradient():
    vq = VectorQuantizer(codebook_size=16, codebook_dim=4, commitment_weight=0.25).train()
    z = latents().requires_grad_(True)
    out = vq(z)
    assert set(out.losses) == {"commitment_loss", "codebook_loss"}
    torch.testing.assert_close(out.losses["commitment_loss"], 0.25 * out.losses["codebook_loss"].detach())
    sum(out.losses.values()).backward()
    assert vq.codebook.grad is not None and vq.codebook.grad.abs().sum() > 0
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_ema_updates_the_codebook_in_training_mode_only():
    vq = VectorQuantizer(codebook_size=16, codebook_dim=4, ema_decay=0.9)
    assert not vq.codebook.requires_grad
    before = vq.codebook.detach().clone()
    vq.eval()
    out = vq(latents())
    assert "codebook_loss" not in out.losses
    assert torch.equal(vq.codebook, before)
    vq.train()
    out = vq(latents())
    assert not torch.equal(vq.codebook, before)
    used = out.indices.unique()
    # Used codes move towards the mean of their assigned latents; unused codes only decay with their counts.
    assert (vq.codebook[used] - before[used]).abs().sum() > 0


def test_a_bfloat16_ema_codebook_keeps_its_updates():
    """A bfloat16 model's quantizer computes on float32 copies of its parameters and buffers (the base class's
    rule): the EMA update made on them is written back, rounded once to bfloat16, and gradients-free as before."""
    reference = VectorQuantizer(codebook_size=16, codebook_dim=4, ema_decay=0.9).train()
    with torch.no_grad():
        for t in [*reference.parameters(), *reference.buffers()]:
            t.copy_(t.bfloat16().float())
    half = deepcopy(reference).to(torch.bfloat16)
    z = latents().bfloat16()
    reference(z.float())
    half(z)
    assert isinstance(half.codebook, torch.nn.Parameter) and not half.codebook.requires_grad
    for name, value in half.state_dict().items():
        assert value.dtype == torch.bfloat16, name
        assert torch.equal(value, reference.state_dict()[name].bfloat16()), name


def test_ema_codebook_converges_to_cluster_means():
    vq = VectorQuantizer(codebook_size=2, codebook_dim=1, ema_decay=0.5, ema_epsilon=1e-9).train()
    vq.codebook.data = torch.tensor([[-0.1], [0.1]])
    vq.ema_embed_sum.copy_(vq.codebook.data)
    z = torch.tensor([-3.0, -1.0, 1.0, 3.0]).view(1, 1, 2, 2)
    for _ in range(40):
        vq(z)
    torch.testing.assert_close(vq.codebook.data, torch.tensor([[-2.0], [2.0]]), atol=1e-4, rtol=0)


def test_entropy_regularisation_is_differentiable_and_only_in_training():
    vq = VectorQuantizer(codebook_size=32, codebook_dim=4, entropy_weight=0.1, entropy_temperature=0.5).train()
    z = latents().requires_grad_(True)
    out = vq(z)
    assert "entropy_loss" in out.losses
    out.losses["entropy_loss"].backward()
    assert z.grad.abs().sum() > 0
    assert "entropy_loss" not in vq.eval()(latents()).losses


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 8, 8], [2, 3], [7, 6]])
def test_fsq_index_code_bijection_over_the_whole_codebook(levels):
    fsq = FiniteScalarQuantizer(levels=levels)
    k = math.prod(levels)
    assert fsq.codebook_size == k and fsq.codebook_dim == len(levels)
    indices = torch.arange(k).view(1, 1, k)
    codes = fsq.indices_to_codes(indices)
    assert codes.abs().max() <= 1
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    # Every code is reachable: a latent that bounds onto it quantizes to it.
    assert torch.equal(fsq(latent_for_fsq_codes(fsq, codes)).indices, indices)


def latent_for_fsq_codes(fsq: FiniteScalarQuantizer, codes: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Invert FSQ's bound(): the latent z with round(bound(z)) / half_width == codes."""
    levels = torch.tensor(fsq.levels_list, dtype=dtype).view(1, -1, 1, 1)
    half_l = (levels - 1) * (1 + fsq.eps) / 2
    offset = torch.where(levels % 2 == 0, 0.5, 0.0)
    target = codes * (levels // 2)  # integer grid value that bound(z) must hit
    return torch.atanh((target + offset) / half_l) - torch.atanh(offset / half_l)


def test_fsq_gradient_is_straight_through():
    fsq = FiniteScalarQuantizer(levels=[5, 5]).train()
    z = (torch.randn(1, 2, 3, 3) * 0.1).requires_grad_(True)
    fsq(z).quantized.sum().backward()
    assert (z.grad > 0).all()


def test_lfq_index_code_bijection_and_bit_order():
    lfq = LookupFreeQuantizer(codebook_dim=6)
    indices = torch.arange(64).view(1, 8, 8)
    codes = lfq.indices_to_codes(indices)
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(lfq(codes).indices, indices)
    # Channel 0 is the most significant bit.
    one_hot_msb = -torch.ones(1, 6, 1, 1)
    one_hot_msb[:, 0] = 1
    assert lfq(one_hot_msb).indices.item() == 32


def _brute_force_lfq_entropies(flat: torch.Tensor, tau: float) -> tuple[float, float]:
    """Both entropies (nats) over every one of the 2^D sign codes, in float64, straight from the definition."""
    d = flat.shape[1]
    bits = (torch.arange(2**d).unsqueeze(-1) >> torch.arange(d)) & 1
    codes = bits.double() * 2 - 1
    p = (2 * flat.double() @ codes.t() / tau).softmax(-1)
    mean = p.mean(0)
    sample = -(p * p.clamp_min(1e-300).log()).sum(-1).mean()
    codebook = -(mean * mean.clamp_min(1e-300).log()).sum()
    return sample.item(), codebook.item()


@pytest.mark.parametrize("d", [10, 15])
def test_lfq_entropies_equal_brute_force_up_to_15_bits(d):
    lfq = LookupFreeQuantizer(codebook_dim=d, entropy_temperature=1.0).train()
    flat = 0.5 * torch.randn(24, d, generator=torch.Generator().manual_seed(d))
    sample, codebook = lfq.entropy_terms(flat)
    expected_sample, expected_codebook = _brute_force_lfq_entropies(flat, 1.0)
    assert sample.item() == pytest.approx(expected_sample, rel=1e-4)
    assert codebook.item() == pytest.approx(expected_codebook, rel=1e-4)


@pytest.mark.parametrize("d", [10, 15, 18])
def test_lfq_codebook_entropy_sees_a_batch_that_uses_two_codes(d):
    """Two codes whose bits all differ (each bit is + for half the batch: a per-bit bound is at its maximum, D ln 2)
    must score a lower codebook entropy than a batch spread over hundreds of codes."""
    lfq = LookupFreeQuantizer(codebook_dim=d, entropy_temperature=0.1).train()
    generator = torch.Generator().manual_seed(0)
    pattern = torch.randint(0, 2, (1, d), generator=generator) * 2 - 1
    two_codes = torch.cat([pattern.expand(300, d), -pattern.expand(300, d)]).float()
    many_codes = (torch.randint(0, 2, (600, d), generator=generator) * 2 - 1).float()
    assert lfq(many_codes.t().reshape(1, d, 600, 1)).indices.unique().numel() > 300  # hundreds of codes in use
    _, two = lfq.entropy_terms(two_codes)
    _, many = lfq.entropy_terms(many_codes)
    groups = -(-d // 15)
    assert two.item() == pytest.approx(groups * math.log(2), rel=1e-3)  # ln 2 per group of channels
    assert many.item() > 5.0 > two.item()


def test_lfq_entropy_loss_at_18_bits_trains():
    lfq = LookupFreeQuantizer(codebook_dim=18).train()
    z = torch.randn(2, 18, 4, 4, requires_grad=True)
    out = lfq(z)
    assert set(out.losses) == {"commitment_loss", "entropy_loss"}
    out.losses["entropy_loss"].backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_simvq_only_the_projection_learns():
    sim = SimVQQuantizer(codebook_size=32, codebook_dim=4).train()
    assert [name for name, p in sim.named_parameters() if p.requires_grad] == ["codebook_proj.weight"]
    out = sim(latents())
    sum(out.losses.values()).backward()
    assert sim.codebook_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "fsq", "levels": [8, 1]}, r"levels must all lie in \[2, 2\^22 = 4194304\], got \[8, 1\]"),
        ({"type": "fsq", "levels": []}, "non-empty list"),
        ({"type": "vq", "codebook_size": 0}, "codebook_size"),
        ({"type": "vq", "ema_decay": 1.5}, "ema_decay"),
        ({"type": "vq", "beta": 0.25}, "valid options: codebook_size"),
        ({"type": "lfq", "codebook_dim": 80}, "<= 62"),
        ({"type": "lfq", "codebook_dim": 63}, "<= 62"),
        ({"type": "lfq", "codebook_dim": 2.5}, "'codebook_dim' must be an integer"),
        ({"type": "vq", "codebook_size": 64.5}, "'codebook_size' must be an integer"),
        ({"type": "simvq", "codebook_dim": 8.0}, "'codebook_dim' must be an integer"),
        ({"type": "fsq", "levels": [8, 2**22 + 1]}, r"levels must all lie in \[2, 2\^22"),
        ({"type": "fsq", "levels": [2**22, 2**22, 2**22]}, "exceeds 2\\^62"),
        ({"type": "nope"}, "valid names: " + ", ".join(QUANTIZERS.names())),  # every registered one, listed
    ],
)
def test_invalid_quantizer_settings_raise_clear_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        VisTokenizerConfig(quantizer=spec)


def test_every_quantizer_is_registered():
    assert set(QUANTIZERS.names()) >= {"vq", "fsq", "lfq", "simvq"}


# Implicit codebooks up to 2^62 codes: usable, and no codebook-sized tensor anywhere (2^40 int64 counts would be
# 8.8 TB, so any such allocation fails these tests).
HUGE_QUANTIZERS = [
    pytest.param({"type": "lfq", "codebook_dim": 40}, id="lfq-40-bits"),
    pytest.param({"type": "lfq", "codebook_dim": 62}, id="lfq-62-bits"),
    pytest.param({"type": "fsq", "levels": [2**20, 2**20, 4]}, id="fsq-2^42"),
    pytest.param({"type": "fsq", "levels": [2**22, 2**22, 2**18]}, id="fsq-2^62"),
]


@pytest.mark.parametrize("spec", HUGE_QUANTIZERS)
def test_huge_implicit_codebooks_train_and_report_usage(spec):
    config = VisTokenizerConfig(quantizer=spec)  # accepted by validation ...
    options = {k: v for k, v in config.quantizer.items() if k != "type"}
    quantizer = QUANTIZERS.get(spec["type"])(**options).train()
    k = quantizer.codebook_size
    z = torch.randn(4, quantizer.codebook_dim, 8, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = quantizer(z)  # ... and works: losses, indices, stats
    (sum(out.losses.values(), z.new_zeros(())) + out.quantized.sum()).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < k
    assert torch.equal(quantizer.indices_to_codes(out.indices), out.quantized.detach())
    distinct = sorted(set(out.indices.flatten().tolist()))
    counts = [out.indices.flatten().tolist().count(code) for code in distinct]
    assert out.stats["batch_usage"].item() == pytest.approx(len(distinct) / k)
    assert out.stats["perplexity"].item() == pytest.approx(math.exp(scipy.stats.entropy(counts)), rel=1e-5)
    # The evaluation metric too: no histogram for such a codebook, but usage and perplexity.
    metric = CodebookUsage(k)
    metric.update(out.indices[:2])
    other = CodebookUsage(k)
    other.update(out.indices[2:], torch.arange(2, 4))
    metric.merge_state(other.state())
    result = metric.compute()
    assert "codebook_histogram" not in result
    assert result["codebook_usage_split"] == len(distinct) / k
    assert result["perplexity"] == pytest.approx(math.exp(scipy.stats.entropy(counts)), rel=1e-12)


def test_usage_stats_agree_below_and_above_the_dense_histogram_cap():
    indices = torch.randint(0, 1000, (3, 5, 7), generator=torch.Generator().manual_seed(0))
    dense = usage_stats(indices, DENSE_HISTOGRAM_MAX_CODES)
    sparse = usage_stats(indices, 4 * DENSE_HISTOGRAM_MAX_CODES)
    distinct = indices.unique().numel()
    assert dense["batch_usage"].item() == pytest.approx(distinct / DENSE_HISTOGRAM_MAX_CODES)
    assert sparse["batch_usage"].item() == pytest.approx(distinct / (4 * DENSE_HISTOGRAM_MAX_CODES))
    assert dense["perplexity"].item() == sparse["perplexity"].item()


@pytest.mark.parametrize("level", [MAX_LEVEL, MAX_LEVEL - 1])
def test_fsq_largest_allowed_level_reaches_every_code(level):
    fsq = FiniteScalarQuantizer(levels=[level])
    indices = torch.arange(level).view(1, 1, level)
    codes = fsq.indices_to_codes(indices)
    latents_64 = latent_for_fsq_codes(fsq, codes.double(), dtype=torch.float64)
    assert torch.equal(fsq(latents_64.float()).indices, indices)

"""The ``bsq`` quantizer (binary spherical quantisation, Zhao et al. 2024): codes on the unit sphere, the bit index
in both orders, the straight-through gradient through the l2 normalisation, and the entropy terms against a
brute-force computation over all 2^d codes at small d. (The common tests cover it too: it is registered.)"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import vistok
from vistok.quantizers.bsq import BinarySphericalQuantizer, channel_groups


def _grid(flat: torch.Tensor) -> torch.Tensor:
    """(N, d) → (1, d, N, 1)."""
    return flat.t().reshape(1, flat.shape[1], flat.shape[0], 1)


def test_codes_are_the_signs_of_the_normalised_latent_scaled_to_unit_norm():
    bsq = BinarySphericalQuantizer(codebook_dim=6).eval()
    z = torch.randn(2, 6, 3, 4)
    out = bsq(z)
    expected = torch.where(z > 0, 1 / math.sqrt(6), -1 / math.sqrt(6))
    assert torch.equal(out.quantized, expected)
    torch.testing.assert_close(out.quantized.norm(dim=1), torch.ones(2, 3, 4))
    assert torch.equal(bsq(3.7 * z).indices, out.indices)  # only the direction matters
    zero = torch.zeros(1, 6, 1, 1)
    assert bsq(zero).indices.item() == 0 and torch.equal(bsq(zero).quantized, torch.full((1, 6, 1, 1), -1 / math.sqrt(6)))


@pytest.mark.parametrize(("bit_order", "first"), [("msb_first", 32), ("lsb_first", 1)])
def test_index_code_bijection_and_bit_order(bit_order, first):
    bsq = BinarySphericalQuantizer(codebook_dim=6, bit_order=bit_order).eval()
    indices = torch.arange(64).reshape(1, 8, 8)
    codes = bsq.indices_to_codes(indices)
    assert torch.equal(bsq(codes).indices, indices)
    assert torch.equal(bsq(codes).quantized, codes)
    one_hot = -torch.ones(1, 6, 1, 1)
    one_hot[0, 0] = 1.0
    assert bsq(one_hot).indices.item() == first  # channel 0 alone set


def test_gradient_is_straight_through_the_sign_and_through_the_normalisation():
    bsq = BinarySphericalQuantizer(codebook_dim=5).train()
    z = torch.randn(2, 5, 3, 3, requires_grad=True)
    weights = torch.randn(2, 5, 3, 3)
    (bsq(z).quantized * weights).sum().backward()
    z2 = z.detach().clone().requires_grad_(True)
    (F.normalize(z2, dim=1) * weights).sum().backward()  # d/dz of the identity on u = z / ||z||
    torch.testing.assert_close(z.grad, z2.grad, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------ entropy terms
def _brute_force(u: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Over all 2^d codes c ∈ {±1/√d}^d: q(c|u) = softmax(−||u − c||² / τ) in float64. Returns (mean per-sample
    entropy, exact codebook entropy, the paper's factorised codebook entropy Σ_i H(E_u q(c_i|u_i)))."""
    u = u.double()
    d = u.shape[1]
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)), dtype=torch.float64) / math.sqrt(d)
    q = torch.softmax(-torch.cdist(u, codes).pow(2) / tau, dim=1)
    sample = -(q * q.log()).sum(1).mean()
    mean = q.mean(0)
    codebook = -(mean * mean.log()).sum()
    factorised = 0.0
    for i in range(d):  # marginal of channel i: the mass of the codes whose channel i is positive
        p = mean[codes[:, i] > 0].sum()
        factorised = factorised - p * p.log() - (1 - p) * (1 - p).log()
    return sample, codebook, factorised


@pytest.mark.parametrize("d", [4, 7])
@pytest.mark.parametrize("tau", [1.0, 0.2])
def test_entropy_terms_equal_brute_force(d, tau):
    torch.manual_seed(d)
    u = F.normalize(torch.randn(300, d) + 0.4 * torch.randn(1, d), dim=1)  # a biased batch: codes unevenly used
    sample, codebook, factorised = _brute_force(u, tau)
    for group in range(1, d + 1):
        bsq = BinarySphericalQuantizer(codebook_dim=d, entropy_temperature=tau, entropy_group_size=group)
        got_sample, got_codebook = bsq.entropy_terms(u)
        torch.testing.assert_close(got_sample.double(), sample, rtol=1e-5, atol=1e-5)  # exact for every grouping
        assert got_codebook.double() >= codebook - 1e-5  # a sum over groups bounds the joint entropy from above
        if group == 1:  # the paper's factorised approximation
            torch.testing.assert_close(got_codebook.double(), factorised, rtol=1e-5, atol=1e-5)
        if group == d:  # one group: exact
            torch.testing.assert_close(got_codebook.double(), codebook, rtol=1e-5, atol=1e-5)
    if tau < 1:  # confident assignments: the factorised approximation is not exact on this batch
        assert factorised > codebook + 1e-3


def test_per_channel_probabilities_are_the_papers_sigmoid():
    """q(c_i = +1/√d | u_i) = σ(4 u_i / (τ√d)): its Bernoulli entropies sum to the per-sample entropy."""
    d, tau = 6, 0.5
    u = F.normalize(torch.randn(50, d), dim=1)
    p = torch.sigmoid(4 * u / (tau * math.sqrt(d))).double()
    expected = (-(p * p.log()) - (1 - p) * (1 - p).log()).sum(1).mean()
    sample, _ = BinarySphericalQuantizer(codebook_dim=d, entropy_temperature=tau).entropy_terms(u)
    torch.testing.assert_close(sample.double(), expected, rtol=1e-5, atol=1e-5)


def test_channel_groups():
    assert channel_groups(18, 9) == [range(0, 9), range(9, 18)]
    assert channel_groups(10, 4) == [range(0, 4), range(4, 7), range(7, 10)]
    assert channel_groups(5, 9) == [range(0, 5)]


def test_losses_are_weighted_as_documented_and_entropy_only_in_training():
    d = 5
    bsq = BinarySphericalQuantizer(codebook_dim=d, commitment_weight=0.3, entropy_weight=0.2,
                                   sample_entropy_weight=1.5, codebook_entropy_weight=0.7)
    z = torch.randn(2, d, 4, 4)
    u = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, d), dim=1)
    out = bsq.train()(z)
    codes = torch.where(u > 0, 1 / math.sqrt(d), -1 / math.sqrt(d))
    torch.testing.assert_close(out.losses["commitment_loss"], 0.3 * (u - codes).pow(2).sum(1).mean())
    sample, codebook = bsq.entropy_terms(u)
    torch.testing.assert_close(out.losses["entropy_loss"], 0.2 * (1.5 * sample - 0.7 * codebook))
    assert "entropy_loss" not in bsq.eval()(z).losses


def test_the_entropy_objective_spreads_a_collapsed_batch_over_the_codes():
    """Trainable: gradient steps on the entropy loss alone take latents that all share one code to many codes."""
    torch.manual_seed(0)
    bsq = BinarySphericalQuantizer(codebook_dim=8, entropy_weight=1.0, entropy_group_size=8).train()
    z = (torch.ones(1, 8, 16, 16) + 0.05 * torch.randn(1, 8, 16, 16)).requires_grad_(True)
    assert bsq(z).indices.unique().numel() == 1
    optimiser = torch.optim.Adam([z], lr=0.05)
    for _ in range(60):
        optimiser.zero_grad()
        bsq(z).losses["entropy_loss"].backward()
        optimiser.step()
    assert bsq(z.detach()).indices.unique().numel() > 64


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"codebook_dim": 63}, r"bsq codebook_dim must be <= 62"),
        ({"entropy_group_size": 16}, r"bsq entropy_group_size must be <= 15"),
        ({"entropy_group_size": 0}, r"'entropy_group_size' must be > 0"),
        ({"entropy_temperature": 0}, r"'entropy_temperature' must be > 0"),
        ({"bit_order": "big"}, r"bit_order must be one of 'msb_first', 'lsb_first'"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        vistok.VisTokenizerConfig(image_size=16, quantizer={"type": "bsq", **options})


def test_a_tokenizer_round_trips_through_save_and_load(tmp_path):
    config = vistok.VisTokenizerConfig(image_size=16, quantizer={"type": "bsq", "codebook_dim": 10, "bit_order": "lsb_first"})
    tok = vistok.VisTokenizer(config).eval()
    tok.save_pretrained(tmp_path)
    loaded = vistok.VisTokenizer.from_pretrained(tmp_path)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.encode(x).indices, tok.encode(x).indices)
    assert loaded.codebook_size == 1024 and loaded.config.quantizer["bit_order"] == "lsb_first"

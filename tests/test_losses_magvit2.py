"""The loss pieces of Open-MAGVIT2's training (issue 12 part 4): LeCam regularisation with its EMA anchors, the
per-image non-saturating GAN losses, and the entropy-loss boost. Expected values come from the formulas, evaluated
element by element in plain Python (Tseng et al. 2021; SEED-Voken's vqperceptual.py), not from vistok."""

from __future__ import annotations

import math

import pytest
import torch

from vistok import VisTokenizer, VisTokenizerConfig
from vistok.losses import (
    ADVERSARIAL_LOSSES,
    LeCamAnchors,
    LossConfig,
    NLayerDiscriminator,
    TokenizerLoss,
    discriminator_loss,
    entropy_boost_factor,
    generator_loss,
    lecam_penalty,
)


def _relu(v: float) -> float:
    return max(v, 0.0)


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def _tiny_lfq_tokenizer() -> VisTokenizer:
    config = VisTokenizerConfig(
        image_size=16,
        net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 1},
        quantizer={"type": "lfq", "codebook_dim": 5, "entropy_weight": 0.1},
    )
    return VisTokenizer(config).train()


# -------------------------------------------------------------------------------------------------- LeCam
def test_lecam_penalty_is_the_relu_squared_distance_to_the_other_sides_anchor():
    real, fake = [0.5, -0.2, 1.0, 0.05], [-1.0, 0.3, 0.25]
    anchor_real, anchor_fake = 0.2, 0.1
    expected = sum(_relu(r - anchor_fake) ** 2 for r in real) / len(real) + sum(
        _relu(anchor_real - f) ** 2 for f in fake
    ) / len(fake)
    logits_real = torch.tensor(real, requires_grad=True)
    logits_fake = torch.tensor(fake, requires_grad=True)
    penalty = lecam_penalty(logits_real, logits_fake, torch.tensor(anchor_real), torch.tensor(anchor_fake))
    assert penalty.item() == pytest.approx(expected, rel=1e-6)
    penalty.backward()
    # d/dr relu(r − α_F)² / n = 2 relu(r − α_F) / n: zero where the real logit is below the fake anchor
    assert logits_real.grad.tolist() == pytest.approx([2 * _relu(r - anchor_fake) / len(real) for r in real])
    assert logits_fake.grad.tolist() == pytest.approx([-2 * _relu(anchor_real - f) / len(fake) for f in fake])


def test_lecam_anchors_are_exponential_moving_averages_of_the_mean_logits():
    decay = 0.9
    anchors = LeCamAnchors(decay)
    batches = [(torch.tensor([1.0, 3.0]), torch.tensor([-2.0])), (torch.tensor([0.0, 0.5]), torch.tensor([1.0, -1.0]))]
    for real, fake in batches:
        anchors.update(real, fake)
    # closed form from 0: α_k = (1 − d) Σ_j d^(k−1−j) m_j
    means_real, means_fake = [2.0, 0.25], [-2.0, 0.0]
    k = len(batches)
    expected_real = sum((1 - decay) * decay ** (k - 1 - j) * m for j, m in enumerate(means_real))
    expected_fake = sum((1 - decay) * decay ** (k - 1 - j) * m for j, m in enumerate(means_fake))
    assert anchors.real.item() == pytest.approx(expected_real) and anchors.fake.item() == pytest.approx(expected_fake)
    assert anchors.real.dtype == torch.float32 and not anchors.real.requires_grad
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        LeCamAnchors(1.0)


def test_discriminator_objective_adds_lecam_after_updating_the_anchors_as_open_magvit2_does():
    torch.manual_seed(0)
    decay, weight = 0.999, 0.05
    objective = TokenizerLoss(LossConfig(adversarial_weight=0.1, lecam_weight=weight, lecam_decay=decay,
                                         discriminator={"base_channels": 8, "num_layers": 2, "norm": "none"}))
    disc = objective.build_discriminator()
    x, x_hat = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        real, fake = disc(x).flatten().tolist(), disc(x_hat).flatten().tolist()
    for step in range(2):
        # the anchors before this step, then the update with this batch's means, then the penalty
        prior_real, prior_fake = disc.lecam.real.item(), disc.lecam.fake.item()
        anchor_real = decay * prior_real + (1 - decay) * sum(real) / len(real)
        anchor_fake = decay * prior_fake + (1 - decay) * sum(fake) / len(fake)
        hinge = 0.5 * (sum(_relu(1 - r) for r in real) / len(real) + sum(_relu(1 + f) for f in fake) / len(fake))
        lecam = sum(_relu(r - anchor_fake) ** 2 for r in real) / len(real) + sum(
            _relu(anchor_real - f) ** 2 for f in fake
        ) / len(fake)
        out = objective.discriminator_loss(x, x_hat, step=step, discriminator=disc)
        assert out.loss.item() == pytest.approx(hinge + weight * lecam, rel=1e-5)
        assert out.terms["lecam_loss"].item() == pytest.approx(lecam, rel=1e-5)
        assert disc.lecam.real.item() == pytest.approx(anchor_real, rel=1e-6)


def test_lecam_anchors_are_saved_and_restored_with_the_discriminator():
    objective = TokenizerLoss(LossConfig(adversarial_weight=0.1, lecam_weight=0.05,
                                         discriminator={"base_channels": 8, "num_layers": 2}))
    disc = objective.build_discriminator()
    disc.lecam.update(torch.tensor([2.0]), torch.tensor([-3.0]))
    state = disc.state_dict()
    assert {"lecam.real", "lecam.fake"} <= set(state)
    fresh = objective.build_discriminator()
    fresh.load_state_dict(state)
    assert fresh.lecam.real.item() == pytest.approx(0.002) and fresh.lecam.fake.item() == pytest.approx(-0.003)
    # without LeCam the discriminator's state is unchanged (existing checkpoints keep loading)
    plain = TokenizerLoss(LossConfig(adversarial_weight=0.1, discriminator={"base_channels": 8, "num_layers": 2}))
    assert not any(k.startswith("lecam") for k in plain.build_discriminator().state_dict())


def test_lecam_needs_the_discriminator_that_carries_the_anchors_and_a_discriminator_at_all():
    objective = TokenizerLoss(LossConfig(adversarial_weight=0.1, lecam_weight=0.05,
                                         discriminator={"base_channels": 8, "num_layers": 2}))
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="build_discriminator"):
        objective.discriminator_loss(x, x, step=0, discriminator=NLayerDiscriminator(base_channels=8, num_layers=2))
    with pytest.raises(ValueError, match="adversarial_weight 0"):
        LossConfig(lecam_weight=0.05)
    with pytest.raises(ValueError, match="lecam_decay"):
        LossConfig(adversarial_weight=0.1, lecam_weight=0.05, lecam_decay=1.5)
    with pytest.raises(ValueError, match="lecam_weight"):
        LossConfig(adversarial_weight=0.1, lecam_weight=-1.0)


# -------------------------------------------------------------------------------- per-image non-saturating
def test_per_image_non_saturating_losses_average_the_patches_of_each_image_first():
    patches = [[[0.0, 2.0], [-1.0, 3.0]], [[-4.0, 0.5], [1.5, -0.5]]]  # (B=2, 2×2 patches)
    fake = torch.tensor(patches).unsqueeze(1)
    real = -0.5 * fake
    image_means = [sum(sum(row) for row in image) / 4 for image in patches]
    expected_gen = sum(_softplus(-m) for m in image_means) / 2
    assert generator_loss(fake, "non_saturating_per_image").item() == pytest.approx(expected_gen, rel=1e-6)
    # not the same as the per-patch loss on these logits
    per_patch = sum(_softplus(-v) for image in patches for row in image for v in row) / 8
    assert generator_loss(fake, "non_saturating").item() == pytest.approx(per_patch, rel=1e-6)
    assert abs(expected_gen - per_patch) > 0.1
    # discriminator: the two terms summed (SEED-Voken's non_saturate_discriminator_loss does not halve them)
    expected_d = sum(_softplus(-(-0.5 * m)) for m in image_means) / 2 + sum(_softplus(m) for m in image_means) / 2
    assert discriminator_loss(real, fake, "non_saturating_per_image").item() == pytest.approx(expected_d, rel=1e-6)
    assert "non_saturating_per_image" in ADVERSARIAL_LOSSES
    with pytest.raises(ValueError, match="non_saturating_per_image"):
        LossConfig(generator_loss="non-saturate")
    with pytest.raises(ValueError, match="B >= 1"):
        generator_loss(torch.empty(0, 1, 2, 2), "non_saturating_per_image")


# ------------------------------------------------------------------------------------------ entropy boost
def test_entropy_boost_decays_linearly_to_zero():
    assert [entropy_boost_factor(s, 3.0, 2000) for s in (0, 500, 1000, 2000, 5000)] == pytest.approx(
        [3.0, 2.25, 1.5, 0.0, 0.0]
    )
    assert entropy_boost_factor(0, 0.0, 2000) == 0.0
    with pytest.raises(ValueError, match="entropy_boost_steps"):
        entropy_boost_factor(0, 1.0, 0)
    with pytest.raises(ValueError, match="entropy_boost_steps"):
        LossConfig(entropy_boost=1.0, entropy_boost_steps=0)


def test_objective_weighs_the_entropy_loss_one_plus_the_boost():
    torch.manual_seed(0)
    tok = _tiny_lfq_tokenizer()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = tok(x)
    plain = TokenizerLoss(LossConfig(quantizer_weight=2.0)).generator_loss(x, out, step=500)
    boosted = TokenizerLoss(LossConfig(quantizer_weight=2.0, entropy_boost=3.0, entropy_boost_steps=2000))
    entropy = out.losses["entropy_loss"].item()
    assert entropy != 0.0
    early = boosted.generator_loss(x, out, step=500)  # factor 3 · (1 − 500/2000) = 2.25
    assert early.loss.item() == pytest.approx(plain.loss.item() + 2.0 * 2.25 * entropy, rel=1e-5, abs=1e-6)
    assert early.terms["entropy_boost_weight"].item() == pytest.approx(2.25)
    late = boosted.generator_loss(x, out, step=2000)
    assert late.loss.item() == pytest.approx(plain.loss.item(), rel=1e-6) and "entropy_boost_weight" not in late.terms


def test_entropy_boost_on_a_quantizer_without_an_entropy_loss_is_refused():
    config = VisTokenizerConfig(image_size=16, net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 1},
                                quantizer={"type": "fsq", "levels": [4, 4]})
    tok = VisTokenizer(config).train()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with pytest.raises(ValueError, match=r"entropy_boost.*returned only"):
        TokenizerLoss(LossConfig(entropy_boost=1.0)).generator_loss(x, tok(x), step=0)

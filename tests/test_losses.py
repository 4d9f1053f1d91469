"""vistok.losses: reconstruction, LPIPS with local weights, PatchGAN, GAN objectives, adaptive weight, objective."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vistok.losses import (
    LossConfig,
    LPIPSLoss,
    NLayerDiscriminator,
    PerceptualWeightsNotFoundError,
    TokenizerLoss,
    adaptive_generator_weight,
    adversarial_factor,
    discriminator_loss,
    generator_loss,
    reconstruction_loss,
)

VGG16_FILENAME = "vgg16-397923af.pth"


@pytest.fixture(scope="module")
def vgg_weights_path(tmp_path_factory):
    """A torchvision-layout VGG16 checkpoint (``features.N.*``) with random weights, saved locally."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])
    path = tmp_path_factory.mktemp("vgg") / VGG16_FILENAME
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


@pytest.fixture(scope="module")
def lpips_loss(vgg_weights_path):
    return LPIPSLoss(vgg_weights_path, allow_download=False)


# -------------------------------------------------------------------------------------------- reconstruction
def test_reconstruction_losses_match_their_definitions():
    x, y = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.allclose(reconstruction_loss(x, y, "l1"), (x - y).abs().mean())
    assert torch.allclose(reconstruction_loss(x, y, "l2"), (x - y).pow(2).mean())
    with pytest.raises(ValueError, match="l1"):
        reconstruction_loss(x, y, "huber")
    with pytest.raises(ValueError, match="differ"):
        reconstruction_loss(x, y[:1], "l1")


# ----------------------------------------------------------------------------------------------------- LPIPS
def test_lpips_loads_the_local_trunk_into_every_slice(vgg_weights_path, lpips_loss):
    state = torch.load(vgg_weights_path, weights_only=True)
    net = lpips_loss.lpips.net
    # slices keep torchvision's feature indices as child names
    assert torch.equal(getattr(net.slice1, "0").weight, state["features.0.weight"])
    assert torch.equal(getattr(net.slice3, "14").bias, state["features.14.bias"])
    assert torch.equal(getattr(net.slice5, "28").weight, state["features.28.weight"])
    assert all(not p.requires_grad for p in lpips_loss.parameters())


def test_lpips_is_zero_on_equal_images_positive_otherwise_and_differentiable(lpips_loss):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1).requires_grad_()
    assert lpips_loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    value = lpips_loss(y, x)
    assert value.ndim == 0 and value.item() > 0
    value.backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    lpips_loss.train()
    assert not lpips_loss.lpips.training
    with pytest.raises(ValueError, match="B, 3, H, W"):
        lpips_loss(x, x[:, :1])


def test_missing_vgg_weights_name_the_file_and_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.delenv("VISTOK_LPIPS_VGG_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(PerceptualWeightsNotFoundError) as info:
        LPIPSLoss(None, allow_download=False)
    message = str(info.value)
    assert VGG16_FILENAME in message and str(tmp_path / "hub") in message and "VISTOK_LPIPS_VGG_WEIGHTS" in message
    with pytest.raises(PerceptualWeightsNotFoundError, match="not a file"):
        LPIPSLoss(tmp_path / "nope.pth")


# --------------------------------------------------------------------------------------------- discriminator
@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_patchgan_gives_one_logit_per_patch(norm):
    disc = NLayerDiscriminator(base_channels=32, num_layers=3, norm=norm)
    assert disc(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    assert disc(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_patchgan_init_is_normal_002():
    disc = NLayerDiscriminator()
    weights = torch.cat([m.weight.flatten() for m in disc.modules() if isinstance(m, nn.Conv2d)])
    assert abs(weights.mean().item()) < 2e-3 and weights.std().item() == pytest.approx(0.02, rel=0.05)
    with pytest.raises(ValueError, match="valid"):
        NLayerDiscriminator(norm="actnorm2")


# ------------------------------------------------------------------------------------------- GAN objectives
def test_gan_losses_at_known_logits():
    zeros, twos = torch.zeros(4), torch.full((4,), 2.0)
    assert discriminator_loss(zeros, zeros, "hinge").item() == pytest.approx(1.0)
    assert discriminator_loss(twos, -twos, "hinge").item() == pytest.approx(0.0)
    assert discriminator_loss(zeros, zeros, "non_saturating").item() == pytest.approx(math.log(2))
    assert generator_loss(torch.ones(4), "hinge").item() == pytest.approx(-1.0)
    assert generator_loss(zeros, "non_saturating").item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="hinge"):
        generator_loss(zeros, "wasserstein")
    assert adversarial_factor(249_999, 250_000) == 0.0 and adversarial_factor(250_000, 250_000) == 1.0


def test_adaptive_weight_is_the_clamped_detached_gradient_norm_ratio():
    layer = nn.Linear(4, 4)
    out = layer(torch.randn(8, 4))
    nll, g = 3.0 * out.sum(), -1.5 * out.sum()
    weight = adaptive_generator_weight(nll, g, layer.weight)
    grad_norm = torch.autograd.grad(out.sum(), layer.weight, retain_graph=True)[0].norm()
    assert weight.item() == pytest.approx(3.0 * grad_norm.item() / (1.5 * grad_norm.item() + 1e-4), rel=1e-5)
    assert not weight.requires_grad
    saturated = adaptive_generator_weight(1e6 * out.sum(), 0.0 * out.sum(), layer.weight)
    assert saturated.item() == pytest.approx(1e4)
    with pytest.raises(ValueError, match="get_last_layer"):
        adaptive_generator_weight(nll, g, torch.zeros(3))


# ------------------------------------------------------------------------------------------------ objective
def _tiny_tokenizer():
    from vistok import VisTokenizer, VisTokenizerConfig

    config = VisTokenizerConfig(
        image_size=16,
        net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 1},
        quantizer={"type": "vq", "codebook_size": 32, "codebook_dim": 4},
    )
    return VisTokenizer(config).train()


def test_loss_config_rejects_unknown_values():
    with pytest.raises(ValueError, match="l1"):
        LossConfig(reconstruction="l3")
    with pytest.raises(ValueError, match="valid"):
        LossConfig(discriminator={"depth": 3})
    with pytest.raises(ValueError, match=">= 0"):
        LossConfig(adversarial_weight=-1.0)


def test_objective_terms_before_and_after_the_discriminator_starts(vgg_weights_path, lpips_loss):
    tok = _tiny_tokenizer()
    config = LossConfig(
        reconstruction="l1", perceptual_weight=1.0, perceptual_weights=str(vgg_weights_path),
        adversarial_weight=0.8, adversarial_start=10, discriminator={"base_channels": 8, "num_layers": 2},
    )
    objective = TokenizerLoss(config, perceptual=lpips_loss)
    disc = objective.build_discriminator()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = tok(x)
    early = objective.generator_loss(x, out, step=9, last_layer=tok.get_last_layer(), discriminator=disc)
    assert "generator_adversarial_loss" not in early.terms
    expected = early.terms["reconstruction_loss"] + early.terms["perceptual_loss"] + early.terms["quantizer_loss"]
    assert early.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert {"commitment_loss", "codebook_loss"} <= set(early.terms)
    assert objective.discriminator_loss(x, out.reconstruction, step=9, discriminator=disc).loss.item() == 0.0

    late = objective.generator_loss(x, out, step=10, last_layer=tok.get_last_layer(), discriminator=disc)
    weight = late.terms["adaptive_weight"].item()
    assert math.isfinite(weight) and 0 < weight <= 1e4
    assert late.loss.item() == pytest.approx(
        (expected + weight * 0.8 * late.terms["generator_adversarial_loss"]).item(), rel=1e-4
    )
    late.loss.backward()
    assert tok.get_last_layer().grad is not None
    d = objective.discriminator_loss(x, out.reconstruction, step=10, discriminator=disc)
    assert d.loss.item() > 0 and d.loss.requires_grad
    with pytest.raises(ValueError, match="discriminator"):
        objective.generator_loss(x, tok(x), step=10, last_layer=tok.get_last_layer())


def test_objective_without_adaptive_weight_or_grad_uses_the_plain_weight():
    tok = _tiny_tokenizer()
    objective = TokenizerLoss(LossConfig(adversarial_weight=0.5, adaptive_weight=False,
                                         discriminator={"base_channels": 8, "num_layers": 2, "norm": "none"}))
    disc = objective.build_discriminator()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = objective.generator_loss(x, tok(x), step=0, discriminator=disc)
    assert out.terms["adaptive_weight"].item() == 1.0
    with torch.no_grad():
        assert objective.generator_loss(x, tok(x), step=0, discriminator=disc).terms["adaptive_weight"].item() == 1.0

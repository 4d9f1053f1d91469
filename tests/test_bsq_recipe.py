"""The BSQ-ViT-style preset and its ImageNet-256 recipe (issue 22, part 3): BSQ-ViT's quantizer, loss and optimiser
settings are the ones the recipe builds, and the recipe trains a tiny tokenizer for a few steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vistok import VisTokenizer

from .training_support import load_train_script

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

RECIPE = Path(__file__).resolve().parents[1] / "training" / "configs" / "imagenet256" / "bsqgan.yaml"
train_script = load_train_script()
from trainkit.config import load_recipe  # noqa: E402


def test_bsq_recipe_carries_bsq_vits_quantizer_loss_and_optimiser_settings():
    from trainkit.model import build_tokenizer

    from vistok.registry import PRESETS

    recipe = load_recipe(RECIPE)
    with torch.device("meta"):
        tok = build_tokenizer(recipe.model)
    preset = PRESETS.get("bsqgan-imagenet256-f8-b18")
    assert preset.training == "training/configs/imagenet256/bsqgan.yaml"
    assert "not BSQ-ViT's ViT" in preset.source  # the card says the backbone is a conv net
    quantizer, loss, train = tok.config.quantizer, recipe.loss, recipe.train
    assert {k: quantizer[k] for k in preset.config["quantizer"]} == preset.config["quantizer"]
    # bsq-vit configs/tokenizer/imagenet_256x256_bsqvit_b18g18_stylegan_f8_fp16.yaml: embed_dim 18, embed_group_size 1,
    # beta 0, gamma0 = gamma = zeta = inv_temperature = 1, codebook_weight 0.1; f8 (32x32 tokens at 256 px)
    assert quantizer["type"] == "bsq" and quantizer["codebook_dim"] == 18 and tok.codebook_size == 2**18
    assert (quantizer["commitment_weight"], quantizer["entropy_weight"], quantizer["entropy_group_size"]) == (0.0, 0.1, 1)
    assert (quantizer["sample_entropy_weight"], quantizer["codebook_entropy_weight"], quantizer["entropy_temperature"]) == (
        1.0, 1.0, 1.0)
    assert tok.config.latent_hw == (32, 32)
    # its VQLPIPSWithDiscriminator: L1 + 0.1 LPIPS, vanilla GAN loss at the fixed weight 0.1 from step 0, codebook
    # weight ramped from 3x to 1x over 2,000 steps
    assert (loss.reconstruction, loss.perceptual_weight, loss.adversarial_weight, loss.adaptive_weight) == ("l1", 0.1, 0.1, False)
    assert (loss.discriminator_loss, loss.generator_loss, loss.adversarial_start) == ("non_saturating", "non_saturating", 0)
    assert (loss.entropy_boost, loss.entropy_boost_steps) == (2.0, 2000)
    # AdamW (0.9, 0.99), wd 1e-4, base_lr 4e-7 x global batch, 5k warm-up then cosine to 0.5x at 1M steps
    assert (train.optimizer, train.betas, train.weight_decay, train.eps) == ("adamw", (0.9, 0.99), 1e-4, 1e-8)
    assert (train.lr, train.scale_lr, train.batch_size) == (4e-7, True, 256)
    assert (train.lr_schedule, train.warmup_steps, train.min_lr_ratio, train.max_steps) == ("cosine", 5000, 0.5, 1_000_000)
    assert recipe.data.hflip is False


def test_bsq_recipe_trains_a_tiny_bsq_tokenizer(tmp_path, vgg_weights):
    result = train_script.main([
        "--config", str(RECIPE), "--dataset", "samples", "--data.streaming", "false", "--data.num_workers", "0",
        "--data.num_samples", "8", "--model.image_size", "16",
        "--model.net", "{type: vqgan, base_channels: 8, channel_multiplier: [1, 2], num_res_blocks: 1, "
        "latent_channels: 8, norm_groups: 4}",
        "--model.quantizer.codebook_dim", "6",
        "--loss.perceptual_weights", str(vgg_weights), "--loss.discriminator", "{base_channels: 8, num_layers: 2}",
        "--train.batch_size", "4", "--train.max_steps", "3", "--train.warmup_steps", "1",
        "--output_dir", str(tmp_path / "run"),
        "--output.log_every", "1", "--output.image_every", "100", "--output.checkpoint_every", "100",
        "--output.num_images", "2", "--output.tracker", "none", "--output.progress_bar", "false",
    ])
    assert result.step == 3
    for record in result.history:  # the discriminator is on from step 0; BSQ's entropy term is trained
        assert torch.isfinite(torch.tensor(record["loss"]))
        assert {"perceptual_loss", "entropy_loss", "generator_adversarial_loss", "discriminator_loss"} <= set(record)
    tok = VisTokenizer.from_pretrained(result.output_dir)
    assert tok.config.quantizer["type"] == "bsq" and tok.config.quantizer["entropy_group_size"] == 1
    with torch.no_grad():
        out = tok.encode(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert out.indices.shape == (2, 8, 8) and int(out.indices.max()) < 2**6
    assert torch.allclose(out.quantized.pow(2).sum(dim=1), torch.ones(2, 8, 8))  # unit-norm codes ±1/√6

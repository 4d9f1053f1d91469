"""The IBQ recipe (training/configs/imagenet256/ibqgan.yaml): same quantizer as the presets and the converter, and
it trains (a couple of steps of a tiny version, with LPIPS, the discriminator and the weight EMA switched on)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from vistok import PRESETS, VisTokenizer
from vistok.families.ibq import IBQ_CODEBOOK_SIZES, IBQ_QUANTIZER_LOSS, convert_ibq
from vistok.registry import QUANTIZERS, normalize_spec

from .training_support import load_train_script

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "training"
RECIPE = TRAINING / "configs" / "imagenet256" / "ibqgan.yaml"
DATA = Path(__file__).parent / "data"




def test_recipe_presets_and_converter_build_the_same_ibq_quantizer():
    sys.path.insert(0, str(TRAINING))
    from trainkit.config import load_recipe
    from trainkit.model import build_tokenizer

    recipe = load_recipe(RECIPE)
    with torch.device("meta"):
        tok = build_tokenizer(recipe.model)
    # IBQ's ImageNet config: beta 0.25 on the codebook term, quant_loss_weight 1.0, entropy_loss_weight 0.05 at
    # temperature 0.01, both entropy weights 1.0 (configs/IBQ/gpu/imagenet_ibqgan_16384.yaml).
    upstream = {"commitment_weight": 1.0, "codebook_weight": 0.25, "index_backprop_weight": 1.0,
                "entropy_weight": 0.05, "entropy_temperature": 0.01, "sample_entropy_weight": 1.0,
                "codebook_entropy_weight": 1.0}
    assert IBQ_QUANTIZER_LOSS == upstream
    sources = {"recipe": tok.config.quantizer, "converter": convert_ibq(DATA / "ibq_tiny.ckpt").config.quantizer}
    for size in IBQ_CODEBOOK_SIZES:
        sources[f"preset {size}"] = normalize_spec(QUANTIZERS, PRESETS.get(f"ibqgan-imagenet256-{size}").config["quantizer"])
    for where, spec in sources.items():
        assert spec["type"] == "ibq" and {k: spec[k] for k in upstream} == upstream, where
    net = tok.config.net
    assert (net["base_channels"], net["channel_multiplier"], net["num_res_blocks"], net["attention_levels"]) == (
        128, [1, 1, 2, 2, 4], 4, [4]
    )
    assert tok.config.quantizer["codebook_size"] == 16384 and tok.config.latent_size == 16
    assert recipe.train.ema_decay == 0.999 and recipe.train.betas == (0.5, 0.9) and recipe.loss.adaptive_weight is False


def test_the_recipe_trains_a_tiny_ibq_tokenizer(tmp_path, vgg_weights):
    result = load_train_script("vistok_train_script_ibq").main([
        "--config", str(RECIPE), "--dataset", "samples", "--data.streaming", "false", "--data.num_workers", "0",
        "--data.num_samples", "8", "--model.image_size", "16",
        "--model.net", "{type: vqgan, base_channels: 8, channel_multiplier: [1, 2], num_res_blocks: 1, "
        "latent_channels: 8, attention_levels: [1], norm_groups: 4}",
        "--model.quantizer.codebook_size", "32", "--model.quantizer.codebook_dim", "8",
        "--loss.perceptual_weights", str(vgg_weights), "--loss.discriminator", "{base_channels: 8, num_layers: 2}",
        "--train.batch_size", "4", "--train.max_steps", "2", "--output_dir", str(tmp_path / "run"),
        "--output.log_every", "1", "--output.image_every", "100", "--output.checkpoint_every", "100",
        "--output.num_images", "2", "--output.tracker", "none", "--output.progress_bar", "false",
    ])
    assert result.step == 2
    last = result.history[-1]
    assert {"perceptual_loss", "discriminator_loss", "index_backprop_loss", "entropy_loss"} <= set(last)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    tok = VisTokenizer.from_pretrained(result.output_dir)
    assert tok.config.quantizer["type"] == "ibq" and tok.config.quantizer["entropy_weight"] == 0.05
    with torch.no_grad():
        assert tok(torch.rand(2, 3, 16, 16) * 2 - 1).reconstruction.shape == (2, 3, 16, 16)

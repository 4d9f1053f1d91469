"""diffusers VQModel interop: diffusers → vistok and vistok → diffusers compute the same tokens and images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("diffusers")
from diffusers import VQModel  # noqa: E402

from vistok import VisTokenizer, VisTokenizerConfig, create_tokenizer  # noqa: E402
from vistok.diffusers_interop import (  # noqa: E402
    decode_indices_with_diffusers,
    diffusers_indices,
    to_diffusers,
)


def smooth_images(batch: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, 4, 4, generator=g)
    return (F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) * 2 - 1).clamp(-1, 1)


@torch.no_grad()
def randomize(model: nn.Module, codebook: torch.Tensor, latents: torch.Tensor, seed: int = 0) -> None:
    """GroupNorm affines away from (1, 0); codebook rows drawn from real latents so many codes get used."""
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.GroupNorm):
            module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=g))
            module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=g))
    flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    picks = flat[torch.randint(len(flat), (codebook.shape[0],), generator=g)]
    codebook.copy_(picks + 0.05 * picks.std() * torch.randn(picks.shape, generator=g))


def tiny_vq_model() -> VQModel:
    torch.manual_seed(0)
    model = VQModel(
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "AttnDownEncoderBlock2D"),
        up_block_types=("AttnUpDecoderBlock2D", "UpDecoderBlock2D"),
        layers_per_block=1,
        latent_channels=16,
        vq_embed_dim=8,
        num_vq_embeddings=64,
        sample_size=32,
        lookup_from_codebook=True,
        scaling_factor=0.5,
    ).eval()
    with torch.no_grad():
        latents = model.encode(smooth_images(4, seed=1)).latents
    randomize(model, model.quantize.embedding.weight.data, latents)
    return model


def tiny_vistok(l2_norm: bool, attention_levels: list[int]) -> VisTokenizer:
    torch.manual_seed(0)
    config = VisTokenizerConfig(
        image_size=32,
        net={
            "type": "vqgan",
            "base_channels": 32,
            "channel_multiplier": [1, 2],
            "num_res_blocks": 1,
            "latent_channels": 16,
            "attention_levels": attention_levels,
        },
        quantizer={"type": "vq", "codebook_size": 64, "codebook_dim": 8, "l2_norm": l2_norm},
    )
    tok = VisTokenizer(config).eval()
    with torch.no_grad():
        latents = tok.quant_conv(tok.encoder(smooth_images(4, seed=1)))
        if l2_norm:
            latents = F.normalize(latents, dim=1)
    randomize(tok, tok.quantizer.codebook.data, latents)
    return tok


def test_diffusers_to_vistok_same_outputs():
    vq = tiny_vq_model()
    tok = VisTokenizer.from_diffusers(vq)
    assert tok.config.net["attention_levels"] == [1]
    assert tok.config.metadata["diffusers"]["scaling_factor"] == 0.5
    x = smooth_images(3)
    with torch.no_grad():
        theirs = vq(x)
        ours = tok(x)
        their_indices = diffusers_indices(vq, x)
    assert their_indices.unique().numel() > 8
    assert torch.equal(ours.indices, their_indices)
    assert (ours.reconstruction - theirs.sample).abs().max() < 1e-4
    assert torch.allclose(ours.loss, theirs.commit_loss, rtol=1e-5, atol=1e-7)  # legacy β placement kept


@pytest.mark.parametrize("l2_norm, attention_levels", [(False, [1]), (True, [0]), (True, [])])
def test_vistok_to_diffusers_same_outputs(l2_norm, attention_levels):
    tok = tiny_vistok(l2_norm, attention_levels)
    vq = tok.to_diffusers()
    assert isinstance(vq, VQModel) and vq.config.lookup_from_codebook
    assert vq.config.scaling_factor == 1.0
    x = smooth_images(3)
    with torch.no_grad():
        ours = tok(x)
        theirs = vq(x).sample
        their_indices = diffusers_indices(vq, x)
        from_ids = decode_indices_with_diffusers(vq, ours.indices)
    assert ours.indices.unique().numel() > 8
    assert torch.equal(their_indices, ours.indices)
    assert (theirs - ours.reconstruction).abs().max() < 1e-4
    assert (from_ids - ours.reconstruction).abs().max() < 1e-4


def test_round_trip_through_folders(tmp_path):
    vq = tiny_vq_model()
    pipeline = tmp_path / "ldm-pipeline"
    vq.save_pretrained(pipeline / "vqvae")  # latent-diffusion pipelines keep their VQModel in vqvae/
    tok = VisTokenizer.from_diffusers(pipeline)
    assert tok.config.metadata["origin"]["repository"] == str(pipeline)
    tok.save_pretrained(tmp_path / "vistok")
    again = to_diffusers(VisTokenizer.from_pretrained(tmp_path / "vistok"))
    assert again.config.scaling_factor == 0.5  # restored from the metadata stored with the weights
    x = smooth_images(2)
    with torch.no_grad():
        assert (again(x).sample - vq(x).sample).abs().max() < 1e-4


def test_inexpressible_tokenizers_get_clear_errors():
    fsq = tiny_vistok(False, []).config.to_dict()
    fsq["quantizer"] = {"type": "fsq", "levels": [8, 5, 5]}
    with pytest.raises(ValueError, match="cannot express this tokenizer: its quantizer is 'fsq'"):
        VisTokenizer(VisTokenizerConfig.from_dict(fsq)).to_diffusers()
    with pytest.raises(ValueError, match="its net is 'simple_cnn'"):
        create_tokenizer("vqvae-celeba64-vq-d4").to_diffusers()
    # a spatial-norm (MoVQ) VQModel imports as the movq net (tests/test_kandinsky.py), unless its codes are not as
    # wide as the latent its spatial norms are built for
    spatial = VQModel(block_out_channels=(32,), norm_type="spatial", latent_channels=4, num_vq_embeddings=16)
    assert VisTokenizer.from_diffusers(spatial).config.net["type"] == "movq"
    wide = VQModel(block_out_channels=(32,), norm_type="spatial", latent_channels=4, vq_embed_dim=8, num_vq_embeddings=16)
    with pytest.raises(ValueError, match="norm_type='spatial' with vq_embed_dim 8 != latent_channels 4"):
        VisTokenizer.from_diffusers(wide)
    with pytest.raises(TypeError, match="diffusers.VQModel"):
        VisTokenizer.from_diffusers(nn.Linear(2, 2))


def test_missing_repo_offline_says_how_to_provide_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(
        OSError, match="could not load a diffusers VQModel from 'org/not-cached'.*subfolder='vqvae'"
    ):
        VisTokenizer.from_diffusers("org/not-cached")

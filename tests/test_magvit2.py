"""The ``magvit2`` net (Open-MAGVIT2's improved conv): full-size layouts (Open-MAGVIT2, and SimVQ's decoder without
adaptive norms), its two numerical quirks, and the tokenizer without quant_conv. Parity with the upstream reference
vectors, through the converters, is in test_convert_magvit2.py."""

from __future__ import annotations

import json
from pathlib import Path

import einops
import pytest
import torch

import vistok
from vistok import QUANTIZERS
from vistok.architecture import build_modules
from vistok.convert.lightning_ema import select_lightning_weights
from vistok.nets.magvit2 import AdaptiveGroupNorm, Upsampler, depth_to_space, upstream_key_to_vistok

from .helpers import images

DATA = Path(__file__).parent / "data"


def full_size_config() -> vistok.VisTokenizerConfig:
    """Open-MAGVIT2 ImageNet 256 "L": the net's defaults and LFQ 2^18."""
    return vistok.VisTokenizerConfig(
        image_size=256, net={"type": "magvit2"}, quantizer={"type": "lfq", "codebook_dim": 18}
    )


# ------------------------------------------------------------------------------------------ full-size layout
def test_full_size_layout_maps_every_upstream_key_with_its_shape():
    spec = json.loads((DATA / "magvit2_256_L_state_dict_spec.json").read_text())
    config = full_size_config()
    assert config.downsample_factor == 16
    with torch.device("meta"):
        modules = build_modules(config)
    assert isinstance(modules.quant_conv, torch.nn.Identity) and isinstance(
        modules.post_quant_conv, torch.nn.Identity
    )
    ours = {f"encoder.{k}": v.shape for k, v in modules.encoder.state_dict().items()}
    ours |= {f"decoder.{k}": v.shape for k, v in modules.decoder.state_dict().items()}
    assert not modules.quantizer.state_dict()  # LFQ: no parameters or persistent buffers, as upstream

    mapped = {}
    for key, shape in spec.items():
        target = upstream_key_to_vistok(key)
        if target is None:
            assert key.startswith(("loss.", "model_ema.")), key
            continue
        assert target in ours, key
        assert tuple(ours[target]) == tuple(shape), (key, ours[target], shape)
        mapped[target] = key
    assert set(mapped) == set(ours)  # every vistok tensor comes from exactly one upstream key
    assert len(mapped) == 159 + 180
    assert sum(torch.Size(s).numel() for s in ours.values()) == 115_127_829
    # Upstream's module order is vistok's (a converted state dict keeps the file order).
    assert list(ours) == [k for k in spec if upstream_key_to_vistok(k) is not None]

    # Every tokenizer tensor has its LitEma shadow, with the same shape (the shared Lightning EMA reader).
    meta = {key: torch.empty(shape, device="meta") for key, shape in spec.items()}
    ema, which = select_lightning_weights(
        meta, lambda k: upstream_key_to_vistok(k) is not None, "ema", what="an Open-MAGVIT2"
    )
    assert which == "ema" and set(ema) == set(ours)
    assert all(ema[k] is meta["model_ema." + k.replace(".", "")] for k in ema)


def test_simvq_decoder_without_adaptive_norm_maps_every_upstream_key():
    spec = json.loads((DATA / "simvq_128_B_state_dict_spec.json").read_text())
    net = {"type": "magvit2", "channel_multiplier": [1, 2, 2, 4], "num_res_blocks": 2, "latent_channels": 128}
    config = vistok.VisTokenizerConfig(
        image_size=128,
        net={**net, "adaptive_norm": False},
        quantizer={"type": "simvq", "codebook_size": 1024, "codebook_dim": 128, "projection_bias": True},
    )
    with torch.device("meta"):
        modules = build_modules(config)
    assert not hasattr(modules.decoder, "adaptive")
    ours = {f"encoder.{k}": tuple(v.shape) for k, v in modules.encoder.state_dict().items()}
    ours |= {f"decoder.{k}": tuple(v.shape) for k, v in modules.decoder.state_dict().items()}
    theirs = {k: tuple(v) for k, v in spec.items() if upstream_key_to_vistok(k) is not None}
    assert ours == theirs and len(ours) == 73 + 74
    # The default keeps Open-MAGVIT2's adaptive norms (existing configs unchanged).
    assert vistok.VisTokenizerConfig(net={"type": "magvit2"}, quantizer={"type": "lfq", "codebook_dim": 18}).net[
        "adaptive_norm"
    ]
    with pytest.raises(ValueError, match="magvit2 adaptive_norm must be true or false"):
        vistok.VisTokenizerConfig(net={"type": "magvit2", "adaptive_norm": 0})


def test_latent_width_must_match_the_codes_without_quant_conv():
    config = vistok.VisTokenizerConfig(
        image_size=256, net={"type": "magvit2"}, quantizer={"type": "lfq", "codebook_dim": 14}
    )
    with pytest.raises(
        ValueError, match="latent_channels \\(18\\) must equal the quantizer's codebook_dim \\(14\\)"
    ):
        vistok.VisTokenizer(config)


# -------------------------------------------------------------------------------------------- the two quirks
def test_depth_to_space_is_dcr_not_pixel_shuffle():
    c, h, w = 3, 2, 5
    x = torch.randn(2, 4 * c, h, w, generator=torch.Generator().manual_seed(0))
    out = depth_to_space(x, 2)
    # Upstream's definition, elementwise: out[k, 2y + i, 2x + j] = in[(2i + j)·C + k, y, x].
    expected = torch.empty(2, c, 2 * h, 2 * w)
    for k in range(c):
        for i in range(2):
            for j in range(2):
                expected[:, k, i::2, j::2] = x[:, (2 * i + j) * c + k]
    assert torch.equal(out, expected)
    assert torch.equal(out, einops.rearrange(x, "b (i j c) h w -> b c (h i) (w j)", i=2, j=2))
    # PixelShuffle (channel k·4 + 2i + j) differs, and agrees once the channels are permuted.
    assert not torch.allclose(torch.nn.functional.pixel_shuffle(x, 2), out)
    perm = [(2 * i + j) * c + k for k in range(c) for i in range(2) for j in range(2)]
    assert torch.equal(torch.nn.functional.pixel_shuffle(x[:, perm], 2), out)
    # The upsampler uses it on its conv's output.
    up = Upsampler(c)
    y = torch.randn(1, c, h, w)
    assert torch.equal(up(y), einops.rearrange(up.conv1(y), "b (i j c) h w -> b c (h i) (w j)", i=2, j=2))


def test_adaptive_group_norm_uses_unbiased_style_variance():
    g = torch.Generator().manual_seed(0)
    groups, channels, z, eps = 2, 4, 3, 1e-6
    norm = AdaptiveGroupNorm(z, channels, groups, eps)
    with torch.no_grad():
        for p in norm.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    x = torch.randn(2, channels, 3, 4, generator=g) * 3 + 1
    style = torch.randn(2, z, 2, 3, generator=g) * 2 - 0.5

    expected = torch.empty_like(x)
    n = 6  # style positions
    for b in range(2):
        mean = [sum(float(v) for v in style[b, c].flatten()) / n for c in range(z)]
        var = [sum((float(v) - mean[c]) ** 2 for v in style[b, c].flatten()) / (n - 1) for c in range(z)]
        stat = torch.tensor([(v + eps) ** 0.5 for v in var])
        scale = norm.gamma.weight @ stat + norm.gamma.bias
        shift = norm.beta.weight @ torch.tensor(mean) + norm.beta.bias
        for grp in range(groups):
            chans = slice(grp * channels // groups, (grp + 1) * channels // groups)
            block = x[b, chans]
            gm = block.mean()
            gv = ((block - gm) ** 2).mean()  # GroupNorm itself normalises with the biased variance
            normed = (block - gm) / torch.sqrt(gv + eps)
            expected[b, chans] = normed * scale[chans, None, None] + shift[chans, None, None]
    with torch.no_grad():
        out = norm(x, style)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)

    # With the biased style variance the result differs measurably.
    biased = norm.gamma(torch.sqrt(style.flatten(2).var(dim=-1, correction=0) + eps))
    unbiased = norm.gamma(torch.sqrt(style.flatten(2).var(dim=-1, correction=1) + eps))
    assert (biased - unbiased).abs().max() > 1e-2


# ------------------------------------------------------------------------ the tokenizer without quant_conv
@pytest.mark.parametrize("quantizer", QUANTIZERS.names())
def test_without_quant_conv_every_quantizer(quantizer, tmp_path):
    q_spec = {"type": quantizer, **QUANTIZERS.get(quantizer).tiny}
    dim = QUANTIZERS.get(quantizer)(**QUANTIZERS.get(quantizer).tiny).codebook_dim
    net = {"type": "magvit2", "base_channels": 8, "channel_multiplier": [1, 2], "num_res_blocks": 1}
    config = vistok.VisTokenizerConfig(
        image_size=8, net={**net, "latent_channels": dim, "norm_groups": 4}, quantizer=q_spec
    )
    tok = vistok.VisTokenizer(config)
    assert not any(k.startswith(("quant_conv", "post_quant_conv")) for k in tok.state_dict())
    x = images(tok)
    out = tok(x)
    assert out.reconstruction.shape == x.shape
    assert tok.token_layout.flatten(out.indices).shape == (2, config.tokens_per_image())
    (torch.nn.functional.mse_loss(out.reconstruction, x) + out.loss).backward()
    assert tok.encoder.conv_in.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in tok.decoder.adaptive.parameters())
    tok.eval()
    with torch.no_grad():
        enc = tok.encode(x)
        assert torch.equal(tok.decode(enc.indices), tok.decode_quantized(enc.quantized))
        reference = tok(x).reconstruction
    tok.save_pretrained(tmp_path)
    loaded = vistok.VisTokenizer.from_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(x).reconstruction, reference)

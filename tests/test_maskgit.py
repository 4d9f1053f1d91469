"""The ``maskgit`` net (MaskGIT VQGAN as TiTok's PyTorch port builds it): TF "same" padding and the output-side
shortcut checked against explicit formulas, the [0, 1] pixel-range option, and its option errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vistok import VisTokenizer, VisTokenizerConfig
from vistok.nets.maskgit import Maskgit, MaskgitResBlock, SameConv2d, tf_same_padding


# ------------------------------------------------------------------------------------------ TF "same" padding
@pytest.mark.parametrize("size", [1, 5, 8, 9, 16])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_tf_same_padding_is_the_least_padding_giving_ceil_size_over_stride(size, kernel, stride):
    def out_len(total: int) -> int:
        return (size + total - kernel) // stride + 1

    before, after = tf_same_padding(size, kernel, stride)
    total = before + after
    assert out_len(total) == math.ceil(size / stride)
    if total > 0:  # and no smaller padding does it
        assert out_len(total - 1) < math.ceil(size / stride)
    assert after - before in (0, 1)  # the odd pixel goes after, as TensorFlow pads


@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
def test_same_conv_equals_a_conv_on_the_tf_padded_input(kernel):
    torch.manual_seed(0)
    conv = SameConv2d(3, 5, kernel)
    x = torch.randn(2, 3, 7, 6)
    # upstream Conv2dSame's formula, written out: pad = max((ceil(i/s) − 1)·s + (k − 1)·d + 1 − i, 0), s = d = 1
    pad_h = max((math.ceil(7 / 1) - 1) * 1 + (kernel - 1) + 1 - 7, 0)
    pad_w = max((math.ceil(6 / 1) - 1) * 1 + (kernel - 1) + 1 - 6, 0)
    padded = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
    expected = F.conv2d(padded, conv.weight, conv.bias)
    got = conv(x)
    assert got.shape == (2, 5, 7, 6)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------ residual block
def _block_branch(block: MaskgitResBlock, x: torch.Tensor) -> torch.Tensor:
    """norm · SiLU · conv3×3 · norm · SiLU · conv3×3 written with functional ops (both convs bias-free)."""
    n1, n2 = block.norm1, block.norm2
    h = F.silu(F.group_norm(x, n1.num_groups, n1.weight, n1.bias, n1.eps))
    h = F.conv2d(h, block.conv1.weight, None, padding=1)
    h = F.silu(F.group_norm(h, n2.num_groups, n2.weight, n2.bias, n2.eps))
    return F.conv2d(h, block.conv2.weight, None, padding=1)


def _randomise(module: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.ndim == 1 else 0.0))


def test_width_changing_block_adds_the_shortcut_of_its_own_output():
    block = MaskgitResBlock(8, 12, dropout=0.0, groups=4, eps=1e-6).eval()
    _randomise(block)
    assert block.conv1.bias is None and block.conv2.bias is None and block.nin_shortcut.bias is None
    assert block.nin_shortcut.weight.shape == (12, 12, 1, 1)  # out → out, not in → out
    x = torch.randn(2, 8, 6, 6)
    h = _block_branch(block, x)
    expected = h + torch.einsum("oc,bchw->bohw", block.nin_shortcut.weight[:, :, 0, 0], h)
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-5)
    # The input reaches the output only through the branch: a textbook shortcut would change the result.
    assert (block(x) - (h + x.repeat(1, 2, 1, 1)[:, :12])).abs().max() > 1e-2


def test_width_keeping_block_is_input_plus_branch():
    block = MaskgitResBlock(8, 8, dropout=0.0, groups=4, eps=1e-6).eval()
    _randomise(block)
    assert not hasattr(block, "nin_shortcut")
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), x + _block_branch(block, x), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------ the net
def _net(**options) -> dict:
    return {"type": "maskgit", **Maskgit.tiny, **options}


def test_structure_no_attention_avg_pool_bias_free_conv_in_and_no_quant_conv():
    config = VisTokenizerConfig(
        image_size=32,
        net={"type": "maskgit", "base_channels": 8, "channel_multiplier": [1, 2, 2], "num_res_blocks": 2,
             "latent_channels": 6, "norm_groups": 4},
        quantizer={"type": "vq", "codebook_size": 16, "codebook_dim": 6},
    )
    tok = VisTokenizer(config).eval()
    names = [name for name, _ in tok.named_modules()]
    assert not any("attn" in name or ".q" in name for name in names)
    assert tok.encoder.conv_in.bias is None and tok.encoder.conv_out.kernel_size == (1, 1)
    assert isinstance(tok.quant_conv, torch.nn.Identity) and isinstance(tok.post_quant_conv, torch.nn.Identity)
    assert tok.downsample_factor == 4 and len(tok.encoder.mid) == 2 and len(tok.decoder.up[2].block) == 2
    assert not hasattr(tok.decoder.up[0], "upsample_conv") and hasattr(tok.decoder.up[1], "upsample_conv")
    with torch.no_grad():
        assert tok.encode(torch.zeros(1, 3, 32, 32)).indices.shape == (1, 8, 8)


def test_unit_pixel_range_maps_signed_pixels_to_unit_and_back():
    kwargs = {"image_size": 8, "quantizer": {"type": "vq", "codebook_size": 16, "codebook_dim": 8}}
    signed = VisTokenizer(VisTokenizerConfig(net=_net(), **kwargs)).eval()
    unit = VisTokenizer(VisTokenizerConfig(net=_net(pixel_range="unit"), **kwargs)).eval()
    unit.load_state_dict(signed.state_dict())
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    z = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(unit.encoder(x), signed.encoder((x + 1) / 2), rtol=0, atol=1e-6)
        torch.testing.assert_close(unit.decoder(z), 2 * signed.decoder(z) - 1, rtol=0, atol=1e-6)
    assert signed.config.net["pixel_range"] == "signed"  # vistok's convention is the default


def test_latent_width_must_equal_the_code_width_without_quant_conv():
    with pytest.raises(ValueError, match=r"maskgit net has no quant_conv.*latent_channels \(8\).*codebook_dim \(4\)"):
        VisTokenizer(VisTokenizerConfig(image_size=8, net=_net(quant_conv=False),
                                        quantizer={"type": "vq", "codebook_size": 16, "codebook_dim": 4}))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pixel_range": "0-1"}, r"maskgit pixel_range must be one of 'signed', 'unit'"),
        ({"quant_conv": "yes"}, r"maskgit quant_conv must be true or false"),
        ({"dropout": 1.5}, r"maskgit dropout must be a number in \[0, 1\)"),
        ({"norm_eps": 0}, r"maskgit norm_eps must be a positive number"),
        ({"channel_multiplier": []}, r"maskgit channel_multiplier must be a non-empty list"),
        ({"base_channels": 6}, r"maskgit: every level width .* divisible by norm_groups \(4\)"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        VisTokenizerConfig(image_size=8, net=_net(**options))

"""The ``maskgit`` net (MaskGIT VQGAN as TiTok's PyTorch port builds it): TF "same" padding and the output-side
shortcut checked against explicit formulas, the [0, 1] pixel-range option and its option errors; the converter:
parity with upstream's reference vector, the full-size layout, and clear errors for other files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.cli import main as cli
from vistok.convert import CheckpointError
from vistok.families import get_family
from vistok.families.maskgit import (
    check_output_shortcuts,
    convert_maskgit,
    infer_maskgit_net,
    is_release,
    maskgit_to_vistok,
    refuse_other_layouts,
)
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
        ({"downsample": "stride"}, r"maskgit downsample must be one of 'avg_pool', 'conv'"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        VisTokenizerConfig(image_size=8, net=_net(**options))


# ===================================================================================== the converter
DATA = Path(__file__).parent / "data"
TINY = DATA / "maskgit_tiny.bin"


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "maskgit_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def converted():
    return convert_maskgit(TINY)


def check_parity(tok: VisTokenizer, expected: dict) -> None:
    """Upstream takes [0, 1] images and returns (B, h·w) indices and a [0, 1] reconstruction that its decode clamps;
    vistok takes 2x − 1 and returns (B, h, w) indices and an unclamped [−1, 1] reconstruction."""
    x = expected["input"]
    with torch.no_grad():
        enc = tok.encode(2 * x - 1)
        reconstruction = tok.decode(enc.indices)
        from_upstream_indices = tok.decode(expected["indices"].reshape(enc.indices.shape))
    assert enc.indices.shape == (3, 8, 8)
    assert torch.equal(enc.indices.reshape(3, 64), expected["indices"])  # row-major over the 8x8 grid
    unit = (reconstruction + 1) / 2
    assert (unit - expected["reconstruction_unclamped"]).abs().max() < 1e-4
    assert (unit.clamp(0, 1) - expected["reconstruction"]).abs().max() < 1e-4
    assert torch.equal(from_upstream_indices, reconstruction)
    assert (unit < 0).any() or (unit > 1).any()  # vistok does not clamp: some values lie outside [0, 1]


def test_converter_reproduces_upstream(converted, expected):
    check_parity(converted, expected)
    assert not converted.training
    net, quantizer = converted.config.net, converted.config.quantizer
    assert net == {
        "type": "maskgit", "base_channels": 32, "channel_multiplier": [1, 1, 2], "num_res_blocks": 1,
        "latent_channels": 16, "dropout": 0.0, "norm_groups": 32, "norm_eps": 1e-6, "quant_conv": False,
        "pixel_range": "unit", "downsample": "avg_pool",
    }
    assert (quantizer["type"], quantizer["codebook_size"], quantizer["codebook_dim"]) == ("vq", 128, 16)
    assert quantizer["l2_norm"] is False and quantizer["commitment_weight"] == 0.25
    assert converted.config.image_size == 256


def test_upstream_weights_are_loaded_unchanged(converted):
    upstream = torch.load(TINY, weights_only=True)
    ours = converted.state_dict()
    assert set(ours) == {("quantizer.codebook" if k == "quantize.embedding.weight" else k) for k in upstream}
    for key, value in upstream.items():
        assert torch.equal(ours["quantizer.codebook" if key == "quantize.embedding.weight" else key], value), key


def test_signed_pixel_range_would_not_reproduce_upstream(expected):
    """The [0, 1] mapping matters: the same weights fed vistok's [-1, 1] pixels directly give other codes."""
    tok = convert_maskgit(TINY)
    signed = VisTokenizer(VisTokenizerConfig(**{**tok.config.to_dict(), "net": {**tok.config.net, "pixel_range": "signed"}}))
    signed.load_state_dict(tok.state_dict())
    with torch.no_grad():
        indices = signed.eval().encode(2 * expected["input"] - 1).indices
    assert not torch.equal(indices.reshape(3, 64), expected["indices"])


def test_metadata_names_origin_licence_paper_and_conventions(converted):
    meta = converted.config.metadata
    assert meta["origin"]["name"] == "MaskGIT-VQGAN" and meta["origin"]["url"] == "https://github.com/bytedance/1d-tokenizer"
    assert meta["origin"]["checkpoint_file"] == "maskgit_tiny.bin" and meta["origin"]["weights"] == "state_dict"
    assert meta["license"] == "apache-2.0" and meta["paper"]["url"] == "https://arxiv.org/abs/2202.04200"
    assert meta["converter"]["name"] == "maskgit" and get_family("maskgit").convert is convert_maskgit
    notes = " ".join(meta["converter"]["notes"])
    assert "pixel_range='unit'" in notes and "unclamped" in notes and "row-major" in notes
    assert "reported_metrics" not in meta  # the tiny file is not the release


def test_full_size_layout_is_inferred_and_matches_upstream_on_meta():
    spec = json.loads((DATA / "maskgit_vqgan_f16_256_state_dict_spec.json").read_text())
    assert len(spec) == 168 and sum(math.prod(shape) for shape in spec.values()) == 54_515_587
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in spec.items()}
    refuse_other_layouts(state_dict)
    check_output_shortcuts(state_dict)
    inferred = infer_maskgit_net(state_dict)
    assert inferred["net"]["channel_multiplier"] == [1, 1, 2, 2, 4] and inferred["net"]["num_res_blocks"] == 2
    assert (inferred["net"]["base_channels"], inferred["net"]["latent_channels"]) == (128, 256)
    assert (inferred["codebook_size"], inferred["codebook_dim"], inferred["num_channels"]) == (1024, 256, 3)
    assert is_release("maskgit-vqgan-imagenet-f16-256.bin", inferred) and not is_release("other.bin", inferred)
    config = VisTokenizerConfig(
        image_size=256,
        net=inferred["net"],
        quantizer={"type": "vq", "codebook_size": 1024, "codebook_dim": 256},
    )
    with torch.device("meta"):
        tok = VisTokenizer(config)
    ours = {key: tuple(value.shape) for key, value in tok.state_dict().items()}
    theirs = {key: tuple(value.shape) for key, value in maskgit_to_vistok(state_dict).items()}
    assert ours == theirs
    assert tok.num_parameters() == 54_515_587 and tok.downsample_factor == 16
    preset = vistok.PRESETS.get("maskgit-vqgan-imagenet256-f16").config
    assert {k: preset["net"][k] for k in ("base_channels", "channel_multiplier", "num_res_blocks", "latent_channels",
                                         "pixel_range")} == {k: inferred["net"][k] for k in ("base_channels",
                                         "channel_multiplier", "num_res_blocks", "latent_channels", "pixel_range")}


def test_cli_writes_a_loadable_folder(tmp_path, expected):
    out = tmp_path / "maskgit"
    assert cli(["convert", "maskgit", str(TINY), str(out), "--image-size", "32"]) == 0
    loaded = VisTokenizer.from_pretrained(out)
    assert loaded.config.image_size == 32 and "MaskGIT" in (out / "README.md").read_text()
    check_parity(loaded, expected)


# ----------------------------------------------------------------------------------------------- bad files
def _save(tmp_path: Path, state_dict: dict, name: str = "file.bin") -> Path:
    path = tmp_path / name
    torch.save(state_dict, path)
    return path


@pytest.fixture(scope="module")
def upstream():
    return torch.load(TINY, weights_only=True)


def test_a_lightning_checkpoint_is_refused_naming_it():
    with pytest.raises(CheckpointError, match=r"not a MaskGIT-VQGAN file: expected a plain state dict.*nested state_dict"):
        convert_maskgit(DATA / "ibq_tiny.ckpt")


def test_other_state_dicts_are_refused_naming_what_they_are(tmp_path, upstream):
    ibq = torch.load(DATA / "ibq_tiny.ckpt", weights_only=True)["state_dict"]
    taming_like = {k: v for k, v in ibq.items() if k.startswith(("encoder.", "decoder.", "quantize."))}
    with pytest.raises(CheckpointError, match=r"attention / Taming-style mid blocks"):
        convert_maskgit(_save(tmp_path, taming_like))
    magvit2 = torch.load(DATA / "magvit2_tiny.ckpt", weights_only=True)["state_dict"]
    magvit2 = {k: v for k, v in magvit2.items() if k.startswith(("encoder.", "decoder."))}
    with pytest.raises(CheckpointError, match=r"no codebook \(quantize.embedding.weight\).*open-magvit2"):
        convert_maskgit(_save(tmp_path, magvit2))
    llamagen = torch.load(DATA / "llamagen_tiny.pt", weights_only=False)["model"]
    with pytest.raises(CheckpointError, match=r"not a MaskGIT-VQGAN state dict .*LlamaGen"):
        convert_maskgit(_save(tmp_path, llamagen))
    with pytest.raises(CheckpointError, match=r"2 other tensors \(loss.logvar, quant_step\)"):
        convert_maskgit(_save(tmp_path, {**upstream, "loss.logvar": torch.zeros(()), "quant_step": torch.zeros(())}))


def test_a_textbook_input_shortcut_is_refused(tmp_path, upstream):
    textbook = dict(upstream)
    textbook["encoder.down.2.block.0.nin_shortcut.weight"] = torch.zeros(64, 32, 1, 1)  # in → out
    with pytest.raises(CheckpointError, match=r"nin_shortcut.weight has shape \(64, 32, 1, 1\).*\(64, 64, 1, 1\)"):
        convert_maskgit(_save(tmp_path, textbook))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.pop("encoder.conv_out.weight"), r"missing tensor 'encoder.conv_out.weight'"),
        (lambda sd: sd.pop("decoder.up.1.upsample_conv.weight"), r"decoder level 1 lacks an upsample_conv"),
        (lambda sd: sd.update({"quantize.embedding.weight": torch.zeros(128, 8)}), r"codebook .* shape \(128, 8\)"),
        (lambda sd: sd.update({"decoder.conv_out.weight": torch.zeros(1, 32, 3, 3)}), r"outputs 1 channels"),
    ],
)
def test_inconsistent_shapes_are_named(tmp_path, upstream, edit, message):
    broken = dict(upstream)
    edit(broken)
    with pytest.raises(CheckpointError, match=message):
        convert_maskgit(_save(tmp_path, broken))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"weights='ema'.*plain state dict with one set of weights"):
        convert_maskgit(TINY, weights="ema")
    with pytest.raises(ValueError, match=r"image_size 30 must be a multiple of the downsample factor 4"):
        convert_maskgit(TINY, image_size=30)

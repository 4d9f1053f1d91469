"""MaskBit (markweberdev/maskbit): the LFQ bit tokenizers and VQGAN+.

The ``maskgit`` net's ``downsample="conv"`` option (TF "same" stride-2 convs) against explicit formulas; the
converter's parity with upstream's reference vectors (``tests/data/maskbit/``, made by running upstream with random
weights: [0, 1] pixels, LSB-first bit indices, Euclidean VQ); the full-size state-dict specs giving each preset's
architecture on the meta device; the zoo entries loaded offline from a local Hub cache under the real repo ids and
file names; and clear errors for other files."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.cli import main as cli
from vistok.convert import CheckpointError
from vistok.families import FAMILIES, entry_preprocessing, get_family
from vistok.families.maskbit import (
    LFQ_BITS,
    convert_maskbit,
    infer_maskbit_net,
    maskbit_to_vistok,
    refuse_other_layouts,
)
from vistok.nets.maskgit import Maskgit, SameConv2d
from vistok.zoo import ZooArchitectureWarning, get_entry

from .hub_cache import add_to_hub_cache

DATA = Path(__file__).parent / "data" / "maskbit"
LFQ_TINY = DATA / "maskbit_tokenizer_12bit_tiny" / "maskbit_tokenizer_12bit.bin"
VQ_TINY = DATA / "vqgan_plus_12bit_tiny" / "vqgan_plus_12bit.bin"


# ------------------------------------------------------------------------------------------ the net option
@pytest.mark.parametrize(("size", "pads"), [(8, (0, 1)), (16, (0, 1)), (7, (1, 1)), (9, (1, 1))])
def test_stride_two_same_conv_pads_like_tensorflow(size, pads):
    torch.manual_seed(0)
    conv = SameConv2d(3, 4, 3, stride=2)
    x = torch.randn(2, 3, size, size + 1)
    # upstream Conv2dSame: pad = max((ceil(i/s) − 1)·s + (k − 1) + 1 − i, 0), the odd pixel after
    pad_w = max((math.ceil((size + 1) / 2) - 1) * 2 + 3 - (size + 1), 0)
    expected = F.conv2d(F.pad(x, [pad_w // 2, pad_w - pad_w // 2, *pads]), conv.weight, conv.bias, stride=2)
    got = conv(x)
    assert got.shape[-2:] == (math.ceil(size / 2), math.ceil((size + 1) / 2))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def _config(**net) -> VisTokenizerConfig:
    return VisTokenizerConfig(
        image_size=16,
        net={"type": "maskgit", **Maskgit.tiny, "channel_multiplier": [1, 2, 2], **net},
        quantizer={"type": "lfq", "codebook_dim": 5},
    )


def test_conv_downsampling_puts_a_biased_stride_two_conv_on_every_level_but_the_last():
    tok = VisTokenizer(_config(downsample="conv")).eval()
    down = tok.encoder.down
    assert [hasattr(level, "down_conv") for level in down] == [True, True, False]
    assert down[0].down_conv.stride == (2, 2) and down[0].down_conv.bias is not None
    assert down[1].down_conv.weight.shape == (16, 16, 3, 3)
    with torch.no_grad():
        assert tok.encode(torch.zeros(1, 3, 16, 16)).indices.shape == (1, 4, 4)
        assert tok.encode(torch.zeros(1, 3, 12, 20)).indices.shape == (1, 3, 5)  # odd sizes pad (1, 1)


def test_the_default_is_still_maskgits_average_pool():
    """Old maskgit configs (no ``downsample`` key) build and compute as before: no down_conv, 2x2 average pool."""
    tok = VisTokenizer(_config()).eval()
    assert tok.config.net["downsample"] == "avg_pool"
    assert not any("down_conv" in key for key in tok.state_dict())
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    enc = tok.encoder
    with torch.no_grad():
        h = enc.conv_in((x + 1) / 2 if enc.unit_range else x)
        for i, level in enumerate(enc.down):
            for block in level.block:
                h = block(h)
            if i < 2:
                h = F.avg_pool2d(h, 2)
        for block in enc.mid:
            h = block(h)
        torch.testing.assert_close(enc(x), enc.conv_out(F.silu(enc.norm_out(h))), rtol=0, atol=0)


# ===================================================================================== the converter
@pytest.fixture(scope="module")
def lfq_expected():
    return torch.load(DATA / "maskbit_tokenizer_12bit_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def vq_expected():
    return torch.load(DATA / "vqgan_plus_12bit_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def lfq_tok():
    return convert_maskbit(LFQ_TINY)


@pytest.fixture(scope="module")
def vq_tok():
    return convert_maskbit(VQ_TINY)


def check_parity(tok: VisTokenizer, expected: dict) -> None:
    """Upstream takes [0, 1] images and returns a raw [0, 1] reconstruction; vistok takes 2x − 1 and returns
    [−1, 1]. Indices exact, reconstructions within 1e-4 (decode_tokens and the forward pass)."""
    x = 2 * expected["input"] - 1
    with torch.no_grad():
        enc = tok.encode(x)
        from_indices = (tok.decode(enc.indices) + 1) / 2
        forward = (tok(x).reconstruction + 1) / 2
        from_upstream_tokens = (tok.decode(expected["indices_flat"].reshape(3, 8, 8)) + 1) / 2
    assert enc.indices.shape == (3, 8, 8) and enc.indices.dtype == torch.int64
    assert torch.equal(enc.indices, expected["indices"])
    assert torch.equal(enc.indices.reshape(3, 64), expected["indices_flat"])  # row-major, as decode_tokens takes
    assert (from_indices - expected["reconstruction"]).abs().max() < 1e-4
    assert (forward - expected["reconstruction_forward"]).abs().max() < 1e-4
    assert torch.equal(from_upstream_tokens, from_indices)
    assert (enc.quantized - expected["quantized"]).abs().max() < 1e-5


def test_lfq_tokenizer_reproduces_upstream(lfq_tok, lfq_expected):
    check_parity(lfq_tok, lfq_expected)
    assert not lfq_tok.training
    with torch.no_grad():
        indices = lfq_tok.encode(2 * lfq_expected["input"] - 1).indices
        reconstruction = (lfq_tok.decode(indices) + 1) / 2
    # LSB first: the MSB-first reading of the same bits is another numbering.
    assert not torch.equal(indices, lfq_expected["indices_if_msb_first"])
    # MaskBit's generator groups: low K/2 bits (channels 0..5), then the high ones.
    flat = indices.reshape(3, 64)
    assert torch.equal(torch.stack([flat & 63, flat >> 6], dim=-1), lfq_expected["indices_factorized"])
    # The demo's uint8 images ((clamp · 255).byte() truncates) follow, up to one level where 1e-4 crosses a step.
    demo = (reconstruction.clamp(0, 1) * 255).byte()
    assert (demo.int() - lfq_expected["reconstruction_demo_uint8"].int()).abs().max() <= 1


def test_vqgan_plus_reproduces_upstream(vq_tok, vq_expected):
    check_parity(vq_tok, vq_expected)
    with torch.no_grad():
        indices = vq_tok.encode(2 * vq_expected["input"] - 1).indices
    assert not torch.equal(indices, vq_expected["indices_if_l2_normalised"])  # Euclidean, not cosine


def test_converted_configs(lfq_tok, vq_tok):
    net = {
        "type": "maskgit", "base_channels": 32, "channel_multiplier": [1, 1, 2], "num_res_blocks": 1,
        "dropout": 0.0, "norm_groups": 32, "norm_eps": 1e-6, "quant_conv": False, "pixel_range": "unit",
        "downsample": "conv",
    }
    assert lfq_tok.config.net == {**net, "latent_channels": 12}
    assert lfq_tok.config.quantizer == {
        "type": "lfq", "codebook_dim": 12, "commitment_weight": 0.25, "entropy_weight": 0.02,
        "diversity_weight": 1.0, "entropy_temperature": 0.01, "codebook_scale": 1.0, "bit_order": "lsb_first",
    }
    assert vq_tok.config.net == {**net, "latent_channels": 16}
    q = vq_tok.config.quantizer
    assert (q["type"], q["codebook_size"], q["codebook_dim"], q["l2_norm"]) == ("vq", 4096, 16, False)
    assert (q["commitment_weight"], q["codebook_weight"], q["entropy_weight"]) == (0.25, 1.0, 0.0)
    # The YAML beside the file gives the resolution (dataset.preprocessing.resolution: 32).
    assert lfq_tok.config.image_size == vq_tok.config.image_size == 32
    assert lfq_tok.codebook_size == 4096 and lfq_tok.downsample_factor == 4


@pytest.mark.parametrize("path", [LFQ_TINY, VQ_TINY], ids=["lfq", "vqgan_plus"])
def test_upstream_weights_are_loaded_unchanged(path, lfq_tok, vq_tok):
    tok = lfq_tok if path == LFQ_TINY else vq_tok
    upstream = torch.load(path, weights_only=True)
    mapped = maskbit_to_vistok(upstream, levels=3)
    ours = tok.state_dict()
    assert set(ours) == set(mapped)
    for key, value in mapped.items():
        assert torch.equal(ours[key], value), key
    # the decoder's up.0 is upstream's deepest stage: vistok's level 2
    assert torch.equal(ours["decoder.up.2.upsample_conv.weight"], upstream["decoder.up.0.upsample_conv.weight"])
    assert "decoder.up.0.upsample_conv.weight" not in ours


def test_metadata_names_origin_licence_paper_and_conventions(lfq_tok):
    meta = lfq_tok.config.metadata
    assert meta["origin"]["name"] == "MaskBit" and meta["origin"]["url"] == "https://github.com/markweberdev/maskbit"
    assert meta["origin"]["checkpoint_file"] == "maskbit_tokenizer_12bit.bin"
    assert meta["origin"]["config_file"] == "maskbit_tokenizer_12bit.yaml"
    assert meta["license"] == "apache-2.0" and meta["paper"]["url"] == "https://arxiv.org/abs/2409.16211"
    assert meta["converter"]["name"] == "maskbit" and get_family("maskbit").convert is convert_maskbit
    notes = " ".join(meta["converter"]["notes"])
    assert "lsb_first" in notes and "pixel_range='unit'" in notes and "row-major" in notes
    # the file is named like a release but its architecture is not the release's: no reported numbers
    assert "reported_metrics" not in meta


def test_without_the_yaml_the_released_defaults_are_assumed(tmp_path, lfq_expected):
    path = tmp_path / "maskbit_tokenizer_12bit.bin"
    shutil.copy(LFQ_TINY, path)
    tok = convert_maskbit(path)
    assert tok.config.image_size == 256 and tok.config.quantizer["entropy_weight"] == 0.02
    notes = " ".join(tok.config.metadata["converter"]["notes"])
    assert "no YAML config" in notes and "image_size 256 assumed" in notes
    check_parity(tok, lfq_expected)


def test_yaml_values_the_tensors_contradict_are_noted_and_bad_yamls_refused(tmp_path):
    text = (LFQ_TINY.with_suffix(".yaml")).read_text()
    path = tmp_path / "maskbit_tokenizer_12bit.bin"
    shutil.copy(LFQ_TINY, path)
    path.with_suffix(".yaml").write_text(text.replace("hidden_channels: 32", "hidden_channels: 128"))
    notes = convert_maskbit(path).config.metadata["converter"]["notes"]
    assert any("hidden_channels=128 but the tensors give 32; the tensors win" in n for n in notes)
    path.with_suffix(".yaml").write_text(text.replace("num_res_blocks: 1", "num_res_blocks: 1\n    num_res_blocks_decoder: 3"))
    with pytest.raises(CheckpointError, match=r"num_res_blocks_decoder=3"):
        convert_maskbit(path)
    other = tmp_path / "other.yaml"
    other.write_text("model:\n  params: {}\n")
    with pytest.raises(CheckpointError, match=r"not a MaskBit tokenizer config: expected model.vq_model"):
        convert_maskbit(path, config_file=other)
    path.with_suffix(".yaml").write_text("model:\n  params: {}\n")  # found beside, not asked for: ignored, noted
    notes = convert_maskbit(path).config.metadata["converter"]["notes"]
    assert any(n.startswith("ignored maskbit_tokenizer_12bit.yaml") for n in notes)


def test_cli_writes_a_loadable_folder(tmp_path, vq_expected):
    out = tmp_path / "vqgan_plus"
    assert cli(["convert", "maskbit", str(VQ_TINY), str(out), "--config-file", str(VQ_TINY.with_suffix(".yaml"))]) == 0
    loaded = VisTokenizer.from_pretrained(out)
    assert loaded.config.image_size == 32 and "MaskBit" in (out / "README.md").read_text()
    check_parity(loaded, vq_expected)


# ------------------------------------------------------------------------------------------ full-size layouts
SPECS = {
    **{f"maskbit_tokenizer_{bits}bit": (f"maskbit-imagenet256-{bits}bit", 177) for bits in LFQ_BITS},
    "vqgan_plus_12bit": ("vqgan-plus-imagenet256-12bit", 176),
    "vqgan_plus_10bit": ("vqgan-plus-imagenet256-10bit", 176),
}
# The reference README's table: parameters (the LFQ buffers excluded).
PARAMETERS = {
    "maskbit_tokenizer_10bit": 54_469_005, "maskbit_tokenizer_12bit": 54_479_247,
    "maskbit_tokenizer_14bit": 54_489_489, "maskbit_tokenizer_16bit": 54_499_731,
    "maskbit_tokenizer_18bit": 54_509_973, "vqgan_plus_12bit": 55_007_683, "vqgan_plus_10bit": 55_990_915,
}


@pytest.mark.parametrize("name", list(SPECS))
def test_full_size_spec_gives_the_preset_architecture_on_meta(name):
    preset_name, keys = SPECS[name]
    spec = json.loads((DATA / f"{name}_state_dict_spec.json").read_text())
    assert len(spec) == keys
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in spec.items()}
    refuse_other_layouts(state_dict)
    inferred = infer_maskbit_net(state_dict)
    preset = vistok.PRESETS.get(preset_name).config
    assert {k: inferred["net"][k] for k in preset["net"] if k != "type"} == {
        k: v for k, v in preset["net"].items() if k != "type"
    }
    assert all(preset["quantizer"][k] == v for k, v in inferred["quantizer"].items())
    with torch.device("meta"):
        tok = VisTokenizer(VisTokenizerConfig(**preset))
    ours = {key: tuple(value.shape) for key, value in tok.state_dict().items()}
    theirs = {key: tuple(value.shape) for key, value in maskbit_to_vistok(state_dict, levels=5).items()}
    assert ours == theirs  # every key mapped, none left over
    assert tok.num_parameters() == PARAMETERS[name] and tok.downsample_factor == 16


# ------------------------------------------------------------------------------------------ bad files
def _save(tmp_path: Path, state_dict: dict, name: str = "file.bin") -> Path:
    path = tmp_path / name
    torch.save(state_dict, path)
    return path


@pytest.fixture(scope="module")
def upstream():
    return torch.load(LFQ_TINY, weights_only=True)


def test_other_files_are_refused_naming_what_they_are(tmp_path):
    with pytest.raises(CheckpointError, match=r"down.\*.block.\* \(TiTok's port.*vistok convert maskgit"):
        convert_maskbit(Path(__file__).parent / "data" / "maskgit_tiny.bin")
    with pytest.raises(CheckpointError, match=r"not a MaskBit file: expected a plain state dict"):
        convert_maskbit(Path(__file__).parent / "data" / "ibq_tiny.ckpt")


def test_the_legacy_decoder_layout_is_recognised_and_refused(tmp_path, upstream):
    legacy = {}
    for key, value in upstream.items():  # up.k (k = 0 deepest) → up.(2 − k): level numbering
        if key.startswith("decoder.up."):
            k = int(key.split(".")[2])
            key = f"decoder.up.{2 - k}." + key.split(".", 3)[3]
        legacy[key] = value
    with pytest.raises(CheckpointError, match=r"legacy decoder layout \(legacy=True"):
        convert_maskbit(_save(tmp_path, legacy))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.update({"quantize.bits_to_indices": torch.tensor([2**i for i in reversed(range(12))],
                                                                        dtype=torch.int32)}),
         r"channel 0 is the least significant bit"),
        (lambda sd: sd.update({"quantize.codebook": -sd["quantize.codebook"]}), r"not MaskBit's code table"),
        (lambda sd: sd.update({"quantize.embedding.weight": torch.zeros(16, 12)}), r"both LFQ buffers and a VQ"),
        (lambda sd: sd.update({"encoder.down.2.res_blocks.0.nin_shortcut.weight": torch.zeros(64, 32, 1, 1)}),
         r"nin_shortcut.weight has shape \(64, 32, 1, 1\)"),
        (lambda sd: [sd.pop(f"encoder.down.1.down_conv.{p}") for p in ("weight", "bias")], r"down_conv at levels \[0\]"),
        (lambda sd: sd.pop("encoder.down.1.down_conv.bias"), r"down_conv has weight .*a 3x3 conv with bias"),
        (lambda sd: [sd.pop(f"decoder.up.1.upsample_conv.{p}") for p in ("weight", "bias")],
         r"upsample_conv at stages \[0\]"),
        (lambda sd: sd.update({"loss.logvar": torch.zeros(())}), r"1 other tensors \(loss.logvar\)"),
    ],
)
def test_inconsistent_files_are_named(tmp_path, upstream, edit, message):
    broken = dict(upstream)
    edit(broken)
    with pytest.raises(CheckpointError, match=message):
        convert_maskbit(_save(tmp_path, broken))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"weights='ema'.*plain state dict with one set of weights"):
        convert_maskbit(LFQ_TINY, weights="ema")
    with pytest.raises(ValueError, match=r"image_size 30 must be a multiple of the downsample factor 4"):
        convert_maskbit(LFQ_TINY, image_size=30)


# ===================================================================================== the zoo
# markweberdev/maskbit README: Model Zoo links and the Detailed Results table (rFID, PSNR, SSIM, codebook usage).
REPORTED = {
    "maskbit-imagenet256-10bit": (1.76, 20.8, 0.53, 1.0),
    "maskbit-imagenet256-12bit": (1.52, 21.2, 0.55, 1.0),
    "maskbit-imagenet256-14bit": (1.37, 21.5, 0.56, 1.0),
    "maskbit-imagenet256-16bit": (1.29, 21.8, 0.58, 1.0),
    "maskbit-imagenet256-18bit": (1.16, 22.0, 0.59, 0.5),
    "vqgan-plus-imagenet256-12bit": (1.39, 21.0, 0.55, 1.0),
    "vqgan-plus-imagenet256-10bit": (1.67, 20.9, 0.53, 1.0),
}


def test_entries_name_the_published_files_licence_and_reported_numbers():
    for name, numbers in REPORTED.items():
        entry = get_entry(name)
        assert entry.converter == "maskbit" and entry.image_size == 256 and entry.preset == name
        assert entry.license.id == "apache-2.0" and entry.license.permissive
        assert tuple(entry.reported(m) for m in ("rfid", "psnr", "ssim", "codebook_usage")) == numbers
    for bits in LFQ_BITS:
        entry = get_entry(f"maskbit-imagenet256-{bits}bit")
        assert entry.repo_id == f"markweber/maskbit_tokenizer_{bits}bit"
        assert entry.filenames == (f"maskbit_tokenizer_{bits}bit.bin",)
        assert vistok.PRESETS.get(entry.preset).config["quantizer"]["bit_order"] == "lsb_first"
    entry = get_entry("vqgan-plus-imagenet256-12bit")
    assert (entry.repo_id, entry.filenames) == ("markweber/vqgan_plus_12bit", ("vqgan_plus_12bit.bin",))
    paper = get_entry("vqgan-plus-imagenet256-10bit")  # markweber/vqgan_plus_paper: weight file unconfirmed
    assert not paper.on_hub and "markweber/vqgan_plus_paper" in paper.manual_download
    # eval_transform with the tokenizer configs' interpolation: torchvision Resize(256, BILINEAR) + CenterCrop(256)
    pipeline = entry_preprocessing(get_entry("maskbit-imagenet256-12bit"))
    assert (pipeline.size, pipeline.filter, pipeline.size_rule, pipeline.crop_offset) == (256, "bilinear", "truncate", "round")


@pytest.mark.parametrize(
    ("name", "repo", "file", "tiny", "expected_file", "warning"),
    [
        ("maskbit-imagenet256-12bit", "markweber/maskbit_tokenizer_12bit", "maskbit_tokenizer_12bit.bin", LFQ_TINY,
         "maskbit_tokenizer_12bit_tiny_expected.pt", r"net.base_channels: catalogue 128, file 32"),
        ("vqgan-plus-imagenet256-12bit", "markweber/vqgan_plus_12bit", "vqgan_plus_12bit.bin", VQ_TINY,
         "vqgan_plus_12bit_tiny_expected.pt", r"net.base_channels: catalogue 128, file 32"),
    ],
    ids=["lfq", "vqgan_plus"],
)
def test_both_entry_points_load_with_parity_and_the_second_load_converts_nothing(
    hub, monkeypatch, name, repo, file, tiny, expected_file, warning
):
    expected = torch.load(DATA / expected_file, weights_only=True)
    add_to_hub_cache(hub, repo, {file: tiny})  # the Hub repo holds the .bin only (the YAML is on GitHub)
    with pytest.warns(ZooArchitectureWarning, match=warning):
        first = vistok.create_tokenizer(name, pretrained=True)
    check_parity(first, expected)
    meta = first.config.metadata
    assert meta["zoo"]["name"] == name and meta["zoo"]["repo_id"] == repo and meta["origin"]["checkpoint_file"] == file
    assert "reported_metrics" not in meta  # a tiny stand-in, not the measured release

    def refuse(*args, **kwargs):
        raise AssertionError("the second load unpickled or converted")

    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooArchitectureWarning)
        patch.setattr(torch, "load", refuse)
        patch.setattr(pickle, "Unpickler", refuse)
        patch.setitem(FAMILIES, "maskbit", dataclasses.replace(FAMILIES["maskbit"], convert=refuse))
        second = vistok.VisTokenizer.from_pretrained(repo)
    check_parity(second, expected)

"""Chameleon's image tokenizer (issue 21, part 1): vqgan.ckpt + vqgan.yaml, the transformers-format encode-only
release, the image-token ids, the zoo entries.

Expected values come from facebookresearch/chameleon's own code (and transformers 5.25.0's ``ChameleonVQVAE``) run
on the reference files (``tests/data/chameleon``, copied from ``shared/reference/chameleon``): inputs in [-1, 1],
indices as upstream returns them, the raw (unclamped) ``decode(quant)``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.convert import CheckpointError
from vistok.families.chameleon import PRESET, code_of_token_name, convert_chameleon
from vistok.nets.vqgan import DecoderUnavailableError

DATA = Path(__file__).parent / "data" / "chameleon"
CKPT, YAML, HF = DATA / "vqgan.ckpt", DATA / "vqgan.yaml", DATA / "chameleon_tiny_hf"


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "chameleon_tiny_expected.pt", weights_only=True)


def check_parity(tok: VisTokenizer, expected, decodes: bool = True) -> None:
    assert not tok.training
    with torch.no_grad():
        encoded = tok.encode(expected["input"])
        assert torch.equal(encoded.indices, expected["indices"])
        assert torch.equal(encoded.indices.reshape(-1), expected["indices_upstream_flat"])
        assert (encoded.quantized - expected["quantized"]).abs().max() < 1e-5
        if decodes:
            assert (tok.decode(encoded.indices) - expected["reconstruction"]).abs().max() < 1e-4
            assert (tok.decode_quantized(encoded.quantized) - expected["reconstruction"]).abs().max() < 1e-4


# ------------------------------------------------------------------------------------------- vqgan.ckpt
@pytest.mark.parametrize("where", ["file", "folder", "tokenizer_subfolder"])
def test_ckpt_and_yaml_reproduce_upstream(where, expected, tmp_path):
    if where == "tokenizer_subfolder":  # Meta's download layout: <root>/tokenizer/vqgan.{ckpt,yaml}
        (tmp_path / "tokenizer").mkdir()
        for f in (CKPT, YAML):
            shutil.copy(f, tmp_path / "tokenizer" / f.name)
    path = {"file": CKPT, "folder": DATA, "tokenizer_subfolder": tmp_path}[where]
    tok = convert_chameleon(path)
    check_parity(tok, expected)
    net = tok.config.net
    # attn_resolutions [] as released: no level attention, but the mid attention is there on both sides
    assert net["attention_levels"] == [] and net["mid_attention"] is True
    assert "encoder.mid.1.q.weight" in tok.state_dict() and "decoder.mid.1.q.weight" in tok.state_dict()
    assert tok.config.image_size == 64  # the YAML's resolution
    assert (net["base_channels"], net["channel_multiplier"], net["num_res_blocks"]) == (32, [1, 2, 1], 1)
    assert tok.config.quantizer["codebook_size"] == 256 and tok.config.quantizer["l2_norm"] is False
    meta = tok.config.metadata
    assert meta["origin"]["name"] == "Chameleon" and meta["converter"]["name"] == "chameleon"
    assert meta["origin"]["config_file"] == "vqgan.yaml" and "IMGIMG" in meta["origin"]["vocabulary"]


def test_without_the_yaml_the_shapes_give_the_same_tokenizer(expected, tmp_path):
    shutil.copy(CKPT, tmp_path / "vqgan.ckpt")
    tok = convert_chameleon(tmp_path / "vqgan.ckpt", image_size=64)
    check_parity(tok, expected)
    assert any("no vqgan.yaml" in note for note in tok.config.metadata["converter"]["notes"])


def _with_yaml(tmp_path: Path, name: str, **ddconfig_changes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(CKPT, folder / "vqgan.ckpt")
    data = yaml.safe_load(YAML.read_text())
    data["model"]["params"]["ddconfig"].update(ddconfig_changes)
    (folder / "vqgan.yaml").write_text(yaml.safe_dump(data))
    return folder


def test_attention_placement_follows_the_yaml_resolution_and_must_match_the_tensors(tmp_path):
    # resolution 64 halved twice is 16: attn_resolutions [16] puts attention in level 2, which this file lacks
    with pytest.raises(CheckpointError, match=r"not what vqgan.yaml builds \(attention_levels: config \[2\], tensors \[\]\)"):
        convert_chameleon(_with_yaml(tmp_path, "a", attn_resolutions=[16]))
    # the same value at resolution 512 names no level of a 3-level net (512, 256, 128): the file loads
    assert convert_chameleon(_with_yaml(tmp_path, "b", attn_resolutions=[16], resolution=512)).config.image_size == 512
    # attn_type "none" makes even the mid attention an identity; this file has one
    with pytest.raises(CheckpointError, match=r"unexpected \(decoder.mid.1"):
        convert_chameleon(_with_yaml(tmp_path, "c", attn_type="none"))
    with pytest.raises(CheckpointError, match="double_z true"):
        convert_chameleon(_with_yaml(tmp_path, "d", double_z=True))
    with pytest.raises(CheckpointError, match="resamp_with_conv false"):
        convert_chameleon(_with_yaml(tmp_path, "e", resamp_with_conv=False))


def test_refusals_name_what_the_file_is(tmp_path):
    with pytest.raises(CheckpointError, match="not a Chameleon vqgan.ckpt"):
        bad = tmp_path / "other.ckpt"
        torch.save({"state_dict": {"encoder.conv_in.weight": torch.zeros(1)}}, bad)
        convert_chameleon(bad)
    with pytest.raises(CheckpointError, match="holds neither vqgan.ckpt"):
        convert_chameleon(tmp_path)
    folder = tmp_path / "hf"
    shutil.copytree(HF, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["vq_config"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="has no vq_config"):
        convert_chameleon(folder)
    with pytest.raises(ValueError, match="one set of weights"):
        convert_chameleon(CKPT, weights="ema")


# ----------------------------------------------------------------------------------- transformers format
def test_transformers_release_is_encode_only_with_the_same_indices(expected, tmp_path):
    tok = convert_chameleon(HF)
    check_parity(tok, expected, decodes=False)
    assert torch.equal(tok.encode(expected["input"]).indices.reshape(-1), expected["transformers_indices"])
    # the same weights as the ckpt: the two formats give the same indices and the same codes
    full = convert_chameleon(CKPT)
    for key, value in tok.state_dict().items():
        assert torch.equal(value, full.state_dict()[key]), key
    assert not any(k.startswith("decoder.") for k in tok.state_dict())
    for decode in (lambda: tok.decode(expected["indices"]), lambda: tok(expected["input"])):
        with pytest.raises(DecoderUnavailableError, match="tokenizer/vqgan.ckpt .*vqgan-chameleon"):
            decode()
    assert tok.config.metadata["origin"]["shards_read"] == [
        "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"
    ]
    # encode-only survives a save / reload: the message is part of the config
    tok.save_pretrained(tmp_path / "saved")
    again = VisTokenizer.from_pretrained(tmp_path / "saved")
    check_parity(again, expected, decodes=False)
    with pytest.raises(DecoderUnavailableError, match="vqgan-chameleon"):
        again.decode(expected["indices"])
    with pytest.raises(ValueError, match="encode-only"):
        tok.to_diffusers()


def test_image_token_ids_come_from_the_vocabulary_map(expected):
    tok = convert_chameleon(HF / "model.safetensors.index.json")
    ids = tok.config.metadata["model_ids"]
    assert ids["kind"] == "offset" and ids["offset"] == 4
    assert (ids["begin_image"]["id"], ids["end_image"]["id"], ids["image_placeholder"]["id"]) == (261, 260, 263)
    # upstream's img2bpe and transformers' get_image_tokens
    flat = expected["indices"].reshape(3, -1)
    assert torch.equal(flat + ids["offset"], expected["bpe_tokens"].long())
    assert torch.equal(flat + ids["offset"], expected["transformers_bpe_tokens"].long())
    assert code_of_token_name("IMGIMGBAZ") == 10 and code_of_token_name("IMGIMGAZ") == 0
    assert code_of_token_name("<image>") is None


# ---------------------------------------------------------------------------------------------- full size
def meta_state_dict(spec_file: str) -> dict[str, torch.Tensor]:
    spec = json.loads((DATA / spec_file).read_text())
    return {key: torch.empty(shape, device="meta") for key, shape in spec.items()}


def test_full_size_layouts_map_every_key_onto_the_preset():
    from vistok.convert.taming_layout import convert_state_dict
    from vistok.convert.vqgan_layout import infer_vqgan_config

    state_dict = meta_state_dict("chameleon_vqgan_state_dict_spec.json")
    assert len(state_dict) == 293
    converted, dropped, _ = convert_state_dict(state_dict)
    assert not dropped
    inferred = infer_vqgan_config(converted)
    preset = VisTokenizerConfig(**PRESET.config)
    assert {k: preset.net[k] for k in inferred["net"]} == inferred["net"]
    assert (inferred["codebook_size"], inferred["codebook_dim"]) == (8192, 256)
    with torch.device("meta"):
        tok = vistok.create_tokenizer(PRESET.name)
    assert {k: tuple(v.shape) for k, v in tok.state_dict().items()} == {k: tuple(v.shape) for k, v in converted.items()}
    assert tok.num_parameters() == 68_718_467 and tok.config.tokens_per_image() == 1024
    # transformers' checkpoint: the encoder half, every key mapped onto the encode-only net
    hf = meta_state_dict("chameleon_7b_hf_vqmodel_state_dict_spec.json")
    assert len(hf) == 129 and all(k.startswith("model.vqmodel.") for k in hf)
    hf_keys = {k.removeprefix("model.vqmodel.") for k in hf}
    assert hf_keys == {k for k in state_dict if not k.startswith("decoder.")}
    with torch.device("meta"):
        encoder_only = VisTokenizer(
            VisTokenizerConfig(**{**PRESET.config, "net": {**PRESET.config["net"], "decoder_unavailable": "gone"}})
        )
    assert {k: tuple(v.shape) for k, v in encoder_only.state_dict().items()} == {
        k: tuple(v.shape) for k, v in converted.items() if not k.startswith("decoder.")
    }
    assert encoder_only.num_parameters() == 29_423_616


def test_preprocessing_is_upstreams():
    """upstream's _vqgan_input_from(img, 64) on the photos the vectors were made from (LANCZOS, round, floor)."""
    skimage = pytest.importorskip("skimage.data")
    from PIL import Image

    from vistok.families import get_family
    from vistok.preprocessing import preprocess

    pipeline = get_family("chameleon").preprocessing(64)
    inputs = torch.load(DATA / "chameleon_tiny_expected.pt", weights_only=True)["input"]
    for image, pixels in zip((skimage.astronaut(), skimage.coffee(), skimage.chelsea()), inputs, strict=True):
        ours = torch.from_numpy(preprocess(Image.fromarray(image), pipeline).copy()).permute(2, 0, 1)
        assert torch.equal(ours, ((pixels.double() + 1) * 127.5).round().to(torch.uint8))


# --------------------------------------------------------------------------------------------------- zoo
def test_zoo_entries_name_the_files_licence_and_vocabulary():
    from vistok.zoo import get_entry

    entry = get_entry("vqgan-chameleon")
    assert (entry.repo_id, entry.filenames, entry.companion_files) == (
        "GAIR/Anole-7b-v0.1", ("tokenizer/vqgan.ckpt",), ("tokenizer/vqgan.yaml",)
    )
    assert entry.preset == PRESET.name and entry.image_size == 512
    assert not entry.license.permissive and entry.license.name == "Chameleon Research License"
    for size in ("7b", "30b"):
        hf = get_entry(f"vqgan-chameleon-encoder-{size}")
        assert hf.repo_id == f"facebook/chameleon-{size}" and hf.tensor_prefix == "model.vqmodel."
        assert hf.license.gated and "ENCODE ONLY" in hf.description
    assert any("IMGIMG" in note for note in entry.notes)


def test_zoo_loads_both_formats_from_the_hub_cache(hub, monkeypatch, expected):
    from vistok.zoo import ZooArchitectureWarning

    from .helpers import replace_zoo_entry
    from .hub_cache import add_folder_to_hub_cache, add_to_hub_cache

    add_to_hub_cache(hub, "GAIR/Anole-7b-v0.1", {
        "tokenizer/vqgan.ckpt": CKPT, "tokenizer/vqgan.yaml": YAML, "tokenizer/text_tokenizer.json": b"{}",
        "config.json": b"{}",
    })
    replace_zoo_entry(monkeypatch, "vqgan-chameleon", image_size=64)
    with pytest.warns(ZooArchitectureWarning, match="net.base_channels: catalogue 128, file 32"):
        tok = vistok.create_tokenizer("vqgan-chameleon", pretrained=True)
    check_parity(tok, expected)
    assert tok.config.metadata["zoo"]["files"] == ["tokenizer/vqgan.ckpt", "tokenizer/vqgan.yaml"]

    add_folder_to_hub_cache(hub, "facebook/chameleon-7b", HF)
    replace_zoo_entry(monkeypatch, "vqgan-chameleon-encoder-7b", image_size=64)
    encoder = VisTokenizer.from_pretrained("facebook/chameleon-7b")
    check_parity(encoder, expected, decodes=False)
    assert encoder.config.metadata["model_ids"]["offset"] == 4
    with pytest.raises(DecoderUnavailableError, match="GAIR/Anole-7b-v0.1"):
        encoder.decode(expected["indices"])


# ------------------------------------------------------------------------------------------ transparency
def test_a_transparent_image_is_whitened_as_chameleon_does_in_every_entry_point(expected, tmp_path):
    """Chameleon blends transparency on white in float64 and truncates (_whiten_transparency): the zoo entry's
    processor, vistok tokenize's data path and reconstruct / the Space's preparation all give upstream's pixels
    (transformers' alpha_composite, which rounds, differs at thousands of values)."""
    import numpy as np
    from PIL import Image
    from transformers import AutoImageProcessor

    from vistok.data.datasets import _make_sample
    from vistok.data.preparation import decode_image, prepare_image
    from vistok.data.transforms import ImageTransform, UpstreamCrop
    from vistok.families import entry_preprocessing, get_entry
    from vistok.preprocessing import preprocess, to_upstream_rgb

    rgba = Image.fromarray(expected["whiten_input_rgba"].numpy(), "RGBA")
    upstream = expected["whiten_output_upstream"].numpy()
    assert np.array_equal(np.asarray(to_upstream_rgb(rgba, "white")), upstream)
    assert not np.array_equal(np.asarray(to_upstream_rgb(rgba, "white")), expected["whiten_output_transformers"].numpy())

    pipeline = entry_preprocessing(get_entry("vqgan-chameleon")).at(32)
    want = preprocess(Image.fromarray(upstream), pipeline)
    processor = AutoImageProcessor.from_pretrained("vqgan-chameleon")
    assert processor.preprocessing["alpha"] == "white"
    got = processor(rgba, return_tensors="pt")["pixel_values"]  # at the entry's 512 px
    assert torch.equal(((got[0] + 1) * 127.5).round().byte().permute(1, 2, 0),
                       torch.from_numpy(preprocess(Image.fromarray(upstream), pipeline.at(512))))  # fmt: skip

    rgba.save(tmp_path / "transparent.png")
    sample = _make_sample(str(tmp_path / "transparent.png"), 0, ImageTransform(UpstreamCrop(pipeline), 32), 0, 0)
    assert torch.equal(((sample["pixel_values"] + 1) * 127.5).round().byte().permute(1, 2, 0), torch.from_numpy(want))

    decoded = decode_image(Image.open(tmp_path / "transparent.png"), keep_mode=True)
    prepared = prepare_image(decoded.image, 32, 16, original_size=decoded.original_size, pipeline=pipeline)
    assert np.array_equal(np.asarray(prepared.image), want)
    assert "Made a transparent RGBA image RGB as the upstream project does: blended on white." in prepared.notices

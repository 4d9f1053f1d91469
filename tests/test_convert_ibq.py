"""`vistok convert ibq`: SEED-Voken IBQ Lightning checkpoints, parity on upstream's reference vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import vistok
from vistok import create_tokenizer
from vistok.cli import main as cli
from vistok.convert import CheckpointError
from vistok.convert.vqgan_layout import infer_vqgan_config
from vistok.families import get_family
from vistok.families.ibq import convert_ibq, ibq_to_vistok

DATA = Path(__file__).parent / "data"
CKPT = DATA / "ibq_tiny.ckpt"


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "ibq_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def converted():
    return convert_ibq(CKPT, image_size=32)


def _encode_decode(tok, x):
    with torch.no_grad():
        enc = tok.encode(x)
        return enc, tok.decode(enc.indices), tok.decode_quantized(enc.quantized)


def test_parity_with_upstream_ema_outputs(converted, expected):
    enc, from_indices, from_quantized = _encode_decode(converted, expected["input"])
    assert torch.equal(enc.indices, expected["indices"])
    assert torch.equal(enc.indices.flatten(), expected["indices_upstream_flat"])  # (b, row, col) order
    assert (from_quantized - expected["reconstruction"]).abs().max() <= 1e-4
    assert (from_indices - expected["reconstruction_from_indices"]).abs().max() <= 1e-4
    assert (enc.quantized - expected["quantized"]).abs().max() <= 1e-5
    assert converted.config.quantizer["type"] == "ibq" and not converted.training
    meta = converted.config.metadata
    assert meta["origin"]["weights"] == "ema" and meta["license"] == "apache-2.0"
    assert meta["converter"]["name"] == "ibq" and get_family("ibq").convert is convert_ibq


def test_nearest_code_and_raw_weights_do_not_reproduce_upstream(converted, expected):
    enc, _, _ = _encode_decode(converted, expected["input"])
    # The reference's nearest-neighbour indices disagree at 159 of 192 positions: a Euclidean lookup would fail.
    assert int((enc.indices != expected["indices_if_l2_nearest"]).sum()) == 159
    # The same weights through a brute-force Euclidean search give exactly those nearest-code indices.
    latent = converted.quant_conv(converted.encoder(expected["input"])).detach()
    flat = latent.permute(0, 2, 3, 1).reshape(-1, latent.shape[1])
    nearest = torch.cdist(flat.double(), converted.quantizer.codebook.detach().double()).argmin(-1)
    assert torch.equal(nearest.view(3, 8, 8), expected["indices_if_l2_nearest"])
    # The raw (non-EMA) weights are not the released model: they give upstream's raw-weight outputs, not its EMA ones.
    assert not torch.equal(expected["indices_raw_weights"], expected["indices"])
    raw = convert_ibq(CKPT, image_size=32, weights="raw")
    raw_enc, raw_rec, _ = _encode_decode(raw, expected["input"])
    assert torch.equal(raw_enc.indices, expected["indices_raw_weights"])
    assert (raw_rec - expected["reconstruction_raw_weights"]).abs().max() <= 1e-4
    assert (raw_rec - expected["reconstruction"]).abs().max() > 1e-2
    assert raw.config.metadata["origin"]["weights"] == "raw"


def test_full_size_16384_layout_maps_onto_the_preset():
    spec = json.loads((DATA / "ibq_16384_state_dict_spec.json").read_text())
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in spec.items()}
    converted, which, _ = ibq_to_vistok(state_dict)
    assert which == "ema"
    with torch.device("meta"):
        target = create_tokenizer("ibqgan-imagenet256-16384").state_dict()
    assert set(converted) == set(target)
    assert all(tuple(converted[k].shape) == tuple(target[k].shape) for k in target)
    inferred = infer_vqgan_config(converted)
    preset_net = vistok.PRESETS.get("ibqgan-imagenet256-16384").config["net"]
    assert {k: inferred["net"][k] for k in preset_net} == preset_net
    assert (inferred["codebook_size"], inferred["codebook_dim"]) == (16384, 256)


def test_cli_converts_and_the_folder_reloads_with_the_same_indices(tmp_path, expected):
    out = tmp_path / "ibq"
    assert cli(["convert", "ibq", str(CKPT), str(out), "--image-size", "32"]) == 0
    tok = vistok.VisTokenizer.from_pretrained(out)
    with torch.no_grad():
        assert torch.equal(tok.encode(expected["input"]).indices, expected["indices"])
    assert (out / "README.md").is_file()


def test_a_file_that_is_not_a_lightning_checkpoint_is_refused(tmp_path):
    state_dict = torch.load(CKPT, weights_only=True)["state_dict"]
    bare = tmp_path / "bare.pt"
    torch.save({k: v for k, v in state_dict.items() if not k.startswith("model_ema.")}, bare)
    with pytest.raises(CheckpointError, match=r"expected an IBQ Lightning checkpoint with a 'state_dict' entry"):
        convert_ibq(bare)


def test_ema_weights_asked_for_without_shadows_are_refused(tmp_path):
    checkpoint = torch.load(CKPT, weights_only=True)
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("model_ema.")}
    path = tmp_path / "no_ema.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"weights='ema' was asked for, but the checkpoint \(an IBQ one\) has no model_ema"):
        convert_ibq(path, weights="ema")
    assert convert_ibq(path).config.metadata["origin"]["weights"] == "raw"  # auto: the raw weights, recorded


def test_other_seed_voken_layouts_are_named(tmp_path):
    checkpoint = torch.load(CKPT, weights_only=True)
    checkpoint["state_dict"] = {
        k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(("quantize.", "model_ema.quantize"))
    }
    path = tmp_path / "lfq.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"no codebook \(quantize\.embedding\.weight\).*Open-MAGVIT2"):
        convert_ibq(path)

"""Kandinsky 2.2's MoVQ (issue 21, part 2): the movq net (spatial norm conditioned on the codes), the converter, the
diffusers bridge in both directions, the zoo entry.

Expected values come from diffusers 0.42.1 run on the reference folder (``tests/data/kandinsky22_movq_tiny`` and
``kandinsky22_movq_tiny_expected.pt``, copied from ``shared/reference/movq``): inputs in [-1, 1], indices from
``VQModel.quantize``, ``reconstruction`` = the decoded codebook rows, ``reconstruction_continuous`` = the pipelines'
``decode(latents, force_not_quantize=True)``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.convert import CheckpointError
from vistok.families.kandinsky import PRESET, convert_kandinsky

DATA = Path(__file__).parent / "data"
TINY = DATA / "kandinsky22_movq_tiny"
WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "kandinsky22_movq_tiny_expected.pt", weights_only=True)


def check_parity(tok: VisTokenizer, expected) -> None:
    assert not tok.training
    with torch.no_grad():
        encoded = tok.encode(expected["input"])
        assert torch.equal(encoded.indices, expected["indices"])
        assert torch.equal(encoded.indices.reshape(-1), expected["indices_upstream_flat"])
        assert (tok.decode(encoded.indices) - expected["reconstruction"]).abs().max() < 1e-4
        latents = tok.encoder(expected["input"])
        assert (latents - expected["encoder_output"]).abs().max() < 1e-4
        # the README's tolerance for this path (encoder rounding reaches the decoder): 5e-4
        assert (tok.decode_quantized(latents) - expected["reconstruction_continuous"]).abs().max() < 5e-4


@pytest.mark.parametrize("where", ["folder", "file", "pipeline"])
def test_converter_reproduces_upstream(where, expected, tmp_path):
    if where == "pipeline":
        shutil.copytree(TINY, tmp_path / "decoder" / "movq")
        path = tmp_path / "decoder"
    else:
        path = TINY if where == "folder" else TINY / WEIGHTS
    tok = convert_kandinsky(path, image_size=32)
    check_parity(tok, expected)
    net = tok.config.net
    assert net["type"] == "movq" and net["attention_levels"] == [2] and net["spatial_norm_groups"] == 32
    assert tok.config.quantizer["codebook_size"] == 512 and tok.config.quantizer["codebook_dim"] == 4
    assert sum(p.numel() for p in tok.parameters()) == expected["n_params"]
    assert tok.config.metadata["origin"]["name"] == "Kandinsky"


def test_saved_folder_reloads_and_the_diffusers_bridge_agrees(expected, tmp_path):
    diffusers = pytest.importorskip("diffusers")
    from vistok.diffusers_interop import diffusers_indices

    tok = convert_kandinsky(TINY, image_size=32)
    tok.save_pretrained(tmp_path / "saved")
    check_parity(VisTokenizer.from_pretrained(tmp_path / "saved"), expected)
    upstream = diffusers.VQModel.from_pretrained(TINY).eval()
    bridged = VisTokenizer.from_diffusers(upstream, image_size=32)
    assert bridged.config.net == tok.config.net
    for (name, a), (_, b) in zip(bridged.state_dict().items(), tok.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    again = tok.to_diffusers()
    assert again.config.norm_type == "spatial"
    x = expected["input"]
    with torch.no_grad():
        assert torch.equal(diffusers_indices(again, x), expected["indices"])
        latents = again.encode(x).latents
        continuous = again.decode(latents, force_not_quantize=True).sample
    assert (continuous - expected["reconstruction_continuous"]).abs().max() < 5e-4


def test_refusals(tmp_path):
    folder = tmp_path / "movq"
    shutil.copytree(TINY, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "norm_type": "group"}))
    with pytest.raises(CheckpointError, match="norm_type 'group', not MoVQ's 'spatial'"):
        convert_kandinsky(folder)
    (folder / "config.json").write_text(json.dumps({**config, "vq_embed_dim": 8}))
    with pytest.raises(CheckpointError, match="vq_embed_dim 8 != latent_channels 4"):
        convert_kandinsky(folder)
    with pytest.raises(CheckpointError, match="MoVQ .*vistok convert kandinsky"):
        from vistok.families.amused import convert_amused

        convert_amused(TINY)


def test_full_size_release_layout_is_the_preset():
    from vistok.convert.diffusers_layout import vq_model_config_and_weights

    # the README's copy of movq/config.json
    release = {
        "_class_name": "VQModel", "act_fn": "silu", "block_out_channels": [128, 256, 256, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 3 + ["AttnDownEncoderBlock2D"],
        "up_block_types": ["AttnUpDecoderBlock2D"] + ["UpDecoderBlock2D"] * 3, "in_channels": 3, "out_channels": 3,
        "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "norm_type": "spatial",
        "num_vq_embeddings": 16384, "vq_embed_dim": 4, "sample_size": 32, "scaling_factor": 0.18215,
    }
    spec = json.loads((DATA / "kandinsky22_movq_state_dict_spec.json").read_text())
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in spec.items()}
    assert len(state_dict) == 431
    config, weights = vq_model_config_and_weights(release, state_dict, image_size=512)
    preset = VisTokenizerConfig(**PRESET.config)
    assert config.net == preset.net and config.quantizer == preset.quantizer
    with torch.device("meta"):
        tok = vistok.create_tokenizer(PRESET.name)
    assert {k: tuple(v.shape) for k, v in tok.state_dict().items()} == {k: tuple(v.shape) for k, v in weights.items()}
    assert tok.num_parameters() == 67_832_495 and tok.config.tokens_per_image() == 64 * 64


def test_zoo_entry_loads_the_subfolder_from_the_hub_cache(hub, monkeypatch, expected):
    from vistok.zoo import ZooArchitectureWarning, get_entry

    from .helpers import replace_zoo_entry
    from .hub_cache import add_to_hub_cache

    entry = get_entry("movq-kandinsky22")
    assert entry.repo_id == "kandinsky-community/kandinsky-2-2-decoder" and entry.companion_files == ("movq/config.json",)
    assert entry.filenames[0] == "movq/diffusion_pytorch_model.safetensors" and entry.license.permissive
    files = {f"movq/{p.name}": p for p in TINY.iterdir()}
    files["model_index.json"] = b'{"_class_name": "KandinskyV22Pipeline"}'
    add_to_hub_cache(hub, entry.repo_id, files)
    replace_zoo_entry(monkeypatch, "movq-kandinsky22", image_size=32)
    with pytest.warns(ZooArchitectureWarning, match="net.base_channels: catalogue 128, file 32"):
        tok = vistok.create_tokenizer("movq-kandinsky22", pretrained=True)
    check_parity(tok, expected)
    with pytest.warns(ZooArchitectureWarning):
        check_parity(VisTokenizer.from_pretrained(entry.repo_id), expected)

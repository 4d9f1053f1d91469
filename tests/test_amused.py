"""aMUSEd's VQ-GAN (issue 21): the converter, the zoo entries and the diffusers bridge without mid attention.

Expected values come from diffusers 0.42.1 run on the reference folder (``tests/data/amused_vqvae_tiny`` and
``amused_vqvae_tiny_expected.pt``, copied from ``shared/reference/movq``): the input is in [0, 1] as the aMUSEd
pipelines feed it, the indices are ``VQModel.quantize``'s and the reconstruction is the raw (unclipped)
``decode(indices, force_not_quantize=True, shape=…)``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.convert import CheckpointError
from vistok.families.amused import PRESET, convert_amused

DATA = Path(__file__).parent / "data"
TINY = DATA / "amused_vqvae_tiny"
WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "amused_vqvae_tiny_expected.pt", weights_only=True)


def check_parity(tok: VisTokenizer, expected) -> None:
    """Upstream's [0, 1] input is vistok's 2x − 1; upstream's output is (reconstruction + 1) / 2."""
    assert not tok.training
    with torch.no_grad():
        encoded = tok.encode(expected["input"] * 2 - 1)
        assert torch.equal(encoded.indices, expected["indices"])
        reconstruction = (tok.decode(encoded.indices) + 1) / 2
    assert (reconstruction - expected["reconstruction"]).abs().max() < 1e-4


# ------------------------------------------------------------------------------------------------ converter
@pytest.mark.parametrize("where", ["folder", "file", "pipeline"])
def test_converter_reproduces_upstream_from_each_form_of_the_release(where, expected, tmp_path):
    if where == "pipeline":  # a pipeline folder keeps its VQ-GAN in vqvae/
        shutil.copytree(TINY, tmp_path / "amused" / "vqvae")
        path = tmp_path / "amused"
    else:
        path = TINY if where == "folder" else TINY / WEIGHTS
    tok = convert_amused(path, image_size=32)
    check_parity(tok, expected)
    net = tok.config.net
    assert (net["mid_attention"], net["pixel_range"], net["attention_levels"], net["norm_groups"]) == (
        False, "unit", [], 4
    )
    assert "mid.1" not in " ".join(tok.state_dict())  # no mid attention: the two residual blocks only
    assert tok.config.quantizer["codebook_size"] == 256 and tok.config.tokens_per_image() == 64
    meta = tok.config.metadata
    assert meta["origin"]["name"] == "aMUSEd" and meta["converter"]["name"] == "amused"
    assert meta["diffusers"]["lookup_from_codebook"] is True
    assert sum(p.numel() for p in tok.parameters()) == expected["n_params"]


def test_a_saved_folder_reloads_bit_identically(expected, tmp_path):
    from vistok.cli import main as cli

    out = tmp_path / "converted"
    assert cli(["convert", "amused", str(TINY), str(out), "--image-size", "32"]) == 0
    tok = VisTokenizer.from_pretrained(out)
    check_parity(tok, expected)
    assert "aMUSEd" in (out / "README.md").read_text()


def test_diffusers_bridge_gives_the_same_tokenizer(expected):
    pytest.importorskip("diffusers")
    from diffusers import VQModel

    from vistok.diffusers_interop import decode_indices_with_diffusers, diffusers_indices

    upstream = VQModel.from_pretrained(TINY).eval()
    tok = VisTokenizer.from_diffusers(upstream, pixel_range="unit", image_size=32)
    converted = convert_amused(TINY, image_size=32)
    assert tok.config.net == converted.config.net and tok.config.quantizer == converted.config.quantizer
    for (name, a), (_, b) in zip(tok.state_dict().items(), converted.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    check_parity(tok, expected)
    # and back: to_diffusers keeps mid_block_add_attention=False and computes upstream's numbers on [0, 1] pixels
    again = converted.to_diffusers()
    assert again.config.mid_block_add_attention is False
    x = expected["input"]
    with torch.no_grad():
        assert torch.equal(diffusers_indices(again, x), expected["indices"])
        assert torch.equal(diffusers_indices(upstream, x), expected["indices"])
        assert (decode_indices_with_diffusers(again, expected["indices"]) - expected["reconstruction"]).abs().max() < 1e-4


def test_vqmodel_defaults_are_diffusers_own():
    """A config.json lacking a key means VQModel's default: vistok's table of them is diffusers' signature."""
    diffusers = pytest.importorskip("diffusers")
    import inspect

    from vistok.convert.diffusers_layout import VQMODEL_DEFAULTS

    signature = inspect.signature(diffusers.VQModel.__init__).parameters
    theirs = {name: p.default for name, p in signature.items() if name != "self"}
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in theirs.items()} == VQMODEL_DEFAULTS


def _copy(tmp_path: Path, **config_changes) -> Path:
    folder = tmp_path / "vqvae"
    shutil.copytree(TINY, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(config_changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_refusals_name_what_the_folder_is(tmp_path):
    with pytest.raises(CheckpointError, match="describes a diffusers 'AutoencoderKL', not a VQModel.*no codebook"):
        convert_amused(_copy(tmp_path / "a", _class_name="AutoencoderKL"))
    with pytest.raises(CheckpointError, match="norm_type='spatial'.*vistok convert kandinsky"):
        convert_amused(_copy(tmp_path / "b", norm_type="spatial"))
    with pytest.raises(CheckpointError, match="has shape .*its config makes vistok's"):
        convert_amused(_copy(tmp_path / "c", latent_channels=8))
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(TINY / WEIGHTS, lone / WEIGHTS)
    with pytest.raises(CheckpointError, match="no config.json beside diffusion_pytorch_model.safetensors"):
        convert_amused(lone / WEIGHTS)
    with pytest.raises(CheckpointError, match="holds none of diffusers' weight files"):
        convert_amused(tmp_path / "a" / ".." / "lone" / "..")
    with pytest.raises(ValueError, match="one set of weights"):
        convert_amused(TINY, weights="ema")


# ---------------------------------------------------------------------------------------------- full size
def meta_state_dict(spec_file: str) -> dict[str, torch.Tensor]:
    spec = json.loads((DATA / spec_file).read_text())
    return {key: torch.empty(shape, device="meta") for key, shape in spec.items()}


def test_full_size_release_layout_is_the_preset():
    from vistok.convert.diffusers_layout import vq_model_config_and_weights

    # make_vqvae() of diffusers' scripts/convert_amused.py (the README's values), the rest left at VQModel's defaults
    release = {
        "_class_name": "VQModel",
        "block_out_channels": [128, 256, 256, 512, 768],
        "down_block_types": ["DownEncoderBlock2D"] * 5,
        "up_block_types": ["UpDecoderBlock2D"] * 5,
        "layers_per_block": 2,
        "latent_channels": 64,
        "num_vq_embeddings": 8192,
        "norm_num_groups": 32,
        "mid_block_add_attention": False,
        "lookup_from_codebook": True,
        "in_channels": 3,
        "out_channels": 3,
    }
    state_dict = meta_state_dict("amused_vqvae_state_dict_spec.json")
    assert len(state_dict) == 277
    config, weights = vq_model_config_and_weights(release, state_dict, image_size=256, pixel_range="unit")
    preset = VisTokenizerConfig(**PRESET.config)
    assert config.net == preset.net and config.quantizer == preset.quantizer
    with torch.device("meta"):
        tok = vistok.create_tokenizer(PRESET.name)
    assert {k: tuple(v.shape) for k, v in tok.state_dict().items()} == {k: tuple(v.shape) for k, v in weights.items()}
    assert tok.num_parameters() == 146_244_675
    assert tok.config.tokens_per_image() == 256 and tok.config.downsample_factor == 16


# --------------------------------------------------------------------------------------------------- zoo
@pytest.mark.parametrize("size", [256, 512])
def test_zoo_entries_name_the_subfolder_files_and_licence(size):
    from vistok.zoo import get_entry

    entry = get_entry(f"vqgan-amused-{size}")
    assert entry.repo_id == f"amused/amused-{size}" and entry.converter == "amused" and entry.image_size == size
    assert entry.filenames[0] == "vqvae/diffusion_pytorch_model.safetensors"
    assert entry.companion_files == ("vqvae/config.json",)
    assert entry.preset == PRESET.name and not entry.license.permissive


def test_zoo_loads_the_subfolder_from_the_hub_cache_with_parity(hub, monkeypatch, expected):
    from vistok.zoo import ZooArchitectureWarning

    from .helpers import replace_zoo_entry
    from .hub_cache import add_to_hub_cache

    files = {f"vqvae/{p.name}": p for p in TINY.iterdir()}
    files["model_index.json"] = b'{"_class_name": "AmusedPipeline"}'  # the pipeline's other parts are never fetched
    add_to_hub_cache(hub, "amused/amused-256", files)
    replace_zoo_entry(monkeypatch, "vqgan-amused-256", image_size=32)  # the tiny stand-in's resolution
    with pytest.warns(ZooArchitectureWarning, match="net.base_channels: catalogue 128, file 8"):
        tok = vistok.create_tokenizer("vqgan-amused-256", pretrained=True)
    check_parity(tok, expected)
    zoo = tok.config.metadata["zoo"]
    assert zoo["name"] == "vqgan-amused-256" and zoo["files"] == sorted(
        ["vqvae/config.json", "vqvae/diffusion_pytorch_model.safetensors"]
    )
    assert zoo["commit"] is not None  # the snapshot is found above the subfolder
    with pytest.warns(ZooArchitectureWarning):
        again = VisTokenizer.from_pretrained("amused/amused-256")
    check_parity(again, expected)

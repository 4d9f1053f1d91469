"""LlamaGen's PyTorchModelHubMixin format (the Hub repo FoundationVision/vq-ds16-c2i, written by VQModelHF):
config.json holds the ModelArgs dataclass, model.safetensors the state dict with LlamaGen's keys. The folders are
built here from tests/data/llamagen_tiny.pt, with config.json written by huggingface_hub's own mixin."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import save_file
from torch import nn

from vistok.convert import CheckpointError
from vistok.families.llamagen import convert_llamagen

DATA = Path(__file__).parent / "data"
LLAMAGEN_TINY = DATA / "llamagen_tiny.pt"


@dataclass
class ModelArgs:
    """LlamaGen's ModelArgs fields (tokenizer/tokenizer_image/vq_model.py), set to the tiny checkpoint's
    architecture (shared/reference/README.md: ch_mult (1,2,2), z 64, codebook 512 x 8, l2-normalised)."""

    codebook_size: int = 512
    codebook_embed_dim: int = 8
    codebook_l2_norm: bool = True
    codebook_show_usage: bool = True
    commit_loss_beta: float = 0.25
    entropy_loss_ratio: float = 0.0
    encoder_ch_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    decoder_ch_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    z_channels: int = 64
    dropout_p: float = 0.0


class ConfigOnly(nn.Module, PyTorchModelHubMixin):
    """Built like VQModelHF (one dataclass ``config`` argument), so the mixin writes config.json as it does for
    LlamaGen; the weights are then replaced by the tiny checkpoint's."""

    def __init__(self, config: ModelArgs):
        super().__init__()
        self.config = config


def tiny_state_dict() -> dict[str, torch.Tensor]:
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(LLAMAGEN_TINY, weights_only=True)["model"]


def write_mixin_folder(folder: Path, args: ModelArgs | None = None) -> Path:
    ConfigOnly(args or ModelArgs()).save_pretrained(folder)
    save_file(tiny_state_dict(), str(folder / "model.safetensors"))
    return folder


def test_the_mixin_writes_modelargs_as_a_flat_config(tmp_path):
    config = json.loads((write_mixin_folder(tmp_path) / "config.json").read_text())
    assert config["codebook_size"] == 512 and config["encoder_ch_mult"] == [1, 2, 2]


def test_mixin_folder_converts_like_the_checkpoint(tmp_path):
    folder = write_mixin_folder(tmp_path / "vq-tiny")
    expected = torch.load(DATA / "llamagen_tiny_expected.pt", weights_only=True)
    reference = convert_llamagen(LLAMAGEN_TINY).state_dict()
    for path in (folder, folder / "model.safetensors"):
        tok = convert_llamagen(path)
        state = tok.state_dict()
        assert state.keys() == reference.keys()
        assert all(torch.equal(state[k], reference[k]) for k in state)
        with torch.no_grad():
            out = tok(expected["input"])
        assert torch.equal(out.indices, expected["indices"])
        assert (out.reconstruction - expected["reconstruction"]).abs().max() < 1e-4
    meta = tok.config.metadata
    assert meta["origin"]["checkpoint_file"] == "model.safetensors"
    assert meta["origin"]["model_args"]["z_channels"] == 64
    assert "notes" not in meta["converter"]  # l2_norm came from config.json, nothing was assumed
    assert tok.config.quantizer["l2_norm"] is True and tok.config.quantizer["commitment_weight"] == 0.25
    assert tok.config.image_size == 256  # LlamaGen's training resolution; ModelArgs has no image size


def test_config_fields_that_shapes_cannot_tell_are_used(tmp_path):
    folder = write_mixin_folder(
        tmp_path, ModelArgs(codebook_l2_norm=False, dropout_p=0.1, commit_loss_beta=0.5)
    )
    tok = convert_llamagen(folder)
    assert tok.config.quantizer["l2_norm"] is False and tok.config.quantizer["commitment_weight"] == 0.5
    assert tok.config.net["dropout"] == 0.1
    overridden = convert_llamagen(folder, codebook_l2_norm=True)
    assert overridden.config.quantizer["l2_norm"] is True
    assert any(
        "overrides config.json's codebook_l2_norm=False" in note
        for note in overridden.config.metadata["converter"]["notes"]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ModelArgs(codebook_size=16384),
            r"config\.json says codebook_size=16384 but its codebook tensor has 512",
        ),
        (
            ModelArgs(codebook_embed_dim=16),
            r"config\.json says codebook_embed_dim=16 but its codebook tensor has 8",
        ),
        (
            ModelArgs(encoder_ch_mult=[1, 1, 2, 2, 4]),
            r"config\.json says encoder_ch_mult=\[1, 1, 2, 2, 4\] but the weights have \[1, 2, 2\]",
        ),
        (ModelArgs(decoder_ch_mult=[1, 2, 4]), r"config\.json says decoder_ch_mult=\[1, 2, 4\]"),
        (ModelArgs(z_channels=256), r"config\.json says z_channels=256 but the weights have 64"),
        (ModelArgs(dropout_p=1.5), r"config\.json says dropout_p=1\.5; expected a probability in \[0, 1\)"),
    ],
)
def test_a_config_that_contradicts_the_tensors_is_refused(tmp_path, args, message):
    folder = write_mixin_folder(tmp_path, args)
    with pytest.raises(CheckpointError, match=message):
        convert_llamagen(folder)


def test_bad_mixin_folders_say_what_is_wrong(tmp_path):
    folder = write_mixin_folder(tmp_path / "bad-json")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(
        CheckpointError, match=r"config\.json' \(beside model\.safetensors\) is not valid JSON"
    ):
        convert_llamagen(folder)
    folder = write_mixin_folder(tmp_path / "bad-l2")
    (folder / "config.json").write_text(json.dumps({"codebook_l2_norm": "yes"}))
    with pytest.raises(CheckpointError, match=r"codebook_l2_norm='yes'; expected true or false"):
        convert_llamagen(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(
        CheckpointError, match=r"holds none of \['model\.safetensors', 'pytorch_model\.bin'\].*config"
    ):
        convert_llamagen(empty)


def test_a_config_json_that_is_not_modelargs_is_not_read_as_one(tmp_path):
    # e.g. an unrelated config.json beside a LlamaGen state dict: the tensors (and LlamaGen's defaults) decide.
    save_file(tiny_state_dict(), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "something-else", "image_size": 64}))
    tok = convert_llamagen(tmp_path)
    assert tok.config.quantizer["codebook_size"] == 512 and tok.config.quantizer["l2_norm"] is True
    assert "model_args" not in tok.config.metadata["origin"] and tok.config.image_size == 256
    assert any("l2_norm=True assumed" in note for note in tok.config.metadata["converter"]["notes"])


def test_the_zoo_loads_the_mixin_repo(hub, tmp_path):
    import vistok
    from vistok.zoo import ZooArchitectureWarning

    from .hub_cache import add_folder_to_hub_cache

    add_folder_to_hub_cache(hub, "FoundationVision/vq-ds16-c2i", write_mixin_folder(tmp_path / "mixin"))
    expected = torch.load(DATA / "llamagen_tiny_expected.pt", weights_only=True)
    with pytest.warns(ZooArchitectureWarning, match=r"net\.base_channels: catalogue 128, file 32"):
        tok = vistok.VisTokenizer.from_pretrained("FoundationVision/vq-ds16-c2i")
    with torch.no_grad():
        out = tok(expected["input"])
    assert torch.equal(out.indices, expected["indices"])
    assert (out.reconstruction - expected["reconstruction"]).abs().max() < 1e-4
    assert tok.config.metadata["zoo"]["name"] == "vqgan-llamagen-vq16-hf"
    assert tok.config.metadata["origin"]["model_args"]["codebook_size"] == 512  # config.json was read

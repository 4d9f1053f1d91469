"""Emu3's VisionTokenizer (issue 21, part 2): the temporal movq net on stills, both release formats (BAAI's custom
code and transformers' ``vqmodel.*``), the visual-token ids, the zoo entries.

Expected values come from baaivision/Emu3's own code (under transformers 4.44.0) and from transformers 5.25.0's
``Emu3ForConditionalGeneration`` run on the same random weights (``tests/data/emu3``, copied from
``shared/reference/movq``): inputs in [-1, 1], indices (B, h, w), ``decode`` of a still = frame 0, raw."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.convert import CheckpointError
from vistok.families.emu3 import PRESET, architecture, baai_to_vistok, convert_emu3, hf_to_baai

DATA = Path(__file__).parent / "data" / "emu3"
BAAI, HF = DATA / "emu3_tiny", DATA / "emu3_tiny_hf"


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "emu3_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def expected_hf():
    return torch.load(DATA / "emu3_tiny_hf_expected.pt", weights_only=True)


def check_parity(tok: VisTokenizer, expected) -> None:
    assert not tok.training
    with torch.no_grad():
        encoded = tok.encode(expected["input"])
        assert torch.equal(encoded.indices, expected["indices"])
        assert (tok.decode(encoded.indices) - expected["reconstruction"]).abs().max() < 1e-4
        # the quantizer's input: upstream's latent (B, T'=1, C, h, w)
        assert (tok.encoder(expected["input"]) - expected["latent"][:, 0]).abs().max() < 1e-4
        assert torch.equal(tok.decode_quantized(encoded.quantized), tok.decode(encoded.indices))


@pytest.mark.parametrize("path", [BAAI, BAAI / "model.safetensors"])
def test_baai_release_reproduces_upstream(path, expected):
    tok = convert_emu3(path, image_size=32)
    check_parity(tok, expected)
    net = tok.config.net
    assert net["type"] == "movq" and net["temporal_downsample_factor"] == 4 and net["attention_levels"] == [2]
    # 317,171 numbers in 295 tensors upstream: the parameters plus the four BatchNorm3d's running statistics
    buffers = sum(b.numel() for name, b in tok.named_buffers() if "time_res_stack" in name)
    assert sum(p.numel() for p in tok.parameters()) + buffers == expected["n_params"]
    assert tok.config.metadata["origin"]["format"] == "BAAI custom code"
    assert tok.config.metadata["model_ids"]["kind"] == "named"  # no vocabulary in the folder: the token names


def test_transformers_release_gives_the_same_tokenizer_and_the_visual_token_ids(expected, expected_hf, tmp_path):
    tok = convert_emu3(HF, image_size=32)
    check_parity(tok, expected)
    baai = convert_emu3(BAAI, image_size=32)
    for (name, a), (_, b) in zip(tok.state_dict().items(), baai.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    with torch.no_grad():
        assert torch.equal(tok.encode(expected["input"]).indices, expected_hf["indices"])
        assert (tok.decode(expected_hf["indices"]) - expected_hf["reconstruction"]).abs().max() < 1e-4
    ids = tok.config.metadata["model_ids"]
    assert ids["kind"] == "offset" and ids["end_of_row"]["id"] == 3
    # transformers' get_image_tokens: every row's ids, then <|extra_200|>
    rows = torch.cat([expected_hf["indices"] + ids["offset"], torch.full((3, 8, 1), ids["end_of_row"]["id"])], dim=2)
    assert torch.equal(rows.reshape(-1), expected_hf["bpe_tokens"].long())
    # the in-memory transformers 5 layout (model.vqmodel.*) reads too
    folder = tmp_path / "hf5"
    shutil.copytree(HF, folder)
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    save_file({(f"model.{k}" if k.startswith("vqmodel.") else k): v for k, v in state.items()},
              folder / "model.safetensors", metadata={"format": "pt"})
    check_parity(convert_emu3(folder, image_size=32), expected)


def test_saved_folder_reloads(expected, tmp_path):
    tok = convert_emu3(BAAI, image_size=32)
    tok.save_pretrained(tmp_path / "saved")
    check_parity(VisTokenizer.from_pretrained(tmp_path / "saved"), expected)
    pytest.importorskip("diffusers")
    with pytest.raises(ValueError, match="temporal layers"):
        tok.to_diffusers()


def test_refusals(tmp_path):
    folder = tmp_path / "x"
    shutil.copytree(BAAI, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "Emu3VisionVQv2"}))
    with pytest.raises(CheckpointError, match="not Emu3's VisionTokenizer"):
        convert_emu3(folder)
    (folder / "config.json").write_text(json.dumps({**config, "embed_dim": 8}))
    with pytest.raises(CheckpointError, match="embed_dim 8 != z_channels 4"):
        convert_emu3(folder)
    with pytest.raises(ValueError, match="temporal_downsample_factor must be 1 or a power of two"):
        VisTokenizerConfig(image_size=16, net={**PRESET.config["net"], "temporal_downsample_factor": 3},
                           quantizer=PRESET.config["quantizer"])


def _meta(spec: str) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v, device="meta") for k, v in json.loads((DATA / spec).read_text()).items()}


def test_full_size_layouts_map_every_key_onto_the_preset():
    from vistok.families.emu3 import RELEASE_CODEBOOK, RELEASE_NET

    baai = _meta("emu3_visiontokenizer_state_dict_spec.json")
    hf = _meta("emu3_hf_vqmodel_state_dict_spec.json")
    assert len(baai) == len(hf) == 495
    with torch.device("meta"):
        tok = vistok.create_tokenizer(PRESET.name)
    ours = {k: tuple(v.shape) for k, v in tok.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in baai_to_vistok(baai).items()}
    assert ours == {k: tuple(v.shape) for k, v in baai_to_vistok(hf_to_baai({k.removeprefix("vqmodel."): v for k, v in hf.items()})).items()}
    assert tok.num_parameters() == 270_740_287
    # Emu3VisionVQConfig()'s defaults are the preset
    net, quantizer = architecture({"codebook_size": 32768, "embed_dim": 4, "z_channels": 4, "ch": 256,
                                   "ch_mult": [1, 2, 2, 4], "num_res_blocks": 2, "attn_resolutions": [3],
                                   "temporal_downsample_factor": 4, "double_z": False, "dropout": 0.0})
    assert {k: net[k] for k in RELEASE_NET} == RELEASE_NET and (quantizer["codebook_size"], quantizer["codebook_dim"]) == RELEASE_CODEBOOK
    assert tok.config.tokens_per_image() == 64 * 64


def test_zoo_entries_load_from_the_hub_cache(hub, monkeypatch, expected):
    from vistok.zoo import ZooArchitectureWarning, get_entry

    from .helpers import replace_zoo_entry
    from .hub_cache import add_folder_to_hub_cache

    entry = get_entry("movq-emu3")
    assert (entry.repo_id, entry.filenames, entry.companion_files) == ("BAAI/Emu3-VisionTokenizer", ("model.safetensors",), ("config.json",))
    assert entry.license.permissive and entry.preset == PRESET.name
    add_folder_to_hub_cache(hub, entry.repo_id, BAAI)
    replace_zoo_entry(monkeypatch, "movq-emu3", image_size=32)
    with pytest.warns(ZooArchitectureWarning, match="net.base_channels: catalogue 256, file 32"):
        check_parity(vistok.create_tokenizer("movq-emu3", pretrained=True), expected)
    add_folder_to_hub_cache(hub, "BAAI/Emu3-Gen-hf", HF)
    replace_zoo_entry(monkeypatch, "movq-emu3-gen-hf", image_size=32)
    with pytest.warns(ZooArchitectureWarning):
        tok = VisTokenizer.from_pretrained("BAAI/Emu3-Gen-hf")
    check_parity(tok, expected)
    assert tok.config.metadata["model_ids"]["kind"] == "offset"

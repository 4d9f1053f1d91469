"""TiTok (issue 13 part 3): the titok net, `vistok convert titok`, its presets and zoo entries.

Expected values are upstream's: tests/data/titok_tiny/ is a folder written by TiTok.save_pretrained (random weights,
encoder/decoder ViT width 64, 2 layers, 2 heads; patch 8 on 32 px; 16 latent tokens; codebook 128 x 16), and
titok_tiny_expected.pt holds what upstream computed from it on [0, 1] images. The full-size layout is TiTok-BL-64
VQ's state dict as upstream builds it (titok_bl64_vq8k_state_dict_spec.json)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vistok
from vistok.cli import main as cli
from vistok.convert import CheckpointError
from vistok.families import get_family
from vistok.families.titok import convert_titok, titok_config_kwargs
from vistok.nets.titok import upstream_key_to_vistok
from vistok.registry import PRESETS
from vistok.zoo import ZooArchitectureWarning, get_entry

from .helpers import replace_zoo_entry
from .hub_cache import add_folder_to_hub_cache

DATA = Path(__file__).parent / "data"
TINY = DATA / "titok_tiny"
TOLERANCE = 1e-4
# configs/infer/TiTok/titok_bl64_vq8k.yaml as the reference README describes it.
BL64_CONFIG = {
    "model": {
        "vq_model": {
            "codebook_size": 8192,
            "token_size": 64,
            "use_l2_norm": False,
            "commitment_cost": 0.25,
            "vit_enc_model_size": "base",
            "vit_dec_model_size": "large",
            "vit_enc_patch_size": 16,
            "vit_dec_patch_size": 16,
            "num_latent_tokens": 64,
            "finetune_decoder": False,
            "is_legacy": False,
        }
    },
    "dataset": {"preprocessing": {"crop_size": 256}},
}


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "titok_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def tiny():
    return convert_titok(TINY, num_heads=2)


def _check_parity(tok, e) -> None:
    x = 2 * e["input"] - 1  # upstream takes [0, 1], vistok [-1, 1]
    with torch.no_grad():
        encoded = tok.encode(x)
        assert encoded.indices.shape == (3, 16)  # upstream: (3, 1, 16)
        assert torch.equal(encoded.indices, e["indices"][:, 0])
        decoded = tok.decode(e["indices"][:, 0])
        forward = tok(x).reconstruction
    assert ((decoded + 1) / 2 - e["reconstruction"]).abs().max() < TOLERANCE
    assert ((forward + 1) / 2 - e["forward_reconstruction"]).abs().max() < TOLERANCE


# ------------------------------------------------------------------------------------------------ parity
def test_tiny_folder_gives_upstreams_indices_and_reconstructions(tiny, expected):
    _check_parity(tiny, expected)
    assert tiny.config.token_layout.kind == "sequence" and tiny.config.tokens_per_image() == 16
    assert tiny.config.net["pixel_range"] == "unit" and not tiny.training


def test_weights_are_upstreams_unchanged(tiny):
    upstream = load_file(TINY / "model.safetensors")
    ours = tiny.state_dict()
    assert len(upstream) == len(ours)
    for key, value in upstream.items():
        assert torch.equal(ours[upstream_key_to_vistok(key)], value), key


def test_weight_file_path_and_pickled_mixin_weights_convert_the_same(tmp_path, expected):
    _check_parity(convert_titok(TINY / "model.safetensors", num_heads=(2, 2)), expected)
    folder = tmp_path / "bin"
    folder.mkdir()
    shutil.copy(TINY / "config.json", folder / "config.json")
    torch.save(load_file(TINY / "model.safetensors"), folder / "pytorch_model.bin")
    _check_parity(convert_titok(folder, num_heads=2), expected)


def test_the_head_count_and_the_pixel_mapping_matter(expected):
    """Why num_heads is required and pixel_range is 'unit': other values give other outputs."""
    one_head = convert_titok(TINY, num_heads=1)
    with torch.no_grad():
        decoded = one_head.decode(expected["indices"][:, 0])
    assert ((decoded + 1) / 2 - expected["reconstruction"]).abs().max() > 0.1
    config = convert_titok(TINY, num_heads=2).config.to_dict()
    config["net"]["pixel_range"] = "signed"
    signed = vistok.VisTokenizer(vistok.VisTokenizerConfig(**{k: config[k] for k in ("image_size", "net", "quantizer")}))
    signed.load_state_dict(convert_titok(TINY, num_heads=2).state_dict())
    with torch.no_grad():
        assert not torch.equal(signed.eval().encode(2 * expected["input"] - 1).indices, expected["indices"][:, 0])


# ----------------------------------------------------------------------------------------- head counts
def test_an_unknown_size_name_needs_num_heads_and_the_message_names_the_option():
    with pytest.raises(ValueError, match=r"'tiny'.*num_heads=ENC or \(ENC, DEC\).*--num-heads ENC\[,DEC\]"):
        convert_titok(TINY)
    for bad in (0, (2,), (2, 2, 2), "2", True):
        with pytest.raises(ValueError, match="num_heads must be a positive int or a pair"):
            convert_titok(TINY, num_heads=bad)
    with pytest.raises(ValueError, match="width 64 is not divisible by 3 heads"):
        convert_titok(TINY, num_heads=3)


def test_a_config_without_size_names_needs_num_heads(tmp_path, expected):
    def drop_sizes(vq):
        del vq["vit_enc_model_size"], vq["vit_dec_model_size"]

    folder = _folder_with_config(tmp_path, drop_sizes)
    with pytest.raises(ValueError, match=r"does not name the encoder ViT size \(vit_enc_model_size\).*--num-heads"):
        convert_titok(folder)
    _check_parity(convert_titok(folder, num_heads=2), expected)


def _meta_state_dict() -> dict[str, torch.Tensor]:
    spec = json.loads((DATA / "titok_bl64_vq8k_state_dict_spec.json").read_text())
    return {key: torch.empty(shape, device="meta") for key, shape in spec.items()}


def test_full_size_bl64_layout_maps_one_to_one_with_heads_from_the_size_names():
    state = _meta_state_dict()
    assert len(state) == 459 and next(iter(state)) == "latent_tokens"
    kwargs, notes = titok_config_kwargs(state, BL64_CONFIG)
    net = kwargs["net"]
    assert (net["encoder_width"], net["encoder_depth"], net["encoder_heads"]) == (768, 12, 12)  # "base"
    assert (net["decoder_width"], net["decoder_depth"], net["decoder_heads"]) == (1024, 24, 16)  # "large"
    assert (net["num_latent_tokens"], net["token_size"], net["image_size"]) == (64, 64, 256)
    assert any("'base'" in note for note in notes)
    with torch.device("meta"):
        tok = vistok.VisTokenizer(vistok.VisTokenizerConfig(**kwargs))
    ours = {key: tuple(t.shape) for key, t in tok.state_dict().items()}
    assert ours == {upstream_key_to_vistok(key): tuple(t.shape) for key, t in state.items()}
    assert tok.num_parameters() == sum(math.prod(t.shape) for t in state.values()) == 390_016_148
    preset = vistok.VisTokenizerConfig(**PRESETS.get("titok-bl64-vq8k-imagenet256").config)
    assert tok.config.net == preset.net and tok.config.quantizer == preset.quantizer  # the zoo entry will not warn


def test_num_heads_that_contradict_an_upstream_size_are_refused():
    with pytest.raises(ValueError, match="encoder 8 heads, but config.json names upstream's size 'base', which has 12"):
        titok_config_kwargs(_meta_state_dict(), BL64_CONFIG, num_heads=(8, 16))


# ---------------------------------------------------------------------------------------------- refusals
def _folder_with_config(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "titok"
    shutil.copytree(TINY, folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config["model"]["vq_model"])
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda vq: vq.update(finetune_decoder=True), "two-stage TiTok"),
        (lambda vq: vq.pop("finetune_decoder"), "leaves it unset, which upstream reads as true"),
        (lambda vq: vq.update(quantize_mode="vae"), "quantize_mode 'vae'"),
        (lambda vq: vq.update(is_legacy=True), "legacy latent layout"),
        (lambda vq: vq.update(num_latent_tokens=32), "num_latent_tokens=32 but the weights have 16"),
        (lambda vq: vq.update(codebook_size=4096), "codebook_size=4096 but the weights have 128"),
        (lambda vq: vq.update(vit_enc_model_size="small"), "'small' .width 512, 8 layers. but the weights have width 64"),
        (lambda vq: vq.update(use_l2_norm="yes"), "use_l2_norm='yes'"),
    ],
)
def test_configs_that_do_not_describe_a_supported_single_stage_vq_are_refused(tmp_path, edit, message):
    with pytest.raises(CheckpointError, match=message):
        convert_titok(_folder_with_config(tmp_path, edit), num_heads=2)


def test_bad_files_and_arguments_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_titok(tmp_path / "nothing", num_heads=2)
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(TINY / "model.safetensors", lone / "model.safetensors")
    with pytest.raises(CheckpointError, match="no config.json beside model.safetensors"):
        convert_titok(lone, num_heads=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds none of"):
        convert_titok(tmp_path / "empty", num_heads=2)
    (lone / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        convert_titok(lone, num_heads=2)
    (lone / "config.json").write_text(json.dumps({"model_type": "vistok"}))
    with pytest.raises(CheckpointError, match="no model.vq_model section"):
        convert_titok(lone, num_heads=2)
    with pytest.raises(CheckpointError, match="weights must be 'auto'"):
        convert_titok(TINY, num_heads=2, weights="ema")
    with pytest.raises(ValueError, match="image_size 256: this TiTok takes 32px images only"):
        convert_titok(TINY, num_heads=2, image_size=256)


def test_a_two_stage_state_dict_is_refused_by_its_extra_tensors(tmp_path):
    folder = tmp_path / "extra"
    shutil.copytree(TINY, folder)
    weights = load_file(TINY / "model.safetensors")
    weights["pixel_decoder.conv_in.weight"] = torch.zeros(1)
    from safetensors.torch import save_file

    save_file(weights, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"1 tensor\(s\) a single-stage TiTok does not have \(pixel_decoder"):
        convert_titok(folder, num_heads=2)


# ----------------------------------------------------------------------------------------- layout / API
def test_sequence_indices_and_image_size_are_checked(tiny):
    with pytest.raises(ValueError, match=r"indices must have shape \(B, 16\) \(a sequence of 16 tokens\)"):
        tiny.decode(torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="32×32 images"):
        tiny.encode(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="takes 32×32 images"):
        tiny.encoder(torch.zeros(1, 3, 64, 64))  # the net itself, if its config says another size


def test_net_options_are_validated():
    base = {"type": "titok", **vistok.NETS.get("titok").tiny}
    for change, message in (
        ({"encoder_patch_size": 3}, "encoder_patch_size .3. must divide image_size .16."),
        ({"decoder_heads": 3}, r"decoder_width \(16\) must be divisible by decoder_heads \(3\)"),
        ({"pixel_range": "0-1"}, "pixel_range must be one of 'signed', 'unit'"),
        ({"quant_conv": 1}, "quant_conv must be true or false"),
        ({"num_latent_tokens": 0}, "'num_latent_tokens' must be a positive integer"),
    ):
        with pytest.raises(ValueError, match=message):
            vistok.VisTokenizerConfig(image_size=16, net={**base, **change})


# -------------------------------------------------------------------------------------------------- CLI
def test_cli_converts_with_num_heads_and_refuses_without(tmp_path, expected, capsys):
    out = tmp_path / "out"
    assert cli(["convert", "titok", str(TINY), str(out), "--num-heads", "2,2"]) == 0
    assert "1-D sequence of 16 tokens" in capsys.readouterr().out
    _check_parity(vistok.VisTokenizer.from_pretrained(out), expected)
    with pytest.raises(SystemExit, match="--num-heads ENC"):
        cli(["convert", "titok", str(TINY), str(tmp_path / "other")])
    with pytest.raises(SystemExit, match="--num-heads must be ENC or ENC,DEC"):
        cli(["convert", "titok", str(TINY), str(tmp_path / "other"), "--num-heads", "2,x"])
    with pytest.raises(SystemExit, match="--num-heads applies to titok checkpoints only"):
        cli(["convert", "llamagen", str(DATA / "llamagen_tiny.pt"), str(tmp_path / "other"), "--num-heads", "2"])
    assert get_family("titok").convert is convert_titok


# -------------------------------------------------------------------------------------------------- zoo
BL64_REPO = "yucornetto/tokenizer_titok_bl64_vq8k_imagenet"


def test_zoo_entries_point_at_the_readme_repos():
    for variant, tokens, rfid in (("bl64", 64, 2.06), ("bl128", 128, 1.49), ("sl256", 256, 1.03)):
        entry = get_entry(f"titok-{variant}-vq8k-imagenet256")
        assert entry.repo_id == f"yucornetto/tokenizer_titok_{variant}_vq8k_imagenet"
        assert entry.filenames == ("model.safetensors",) and entry.companion_files == ("config.json",)
        assert entry.converter == "titok" and entry.image_size == 256 and entry.license.id == "apache-2.0"
        assert entry.reported("rfid") == rfid
        with torch.device("meta"):
            tok = vistok.create_tokenizer(entry.preset)
        assert tok.config.tokens_per_image() == tokens
        assert tok.config.net["encoder_width"] == (512 if variant == "sl256" else 768)


def test_zoo_loads_the_tiny_folder_under_the_real_repo_id(hub, monkeypatch, expected):
    add_folder_to_hub_cache(hub, BL64_REPO, TINY)
    # The tiny file names the size "tiny" (heads not in the weights) and is 32 px: give the entry what it needs.
    name = "titok-bl64-vq8k-imagenet256"
    replace_zoo_entry(monkeypatch, name, image_size=32, converter_options={"num_heads": 2})
    with pytest.warns(ZooArchitectureWarning, match="net.encoder_width: catalogue 768, file 64"):
        tok = vistok.create_tokenizer(name, pretrained=True)
    _check_parity(tok, expected)
    assert tok.config.metadata["zoo"]["name"] == name
    assert tok.config.metadata["origin"]["name"] == "TiTok"
    with pytest.warns(ZooArchitectureWarning):
        _check_parity(vistok.VisTokenizer.from_pretrained(BL64_REPO), expected)

"""Show-o's MAGVIT-v2 tokenizer (issue 21, part 3): the converter (architecture from the shapes, separate encoder /
decoder level lists, LFQ bit order), the vqgan net's per-side options, the zoo entry.

Expected values come from showlab/Show-o's own code run on the reference folder (``tests/data/showo``, copied from
``shared/reference/showo``): inputs in [-1, 1], ``get_code`` indices (B, h·w), the raw ``decode_code``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.convert import CheckpointError
from vistok.families.showo import LLM_TOKEN_OFFSET, PRESET, convert_showo, infer_showo_config, showo_to_vistok

DATA = Path(__file__).parent / "data" / "showo"
TINY = DATA / "showo_magvitv2_tiny"
WEIGHTS = TINY / "pytorch_model.safetensors"


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "showo_magvitv2_tiny_expected.pt", weights_only=True)


def check_parity(tok: VisTokenizer, expected, indices_key: str = "indices") -> None:
    assert not tok.training
    with torch.no_grad():
        encoded = tok.encode(expected["input"])
        assert torch.equal(encoded.indices.reshape(3, -1), expected[indices_key])
        assert torch.equal(encoded.quantized, expected["quantized"])
        if indices_key == "indices":
            assert (tok.decode(encoded.indices) - expected["reconstruction"]).abs().max() < 1e-4


# ------------------------------------------------------------------------------------------------ converter
@pytest.mark.parametrize("path", [TINY, WEIGHTS])
def test_converter_reproduces_upstream(path, expected):
    tok = convert_showo(path, image_size=32)
    check_parity(tok, expected)
    net = tok.config.net
    # the tiny file's two sides, read from the keys (upstream's kwargs in the expected file's config)
    assert net["channel_multiplier"] == [1, 1, 2] and net["encoder_res_blocks"] == [2, 1, 2]
    assert net["decoder_channel_multiplier"] == [1, 1, 1] and net["decoder_res_blocks"] == [2, 2, 1]
    assert net["attention_levels"] == [] and net["mid_attention"] is True
    assert tok.config.quantizer["bit_order"] == "msb_first" and tok.config.quantizer["codebook_dim"] == 13
    assert sum(p.numel() for p in tok.parameters()) == expected["stats"]["parameters"]
    with torch.no_grad():
        assert not torch.equal(tok.encode(expected["input"]).indices.reshape(3, -1), expected["indices_if_lsb_first"])
    meta = tok.config.metadata
    assert meta["origin"]["name"] == "Show-o" and meta["origin"]["config_class"] == "MAGVITv2"
    ids = meta["model_ids"]
    assert ids["kind"] == "offset" and ids["offset"] == LLM_TOKEN_OFFSET == expected["llm_token_offset"]
    assert torch.equal(expected["indices"] + ids["offset"], expected["llm_token_ids"])
    assert ids["mask_token_id"] == 58497


def test_bit_order_is_read_from_the_file(expected, tmp_path):
    """A file whose power_vals (and code table) are LSB-first converts to lsb_first: upstream's indices for it are
    what the README calls indices_if_lsb_first."""
    state = load_file(WEIGHTS)
    state["quantize.power_vals"] = state["quantize.power_vals"].flip(0).contiguous()
    state["quantize.embedding"] = state["quantize.embedding"].flip(1).contiguous()
    save_file(state, tmp_path / "pytorch_model.safetensors", metadata={"format": "pt"})
    tok = convert_showo(tmp_path / "pytorch_model.safetensors", image_size=32)
    assert tok.config.quantizer["bit_order"] == "lsb_first"
    check_parity(tok, expected, "indices_if_lsb_first")
    # a code table that is not the bits of the row index in power_vals' order is refused
    state["quantize.embedding"] = state["quantize.embedding"].flip(1).contiguous()
    save_file(state, tmp_path / "pytorch_model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not the ±1 bit table"):
        convert_showo(tmp_path / "pytorch_model.safetensors", image_size=32)


def test_refusals_name_what_the_file_is(tmp_path):
    folder = tmp_path / "other"
    shutil.copytree(TINY, folder)
    (folder / "config.json").write_text(json.dumps({"_class_name": "VQModel"}))
    with pytest.raises(CheckpointError, match="describes a 'VQModel', not Show-o's MAGVITv2"):
        convert_showo(folder)
    with pytest.raises(CheckpointError, match="not Show-o's MAGVIT-v2 .*Taming"):
        state = torch.load(Path(__file__).parent / "data" / "ibq_tiny.ckpt", weights_only=True)["state_dict"]
        save_file({k: v.contiguous() for k, v in state.items() if k.startswith(("encoder.", "decoder."))},
                  tmp_path / "taming.safetensors")
        convert_showo(tmp_path / "taming.safetensors")
    with pytest.raises(CheckpointError, match="holds none of Show-o's weight files"):
        convert_showo(tmp_path)
    with pytest.raises(ValueError, match="one set of weights"):
        convert_showo(TINY, weights="ema")
    with pytest.raises(ValueError, match="multiple of the downsample factor 4"):
        convert_showo(TINY, image_size=30)


# ---------------------------------------------------------------------------------------------- the net
def test_vqgan_per_side_options_are_validated_and_mirrored_by_default():
    base = {"type": "vqgan", "base_channels": 8, "channel_multiplier": [1, 2], "num_res_blocks": 1,
            "latent_channels": 4, "norm_groups": 4}
    wide = {**base, "channel_multiplier": [2, 4], "norm_groups": 16}  # widths 16, 32
    for net, message in [
        ({**base, "encoder_res_blocks": [1]}, "encoder_res_blocks must be null or a list of 2 positive ints"),
        ({**base, "decoder_res_blocks": [1, 0]}, "decoder_res_blocks must be null or a list of 2 positive ints"),
        ({**wide, "decoder_channel_multiplier": [2, 3]}, "decoder width 24 .* not divisible by norm_groups=16"),
        ({**base, "mid_attention": "yes"}, "mid_attention must be true or false"),
        ({**base, "decoder_unavailable": " "}, "decoder_unavailable must be null or a message"),
    ]:
        with pytest.raises(ValueError, match=message):
            VisTokenizerConfig(image_size=16, net=net, quantizer={"type": "lfq", "codebook_dim": 4})
    mirrored = VisTokenizerConfig(image_size=16, net=base, quantizer={"type": "lfq", "codebook_dim": 4})
    family = mirrored.net_family()
    assert family.is_mirrored and family.decoder_res_blocks == [2, 2] and family.encoder_res_blocks == [1, 1]
    explicit = VisTokenizerConfig(image_size=16, net={**base, "encoder_res_blocks": [1, 1], "decoder_res_blocks": [2, 2],
                                                      "decoder_channel_multiplier": [1, 2]},
                                  quantizer={"type": "lfq", "codebook_dim": 4})
    torch.manual_seed(0)
    a = VisTokenizer(mirrored)
    torch.manual_seed(0)
    b = VisTokenizer(explicit)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_a_non_mirrored_net_is_refused_by_to_diffusers():
    pytest.importorskip("diffusers")
    tok = convert_showo(TINY, image_size=32)
    with pytest.raises(ValueError, match="does not mirror its encoder"):
        tok.to_diffusers()


# ---------------------------------------------------------------------------------------------- full size
def test_full_size_release_layout_is_the_preset():
    spec = json.loads((DATA / "showo_magvitv2_state_dict_spec.json").read_text())
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in spec.items()}
    assert len(state_dict) == 382
    inferred = infer_showo_config(state_dict)
    preset = VisTokenizerConfig(**PRESET.config)
    assert {k: preset.net[k] for k in inferred["net"]} == inferred["net"]
    assert inferred["quantizer"]["codebook_dim"] == 13
    with torch.device("meta"):
        tok = vistok.create_tokenizer(PRESET.name)
    converted = showo_to_vistok(state_dict)
    assert {k: tuple(v.shape) for k, v in tok.state_dict().items()} == {k: tuple(v.shape) for k, v in converted.items()}
    assert tok.num_parameters() == 95_387_004  # the spec's 382 keys less the two LFQ buffers (106,509 values)
    assert tok.config.tokens_per_image() == 256 and tok.config.downsample_factor == 16
    # where the README puts the width-changing blocks
    for key in ("encoder.conv_blocks.1.res.0.nin_shortcut.weight", "encoder.conv_blocks.3.res.0.nin_shortcut.weight",
                "decoder.conv_blocks.1.res.0.nin_shortcut.weight", "decoder.conv_blocks.3.res.0.nin_shortcut.weight"):
        assert key in converted, key
    assert tuple(converted["decoder.conv_blocks.3.res.0.nin_shortcut.weight"].shape)[:2] == (128, 256)  # up.1


def test_preprocessing_is_upstreams(expected):
    """Show-o's image_transform(img, 32) on the photos the vectors were made from (torchvision bicubic, round)."""
    skimage = pytest.importorskip("skimage.data")
    from PIL import Image

    from vistok.families import get_family
    from vistok.preprocessing import preprocess

    pipeline = get_family("showo").preprocessing(32)
    for image, pixels in zip((skimage.astronaut(), skimage.coffee(), skimage.chelsea()), expected["input"], strict=True):
        ours = torch.from_numpy(preprocess(Image.fromarray(image), pipeline).copy()).permute(2, 0, 1)
        assert torch.equal(ours, ((pixels.double() + 1) * 127.5).round().to(torch.uint8))


# --------------------------------------------------------------------------------------------------- zoo
def test_zoo_entry_names_the_files_and_loads_from_the_hub_cache(hub, monkeypatch, expected):
    from vistok.zoo import ZooArchitectureWarning, get_entry

    from .helpers import replace_zoo_entry
    from .hub_cache import add_folder_to_hub_cache

    entry = get_entry("showo-magvitv2")
    assert (entry.repo_id, entry.filenames[0], entry.companion_files) == (
        "showlab/magvitv2", "pytorch_model.safetensors", ("config.json",)
    )
    assert entry.preset == PRESET.name and entry.license.permissive
    add_folder_to_hub_cache(hub, "showlab/magvitv2", TINY)
    replace_zoo_entry(monkeypatch, "showo-magvitv2", image_size=32)
    with pytest.warns(ZooArchitectureWarning, match="net.base_channels: catalogue 128, file 32"):
        tok = vistok.create_tokenizer("showo-magvitv2", pretrained=True)
    check_parity(tok, expected)
    assert tok.config.metadata["model_ids"]["offset"] == LLM_TOKEN_OFFSET
    with pytest.warns(ZooArchitectureWarning):
        again = VisTokenizer.from_pretrained("showlab/magvitv2")
    check_parity(again, expected)

"""Infinity's bitwise multi-scale BSQ VAE (issue 22, part 3): the ``multiscale_bsq`` quantizer, the ``var`` net
without quant convs, the converter and the zoo entries.

Expected values come from upstream's code run on the reference file (``tests/data/infinity/``, made from
FoundationVision/Infinity at 4c27bbb with random weights, see its README), or from the algorithm written out here."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.convert import CheckpointError
from vistok.families.infinity import (
    PIXEL_BUDGETS,
    convert_infinity,
    dynamic_resolution_scales,
    infinity_tokenizer_config,
    scale_schedule,
)
from vistok.quantizers.multiscale_bsq import INFINITY_SQUARE_SCALES, MultiScaleBinarySphericalQuantizer

from .helpers import replace_zoo_entry
from .hub_cache import add_to_hub_cache

DATA = Path(__file__).parent / "data" / "infinity"
TINY = DATA / "infinity_vae_d8.pth"
TINY_SCHEDULE = [1, 2, 4, 6, 8]


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "infinity_vae_d8_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def tok():
    return convert_infinity(TINY, image_size=32)


def check_parity(tok: VisTokenizer, expected) -> None:
    """Bits, indices and Infinity's labels exact; reconstructions within 1e-4 (the README's tolerance)."""
    q = tok.quantizer
    with torch.no_grad():
        enc = tok.encode(expected["input"])
        assert [tuple(i.shape) for i in enc.indices] == [(3, p, p) for p in TINY_SCHEDULE]
        assert all(i.dtype == torch.int64 for i in enc.indices)
        for k, (ours, theirs) in enumerate(zip(q.bits(enc.indices), expected["bit_indices"], strict=True)):
            assert torch.equal(ours, theirs[:, 0].long()), f"bits of scale {k}"
        for k, (ours, theirs) in enumerate(zip(enc.indices, expected["indices"], strict=True)):
            assert torch.equal(ours, theirs[:, 0]), f"indices of scale {k}"
        labels = q.bit_labels(enc.indices)
        assert all(torch.equal(a, b.long()) for a, b in zip(labels, expected["infinity_gt_bit_labels"], strict=True))
        reconstruction = tok.decode(enc.indices)
        assert (reconstruction - expected["reconstruction_unclamped"]).abs().max() < 1e-4
        assert (reconstruction.clamp(-1, 1) - expected["reconstruction"]).abs().max() < 1e-4
        # the generation path: upstream's bit labels → indices → image
        from_bits = tok.decode(q.bits_to_indices(expected["infinity_gt_bit_labels"])).clamp(-1, 1)
        assert (from_bits - expected["reconstruction_from_indices"]).abs().max() < 1e-4


# ------------------------------------------------------------------------------------- parity with upstream
def test_converted_tiny_reference_reproduces_upstream(tok, expected):
    check_parity(tok, expected)
    with torch.no_grad():
        enc = tok.encode(expected["input"])
        assert (tok.encoder(expected["input"]) - expected["encoder_output"]).abs().max() < 1e-4
        assert (enc.quantized - expected["quantized"]).abs().max() < 1e-5
        summed = tok.quantizer.indices_to_codes(enc.indices)
        assert torch.equal(summed, enc.quantized)
        assert (summed - expected["summed_codes_from_bits"][:, :, 0]).abs().max() < 1e-5
        # upstream's own int64 indices decode to its reconstruction
        theirs = [i[:, 0] for i in expected["indices"]]
        assert (tok.decode(theirs).clamp(-1, 1) - expected["reconstruction"]).abs().max() < 1e-4
        # the transformer's teacher-forcing inputs (trilinear, not area)
        inputs = tok.quantizer.next_scale_inputs(enc.indices)
        assert inputs.shape == (3, 120, 8) and (inputs - expected["infinity_x_BLC_wo_prefix"]).abs().max() < 1e-5
        # the multi-scale layout reads the scales coarse to fine, row-major: Infinity's label order
        flat = tok.token_layout.flatten(enc.indices)
        assert torch.equal(flat, torch.cat([i.reshape(3, -1) for i in expected["indices"]], dim=1))
        progressive = tok.decode_progressive(enc.indices)
        assert len(progressive) == 5 and torch.equal(progressive[-1], tok.decode(enc.indices))


def test_converter_reads_the_architecture_from_the_shapes(tok, expected):
    config = expected["config"]
    assert tok.config.net == {**tok.config.net, "type": "var", "base_channels": config["override"]["base_ch"],
                              "channel_multiplier": config["ch_mult"],
                              "num_res_blocks": config["override"]["num_res_blocks"], "latent_channels": 8,
                              "attention": False, "mid_attention": False, "quant_conv": False, "norm_groups": 32}
    q = tok.config.quantizer
    assert (q["type"], q["codebook_dim"], q["patch_nums"]) == ("multiscale_bsq", 8, TINY_SCHEDULE)
    assert tok.codebook_size == 256 and tok.downsample_factor == config["patch_size"] == 4
    assert tok.config.image_size == 32 and tok.config.tokens_per_image() == 1 + 4 + 16 + 36 + 64
    assert isinstance(tok.quant_conv, torch.nn.Identity) and isinstance(tok.post_quant_conv, torch.nn.Identity)
    assert tok.num_parameters() == 459_307
    # every weight arrives unchanged under its plain name; the two mask buffers are checked and dropped
    upstream = torch.load(TINY, weights_only=True)["vae"]
    ours = tok.state_dict()
    plain = {k.replace(".conv.weight", ".weight").replace(".conv.bias", ".bias").replace(".norm.weight", ".weight")
             .replace(".norm.bias", ".bias"): v for k, v in upstream.items() if not k.endswith("lfq.mask")}
    assert set(ours) == set(plain) and all(torch.equal(ours[k], v) for k, v in plain.items())
    meta = tok.config.metadata
    assert meta["origin"]["name"] == "Infinity" and meta["license"] == "mit"
    assert meta["paper"]["url"] == "https://arxiv.org/abs/2412.04431"
    assert meta["origin"]["weights"] == "vae" and meta["origin"]["key_layout"] == "wrapped"
    assert meta["origin"]["dropped_entries"] == ["quantizer.lfq.mask", "quantize.lfq.mask"]


def _save(tmp_path: Path, obj, name: str = "file.pth") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _plain(state_dict: dict) -> dict:
    """The layout without upstream's wrapper level (nn.Conv2d / nn.GroupNorm names), as load_cnn also accepts."""
    out = {}
    for key, value in state_dict.items():
        for part in (".conv.weight", ".conv.bias", ".norm.weight", ".norm.bias"):
            if key.endswith(part):
                key = key[: -len(part)] + part[5:]
                break
        out[key] = value
    return out


def test_both_key_layouts_and_a_bare_state_dict_convert_identically(tmp_path, tok, expected):
    upstream = torch.load(TINY, weights_only=True)["vae"]
    plain = _plain(upstream)
    assert "encoder.down.0.downsample.conv.weight" in plain and "encoder.conv_in.weight" in plain
    for path in (_save(tmp_path, {"vae": plain}, "plain.pth"), _save(tmp_path, dict(upstream), "bare.pth")):
        other = convert_infinity(path, scale_schedule=TINY_SCHEDULE)
        assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), tok.state_dict().values(), strict=True))
        check_parity(other, expected)
    assert convert_infinity(tmp_path / "plain.pth", image_size=32).config.metadata["origin"]["key_layout"] == "plain"


def test_converted_tokenizer_saves_and_reloads_bit_identically(tmp_path, tok, expected):
    tok.save_pretrained(tmp_path)
    loaded = VisTokenizer.from_pretrained(tmp_path)
    check_parity(loaded, expected)
    with torch.no_grad():
        assert torch.equal(tok.decode(tok.encode(expected["input"]).indices),
                           loaded.decode(loaded.encode(expected["input"]).indices))


def test_cli_converts_with_a_scale_schedule(tmp_path, expected):
    from vistok.cli import main as cli

    out = tmp_path / "infinity"
    assert cli(["convert", "infinity", str(TINY), str(out), "--scale-schedule", "1,2,4,6,8"]) == 0
    check_parity(VisTokenizer.from_pretrained(out), expected)
    assert "Infinity" in (out / "README.md").read_text()
    assert cli(["convert", "infinity", str(TINY), str(tmp_path / "i32"), "--image-size", "32"]) == 0
    assert VisTokenizer.from_pretrained(tmp_path / "i32").config.quantizer["patch_nums"] == TINY_SCHEDULE
    with pytest.raises(SystemExit, match="comma-separated positive integers"):
        cli(["convert", "infinity", str(TINY), str(tmp_path / "x"), "--scale-schedule", "1;2"])
    with pytest.raises(SystemExit, match="--scale-schedule applies to infinity checkpoints only"):
        cli(["convert", "var", str(TINY), str(tmp_path / "v"), "--scale-schedule", "1M"])


# ------------------------------------------------------------------------------------------------ schedules
def test_schedules_are_infinitys_dynamic_resolution_tables():
    assert scale_schedule("0.06M", 16, None) == [1, 2, 4, 6, 8, 12, 16]
    assert scale_schedule("1M", 16, None) == list(INFINITY_SQUARE_SCALES) and INFINITY_SQUARE_SCALES[-1] == 64
    assert scale_schedule("0.06M", 8, None) == [2, 4, 8, 12, 16, 24, 32]  # apply_spatial_patchify doubles it
    assert scale_schedule(None, 16, 512) == scale_schedule("0.25M", 16, None)
    assert scale_schedule(None, 16, None) == [1, 2, 4, 6, 8, 12, 16]  # 256 px by default
    assert scale_schedule(None, 4, 32) == TINY_SCHEDULE  # other factors: the ladder prefix ending at the latent
    assert scale_schedule([1, 3, 5], 16, None) == [1, 3, 5]
    assert {n: len(scale_schedule(n, 16, None)) for n in PIXEL_BUDGETS} == {"0.06M": 7, "0.25M": 10, "0.60M": 12, "1M": 13}
    assert dynamic_resolution_scales(1.0, "0.06M") == [(s, s) for s in (1, 2, 4, 6, 8, 12, 16)]
    assert dynamic_resolution_scales(1.25, "1M")[-1] == (70, 56) and dynamic_resolution_scales(0.8, "1M")[-1] == (56, 70)
    assert dynamic_resolution_scales(0.333, "0.06M")[-1] == (9, 27)  # 3.0 transposed
    with pytest.raises(ValueError, match="pixel budgets"):
        scale_schedule("2M", 16, None)
    with pytest.raises(ValueError, match="no Infinity schedule ends at 100 px"):
        scale_schedule(None, 16, 100)
    with pytest.raises(ValueError, match="f4: give the scales as a list"):
        scale_schedule("1M", 4, None)
    with pytest.raises(KeyError, match="no Infinity schedule for h/w = 1.1"):
        dynamic_resolution_scales(1.1, "1M")


def test_schedule_and_image_size_must_fit_the_file():
    with pytest.raises(ValueError, match=r"image_size 64 does not fit the scale schedule ending in 8.*= 32 px"):
        convert_infinity(TINY, image_size=64, scale_schedule=TINY_SCHEDULE)
    with pytest.raises(ValueError, match="strictly increasing"):
        convert_infinity(TINY, scale_schedule=[1, 4, 2, 8])
    assert convert_infinity(TINY, scale_schedule=[2, 8]).config.image_size == 32


# ------------------------------------------------------------------------------------ the quantizer's maths
def written_out(z: torch.Tensor, patch_nums: list[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The module docstring's steps with adaptive average pooling and bilinear upsampling, bits read MSB-first."""
    d, size = z.shape[1], z.shape[-1]
    rest, f_hat, indices = z.clone(), torch.zeros_like(z), []
    weights = [2 ** (d - 1 - c) for c in range(d)]
    for p in patch_nums:
        query = rest if p == size else F.adaptive_avg_pool2d(rest, p)
        u = query / query.norm(dim=1, keepdim=True)
        bits = (u > 0).long()
        indices.append(sum(bits[:, c] * weights[c] for c in range(d)))
        code = (2 * bits - 1).float() / d**0.5
        if p != size:
            code = F.interpolate(code, size=(size, size), mode="bilinear", align_corners=False)
        f_hat, rest = f_hat + code, rest - code
    return indices, f_hat


def test_forward_is_the_written_out_algorithm_and_losses_average_bsqs_over_scales():
    q = MultiScaleBinarySphericalQuantizer(codebook_dim=6, patch_nums=[1, 3, 4, 7]).train()
    z = torch.randn(2, 6, 7, 7, requires_grad=True)
    out = q(z)
    indices, f_hat = written_out(z.detach(), [1, 3, 4, 7])
    assert all(torch.equal(a, b) for a, b in zip(out.indices, indices, strict=True))
    torch.testing.assert_close(out.quantized, f_hat, rtol=0, atol=1e-6)
    assert set(out.losses) == {"commitment_loss", "entropy_loss"}
    # each scale is BSQ on its (area-resized) residual: the averaged losses are those of the four BSQ calls
    rest, terms = z.detach().clone(), []
    for p in [1, 3, 4, 7]:
        query = rest if p == 7 else F.adaptive_avg_pool2d(rest, p)
        terms.append(q.bsq(query).losses["entropy_loss"])
        codes = q._upsample(q.bsq(query).quantized, (7, 7))
        rest = rest - codes
    torch.testing.assert_close(out.losses["entropy_loss"], sum(terms) / 4)
    (out.quantized.sum() + out.losses["entropy_loss"]).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_exact_zero_gives_bit_zero_and_codes_are_unit_vectors():
    q = MultiScaleBinarySphericalQuantizer(codebook_dim=4, patch_nums=[1]).eval()
    z = torch.tensor([1.0, 0.0, -2.0, 3.0]).view(1, 4, 1, 1)
    out = q(z)
    assert out.indices[0].item() == 0b1001
    assert torch.equal(q.bits(out.indices)[0].view(-1), torch.tensor([1, 0, 0, 1]))
    assert torch.allclose(out.quantized.norm(dim=1), torch.ones(1, 1, 1))


def test_64_bits_are_the_int64_bit_pattern_msb_as_sign():
    q = MultiScaleBinarySphericalQuantizer(codebook_dim=64, patch_nums=[1, 2]).eval()
    z = torch.randn(3, 64, 2, 2)
    z[0, 0, 0, 0] = 5.0  # MSB set on one token of the last scale
    out = q(z)
    assert int(out.indices[1][0, 0, 0]) < 0 and q.codebook_size == 2**64
    indices, f_hat = written_out(z, [1, 2])
    assert torch.equal(q.bits(out.indices)[0], (F.adaptive_avg_pool2d(z, 1).permute(0, 2, 3, 1) > 0).long())
    assert all(torch.equal(a, b) for a, b in zip(out.indices, indices, strict=True))  # int64 arithmetic wraps alike
    torch.testing.assert_close(out.quantized, f_hat, rtol=0, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(q.bits_to_indices(q.bit_labels(out.indices)), out.indices, strict=True))
    assert torch.equal(q.indices_to_codes(out.indices), out.quantized)
    q.check_indices([torch.full((1, 1, 1), -(2**63)), torch.full((1, 2, 2), 2**63 - 1)])  # every int64 is a token


def test_bad_options_bits_and_indices_name_what_is_expected():
    base = {"type": "multiscale_bsq", "codebook_dim": 8, "patch_nums": [1, 2]}
    net = {"type": "var", "base_channels": 8, "channel_multiplier": [1, 2], "num_res_blocks": 1, "latent_channels": 8,
           "norm_groups": 4, "quant_conv": False, "attention": False, "mid_attention": False}
    for options, message in [({"codebook_dim": 65}, "<= 64"), ({"patch_nums": [2, 1]}, "strictly increasing"),
                             ({"patch_nums": []}, "non-empty"), ({"entropy_group_size": 16}, "entropy_group_size")]:
        with pytest.raises(ValueError, match=message):
            VisTokenizerConfig(image_size=4, net=net, quantizer={**base, **options})
    with pytest.raises(ValueError, match=r"latent_channels \(8\) must equal the quantizer's codebook_dim \(6\)"):
        VisTokenizer(VisTokenizerConfig(image_size=4, net=net, quantizer={**base, "codebook_dim": 6}))
    q = MultiScaleBinarySphericalQuantizer(codebook_dim=3, patch_nums=[1, 2])
    with pytest.raises(ValueError, match=r"indices\[1\] must lie in \[0, 8\)"):
        q.indices_to_codes([torch.zeros(1, 1, 1, dtype=torch.long), torch.full((1, 2, 2), 8)])
    with pytest.raises(ValueError, match=r"bits\[0\] must have shape \(B, 1, 1, 3\) or \(B, 1, 3\)"):
        q.bits_to_indices([torch.zeros(1, 1, 4, dtype=torch.long), torch.zeros(1, 4, 3, dtype=torch.long)])
    with pytest.raises(ValueError, match="0 / 1 values"):
        q.bits_to_indices([torch.full((1, 1, 3), 2), torch.zeros(1, 4, 3, dtype=torch.long)])
    with pytest.raises(ValueError, match=r"latents of shape \(B, 3, 2, 2\)"):
        q(torch.zeros(1, 3, 4, 4))


# ------------------------------------------------------------------------------------------------ bad files
@pytest.fixture(scope="module")
def upstream():
    return dict(torch.load(TINY, weights_only=True)["vae"])


def test_other_files_are_refused_naming_what_they_are(tmp_path, upstream):
    with pytest.raises(CheckpointError, match="no 'vae' entry .* top-level keys are \\['model'\\]"):
        convert_infinity(_save(tmp_path, {"model": {"x": torch.zeros(1)}}))
    with pytest.raises(CheckpointError, match="Infinity's transformer"):
        convert_infinity(_save(tmp_path, {"word_embed.weight": torch.zeros(2, 2), "blocks.0.x": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match="VAR's VQVAE"):
        convert_infinity(Path(__file__).parent / "data" / "var_tiny.pth")
    with pytest.raises(CheckpointError, match="no 'ema' entry"):
        convert_infinity(TINY, weights="ema")
    with pytest.raises(ValueError, match="weights='x'"):
        convert_infinity(TINY, weights="x")
    with pytest.raises(CheckpointError, match="not a checkpoint|not an Infinity VAE"):
        convert_infinity(_save(tmp_path, [1, 2, 3]))


def _edit(state: dict, edit) -> dict:
    state = dict(state)
    edit(state)
    return state


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sd: sd.update({"quantizer.lfq.mask": 2 ** torch.arange(8)}), r"channel 0 the most significant bit"),
        (lambda sd: sd.update({"encoder.conv_in.weight": sd.pop("encoder.conv_in.conv.weight")}), "mixed key layouts"),
        (lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("decoder.up.2.block.1.")],
         r"decoder level 2 has 1 residual blocks; .*num_res_blocks \+ 1 = 2"),
        (lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("encoder.down.1.downsample.")],
         r"downsamples after levels \[0\]; .*patch_size must be 2\^\(len\(ch_mult\) - 1\)"),
        (lambda sd: sd.update({"decoder.extra.conv.weight": torch.zeros(1)}), r"unexpected .*decoder.extra.weight"),
        (lambda sd: sd.pop("decoder.mid.block_2.conv1.conv.bias"), r"missing .*decoder.mid.block_2.conv1.bias"),
    ],
)
def test_inconsistent_files_are_named(tmp_path, upstream, edit, message):
    with pytest.raises(CheckpointError, match=message):
        convert_infinity(_save(tmp_path, {"vae": _edit(upstream, edit)}), image_size=32)


def test_keys_upstream_ignores_are_dropped_with_a_note(tmp_path, upstream, expected):
    extra = {"encoder.mid.attn_1.q.conv.weight": torch.zeros(64, 64, 1, 1), "discriminator.w": torch.zeros(2)}
    tok = convert_infinity(_save(tmp_path, {"vae": {**upstream, **extra}}), image_size=32)
    check_parity(tok, expected)
    meta = tok.config.metadata
    assert set(extra) <= set(meta["origin"]["dropped_entries"])
    assert any("load_cnn ignores were dropped" in note for note in meta["converter"]["notes"])


# ------------------------------------------------------------------------------------- full-size layouts
SPECS = {  # spec file → (preset, keys, parameters: the README's counts)
    "infinity_vae_d16": ("infinity-vae-d16", 270, 109_970_579),
    "infinity_vae_d24": ("infinity-vae-d24", 270, 110_044_315),
    "infinity_vae_d32": ("infinity-vae-d32", 270, 110_118_051),
    "infinity_vae_d64": ("infinity-vae-d64", 270, 110_412_995),
    "infinity_vae_d56_f8_14_patchify": ("infinity-vae-d56-f8-14-patchify", 226, 81_624_209),
}


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("layout", ["wrapped", "plain"])
def test_full_size_spec_gives_the_preset_architecture_on_meta(name, layout):
    preset_name, keys, parameters = SPECS[name]
    spec = json.loads((DATA / f"{name}_state_dict_spec.json").read_text())
    assert len(spec) == keys
    state_dict = {key: torch.empty(shape, device="meta", dtype=torch.int64 if key.endswith("mask") else torch.float32)
                  for key, shape in spec.items()}
    if layout == "plain":
        state_dict = _plain(state_dict)
    config, net, notes = infinity_tokenizer_config(state_dict, None, 256)
    preset = vistok.PRESETS.get(preset_name).config
    assert VisTokenizerConfig(**config).net == VisTokenizerConfig(**preset).net
    assert VisTokenizerConfig(**config).quantizer == VisTokenizerConfig(**preset).quantizer
    with torch.device("meta"):
        tok = VisTokenizer(VisTokenizerConfig(**preset))
    ours = {key: tuple(value.shape) for key, value in tok.state_dict().items()}
    assert ours == {key: tuple(value.shape) for key, value in net.items()}  # every key mapped, none left over
    assert len(net) == keys - 2  # the two mask buffers
    assert tok.num_parameters() == parameters
    assert tok.config.tokens_per_image() == (521 if "f8" not in name else 2084)


# --------------------------------------------------------------------------------------------------- zoo
RELEASES = {
    "infinity-vae-d16": "infinity_vae_d16.pth", "infinity-vae-d24": "infinity_vae_d24.pth",
    "infinity-vae-d32": "infinity_vae_d32.pth", "infinity-vae-d32reg": "infinity_vae_d32reg.pth",
    "infinity-vae-d64": "infinity_vae_d64.pth",
    "infinity-vae-d56-f8-14-patchify": "infinity_vae_d56_f8_14_patchify.pth",
}


def test_entries_name_every_released_file_its_preset_and_the_mit_licence():
    from vistok.families import entry_preprocessing
    from vistok.zoo import entries_for_repo, get_entry

    assert {e.name for e in entries_for_repo("FoundationVision/Infinity")} == set(RELEASES)
    for name, file in RELEASES.items():
        entry = get_entry(name)
        assert (entry.repo_id, entry.filenames, entry.converter) == ("FoundationVision/Infinity", (file,), "infinity")
        assert entry.license.id == "mit" and entry.license.permissive and entry.image_size == 256
        bits = vistok.PRESETS.get(entry.preset).config["quantizer"]["codebook_dim"]
        assert bits == (14 if "f8" in name else int(name.split("-d")[1][:2]))
    pipeline = entry_preprocessing(get_entry("infinity-vae-d32reg"))
    assert (pipeline.size, pipeline.filter, pipeline.framing, pipeline.crop_offset) == (256, "lanczos", "center_crop", "floor")


def test_zoo_loads_the_file_from_the_hub_cache_with_parity(hub, monkeypatch, expected):
    from vistok.resolver import UnknownNameError
    from vistok.zoo import ZooArchitectureWarning

    name = "infinity-vae-d32reg"
    add_to_hub_cache(hub, "FoundationVision/Infinity", {"infinity_vae_d32reg.pth": TINY})
    replace_zoo_entry(monkeypatch, name, image_size=32)  # the tiny stand-in is f4 at 32 px: schedule 1 … 8
    with pytest.warns(ZooArchitectureWarning, match="net.base_channels: catalogue 128, file 32"):
        first = vistok.create_tokenizer(name, pretrained=True)
    check_parity(first, expected)
    meta = first.config.metadata
    assert meta["zoo"]["name"] == name and meta["origin"]["checkpoint_file"] == "infinity_vae_d32reg.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooArchitectureWarning)
        check_parity(VisTokenizer.from_pretrained(name), expected)  # the converted cache
    with pytest.raises(UnknownNameError, match="holds several tokenizers; name one: infinity-vae-d16"):
        VisTokenizer.from_pretrained("FoundationVision/Infinity")


def test_64_bit_tokens_go_through_tokenize_and_evaluate(tmp_path):
    """d = 64 ids are int64 bit patterns (half of them negative): tokenize stores them as they are and evaluate's
    codebook usage counts them, instead of refusing them as out of range."""
    import datasets

    from vistok import VisTokenizer, VisTokenizerConfig
    from vistok.cli import main

    torch.manual_seed(0)
    config = VisTokenizerConfig(image_size=32, net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 0},
                                quantizer={"type": "multiscale_bsq", "codebook_dim": 64, "patch_nums": [1, 2, 4, 8]})  # fmt: skip
    VisTokenizer(config).eval().save_pretrained(tmp_path / "tok64")
    common = ["--model", str(tmp_path / "tok64"), "--dataset", "samples", "--split", "test", "--num-samples", "4",
              "--device", "cpu"]  # fmt: skip
    assert main(["tokenize", *common, "--output-dir", str(tmp_path / "tokens"), "--no-progress"]) == 0
    rows = datasets.load_from_disk(str(tmp_path / "tokens"))
    ids = torch.tensor(rows["indices"])
    assert ids.shape == (4, 1 + 4 + 16 + 64) and (ids < 0).any() and (ids > 0).any()
    report = tmp_path / "report.json"
    assert main(["evaluate", *common, "--metrics", "psnr,codebook_usage", "--output", str(report)]) == 0
    assert report.is_file()


def _run_infinity_transform(image, target):
    """tools/run_infinity.py transform for a square target, written out from Infinity's source (the test's oracle)."""
    width, height = image.size
    if width / height <= 1:
        size = (target, int(target / (width / height)))
    else:
        size = (int((width / height) * target), target)
    arr = np.array(image.resize(size, resample=Image.LANCZOS))
    top, left = (arr.shape[0] - target) // 2, (arr.shape[1] - target) // 2
    return arr[top : top + target, left : left + target]


@pytest.mark.parametrize("shape", [(640, 930), (930, 640), (256, 372), (1088, 1581), (640, 990), (500, 500), (451, 300)])
def test_infinity_entry_frames_portrait_and_landscape_photos_as_run_infinity_does(shape):
    from vistok.families import entry_preprocessing, get_entry
    from vistok.preprocessing import preprocess

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (shape[1], shape[0], 3), dtype=np.uint8))
    pipeline = entry_preprocessing(get_entry("infinity-vae-d32"))
    assert np.array_equal(preprocess(image, pipeline), _run_infinity_transform(image, pipeline.size))


def test_gradient_is_upstreams_straight_through_on_the_normalised_latent_at_every_scale():
    """Upstream (multiscale_bsq.py, remove_residual_detach off) writes each scale's code as u + (code - u).detach()
    with u the l2-normalised (area-resized) residual, adds it to the output and subtracts it detached from the
    residual: the gradient goes through every scale's normalisation and resizes, not through the residual chain."""
    q = MultiScaleBinarySphericalQuantizer(codebook_dim=6, patch_nums=[1, 3, 4, 7]).train()
    z = torch.randn(2, 6, 7, 7, requires_grad=True)
    weights = torch.randn(2, 6, 7, 7)
    (q(z).quantized * weights).sum().backward()
    got, z.grad = z.grad.clone(), None

    rest, f_hat = z, torch.zeros_like(z)
    for p in [1, 3, 4, 7]:
        query = rest if p == 7 else F.adaptive_avg_pool2d(rest, p)
        u = query / query.norm(dim=1, keepdim=True)
        code = u + ((2 * (u > 0).float() - 1) / 6**0.5 - u).detach()
        if p != 7:
            code = F.interpolate(code, size=(7, 7), mode="bilinear", align_corners=False)
        f_hat, rest = f_hat + code, rest - code.detach()
    (f_hat * weights).sum().backward()
    torch.testing.assert_close(got, z.grad, rtol=1e-5, atol=1e-6)

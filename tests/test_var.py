"""VAR (issue 13 part 4): the multi-scale residual quantizer, the var net, the converter and the zoo entry.

Expected values come from upstream's code run on the reference file (``tests/data/var_tiny_expected.pt``, made from
FoundationVision/VAR at 78b9539 in eval mode), from exact rational arithmetic, or from formulas written here."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.quantizers.var import MultiScaleVectorQuantizer, phi_schedule

DATA = Path(__file__).parent / "data"
VAR_TINY = DATA / "var_tiny.pth"
REAL_PATCH_NUMS = [1, 2, 3, 4, 5, 6, 8, 10, 13, 16]
TINY_NET = {"type": "var", "base_channels": 32, "channel_multiplier": [1, 2, 1, 1], "num_res_blocks": 1,
            "latent_channels": 8}
TINY_QUANTIZER = {"type": "multiscale_vq", "codebook_size": 64, "codebook_dim": 8, "patch_nums": [1, 2, 3, 4]}


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "var_tiny_expected.pt", weights_only=True)


def tiny_var_tokenizer() -> VisTokenizer:
    """The reference file's architecture (its ``config`` entry), built by hand and loaded with the file's weights
    renamed quantize.* → quantizer.* (the converter is tested separately)."""
    tok = VisTokenizer(VisTokenizerConfig(image_size=32, net=TINY_NET, quantizer=TINY_QUANTIZER))
    state = torch.load(VAR_TINY, weights_only=True)
    state.pop("quantize.ema_vocab_hit_SV")
    tok.load_state_dict({k.replace("quantize.", "quantizer.", 1): v for k, v in state.items()}, strict=True)
    return tok.eval()


# --------------------------------------------------------------------------------------------- φ per scale
def exact_phi_distances(num_scales: int, num_convs: int) -> list[list[Fraction]]:
    """|tick_i − k/(K−1)| in exact rationals for every scale k and conv i (ticks as upstream defines them)."""
    edge = Fraction(1, 3 * num_convs) if num_convs == 4 else Fraction(1, 2 * num_convs)
    step = (1 - 2 * edge) / (num_convs - 1) if num_convs > 1 else 0
    ticks = [edge + i * step for i in range(num_convs)]
    return [[abs(t - Fraction(k, num_scales - 1)) for t in ticks] for k in range(num_scales)]


def exact_phi_schedule(num_scales: int, num_convs: int) -> list[int]:
    """The nearest conv per scale in exact arithmetic, the lowest index winning a tie."""
    return [d.index(min(d)) for d in exact_phi_distances(num_scales, num_convs)]


def test_phi_schedule_breaks_the_real_ties_as_upstreams_float64_rounding(expected):
    assert phi_schedule(4, 4) == expected["phi_index_per_scale"] == [0, 1, 2, 3]
    assert phi_schedule(10, 4) == expected["real_phi_index_per_scale"] == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    # Exact arithmetic puts scales 2 and 7 exactly halfway between two ticks and would give another schedule.
    assert exact_phi_schedule(10, 4) == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    assert MultiScaleVectorQuantizer(patch_nums=REAL_PATCH_NUMS).phi_index_per_scale == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]


@pytest.mark.parametrize("num_convs", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("num_scales", [2, 4, 7, 10, 13])
def test_phi_schedule_agrees_with_exact_arithmetic_wherever_there_is_no_tie(num_scales, num_convs):
    ours = phi_schedule(num_scales, num_convs)
    for k, distances in enumerate(exact_phi_distances(num_scales, num_convs)):
        nearest = [i for i, d in enumerate(distances) if d == min(distances)]
        if len(nearest) == 1:
            assert ours[k] == nearest[0], f"scale {k}"
        else:  # an exact tie: upstream's rounding picks one of the two nearest
            assert ours[k] in nearest, f"scale {k}"


# ------------------------------------------------------------------------------------- parity with upstream
def test_tiny_reference_indices_codes_and_reconstruction(expected):
    tok = tiny_var_tokenizer()
    with torch.no_grad():
        enc = tok.encode(expected["input"])
        assert isinstance(enc.indices, list) and len(enc.indices) == 4
        for k, (ours, theirs) in enumerate(zip(enc.indices, expected["indices"], strict=True)):
            p = TINY_QUANTIZER["patch_nums"][k]
            assert ours.shape == (3, p, p) and ours.dtype == torch.int64
            assert torch.equal(ours.reshape(3, -1), theirs), f"scale {k}"
        assert (enc.quantized - expected["f_hat"]).abs().max() < 1e-5
        reconstruction = tok.decode(enc.indices)
        assert (reconstruction - expected["reconstruction_unclamped"]).abs().max() < 1e-4
        assert (reconstruction.clamp(-1, 1) - expected["reconstruction"]).abs().max() < 1e-4
        # Upstream's own indices decode to its reconstruction too.
        theirs = [idx.reshape(3, p, p) for idx, p in zip(expected["indices"], TINY_QUANTIZER["patch_nums"], strict=True)]
        assert (tok.decode(theirs) - expected["reconstruction_unclamped"]).abs().max() < 1e-4
        progressive = tok.quantizer.progressive_codes(enc.indices)
        assert len(progressive) == 4 and torch.equal(progressive[-1], enc.quantized)
        for k, (codes, image) in enumerate(zip(progressive, expected["reconstruction_per_scale"], strict=True)):
            assert (tok.decode_quantized(codes).clamp(-1, 1) - image).abs().max() < 1e-4, f"after {k + 1} scales"
    assert tok.quantizer.phi_index_per_scale == expected["phi_index_per_scale"]


def test_usage_counts_the_tokens_of_every_scale(expected):
    tok = tiny_var_tokenizer()
    with torch.no_grad():
        stats = tok.encode(expected["input"]).stats
    distinct = expected["indices_flat"].unique().numel()
    assert float(stats["batch_usage"]) == pytest.approx(distinct / 64)
    counts = torch.bincount(expected["indices_flat"].reshape(-1), minlength=64).double()
    p = counts[counts > 0] / counts.sum()
    assert float(stats["perplexity"]) == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-5)


# ------------------------------------------------------------------------------------ the quantizer's maths
def reference_forward(q: MultiScaleVectorQuantizer, z: torch.Tensor):
    """Steps 1–5 of the module docstring written out with brute-force distances (float64 argmin)."""
    last, codebook = q.patch_nums[-1], q.embedding.weight.detach()
    rest, f_hat, indices, partial = z.clone(), torch.zeros_like(z), [], []
    for k, p in enumerate(q.patch_nums):
        query = rest if p == last else F.adaptive_avg_pool2d(rest, p)
        flat = query.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).double()
        idx = torch.cdist(flat, codebook.double()).argmin(1).view(z.shape[0], p, p)
        e = codebook[idx].permute(0, 3, 1, 2)
        if p != last:
            e = F.interpolate(e, size=(last, last), mode="bicubic", align_corners=False)
        conv = q.quant_resi.qresi_ls[q.phi_index_per_scale[k]]
        h = 0.5 * e + 0.5 * conv(e)
        f_hat, rest = f_hat + h, rest - h
        indices.append(idx)
        partial.append(f_hat)
    return indices, partial


def test_forward_matches_the_written_out_algorithm_and_losses():
    torch.manual_seed(1)
    q = MultiScaleVectorQuantizer(codebook_size=16, codebook_dim=3, patch_nums=[1, 2, 4], num_phi_convs=2).train()
    q.embedding.weight.data.normal_()
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = q(z)
    with torch.no_grad():
        indices, partial = reference_forward(q, z.detach())
    assert all(torch.equal(a, b) for a, b in zip(out.indices, indices, strict=True))
    torch.testing.assert_close(out.quantized, partial[-1], rtol=0, atol=1e-5)
    commitment = 0.25 * sum(((f - z.detach()) ** 2).mean() for f in partial) / 3
    codebook = sum(((f - z.detach()) ** 2).mean() for f in partial) / 3
    torch.testing.assert_close(out.losses["commitment_loss"], commitment, rtol=1e-5, atol=0)
    torch.testing.assert_close(out.losses["codebook_loss"], codebook, rtol=1e-5, atol=0)


def test_gradients_straight_through_to_z_and_the_codebook_term_trains_codebook_and_phi():
    q = MultiScaleVectorQuantizer(**{k: v for k, v in TINY_QUANTIZER.items() if k != "type"}).train()
    z = torch.randn(2, 8, 4, 4, requires_grad=True)
    weights = torch.randn(2, 8, 4, 4)
    (q(z).quantized * weights).sum().backward()
    assert torch.equal(z.grad, weights)  # the identity, exactly
    assert q.embedding.weight.grad is None  # quantized itself carries no gradient to the codes
    z.grad = None
    out = q(z)
    out.losses["codebook_loss"].backward(retain_graph=True)
    assert z.grad is None  # the codebook term stops the gradient to z
    assert q.embedding.weight.grad.abs().sum() > 0
    assert all(conv.weight.grad is not None for conv in q.quant_resi.qresi_ls[:4])
    out.losses["commitment_loss"].backward()
    assert z.grad.abs().sum() > 0


def test_indices_to_codes_repeats_forward_bit_for_bit_with_gradients_enabled():
    tok = vistok.VisTokenizer(VisTokenizerConfig(image_size=32, net=TINY_NET, quantizer=TINY_QUANTIZER)).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    enc = tok.encode(x)
    assert enc.quantized.requires_grad
    assert torch.equal(tok.quantizer.indices_to_codes(enc.indices), enc.quantized)
    with torch.no_grad():
        assert torch.equal(tok.decode(enc.indices), tok.decode_quantized(enc.quantized))


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patch_nums": [4]}, "at least 2 strictly increasing"),
        ({"patch_nums": [1, 3, 2]}, "strictly increasing"),
        ({"patch_nums": [0, 1]}, "positive ints"),
        ({"phi_ratio": 0.0}, r"'phi_ratio' must be a number in \(0, 1\]"),
        ({"num_phi_convs": 0}, "num_phi_convs"),
        ({"commitment_weight": -1.0}, "commitment_weight"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        VisTokenizerConfig(image_size=32, net=TINY_NET, quantizer={**TINY_QUANTIZER, **options})


def test_bad_latents_and_indices_name_the_expected_shapes():
    tok = tiny_var_tokenizer()
    with pytest.raises(ValueError, match=r"finest scale is 4×4 tokens, so it takes 32×32 images; got 64×64"):
        tok.encode(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"latents of shape \(B, 8, 4, 4\).*last scale is 4×4"):
        tok.quantizer(torch.zeros(1, 8, 8, 8))
    good = [torch.zeros(2, p, p, dtype=torch.long) for p in (1, 2, 3, 4)]
    q = tok.quantizer
    with pytest.raises(ValueError, match=r"list of 4 integer tensors \[\(B, 1, 1\), \(B, 2, 2\), \(B, 3, 3\), \(B, 4, 4\)\]"):
        q.indices_to_codes(good[:3])
    with pytest.raises(ValueError, match=r"indices\[1\] must have shape \(B, 2, 2\)"):
        q.indices_to_codes([good[0], good[2], good[2], good[3]])
    with pytest.raises(ValueError, match=r"indices\[3\] must lie in \[0, 64\)"):
        q.indices_to_codes([*good[:3], torch.full((2, 4, 4), 64)])
    with pytest.raises(TypeError, match=r"indices\[0\] must be an integer"):
        q.indices_to_codes([good[0].float(), *good[1:]])
    with pytest.raises(ValueError, match="list of 4 tensors"):  # the tokenizer's layout check, before the quantizer
        tok.decode(torch.zeros(2, 4, 4, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------- net
def test_net_attention_is_one_packed_qkv_conv_split_in_q_k_v_order():
    from vistok.nets.var import PackedAttnBlock

    torch.manual_seed(0)
    block = PackedAttnBlock(8, groups=4, eps=1e-6)
    x = torch.randn(2, 8, 3, 5)
    # softmax(qᵀk/√C) v written out with einsum.
    y = block.norm(x)
    q, k, v = block.qkv(y).chunk(3, dim=1)
    weights = torch.einsum("bcn,bcm->bnm", q.flatten(2), k.flatten(2)).mul(8**-0.5).softmax(-1)
    out = torch.einsum("bnm,bcm->bcn", weights, v.flatten(2)).reshape(2, 8, 3, 5)
    torch.testing.assert_close(block(x), x + block.proj_out(out), rtol=1e-5, atol=1e-6)


def test_quant_convs_are_3x3_for_var_and_1x1_elsewhere():
    var = VisTokenizer(VisTokenizerConfig(image_size=32, net=TINY_NET, quantizer=TINY_QUANTIZER))
    assert var.quant_conv.weight.shape == (8, 8, 3, 3) and var.post_quant_conv.padding == (1, 1)
    other = VisTokenizer(VisTokenizerConfig(image_size=16, net={"type": "vqgan", **vistok.NETS.get("vqgan").tiny}))
    assert other.quant_conv.weight.shape[-2:] == (1, 1)
    with pytest.raises(ValueError, match="positive odd integer"):
        VisTokenizerConfig(image_size=32, net={**TINY_NET, "quant_conv_kernel_size": 2}, quantizer=TINY_QUANTIZER)


# ---------------------------------------------------------------------------------------------- converter
def convert_tiny(**options) -> VisTokenizer:
    from vistok.families.var import convert_var

    return convert_var(VAR_TINY, patch_nums=[1, 2, 3, 4], **options)


def check_parity(tok: VisTokenizer, expected) -> None:
    with torch.no_grad():
        enc = tok.encode(expected["input"])
        flat = tok.token_layout.flatten(enc.indices)
        assert torch.equal(flat, expected["indices_flat"])
        reconstruction = tok.decode(enc.indices)
    assert (reconstruction - expected["reconstruction_unclamped"]).abs().max() < 1e-4
    assert (reconstruction.clamp(-1, 1) - expected["reconstruction"]).abs().max() < 1e-4


def test_converter_reads_the_architecture_from_the_shapes_and_matches_upstream(expected):
    tok = convert_tiny()
    config = expected["config"]
    dd = config["ddconfig"]
    assert tok.config.net == {**tok.config.net, "type": "var", "base_channels": dd["ch"],
                              "channel_multiplier": dd["ch_mult"], "num_res_blocks": dd["num_res_blocks"],
                              "latent_channels": dd["z_channels"], "attention": dd["using_sa"],
                              "mid_attention": dd["using_mid_sa"], "quant_conv_kernel_size": config["quant_conv_ks"]}
    q = tok.config.quantizer
    assert (q["type"], q["codebook_size"], q["codebook_dim"], q["patch_nums"]) == (
        "multiscale_vq", config["vocab_size"], config["z_channels"], config["v_patch_nums"])
    assert (q["num_phi_convs"], q["phi_ratio"], q["commitment_weight"]) == (
        config["share_quant_resi"], config["quant_resi"], config["beta"])
    assert tok.config.image_size == 32 and tok.config.tokens_per_image() == 30
    check_parity(tok, expected)
    # Every weight arrives unchanged under its upstream name (quantize. → quantizer.); the usage buffer is dropped.
    upstream = torch.load(VAR_TINY, weights_only=True)
    ours = tok.state_dict()
    assert set(ours) == {k.replace("quantize.", "quantizer.", 1) for k in upstream} - {"quantizer.ema_vocab_hit_SV"}
    assert all(torch.equal(ours[k.replace("quantize.", "quantizer.", 1)], v) for k, v in upstream.items()
               if k != "quantize.ema_vocab_hit_SV")
    meta = tok.config.metadata
    assert meta["origin"]["name"] == "VAR" and meta["license"] == "mit"
    assert meta["paper"]["url"] == "https://arxiv.org/abs/2404.02905"
    assert meta["origin"]["dropped_entries"] == ["quantize.ema_vocab_hit_SV"]
    assert "reported_metrics" not in meta


def test_converted_tokenizer_saves_and_reloads_bit_identically(tmp_path, expected):
    tok = convert_tiny()
    tok.save_pretrained(tmp_path)
    loaded = VisTokenizer.from_pretrained(tmp_path)
    with torch.no_grad():
        a, b = tok.encode(expected["input"]), loaded.encode(expected["input"])
        assert all(torch.equal(x, y) for x, y in zip(a.indices, b.indices, strict=True))
        assert torch.equal(tok.decode(a.indices), loaded.decode(b.indices))


def test_the_schedule_is_required_and_must_fit_the_file(expected):
    from vistok.families.var import convert_var

    with pytest.raises(ValueError, match=r"give it with patch_nums .*--patch-nums.*\(4 scales, as the file's "
                                         r"quantize.ema_vocab_hit_SV has 4 rows\)"):
        convert_var(VAR_TINY)
    with pytest.raises(ValueError, match=r"patch_nums has 3 scales but this file was trained with 4"):
        convert_var(VAR_TINY, patch_nums=[1, 2, 4])
    with pytest.raises(ValueError, match=r"image_size 64 does not fit patch_nums ending in 4.*= 32 px"):
        convert_tiny(image_size=64)
    with pytest.raises(ValueError, match="strictly increasing"):
        convert_var(VAR_TINY, patch_nums=[1, 3, 2, 4])
    with pytest.raises(ValueError, match="sequence of ints"):
        convert_var(VAR_TINY, patch_nums="1,2,3,4")
    with pytest.raises(ValueError, match="weights='ema'"):
        convert_var(VAR_TINY, patch_nums=[1, 2, 3, 4], weights="ema")


def test_without_the_usage_buffer_any_schedule_ending_in_the_latent_size_converts(tmp_path):
    from vistok.families.var import convert_var

    state = torch.load(VAR_TINY, weights_only=True)
    state.pop("quantize.ema_vocab_hit_SV")
    tok = convert_var(_save(tmp_path, state), patch_nums=[1, 2, 4])
    assert tok.config.quantizer["patch_nums"] == [1, 2, 4]
    assert tok.config.metadata["origin"]["dropped_entries"] == []
    with torch.no_grad():
        assert [tuple(i.shape) for i in tok.encode(torch.zeros(1, 3, 32, 32)).indices] == [(1, 1, 1), (1, 2, 2), (1, 4, 4)]


def _save(tmp_path: Path, state_dict: dict, name: str = "file.pth") -> Path:
    path = tmp_path / name
    torch.save(state_dict, path)
    return path


def test_other_files_are_refused_naming_what_they_are(tmp_path):
    from vistok.convert import CheckpointError
    from vistok.families.var import convert_var

    upstream = torch.load(VAR_TINY, weights_only=True)
    with pytest.raises(CheckpointError, match="VAR's transformer"):
        convert_var(_save(tmp_path, {"word_embed.weight": torch.zeros(2, 2), "blocks.0.x": torch.zeros(1)}),
                    patch_nums=[1, 2])
    with pytest.raises(CheckpointError, match="expected a plain state dict"):
        convert_var(DATA / "ibq_tiny.ckpt", patch_nums=[1, 2])
    ibq = torch.load(DATA / "ibq_tiny.ckpt", weights_only=True)["state_dict"]
    taming_like = {k: v for k, v in ibq.items() if k.startswith(("encoder.", "decoder.", "quantize.", "quant_conv."))}
    with pytest.raises(CheckpointError, match=r"no φ convs .*Taming"):
        convert_var(_save(tmp_path, taming_like), patch_nums=[1, 2])
    shared = {k: v for k, v in upstream.items() if ".qresi_ls." not in k}
    shared["quantize.quant_resi.qresi.weight"] = upstream["quantize.quant_resi.qresi_ls.0.weight"]
    with pytest.raises(CheckpointError, match="fully shared .* or unshared"):
        convert_var(_save(tmp_path, shared), patch_nums=[1, 2, 3, 4])
    with pytest.raises(CheckpointError, match=r"1 unexpected \(extra.weight\)"):
        convert_var(_save(tmp_path, {**upstream, "extra.weight": torch.zeros(1)}), patch_nums=[1, 2, 3, 4])
    broken = {k: v for k, v in upstream.items() if not k.startswith("decoder.up.2.block.1.")}
    with pytest.raises(CheckpointError, match="decoder level 2 has 1 residual blocks; .* num_res_blocks \\+ 1 = 2"):
        convert_var(_save(tmp_path, broken), patch_nums=[1, 2, 3, 4])


def meta_state_dict(spec_file: str) -> dict[str, torch.Tensor]:
    import json

    spec = json.loads((DATA / spec_file).read_text())
    return {key: torch.empty(shape, device="meta") for key, shape in spec.items()}


def test_full_size_release_layout_on_meta():
    from vistok.families.var import var_to_vistok, var_tokenizer_config

    state_dict = meta_state_dict("var_vae_ch160v4096z32_state_dict_spec.json")
    assert len(state_dict) == 324
    config, _ = var_tokenizer_config(state_dict, REAL_PATCH_NUMS, None)
    assert config["image_size"] == 256
    assert config["net"] == {"type": "var", "base_channels": 160, "channel_multiplier": [1, 1, 2, 2, 4],
                             "num_res_blocks": 2, "latent_channels": 32, "attention": True, "mid_attention": True,
                             "quant_conv_kernel_size": 3, "norm_groups": 32}
    assert config["quantizer"]["codebook_size"] == 4096 and config["quantizer"]["num_phi_convs"] == 4
    with torch.device("meta"):
        tok = VisTokenizer(VisTokenizerConfig(**config))
    ours = {k: tuple(v.shape) for k, v in tok.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in var_to_vistok(state_dict).items()}
    buffer = 10 * 4096  # quantize.ema_vocab_hit_SV, dropped
    assert tok.num_parameters() == 108_989_315 - buffer
    assert tok.config.tokens_per_image() == 680
    assert tok.quantizer.phi_index_per_scale == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    with pytest.raises(ValueError, match=r"10 scales, as the file's quantize.ema_vocab_hit_SV has 10 rows"):
        var_tokenizer_config(state_dict, None, None)


def test_cli_converts_with_patch_nums_and_refuses_it_elsewhere(tmp_path, expected):
    from vistok.cli import main as cli

    out = tmp_path / "var"
    assert cli(["convert", "var", str(VAR_TINY), str(out), "--patch-nums", "1,2,3,4"]) == 0
    loaded = VisTokenizer.from_pretrained(out)
    check_parity(loaded, expected)
    assert "VAR" in (out / "README.md").read_text()
    with pytest.raises(SystemExit, match="--patch-nums"):
        cli(["convert", "var", str(VAR_TINY), str(tmp_path / "none")])
    with pytest.raises(SystemExit, match="--patch-nums applies to var checkpoints only"):
        cli(["convert", "maskgit", str(VAR_TINY), str(tmp_path / "m"), "--patch-nums", "1,2"])
    with pytest.raises(SystemExit, match="comma-separated positive integers"):
        cli(["convert", "var", str(VAR_TINY), str(tmp_path / "x"), "--patch-nums", "1;2"])


# --------------------------------------------------------------------------------------------------- zoo
ZOO_NAME = "var-vqvae-imagenet256-f16"


def test_zoo_entry_names_the_published_file_schedule_and_licence():
    from vistok.zoo import get_entry

    entry = get_entry(ZOO_NAME)
    # VAR's README: "you need to download vae_ch160v4096z32.pth first" from huggingface.co/FoundationVision/var.
    assert (entry.repo_id, entry.filenames, entry.converter) == ("FoundationVision/var", ("vae_ch160v4096z32.pth",), "var")
    assert entry.converter_options == {"patch_nums": REAL_PATCH_NUMS} and entry.image_size == 256
    assert entry.license.id == "mit" and entry.license.permissive and entry.reported_metrics == ()
    with torch.device("meta"):
        preset = vistok.create_tokenizer(entry.preset)
    # The preset is the release's architecture: the full-size layout's shapes (tested above) give the same config.
    from vistok.families.var import var_tokenizer_config

    release, _ = var_tokenizer_config(meta_state_dict("var_vae_ch160v4096z32_state_dict_spec.json"), REAL_PATCH_NUMS, 256)
    assert preset.config.net == VisTokenizerConfig(**release).net
    assert preset.config.quantizer == VisTokenizerConfig(**release).quantizer


def test_zoo_loads_the_file_from_the_hub_cache_with_parity(hub, monkeypatch, expected):
    from vistok.families.var import VAR_PATCH_NUMS
    from vistok.zoo import ZooArchitectureWarning, get_entry

    from .helpers import replace_zoo_entry
    from .hub_cache import add_to_hub_cache

    add_to_hub_cache(hub, "FoundationVision/var", {"vae_ch160v4096z32.pth": VAR_TINY})
    # The tiny stand-in has 4 scales at 32 px: the entry's schedule is swapped for the file's, nothing else.
    replace_zoo_entry(monkeypatch, ZOO_NAME, converter_options={"patch_nums": [1, 2, 3, 4]}, image_size=32)
    with pytest.warns(ZooArchitectureWarning, match="net.base_channels: catalogue 160, file 32"):
        tok = vistok.create_tokenizer(ZOO_NAME, pretrained=True)
    check_parity(tok, expected)
    assert tok.config.metadata["zoo"]["name"] == ZOO_NAME and tok.config.metadata["origin"]["name"] == "VAR"
    with pytest.warns(ZooArchitectureWarning):
        check_parity(VisTokenizer.from_pretrained("FoundationVision/var"), expected)
    # With the real schedule the 4-scale stand-in is refused, naming the option and the file's scale count.
    replace_zoo_entry(monkeypatch, ZOO_NAME, converter_options=get_entry(ZOO_NAME).converter_options | {
        "patch_nums": list(VAR_PATCH_NUMS)}, image_size=32)
    with pytest.raises(ValueError, match="patch_nums has 10 scales but this file was trained with 4"):
        vistok.create_tokenizer(ZOO_NAME, pretrained=True)

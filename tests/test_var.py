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
    with pytest.raises(ValueError, match=r"latents of shape \(B, 8, 4, 4\).*last scale is 4×4"):
        tok.encode(torch.zeros(1, 3, 64, 64))
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

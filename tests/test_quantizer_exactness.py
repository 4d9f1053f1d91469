"""Exactness promises of every registered quantizer: codes equal ``indices_to_codes(indices)`` bit for bit."""

from __future__ import annotations

import math

import pytest
import torch

from vistok import NETS, QUANTIZERS
from vistok.quantizers import FiniteScalarQuantizer, LookupFreeQuantizer
from vistok.quantizers.base import straight_through

from .helpers import images, tiny_tokenizer

# A multi-scale quantizer (VAR) quantizes a square latent grid at several scales: a sequence net (TiTok) has none.
PAIRS = [
    (q, n)
    for q in QUANTIZERS.names()
    for n in NETS.names()
    if not (getattr(QUANTIZERS.get(q), "layout", "grid") == "multiscale" and NETS.get(n).latent_kind == "sequence")
]


@pytest.mark.parametrize(("quantizer", "net"), PAIRS, ids=[f"{q}-{n}" for q, n in PAIRS])
def test_eval_invariant_holds_with_gradients_enabled(quantizer, net):
    tok = tiny_tokenizer(quantizer, net).eval()
    x = images(tok, batch=3)
    with torch.enable_grad():
        enc = tok.encode(x)
        assert enc.quantized.requires_grad  # the straight-through path is really taken
        from_indices = tok.decode(enc.indices)
        from_codes = tok.decode_quantized(enc.quantized)
    assert torch.equal(tok.quantizer.indices_to_codes(tok.token_layout.from_user(enc.indices)), enc.quantized)
    assert torch.equal(from_indices, from_codes)


# FSQ's gradient is straight-through only over the rounding (it keeps the bound's tanh derivative); IBQ's goes
# through the softmax over all codes by design (tests/test_ibq.py checks it against the upstream formula).
@pytest.mark.parametrize("quantizer", [name for name in QUANTIZERS.names() if name not in ("fsq", "ibq")])
def test_straight_through_gradient_is_the_identity(quantizer):
    tok = tiny_tokenizer(quantizer).train()
    side = getattr(tok.quantizer, "patch_nums", [3])[-1]  # a multi-scale quantizer's latent is its last scale
    z = torch.randn(2, tok.codebook_dim, side, side, requires_grad=True)
    weights = torch.randn(2, tok.codebook_dim, side, side)
    (tok.quantizer(z).quantized * weights).sum().backward()
    torch.testing.assert_close(z.grad, weights, rtol=0, atol=0)


def test_straight_through_returns_the_codes_exactly():
    # z + (q − z) loses q entirely here: 1e-8 − 3 rounds to −3 in float32.
    z = torch.tensor([3.0], requires_grad=True)
    codes = torch.tensor([1e-8])
    assert float(z.detach() + (codes - z.detach())) != float(codes)
    out = straight_through(z, codes)
    assert torch.equal(out, codes)
    out.backward(torch.tensor([2.0]))
    assert torch.equal(z.grad, torch.tensor([2.0]))


# ----------------------------------------------------------------------------- half-precision latents (FSQ, LFQ)
DEFAULT_FSQ_LEVELS = [8, 8, 8, 5, 5, 5]  # the bundled default tokenizer's quantizer: 64,000 codes
HALF_DTYPES = [torch.bfloat16, torch.float16]


def fsq_latents_for_every_code(fsq: FiniteScalarQuantizer) -> tuple[torch.Tensor, torch.Tensor]:
    """indices (1, 1, K) of every code and float64 latents (1, D, 1, K) at the centre of each code's cell.

    Inverts FSQ's bound in float64 from the paper's formula: bound(z) = tanh(z + shift)·half_l − offset with
    half_l = (L − 1)(1 + eps)/2, offset = 0.5 for even L, shift = atanh(offset / half_l); code = round(bound)/⌊L/2⌋.
    """
    levels = torch.tensor(fsq.levels_list, dtype=torch.float64).view(1, -1, 1, 1)
    k = math.prod(fsq.levels_list)
    indices = torch.arange(k).view(1, 1, k)
    basis = torch.tensor([math.prod(fsq.levels_list[:d]) for d in range(len(fsq.levels_list))]).view(1, -1, 1, 1)
    digits = (indices.unsqueeze(1) // basis) % levels.long()
    half_width = levels // 2
    half_l = (levels - 1) * (1 + fsq.eps) / 2
    offset = torch.where(levels % 2 == 0, 0.5, 0.0)
    target = digits - half_width  # the integer bound(z) must hit
    return indices, torch.atanh((target + offset) / half_l) - torch.atanh(offset / half_l)


def expected_fsq_codes(fsq: FiniteScalarQuantizer, indices: torch.Tensor) -> torch.Tensor:
    """float32 codes (digit − ⌊L/2⌋) / ⌊L/2⌋ of (1, 1, K) indices, computed independently of the quantizer."""
    levels = torch.tensor(fsq.levels_list).view(1, -1, 1, 1)
    basis = torch.tensor([math.prod(fsq.levels_list[:d]) for d in range(len(fsq.levels_list))]).view(1, -1, 1, 1)
    digits = (indices.unsqueeze(1) // basis) % levels
    half_width = levels // 2
    return (digits - half_width).float() / half_width.float()


def check_every_fsq_code(fsq, indices, out):
    assert out.indices.unique().numel() == indices.numel()
    assert torch.equal(out.indices, indices)
    assert out.quantized.dtype == torch.float32
    assert torch.equal(out.quantized, expected_fsq_codes(fsq, indices))
    assert torch.equal(out.quantized, fsq.indices_to_codes(indices))


@pytest.mark.parametrize("dtype", HALF_DTYPES + [torch.float32])
def test_fsq_recovers_all_64000_codes_from_low_precision_latents(dtype):
    fsq = FiniteScalarQuantizer(levels=DEFAULT_FSQ_LEVELS).eval()
    indices, latents = fsq_latents_for_every_code(fsq)
    check_every_fsq_code(fsq, indices, fsq(latents.to(dtype)))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_fsq_recovers_all_codes_under_autocast(dtype):
    fsq = FiniteScalarQuantizer(levels=DEFAULT_FSQ_LEVELS).train()
    indices, latents = fsq_latents_for_every_code(fsq)
    # Latents made by a layer under autocast, as an encoder's output is (identity 1×1 conv: exact in any dtype).
    layer = torch.nn.Conv2d(6, 6, 1, bias=False)
    torch.nn.init.eye_(layer.weight.view(6, 6))
    with torch.autocast("cpu", dtype=dtype):
        z = layer(latents.float().requires_grad_())
        assert z.dtype == dtype
        out = fsq(z)
    check_every_fsq_code(fsq, indices, out)


def test_fsq_recovers_all_codes_in_a_bfloat16_model():
    tok = tiny_tokenizer("fsq", levels=DEFAULT_FSQ_LEVELS).to(torch.bfloat16).eval()
    indices, latents = fsq_latents_for_every_code(tok.quantizer)
    check_every_fsq_code(tok.quantizer, indices, tok.quantizer(latents.to(torch.bfloat16)))
    enc = tok.encode(images(tok))
    assert torch.equal(tok.decode(enc.indices), tok.decode_quantized(enc.quantized))


def lfq_latents_for_every_code(bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """indices (1, 1, 2^bits) and latents (1, bits, 1, 2^bits) of random magnitude with the code's signs (MSB first)."""
    k = 2**bits
    indices = torch.arange(k).view(1, 1, k)
    signs = ((indices.unsqueeze(1) >> torch.arange(bits - 1, -1, -1).view(1, -1, 1, 1)) & 1) * 2 - 1
    magnitudes = torch.rand(1, bits, 1, k, generator=torch.Generator().manual_seed(bits)) * 3 + 1e-3
    return indices, signs * magnitudes


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("scale", [1.0, 0.3])  # 0.3 is not a bfloat16 number
def test_lfq_recovers_every_code_from_half_precision_latents(dtype, scale):
    lfq = LookupFreeQuantizer(codebook_dim=12, codebook_scale=scale).train()
    indices, latents = lfq_latents_for_every_code(12)
    signs = (latents > 0).float() * 2 - 1
    for where in ("input", "autocast", "model"):
        module = lfq.to(dtype) if where == "model" else lfq
        if where == "autocast":
            with torch.autocast("cpu", dtype=dtype):
                out = module(latents.to(dtype))
        else:
            out = module(latents.to(dtype))
        assert torch.equal(out.indices, indices), where
        assert out.quantized.dtype == torch.float32, where
        assert torch.equal(out.quantized, signs * torch.tensor(scale, dtype=torch.float32)), where
        assert torch.equal(out.quantized, module.indices_to_codes(indices)), where
        assert torch.isfinite(out.losses["entropy_loss"]), where


def every_finite_value(dtype: torch.dtype, limit: float) -> torch.Tensor:
    """Every finite number of a 16-bit float dtype in [−limit, limit], ascending, as float32."""
    values = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(dtype).float()
    return values[torch.isfinite(values) & (values.abs() <= limit)].sort().values


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_fsq_quantizes_half_precision_latents_exactly_as_their_float32_values(dtype):
    # Before quantizing in float32, the bound's half-width was rounded to bfloat16 (3.5035 → 3.5), so some
    # bfloat16 latents fell on another level than the same numbers in float32.
    fsq = FiniteScalarQuantizer(levels=DEFAULT_FSQ_LEVELS).eval()
    values = every_finite_value(dtype, limit=6.0)
    z = values.view(1, 1, 1, -1).expand(1, len(DEFAULT_FSQ_LEVELS), 1, -1)
    reference = fsq(z.contiguous())
    out = fsq(z.to(dtype))
    assert torch.equal(out.indices, reference.indices)
    assert torch.equal(out.quantized, reference.quantized)

"""Exactness promises of every registered quantizer: codes equal ``indices_to_codes(indices)`` bit for bit."""

from __future__ import annotations

import math
from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F

from vistok import NETS, QUANTIZERS
from vistok.outputs import QuantizerOutput
from vistok.quantizers import FiniteScalarQuantizer, LookupFreeQuantizer, Quantizer
from vistok.quantizers.base import channels_first_grid, channels_last_flat, straight_through, usage_stats

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
# through the softmax over all codes by design (tests/test_ibq.py checks it against the upstream formula); BSQ's is
# straight-through over the sign and then goes through the l2 normalisation (tests/test_bsq.py checks it), and so
# does Infinity's multi-scale BSQ at every scale (tests/test_infinity.py checks it against upstream's formula).
@pytest.mark.parametrize(
    "quantizer", [name for name in QUANTIZERS.names() if name not in ("fsq", "ibq", "bsq", "multiscale_bsq")]
)
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


# --------------------------------------------------- float32 search under autocast and in half-precision models
# The rule is the Quantizer base class's (vistok/quantizers/base.py): whatever the latents' dtype or autocast says,
# a quantizer searches and computes in float32 with its parameters raised to float32. Before it was the base
# class's, vq and simvq searched a bfloat16-rounded codebook under autocast (about 1 % of the indices changed).
# Extra cases beyond the registered defaults: options that compute a derived codebook (l2-normalised codes).
FLOAT32_CASES = [(name, {}) for name in QUANTIZERS.names()] + [("vq", {"l2_norm": True})]
FLOAT32_IDS = [name + "".join(f"-{key}" for key in options) for name, options in FLOAT32_CASES]


def flat_indices(indices) -> torch.Tensor:
    """Indices of any layout as one (N,) tensor (a multi-scale quantizer returns one tensor per scale)."""
    return torch.cat([i.reshape(-1) for i in indices]) if isinstance(indices, (list, tuple)) else indices.reshape(-1)


def spread_latents(quantizer, batch: int = 96, seed: int = 0) -> torch.Tensor:
    """float32 latents (B, D, s, s) that are bfloat16 numbers (autocast hands the quantizer the same values) spread
    over the codes: scaled like the quantizer's own codes, so that many lie close to a boundary between two codes."""
    side = getattr(quantizer, "patch_nums", [6])[-1]  # a multi-scale quantizer's latent is its last scale
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, quantizer.codebook_dim, side, side, generator=g)
    with torch.no_grad():
        scale = quantizer(z).quantized.float().std().clamp_min(1e-3)
    return (z * scale).bfloat16().float()


def identity_conv(channels: int) -> torch.nn.Conv2d:
    """A 1×1 conv that returns its input: what autocast makes of an encoder's last layer (exact in bfloat16 for
    bfloat16 numbers)."""
    layer = torch.nn.Conv2d(channels, channels, 1, bias=False)
    torch.nn.init.eye_(layer.weight.view(channels, channels))
    return layer.requires_grad_(False)


def has_float_parameters(quantizer) -> bool:
    return any(t.is_floating_point() for t in [*quantizer.parameters(), *quantizer.buffers()])


def rounded_to_bfloat16(quantizer):
    """A float32 copy of ``quantizer`` whose floating parameters and buffers are rounded to bfloat16 values."""
    copy = deepcopy(quantizer)
    with torch.no_grad():
        for t in [*copy.parameters(), *copy.buffers()]:
            if t.is_floating_point():
                t.copy_(t.bfloat16().float())
    return copy


@pytest.mark.parametrize(("name", "options"), FLOAT32_CASES, ids=FLOAT32_IDS)
def test_autocast_bfloat16_gives_the_float32_indices(name, options):
    quantizer = tiny_tokenizer(name, **options).quantizer.eval()
    z = spread_latents(quantizer)
    reference = quantizer(z)
    if has_float_parameters(quantizer):
        # These latents are ones where bfloat16 rounding of the codebook changes indices.
        rounded = rounded_to_bfloat16(quantizer)(z)
        assert not torch.equal(flat_indices(rounded.indices), flat_indices(reference.indices))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        latent = identity_conv(z.shape[1])(z)
        assert latent.dtype == torch.bfloat16  # as an encoder's output under autocast
        out = quantizer(latent)
    assert torch.equal(flat_indices(out.indices), flat_indices(reference.indices))
    assert out.quantized.dtype == torch.float32
    assert torch.equal(out.quantized, reference.quantized)
    assert torch.equal(quantizer.indices_to_codes(out.indices), out.quantized)


@pytest.mark.parametrize(("name", "options"), FLOAT32_CASES, ids=FLOAT32_IDS)
def test_a_bfloat16_quantizer_searches_its_codes_in_float32(name, options):
    """A bfloat16 model's quantizer computes from its bfloat16 parameters raised to float32: exactly what the
    float32 quantizer with the same (bfloat16-valued) parameters computes, derived codebooks included."""
    reference_quantizer = rounded_to_bfloat16(tiny_tokenizer(name, **options).quantizer.eval())
    half = deepcopy(reference_quantizer).to(torch.bfloat16)
    z = spread_latents(reference_quantizer, seed=1)
    reference = reference_quantizer(z)
    out = half(z.bfloat16())
    assert torch.equal(flat_indices(out.indices), flat_indices(reference.indices))
    assert out.quantized.dtype == torch.float32
    assert torch.equal(out.quantized, reference.quantized)
    assert torch.equal(half.indices_to_codes(out.indices), out.quantized)
    # the parameters stay what they were: bfloat16, unchanged
    for (key, a), (_, b) in zip(half.state_dict().items(), reference_quantizer.state_dict().items(), strict=True):
        assert a.dtype == (torch.bfloat16 if b.is_floating_point() else b.dtype), key
        assert torch.equal(a.to(b.dtype), b), key


class NaiveQuantizer(Quantizer):
    """A quantizer written with no float32 handling at all: the textbook distance matrix in whatever dtype the
    latents come in (a bfloat16 one under autocast)."""

    tiny = {"codebook_size": 64, "codebook_dim": 4}

    def __init__(self, codebook_size: int = 64, codebook_dim: int = 4):
        super().__init__()
        self._codebook_size, self._codebook_dim = codebook_size, codebook_dim
        self.codebook = torch.nn.Parameter(torch.empty(codebook_size, codebook_dim))
        self.init_weights()

    def init_weights(self) -> None:
        torch.nn.init.normal_(self.codebook)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat = channels_last_flat(z)
        codebook = self.codebook.to(flat.dtype)
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)
        indices = distances.argmin(1)
        codes = codebook[indices]
        return QuantizerOutput(
            quantized=channels_first_grid(straight_through(flat, codes), z),
            indices=indices.view(z.shape[0], z.shape[2], z.shape[3]),
            losses={"commitment_loss": F.mse_loss(flat, codes.detach())},
            stats=usage_stats(indices, self.codebook_size),
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        self.check_indices(indices)
        return self.codebook[indices].permute(0, 3, 1, 2).contiguous()


@pytest.fixture
def naive_quantizer_name():
    """NaiveQuantizer registered for one test only (registered for good it would enrol in the common tests)."""
    name = "naive_float32_rule_test"
    QUANTIZERS.register(name)(NaiveQuantizer)
    yield name
    QUANTIZERS._entries.pop(name)


def test_a_new_quantizer_without_float32_handling_searches_in_float32(naive_quantizer_name):
    tok = tiny_tokenizer(naive_quantizer_name).eval()
    quantizer = tok.quantizer
    assert type(quantizer) is NaiveQuantizer
    z = spread_latents(quantizer, batch=64)
    reference = quantizer(z)
    rounded = rounded_to_bfloat16(quantizer)(z)
    assert not torch.equal(rounded.indices, reference.indices)  # bfloat16 codes would move some of these
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = quantizer(identity_conv(z.shape[1])(z))
        x = images(tok)
        encoded = tok.encode(x)
    assert torch.equal(out.indices, reference.indices)
    assert out.quantized.dtype == torch.float32 and torch.equal(out.quantized, reference.quantized)
    # through the tokenizer too: autocast's bfloat16 latent is searched as the float32 numbers it holds
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        latent = tok.quant_conv(tok.encoder(x))
    assert torch.equal(encoded.indices, quantizer(latent.float()).indices)
    # and in a bfloat16 model, from its bfloat16 codebook raised to float32
    half = deepcopy(quantizer).to(torch.bfloat16)
    assert torch.equal(half(z.bfloat16()).indices, rounded.indices)

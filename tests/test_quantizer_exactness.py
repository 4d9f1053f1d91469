"""Exactness promises of every registered quantizer: codes equal ``indices_to_codes(indices)`` bit for bit."""

from __future__ import annotations

import pytest
import torch

from vistok import NETS, QUANTIZERS
from vistok.quantizers.base import straight_through

from .helpers import images, tiny_tokenizer

PAIRS = [(q, n) for q in QUANTIZERS.names() for n in NETS.names()]


@pytest.mark.parametrize(("quantizer", "net"), PAIRS, ids=[f"{q}-{n}" for q, n in PAIRS])
def test_eval_invariant_holds_with_gradients_enabled(quantizer, net):
    tok = tiny_tokenizer(quantizer, net).eval()
    x = images(tok, batch=3)
    with torch.enable_grad():
        enc = tok.encode(x)
        assert enc.quantized.requires_grad  # the straight-through path is really taken
        from_indices = tok.decode(enc.indices)
        from_codes = tok.decode_quantized(enc.quantized)
    assert torch.equal(tok.quantizer.indices_to_codes(enc.indices), enc.quantized)
    assert torch.equal(from_indices, from_codes)


# FSQ's gradient is straight-through only over the rounding (it keeps the bound's tanh derivative).
@pytest.mark.parametrize("quantizer", [name for name in QUANTIZERS.names() if name != "fsq"])
def test_straight_through_gradient_is_the_identity(quantizer):
    tok = tiny_tokenizer(quantizer).train()
    z = torch.randn(2, tok.codebook_dim, 3, 3, requires_grad=True)
    weights = torch.randn(2, tok.codebook_dim, 3, 3)
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

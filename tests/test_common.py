"""Common tests, parametrised over every registered quantizer × net: registering one enrols it here."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel

import vistok
from vistok import NETS, QUANTIZERS

from .helpers import images, tiny_tokenizer

PAIRS = [(q, n) for q in QUANTIZERS.names() for n in NETS.names()]


@pytest.fixture(params=PAIRS, ids=[f"{q}-{n}" for q, n in PAIRS])
def tok(request):
    quantizer, net = request.param
    return tiny_tokenizer(quantizer, net)


def test_output_shapes_dtypes_and_index_range(tok):
    x = images(tok)
    out = tok(x)
    f = tok.downsample_factor
    b, _, h, w = x.shape
    assert out.reconstruction.shape == x.shape and out.reconstruction.dtype == torch.float32
    assert out.indices.shape == (b, h // f, w // f) and out.indices.dtype == torch.int64
    assert out.quantized.shape == (b, tok.codebook_dim, h // f, w // f)
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < tok.codebook_size
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert all(name.endswith("_loss") for name in out.losses)
    assert set(out.stats) >= {"batch_usage", "perplexity"}
    assert 0 < float(out.stats["batch_usage"]) <= 1


def test_encode_decode_invariant_in_eval_mode(tok):
    tok.eval()
    x = images(tok, batch=3)
    with torch.no_grad():
        enc = tok.encode(x)
        from_indices = tok.decode(enc.indices)
        from_codes = tok.decode_quantized(enc.quantized)
    assert torch.equal(from_indices, from_codes)
    assert torch.equal(tok.quantizer.indices_to_codes(enc.indices), enc.quantized)


def test_save_load_bit_identical_including_buffers(tok, tmp_path):
    tok.eval()
    tok.save_pretrained(tmp_path)
    loaded = vistok.VisTokenizer.from_pretrained(tmp_path)
    assert not loaded.training
    for (name, a), (_, b) in zip(tok.named_buffers(), loaded.named_buffers(), strict=True):
        assert torch.equal(a, b), name
    for (name, a), (_, b) in zip(tok.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    x = images(tok)
    with torch.no_grad():
        assert torch.equal(tok(x).reconstruction, loaded(x).reconstruction)


def test_automodel_dispatch(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    model = AutoModel.from_pretrained(tmp_path)
    assert isinstance(model, vistok.VisTokenizer)
    assert model.config.quantizer == tok.config.quantizer and model.config.net == tok.config.net


def test_gradients_reach_the_encoder_through_the_quantizer(tok):
    tok.train()
    x = images(tok)
    out = tok(x)
    (torch.nn.functional.mse_loss(out.reconstruction, x) + out.loss).backward()
    first_encoder_weight = next(p for p in tok.encoder.parameters())
    assert first_encoder_weight.grad is not None and first_encoder_weight.grad.abs().sum() > 0
    assert tok.quant_conv.weight.grad.abs().sum() > 0

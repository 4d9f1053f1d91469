"""Common tests, parametrised over every registered quantizer × net: registering one enrols it here."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel

import vistok
from vistok import NETS, QUANTIZERS

from .helpers import images, tiny_tokenizer

# A multi-scale quantizer (VAR) quantizes a square latent grid at several scales: a sequence net (TiTok) has none.
PAIRS = [
    (q, n)
    for q in QUANTIZERS.names()
    for n in NETS.names()
    if not (getattr(QUANTIZERS.get(q), "layout", "grid") == "multiscale" and NETS.get(n).latent_kind == "sequence")
]


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
    # The indices' form depends on the token layout (vistok.layouts): (B, h/f, w/f) for a grid, (B, L) for a
    # sequence (latent (B, D, 1, L)); from_user refuses any other form. images() are at the native size.
    layout, latent_hw = tok.token_layout, tok.config.latent_hw
    layout.from_user(out.indices)
    if layout.kind == "grid":
        assert out.indices.shape == (b, h // f, w // f)
    flat = layout.flatten(out.indices)
    assert flat.shape == (b, layout.tokens_per_image(latent_hw)) and flat.dtype == torch.int64
    assert out.quantized.shape == (b, tok.codebook_dim, *latent_hw)
    assert 0 <= int(flat.min()) and int(flat.max()) < tok.codebook_size
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
    assert torch.equal(tok.quantizer.indices_to_codes(tok.token_layout.from_user(enc.indices)), enc.quantized)


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
    # the conv feeding the quantizer: the tokenizer's quant_conv, or the encoder's own last one (MoVQ keeps it there)
    feeding = tok.quant_conv if isinstance(tok.quant_conv, torch.nn.Conv2d) else tok.encoder.quant_conv
    assert feeding.weight.grad.abs().sum() > 0


@pytest.mark.filterwarnings("ignore:bf16 inference on a CPU without native bfloat16")
def test_fast_inference_float32_is_exact_and_bf16_leaves_the_tokenizer_alone(tok):
    from vistok.inference import fast_inference

    tok.eval()
    x = images(tok, batch=2)
    before = {k: v.clone() for k, v in tok.state_dict().items()}
    with torch.no_grad():
        indices = tok.encode(x).indices
        decoded = tok.decode(indices)
    flatten = tok.token_layout.flatten  # a multi-scale tokenizer's indices are a list, one tensor per scale
    fp32 = fast_inference(tok, "float32")
    assert torch.equal(flatten(fp32.encode(x)), flatten(indices)) and torch.equal(fp32.decode(indices), decoded)
    bf16 = fast_inference(tok, "bf16")
    bf16_indices = bf16.encode(x)
    flat = flatten(bf16_indices)
    assert flat.shape == flatten(indices).shape
    assert 0 <= int(flat.min()) and int(flat.max()) < tok.codebook_size
    images_out = bf16.decode(bf16_indices)
    assert images_out.dtype == torch.float32 and images_out.shape == x.shape and torch.isfinite(images_out).all()
    # decoding the float32 indices in bf16 stays close to float32 decoding (8-bit mantissa, ~0.4 % per value)
    assert (bf16.decode(indices) - decoded).abs().max() < 0.1 * decoded.abs().max() + 0.05
    after = tok.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())

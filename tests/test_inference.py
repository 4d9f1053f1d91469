"""vistok.inference.fast_inference: bfloat16 weights and torch.compile around the encoder / decoder, on CPU."""

from __future__ import annotations

import warnings

import pytest
import torch

from tests.helpers import images, tiny_tokenizer
from vistok import VisTokenizer
from vistok.data import build_dataset
from vistok.inference import fast_inference, parse_dtype

# bf16 runs here on purpose (its results, not its speed): the CPU's slowness warning has its own test.
pytestmark = pytest.mark.filterwarnings("ignore:bf16 inference on a CPU without native bfloat16")


@pytest.fixture(scope="module")
def trained():
    """The bundled trained tokenizer and 8 held-out sample crops at its 64 px (2,048 tokens)."""
    tok = VisTokenizer.from_pretrained("vistok/default").eval()
    data = build_dataset("samples", "test", image_size=64, num_samples=8)
    return tok, torch.stack([data[i]["pixel_values"] for i in range(8)])


def test_float32_eager_is_exactly_the_tokenizer(trained):
    tok, x = trained
    fast = fast_inference(tok, "float32")
    with torch.no_grad():
        indices = tok.encode(x).indices
        assert torch.equal(fast.encode(x), indices)
        assert torch.equal(fast.decode(indices), tok.decode(indices))


def test_bf16_runs_the_convolutions_in_bf16_and_the_search_in_float32(trained):
    tok, x = trained
    fast = fast_inference(tok, "bf16")
    seen = {}

    def record(key, tensor):  # a hook that returns None leaves the module's output alone
        seen.setdefault(key, tensor.dtype)

    encoder, decoder = fast.encoder_stack[0], fast.decoder_stack[1]
    hooks = [
        encoder.register_forward_hook(lambda m, i, o: record("encoder_out", o)),
        tok.quantizer.register_forward_pre_hook(lambda m, i: record("quantizer_in", i[0])),
        decoder.register_forward_hook(lambda m, i, o: record("decoder_out", o)),
        tok.encoder.register_forward_hook(lambda m, i, o: record("float32_encoder_used", o)),
    ]
    try:
        bf16 = fast.encode(x)
        images_out = fast.decode(bf16)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen == {"encoder_out": torch.bfloat16, "quantizer_in": torch.float32, "decoder_out": torch.bfloat16}
    assert {p.dtype for p in [*encoder.parameters(), *decoder.parameters()]} == {torch.bfloat16}
    assert {p.dtype for p in tok.parameters()} == {torch.float32}  # the copies are the bf16 ones
    assert images_out.dtype == torch.float32
    with torch.no_grad():
        fp32 = tok.encode(x).indices
    agreement = (bf16 == fp32).float().mean().item()
    # bfloat16 keeps 8 bits of mantissa: indices move only where a latent sits near a boundary between codes
    assert 0.9 <= agreement < 1.0 or torch.equal(bf16, fp32)


def test_bf16_copies_share_nothing_with_the_tokenizer_and_follow_no_later_move(trained):
    tok, x = trained
    fast = fast_inference(tok, "bf16")
    ours = {t.data_ptr() for t in [*tok.parameters(), *tok.buffers()]}
    for stack in (fast.encoder_stack, fast.decoder_stack):
        tensors = [*stack.parameters(), *stack.buffers()]
        assert not ours & {t.data_ptr() for t in tensors}
        assert {t.dtype for t in tensors if t.is_floating_point()} == {torch.bfloat16}
        assert all(not p.requires_grad for p in stack.parameters())
    tok.to(torch.float64)  # a later change of the tokenizer is named, not silently mixed with the copies
    try:
        with pytest.raises(RuntimeError, match="build it again"):
            fast.encode(x.double())
    finally:
        tok.to(torch.float32)
    fast32 = fast_inference(tok, "float32")
    tok.decoder.to(torch.float64)  # only one part moved: named, not a dtype clash deep inside a convolution
    try:
        with pytest.raises(RuntimeError, match=r"decoder cpu / torch.float32 → cpu / torch.float64"):
            fast32.decode(tok.encode(x).indices)
    finally:
        tok.decoder.to(torch.float32)


def test_a_tensor_outside_parameters_and_buffers_is_refused_by_name():
    from vistok.inference import stack_in_dtype

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)
            self.scale = torch.ones(3, 1, 1)  # a plain attribute: .to() and the bf16 copy do not convert it

        def forward(self, x):
            return self.conv(x) * self.scale

    with pytest.raises(TypeError, match="'scale' outside its parameters and buffers"):
        stack_in_dtype([Scaled()], torch.bfloat16)
    already = torch.nn.Conv2d(3, 3, 1).to(torch.bfloat16)  # casting to its own dtype still copies
    assert stack_in_dtype([already], torch.bfloat16)[0].weight.data_ptr() != already.weight.data_ptr()


def test_compile_wraps_the_encoder_and_decoder_stacks(monkeypatch):
    compiled = []

    def fake_compile(fn, **kwargs):
        compiled.append(fn.__name__)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    tok = tiny_tokenizer().eval()
    fast = fast_inference(tok, "float32", compile=True)
    assert compiled == ["_encode_latent", "_decode_codes"]
    x = images(tok)
    with torch.no_grad():
        assert torch.equal(fast.encode(x), tok.encode(x).indices)


@pytest.mark.slow  # inductor compiles C++ kernels: about a minute on a 2-core machine
def test_compiled_tiny_tokenizer_gives_the_eager_indices():
    tok = tiny_tokenizer().eval()
    x = images(tok, batch=2)
    with torch.no_grad():
        assert torch.equal(fast_inference(tok, "float32", compile=True).encode(x), tok.encode(x).indices)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="choose one of float32, bf16"):
        parse_dtype("fp8")
    tok = tiny_tokenizer().train()
    with pytest.raises(ValueError, match="eval-mode"):
        fast_inference(tok)
    with pytest.raises(ValueError, match=r"pixel_values must lie in \[-1, 1\]"):
        fast_inference(tok.eval(), "bf16").encode(torch.full((1, 3, 16, 16), 200.0))


def test_bf16_on_a_cpu_without_native_bfloat16_warns_once_built(monkeypatch):
    import vistok.inference as inference

    tok = tiny_tokenizer().eval()
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="without native bfloat16"):
        fast_inference(tok, "bf16")
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast_inference(tok, "bf16")
        fast_inference(tok, "float32")

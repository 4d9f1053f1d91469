"""Fast inference for a trained tokenizer: bfloat16 weights and ``torch.compile`` for the encoder and decoder.

    fast = fast_inference(tok, dtype="bf16", compile=True)        # tok: an eval-mode VisTokenizer on its device
    indices = fast.encode(pixel_values)                            # as tok.encode(pixel_values).indices
    images = fast.decode(indices)                                  # float32 (B, C, H, W), as tok.decode(indices)

Only the convolution / attention stacks (encoder + ``quant_conv``, ``post_quant_conv`` + decoder) run in the
reduced precision, as bfloat16 copies of their weights made once (the tokenizer itself is left as it is); the latent
is cast back to float32 before the quantizer, so the nearest-code search and the code lookup are float32 as in
``tok.encode``. bfloat16 therefore changes an index only where the encoder's rounding moves a latent across a
near-tie between two codes. With ``dtype="float32"`` and ``compile=False`` the result is exactly
``tok.encode(x).indices`` / ``tok.decode(indices)``.

bfloat16 weights rather than autocast: autocast keeps normalisation layers in float32 and casts around each of
them; on an H200 the LlamaGen VQ-16 architecture ran encode+decode at 292 images/s under autocast and 384 with
bfloat16 weights (``benchmarks/results/fast_inference_peer_cuda.json``).

``compile=True`` wraps the two stacks in ``torch.compile`` (the first batch of each shape compiles; later ones
reuse it). Both options work on CPU too, where they are rarely faster: a CPU without native bfloat16 arithmetic
runs bf16 many times slower than float32 (``docs/benchmarks.md``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

DTYPES: dict[str, torch.dtype | None] = {"float32": None, "fp32": None, "bf16": torch.bfloat16,
                                          "bfloat16": torch.bfloat16}
DTYPE_CHOICES = ("float32", "bf16")


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"float32"``/``"fp32"``/``None``/``torch.float32`` → ``None`` (float32 as the tokenizer is);
    ``"bf16"``/``"bfloat16"``/``torch.bfloat16`` → ``torch.bfloat16``. ``ValueError`` naming the choices for
    anything else."""
    if dtype is None or dtype == torch.float32:
        return None
    if dtype == torch.bfloat16:
        return torch.bfloat16
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f"unknown inference dtype {dtype!r}; choose one of {', '.join(DTYPE_CHOICES)}")


def stack_in_dtype(modules: list[nn.Module], dtype: torch.dtype | None) -> nn.Sequential:
    """``modules`` run one after the other. ``dtype`` ``None``: the modules themselves (shared with the tokenizer);
    otherwise an eval-mode snapshot whose floating-point parameters and buffers are new ``dtype`` tensors (tied
    weights stay tied), made without a transient float32 copy of the weights. ``TypeError`` when a module keeps a
    floating-point tensor outside its parameters and buffers, which the copy could not convert."""
    if dtype is None:
        return nn.Sequential(*modules)
    memo: dict[int, Any] = {}
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            if id(tensor) in memo or not tensor.is_floating_point():
                continue
            cast = tensor.detach().to(dtype, copy=True)
            memo[id(tensor)] = nn.Parameter(cast, requires_grad=False) if isinstance(tensor, nn.Parameter) else cast
    stack = copy.deepcopy(nn.Sequential(*modules), memo)
    for name, module in stack.named_modules():
        for attribute, value in vars(module).items():
            if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != dtype:
                raise TypeError(
                    f"cannot run {type(module).__name__} {name!r} in {dtype}: it keeps the {value.dtype} tensor "
                    f"{attribute!r} outside its parameters and buffers (register it as a buffer)"
                )
    return stack.eval().requires_grad_(False)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX, as oneDNN reports it); ``True`` when torch
    cannot tell, so that nothing is claimed without evidence."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


class FastTokenizer:
    """``encode`` / ``decode`` of ``tok`` with its encoder and decoder stacks in ``dtype`` and optionally compiled;
    see the module docstring. Build it with :func:`fast_inference` once ``tok`` is on its device and dtype, with its
    final weights: in bf16 the stacks are a snapshot, so weights loaded or trained later are not seen (build it
    again); moving the tokenizer's encoder, decoder or quantizer afterwards is refused with a message."""

    def __init__(self, tok: Any, dtype: str | torch.dtype | None = "float32", compile: bool = False):
        if tok.training:
            raise ValueError("fast inference needs an eval-mode tokenizer: call tok.eval() first")
        self.tok = tok
        self.compute_dtype = parse_dtype(dtype)
        if self.compute_dtype == torch.bfloat16 and tok.device.type == "cpu" and not cpu_has_native_bf16():
            warnings.warn(
                "bf16 inference on a CPU without native bfloat16 arithmetic (no AVX512-BF16 / AMX) runs many times "
                "slower than float32; use dtype='float32' (--dtype float32) on this machine, bf16 on a GPU",
                UserWarning,
                stacklevel=3,
            )
        self.compiled = bool(compile)
        self.encoder_stack = stack_in_dtype([tok.encoder, tok.quant_conv], self.compute_dtype)
        self.decoder_stack = stack_in_dtype([tok.post_quant_conv, tok.decoder], self.compute_dtype)
        self._placement = self._placement_now()
        self._latent: Callable[[torch.Tensor], torch.Tensor] = self._encode_latent
        self._pixels: Callable[[torch.Tensor], torch.Tensor] = self._decode_codes
        if compile:
            self._latent = torch.compile(self._encode_latent)
            self._pixels = torch.compile(self._decode_codes)

    @property
    def dtype_name(self) -> str:
        return "bf16" if self.compute_dtype == torch.bfloat16 else "float32"

    def _encode_latent(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encoder_stack(pixel_values.to(self.compute_dtype or pixel_values.dtype)).float()

    def _decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder_stack(codes.to(self.compute_dtype or codes.dtype)).float()

    def _placement_now(self) -> dict[str, tuple]:
        """(device, dtype) of each part of the tokenizer the wrapper relies on (its first floating-point tensor)."""
        placement = {}
        for name in ("encoder", "quant_conv", "quantizer", "post_quant_conv", "decoder"):
            module = getattr(self.tok, name)
            first = next((t for t in [*module.parameters(), *module.buffers()] if t.is_floating_point()), None)
            placement[name] = (first.device, first.dtype) if first is not None else None
        return placement

    def _check_device(self) -> None:
        now = self._placement_now()
        moved = [f"{name} {before[0]} / {before[1]} → {now[name][0]} / {now[name][1]}"
                 for name, before in self._placement.items() if before is not None and now[name] != before]
        if moved:
            raise RuntimeError(
                f"the tokenizer changed after fast_inference() was built ({'; '.join(moved)}); build it again for "
                "the tokenizer as it is now"
            )

    @torch.no_grad()
    def encode(self, pixel_values: torch.Tensor):
        """(B, C, H, W) in [−1, 1] → indices in the tokenizer's layout (as ``tok.encode(x).indices``); the inputs
        are checked as ``tok.encode`` checks them."""
        self.tok.check_pixel_values(pixel_values)
        self._check_device()
        z = self._latent(pixel_values.to(device=self.tok.device, dtype=self.tok.dtype))
        return self.tok.token_layout.to_user(self.tok.quantizer(z).indices)

    @torch.no_grad()
    def decode(self, indices) -> torch.Tensor:
        """Indices as :meth:`encode` returns them → float32 images (B, C, H, W), nominally in [−1, 1]."""
        self._check_device()
        internal = self.tok.token_layout.from_user(indices)
        if isinstance(internal, torch.Tensor):
            internal = internal.to(self.tok.device)
        else:
            internal = [scale.to(self.tok.device) for scale in internal]
        return self._pixels(self.tok.quantizer.indices_to_codes(internal))


def fast_inference(tok: Any, dtype: str | torch.dtype | None = "bf16", compile: bool = False) -> FastTokenizer:
    """``tok`` (eval mode, on its device) wrapped for fast ``encode`` / ``decode``: ``dtype`` ``"bf16"`` runs the
    encoder and decoder with bfloat16 copies of their weights (the quantizer stays float32), ``compile`` applies
    ``torch.compile`` to them. ``fast_inference(tok, "float32")`` computes exactly what ``tok`` computes."""
    return FastTokenizer(tok, dtype=dtype, compile=compile)


__all__ = ["DTYPE_CHOICES", "FastTokenizer", "cpu_has_native_bf16", "fast_inference", "parse_dtype", "stack_in_dtype"]

"""Fast inference for a trained tokenizer: bfloat16 autocast and ``torch.compile`` around the encoder and decoder.

    fast = fast_inference(tok, dtype="bf16", compile=True)        # tok: an eval-mode VisTokenizer on its device
    indices = fast.encode(pixel_values)                            # as tok.encode(pixel_values).indices
    images = fast.decode(indices)                                  # float32 (B, C, H, W), as tok.decode(indices)

Only the convolution / attention stacks (encoder + ``quant_conv``, ``post_quant_conv`` + decoder) run in the
reduced precision; the latent is cast back to float32 before the quantizer, so the nearest-code search and the
code lookup are float32 as in ``tok.encode``. bfloat16 therefore changes an index only where the encoder's rounding
moves a latent across a near-tie between two codes. With ``dtype="float32"`` and ``compile=False`` the result is
exactly ``tok.encode(x).indices`` / ``tok.decode(indices)``.

``compile=True`` wraps those two stacks in ``torch.compile`` (the first batch of each shape compiles; later ones
reuse it). Both options work on CPU too (CPU autocast supports bfloat16), where they are rarely faster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

DTYPES: dict[str, torch.dtype | None] = {"float32": None, "fp32": None, "bf16": torch.bfloat16,
                                          "bfloat16": torch.bfloat16}
DTYPE_CHOICES = ("float32", "bf16")


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"float32"``/``"fp32"``/``None``/``torch.float32`` → ``None`` (no autocast); ``"bf16"``/``"bfloat16"``/
    ``torch.bfloat16`` → ``torch.bfloat16``. ``ValueError`` naming the choices for anything else."""
    if dtype is None or dtype == torch.float32:
        return None
    if dtype == torch.bfloat16:
        return torch.bfloat16
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f"unknown inference dtype {dtype!r}; choose one of {', '.join(DTYPE_CHOICES)}")


class FastTokenizer:
    """``encode`` / ``decode`` of ``tok`` with an optional autocast dtype and ``torch.compile``; see the module
    docstring. Build it with :func:`fast_inference`. The wrapped tokenizer is used as is (same device, eval mode)."""

    def __init__(self, tok: Any, dtype: str | torch.dtype | None = "float32", compile: bool = False):
        if tok.training:
            raise ValueError("fast inference needs an eval-mode tokenizer: call tok.eval() first")
        self.tok = tok
        self.autocast_dtype = parse_dtype(dtype)
        self.compiled = bool(compile)
        self._latent: Callable[[torch.Tensor], torch.Tensor] = self._encode_latent
        self._pixels: Callable[[torch.Tensor], torch.Tensor] = self._decode_codes
        if compile:
            self._latent = torch.compile(self._encode_latent)
            self._pixels = torch.compile(self._decode_codes)

    @property
    def dtype_name(self) -> str:
        return "bf16" if self.autocast_dtype == torch.bfloat16 else "float32"

    def _autocast(self, device: torch.device):
        enabled = self.autocast_dtype is not None
        return torch.autocast(device.type, dtype=self.autocast_dtype or torch.float32, enabled=enabled)

    def _encode_latent(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with self._autocast(pixel_values.device):
            z = self.tok.quant_conv(self.tok.encoder(pixel_values))
        return z.float()

    def _decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        with self._autocast(codes.device):
            images = self.tok.decoder(self.tok.post_quant_conv(codes))
        return images.float()

    @torch.no_grad()
    def encode(self, pixel_values: torch.Tensor):
        """(B, C, H, W) in [−1, 1] → indices in the tokenizer's layout (as ``tok.encode(x).indices``); the inputs
        are checked as ``tok.encode`` checks them."""
        self.tok.check_pixel_values(pixel_values)
        z = self._latent(pixel_values.to(device=self.tok.device, dtype=self.tok.dtype))
        return self.tok.token_layout.to_user(self.tok.quantizer(z).indices)

    @torch.no_grad()
    def decode(self, indices) -> torch.Tensor:
        """Indices as :meth:`encode` returns them → float32 images (B, C, H, W), nominally in [−1, 1]."""
        internal = self.tok.token_layout.from_user(indices)
        if isinstance(internal, torch.Tensor):
            internal = internal.to(self.tok.device)
        else:
            internal = [scale.to(self.tok.device) for scale in internal]
        return self._pixels(self.tok.quantizer.indices_to_codes(internal))


def fast_inference(tok: Any, dtype: str | torch.dtype | None = "bf16", compile: bool = False) -> FastTokenizer:
    """``tok`` (eval mode, on its device) wrapped for fast ``encode`` / ``decode``: ``dtype`` ``"bf16"`` runs the
    encoder and decoder under bfloat16 autocast (the quantizer stays float32), ``compile`` applies
    ``torch.compile`` to them. ``fast_inference(tok, "float32")`` computes exactly what ``tok`` computes."""
    return FastTokenizer(tok, dtype=dtype, compile=compile)


__all__ = ["DTYPE_CHOICES", "FastTokenizer", "fast_inference", "parse_dtype"]

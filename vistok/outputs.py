"""Typed outputs (transformers ``ModelOutput`` dataclasses) returned by quantizers and tokenizers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class QuantizerOutput(ModelOutput):
    """What every quantizer's ``forward(z)`` returns.

    quantized: (B, D, h, w) straight-through codes: their values are exactly ``indices_to_codes(indices)`` (with or
               without autograd), their gradient flows to ``z``.
    indices:   (B, h, w) int64 code indices in ``[0, codebook_size)``.
    losses:    named, already weighted loss terms (``commitment_loss``, ``codebook_loss``, ``entropy_loss`` …);
               empty in eval mode for quantizers whose losses only matter for training.
    stats:     detached diagnostics (``batch_usage`` ∈ [0, 1], ``perplexity``).
    """

    quantized: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] | None = None
    stats: dict[str, torch.Tensor] | None = None


@dataclass
class EncoderOutput(ModelOutput):
    """``VisTokenizer.encode``: indices (B, h, w) int64, quantized (B, D, h, w), and the quantizer's terms."""

    indices: torch.Tensor | None = None
    quantized: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] | None = None
    stats: dict[str, torch.Tensor] | None = None


@dataclass
class TokenizerOutput(ModelOutput):
    """``VisTokenizer.forward``.

    reconstruction: (B, C, H, W), nominally in [-1, 1].
    indices / quantized: as in :class:`EncoderOutput`.
    loss: sum of the quantizer's weighted losses (a scalar; 0 when there are none).
    losses / stats: the individual terms and diagnostics.
    """

    reconstruction: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    quantized: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] | None = None
    stats: dict[str, torch.Tensor] | None = None

"""Lookup-free quantisation (MAGVIT-v2, Yu et al., 2023): per-dimension sign quantisation.

Where the formulas come from (Yu et al., "Language Model Beats Diffusion — Tokenizer is Key to Visual
Generation", arXiv 2310.05737; vector-quantize-pytorch's ``LFQ``):

- Sign quantisation of each dimension, the index as the bit pattern, and the entropy penalty
  ``E[H(p(c|z))] − H(E[p(c|z)])``: the paper's.
- The soft assignment ``p(c|z) = softmax(2⟨z, c⟩/τ)`` (= softmax(−||z − c||²/τ), every code having the same norm),
  the weight γ (``diversity_weight``, vector-quantize-pytorch's ``diversity_gamma``) on the codebook entropy,
  ``codebook_scale`` and channel 0 as the most significant bit: vector-quantize-pytorch's. Its default
  ``inv_temperature = 100`` is vistok's default τ = 0.01.
- Deviations: vector-quantize-pytorch clamps probabilities at 1e-5 inside its logs; vistok computes exact
  entropies with logits floored at the row maximum − 60, in memory-bounded chunks (``vistok.entropy``). Above
  2^14 codes (:data:`MAX_EXACT_ENTROPY_CODES`) vistok factorises over bits: the per-sample entropy stays exact (the
  softmax factorises, ``p(bit = +) = sigmoid(4·s·z/τ)``), but the codebook entropy becomes the sum of the per-bit
  entropies of the batch-mean bit probabilities — an upper bound of the exact codebook entropy, not equal to it.
  Quantisation runs in float32 whatever the latents' dtype, as vector-quantize-pytorch's
  ``force_quantization_f32`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import initialization as init

from ..entropy import entropy_terms
from ..outputs import QuantizerOutput
from ..registry import QUANTIZERS
from .base import (
    MAX_CODEBOOK_SIZE,
    Quantizer,
    channels_last_flat,
    check_positive,
    scalar_quantization_dtype,
    straight_through,
    usage_stats,
)

# Above this many codes the exact codebook entropy (an N × 2^D softmax) is replaced by the factorised bitwise
# bound (sum of per-bit entropies of the batch-mean bit probabilities).
MAX_EXACT_ENTROPY_CODES = 2**14


@QUANTIZERS.register("lfq")
class LookupFreeQuantizer(Quantizer):
    """Each channel is quantised to ±``codebook_scale``; the index is the bit pattern (channel 0 = MSB).

    The implicit codebook has 2^D codes. Training losses: commitment ``β·||z − sg(q)||²`` and the MAGVIT-v2
    entropy objective ``entropy_weight · (H[p(c|z)] − diversity_weight · H[E_z p(c|z)])`` with
    ``p(c|z) = softmax(−||z − c||² / τ)`` — low per-sample entropy (confident assignments) and high codebook
    entropy (all codes used).
    """

    tiny = {"codebook_dim": 5}

    def __init__(
        self,
        codebook_dim: int = 9,
        commitment_weight: float = 0.25,
        entropy_weight: float = 0.1,
        diversity_weight: float = 1.0,
        entropy_temperature: float = 0.01,
        codebook_scale: float = 1.0,
    ):
        super().__init__()
        self._codebook_dim = codebook_dim
        self.commitment_weight = commitment_weight
        self.entropy_weight = entropy_weight
        self.diversity_weight = diversity_weight
        self.entropy_temperature = entropy_temperature
        self.codebook_scale = codebook_scale
        self.register_buffer("_bit_values", torch.empty(codebook_dim, dtype=torch.int64), persistent=False)
        self.init_weights()

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive(spec, "codebook_dim", integer=True)
        check_positive(spec, "entropy_temperature", "codebook_scale")
        check_positive(spec, "commitment_weight", "entropy_weight", "diversity_weight", allow_zero=True)
        if 2 ** spec["codebook_dim"] > MAX_CODEBOOK_SIZE:
            raise ValueError(
                f"lfq codebook_dim must be <= 62 (2^62 codes; indices are int64), got {spec['codebook_dim']}"
            )

    @property
    def codebook_size(self) -> int:
        return 2**self._codebook_dim

    @property
    def codebook_dim(self) -> int:
        return self._codebook_dim

    def init_weights(self) -> None:
        bits = 2 ** torch.arange(self._codebook_dim - 1, -1, -1, dtype=torch.int64)
        init.copy_(self._bit_values, bits)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, D, h, w) → codes ±codebook_scale (B, D, h, w) and indices (B, h, w).

        Works in float32 whatever the latents' dtype (float64 stays float64), outside autocast, and returns
        float32 codes, equal to ``indices_to_codes(indices)`` (±``codebook_scale`` rounded once, to float32).
        """
        with torch.autocast(z.device.type, enabled=False):
            return self._quantize(z.to(scalar_quantization_dtype(z)))

    def _quantize(self, z: torch.Tensor) -> QuantizerOutput:
        scale = self.codebook_scale
        codes = torch.where(z > 0, scale, -scale).to(z.dtype)
        indices = ((z > 0).long() * self._bit_values.view(1, -1, 1, 1)).sum(dim=1)
        losses = {"commitment_loss": self.commitment_weight * F.mse_loss(z, codes)}
        if self.training and self.entropy_weight > 0:
            losses["entropy_loss"] = self.entropy_weight * self._entropy_objective(channels_last_flat(z))
        return QuantizerOutput(
            quantized=straight_through(z, codes),
            indices=indices,
            losses=losses,
            stats=usage_stats(indices, self.codebook_size),
        )

    def _entropy_objective(self, flat: torch.Tensor) -> torch.Tensor:
        tau = self.entropy_temperature
        if self.codebook_size <= MAX_EXACT_ENTROPY_CODES:
            all_codes = self.indices_to_codes_flat(torch.arange(self.codebook_size, device=flat.device))
            # −||z − c||² = 2 z·c − const(z) − ||c||², and ||c||² is the same for every code.
            sample_entropy, codebook_entropy = entropy_terms(flat, all_codes, scale=2 / tau)
        else:
            # p(c|z) factorises over bits: p(bit_d = +) = sigmoid(4·s·z_d / τ).
            p_pos = torch.sigmoid(4 * self.codebook_scale * flat.float() / tau)
            sample_entropy = _binary_entropy(p_pos).sum(-1).mean()
            codebook_entropy = _binary_entropy(p_pos.mean(0)).sum()
        return sample_entropy - self.diversity_weight * codebook_entropy

    def indices_to_codes_flat(self, indices: torch.Tensor) -> torch.Tensor:
        """(N,) int64 → (N, D) codes ±codebook_scale."""
        bits = (indices.unsqueeze(-1) & self._bit_values) != 0
        scale = self.codebook_scale
        dtype = torch.get_default_dtype()
        return torch.where(bits, scale, -scale).to(dtype)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        self.check_indices(indices)
        return self.indices_to_codes_flat(indices).permute(0, 3, 1, 2).contiguous()


def _binary_entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-6, 1 - 1e-6)
    return -(p * p.log() + (1 - p) * (1 - p).log())

"""Binary spherical quantisation (BSQ; Zhao, Xiong and Krähenbühl, "Image and Video Tokenization with Binary
Spherical Quantization", arXiv 2406.07548): lookup-free bits on the unit hypersphere.

Where the formulas come from:

- Quantisation (the paper's Sec. 3.2): the d-channel latent is projected onto the unit sphere, ``u = z / ||z||``,
  and each channel is quantised to ``û = sign(u) / √d``, so every code has unit norm too; the gradient passes
  straight through the sign, ``û = u + sg(û − u)`` — and through the projection back to ``z``. As in the authors'
  BSQ-ViT code, ``u_c = 0`` gives the negative value (bit 0). The index is the bit pattern, channel 0 the most
  significant bit (``bit_order="msb_first"``, BSQ-ViT's basis ``2^(d−1) … 1``) or the least significant one
  (``"lsb_first"``), as vistok's ``lfq``.
- Entropy terms (Sec. 3.3): the soft assignment ``q(c|u) = softmax(−||u − c||² / τ)`` over the 2^d codes
  c ∈ {±1/√d}^d (BSQ-ViT's ``softmax(2⟨u, c⟩ · inv_temperature)``, τ = 1 / inv_temperature). The objective is
  ``E_u[H(q(c|u))] − γ · H(E_u[q(c|u)])``: low per-sample entropy (confident bits), high codebook entropy (all codes
  used). Because every code has the same norm, ``q(c|u)`` factorises over channels (a product of per-channel
  Bernoullis with ``q(c_i = +1/√d | u_i) = σ(4 u_i / (τ√d))``), so the per-sample entropy is exactly the sum of the
  per-channel ones. The codebook entropy does not factorise: the paper approximates it by the sum over channels of
  the entropies of ``E_u[q(c_i|u_i)]``, an upper bound. vistok computes it as BSQ-ViT's "group" option does: the
  channels are split into consecutive groups of at most ``entropy_group_size`` (as equal as possible), the entropy
  of each group's mean sub-code distribution is computed exactly over its 2^g sub-codes, and the groups' entropies
  are summed. ``entropy_group_size=1`` is the paper's factorised approximation, a single group (``≥ d``, at most 15
  channels) is exact, the default 9 is BSQ-ViT's. The per-sample entropy is exact for every grouping.
- Losses: ``entropy_loss = entropy_weight · (sample_entropy_weight · H_sample − codebook_entropy_weight ·
  H_codebook)`` (BSQ-ViT's ``zeta · (gamma0 · H_sample − gamma · H_codebook)``, further scaled by its loss's
  ``codebook_weight`` 0.1: vistok's default ``entropy_weight`` 0.1 is that product) and ``commitment_loss =
  commitment_weight · E_tokens ||u − sg(û)||²`` (summed over channels, as BSQ-ViT's; its released configs use
  β = 0, vistok's default). Deviations: BSQ-ViT also divides the entropy penalty by ``inv_temperature`` (1 in its
  configs) and guards its logs with +1e-8; vistok computes exact entropies with logits floored at the row maximum
  − 60 (``vistok.entropy``), in memory-bounded chunks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..outputs import QuantizerOutput
from ..registry import QUANTIZERS
from .base import (
    MAX_CODEBOOK_SIZE,
    channels_first_grid,
    channels_last_flat,
    check_positive,
    straight_through,
    usage_stats,
)
from .lfq import MAX_EXACT_ENTROPY_BITS, BitPatternQuantizer, channel_groups, check_bit_order


@QUANTIZERS.register("bsq")
class BinarySphericalQuantizer(BitPatternQuantizer):
    """Each latent is l2-normalised and each channel quantised to ±1/√d; the index is the bit pattern (2^d
    implicit codes of unit norm).

    Args:
        codebook_dim: bits per token d (codebook size 2^d, at most 62).
        commitment_weight: β of ``E ||u − sg(û)||²`` (0 in BSQ-ViT's configs).
        entropy_weight: weight of the whole entropy objective.
        sample_entropy_weight: γ0, weight of the per-sample entropy.
        codebook_entropy_weight: γ, weight of the codebook entropy.
        entropy_temperature: τ of ``q(c|u) = softmax(−||u − c||² / τ)`` (BSQ-ViT's 1 / inv_temperature).
        entropy_group_size: channels per group of the codebook entropy (module docstring); at most 15.
        bit_order: ``"msb_first"`` (channel 0 is the most significant bit, BSQ-ViT's) or ``"lsb_first"``.
    """

    tiny = {"codebook_dim": 5}

    def __init__(
        self,
        codebook_dim: int = 18,
        commitment_weight: float = 0.0,
        entropy_weight: float = 0.1,
        sample_entropy_weight: float = 1.0,
        codebook_entropy_weight: float = 1.0,
        entropy_temperature: float = 1.0,
        entropy_group_size: int = 9,
        bit_order: str = "msb_first",
    ):
        super().__init__()
        self._init_bits(codebook_dim, bit_order)
        self.commitment_weight = commitment_weight
        self.entropy_weight = entropy_weight
        self.sample_entropy_weight = sample_entropy_weight
        self.codebook_entropy_weight = codebook_entropy_weight
        self.entropy_temperature = entropy_temperature
        self.entropy_group_size = entropy_group_size
        self.init_weights()

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive(spec, "codebook_dim", "entropy_group_size", integer=True)
        check_positive(spec, "entropy_temperature")
        check_positive(
            spec,
            "commitment_weight",
            "entropy_weight",
            "sample_entropy_weight",
            "codebook_entropy_weight",
            allow_zero=True,
        )
        check_bit_order(spec["bit_order"])
        if 2 ** spec["codebook_dim"] > MAX_CODEBOOK_SIZE:
            raise ValueError(
                f"bsq codebook_dim must be <= 62 (2^62 codes; indices are int64), got {spec['codebook_dim']}"
            )
        if spec["entropy_group_size"] > MAX_EXACT_ENTROPY_BITS:
            raise ValueError(
                f"bsq entropy_group_size must be <= {MAX_EXACT_ENTROPY_BITS} (each group's entropy is computed over "
                f"its 2^size sub-codes), got {spec['entropy_group_size']}"
            )

    @property
    def code_scale(self) -> float:
        """|û_c| = 1/√d: every code has unit norm."""
        return 1.0 / math.sqrt(self._codebook_dim)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, D, h, w) → codes ±1/√D (B, D, h, w) and indices (B, h, w); float32 (the base class's rule)."""
        flat = channels_last_flat(z)
        u = F.normalize(flat, dim=-1)
        positive = u > 0
        scale = self.code_scale
        codes = torch.where(positive, scale, -scale).to(u.dtype)
        indices = (positive.long() * self._bit_values).sum(dim=-1).reshape(z.shape[0], *z.shape[2:])
        losses = {
            "commitment_loss": self.commitment_weight * (u - codes).pow(2).sum(dim=-1).mean(),
        }
        if self.training and self.entropy_weight > 0:
            sample_entropy, codebook_entropy = self.entropy_terms(u)
            losses["entropy_loss"] = self.entropy_weight * (
                self.sample_entropy_weight * sample_entropy - self.codebook_entropy_weight * codebook_entropy
            )
        return QuantizerOutput(
            quantized=channels_first_grid(straight_through(u, codes), z),
            indices=indices,
            losses=losses,
            stats=usage_stats(indices, self.codebook_size),
        )

    def entropy_terms(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean per-sample entropy, codebook entropy)`` in nats of ``q(c|u) = softmax(2⟨u, c⟩/τ)`` over the codes
        c ∈ {±1/√d}^d, for unit latents ``u`` (N, d): the per-sample entropy exactly, the codebook entropy summed
        over :func:`channel_groups` of at most ``entropy_group_size`` channels (exact within each group)."""
        return self.grouped_entropy_terms(u, channel_groups(self._codebook_dim, self.entropy_group_size))

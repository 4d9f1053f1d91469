"""Lookup-free quantisation (MAGVIT-v2, Yu et al., 2023): per-dimension sign quantisation.

Where the formulas come from (Yu et al., "Language Model Beats Diffusion — Tokenizer is Key to Visual
Generation", arXiv 2310.05737; vector-quantize-pytorch's ``LFQ``):

- Sign quantisation of each dimension, the index as the bit pattern, and the entropy penalty
  ``E[H(p(c|z))] − H(E[p(c|z)])``: the paper's.
- The soft assignment ``p(c|z) = softmax(2⟨z, c⟩/τ)`` (= softmax(−||z − c||²/τ), every code having the same norm),
  the weight γ (``diversity_weight``, vector-quantize-pytorch's ``diversity_gamma``) on the codebook entropy,
  ``codebook_scale`` and channel 0 as the most significant bit (``bit_order="msb_first"``, the default):
  vector-quantize-pytorch's. Its default ``inv_temperature = 100`` is vistok's default τ = 0.01.
- ``bit_order="lsb_first"``: channel 0 is the least significant bit, index = Σ_c bit_c · 2^c — Open-MAGVIT2's
  (SEED-Voken's ``LFQ`` masks with ``2**arange(D)`` although its docstrings say "big endian"). Converted
  Open-MAGVIT2 checkpoints use it so that their indices are upstream's with the weights unchanged. The bit order
  changes only which integer names a code, never the codes, the losses or the entropies.
- Deviations: vector-quantize-pytorch clamps probabilities at 1e-5 inside its logs; vistok computes exact
  entropies with logits floored at the row maximum − 60, in memory-bounded chunks (``vistok.entropy``). Up to
  :data:`MAX_EXACT_ENTROPY_BITS` (15) bits both entropies are exact. Above, the channels are split into
  :func:`entropy_bit_groups` (as equal as possible, each of at most 15 bits; 18 bits → 9 + 9, the split of
  Open-MAGVIT2's token factorisation) and each group's entropies are computed exactly over its sub-codebook: the
  per-sample entropy stays exact (``p(c|z)`` is a product over channels, so entropies add over groups), and the
  codebook entropy is the sum of the groups' codebook entropies. That sum bounds the exact codebook entropy from
  above, but unlike a per-bit bound it sees a collapse: a batch that uses two codes scores at most
  ``groups · ln 2`` nats, however the two codes' bits are spread.
  Quantisation runs in float32 whatever the latents' dtype, as vector-quantize-pytorch's
  ``force_quantization_f32`` does (the rule of every vistok quantizer, ``vistok.quantizers.base.Quantizer``).
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
    straight_through,
    usage_stats,
)

# Widest group of channels whose entropies are computed exactly over all its 2^bits sub-codes (an N × 2^bits
# softmax, in memory-bounded chunks); wider codes are split into groups (see the module docstring).
MAX_EXACT_ENTROPY_BITS = 15
BIT_ORDERS = ("msb_first", "lsb_first")


def channel_groups(channels: int, max_size: int) -> list[range]:
    """Consecutive ranges covering ``channels``, as equal in size as possible, each of at most ``max_size``:
    18 channels in groups of ≤ 9 → [0, 9) + [9, 18); 10 in groups of ≤ 4 → 4 + 3 + 3."""
    count = -(-channels // max_size)
    sizes = [channels // count + (i < channels % count) for i in range(count)]
    starts = [sum(sizes[:i]) for i in range(count)]
    return [range(start, start + size) for start, size in zip(starts, sizes, strict=True)]


def entropy_bit_groups(codebook_dim: int) -> list[range]:
    """:func:`channel_groups` of at most :data:`MAX_EXACT_ENTROPY_BITS`: one group up to 15 bits, 18 → [0, 9) +
    [9, 18), 40 → 14 + 13 + 13."""
    return channel_groups(codebook_dim, MAX_EXACT_ENTROPY_BITS)


class BitPatternQuantizer(Quantizer):
    """What ``lfq`` and ``bsq`` share: each of the ``codebook_dim`` channels is quantised to ±:attr:`code_scale`,
    the index is the bit pattern (``bit_order``: channel 0 the most or the least significant bit), and the entropy
    terms are exact over the sub-codes of groups of channels. Subclasses set :attr:`code_scale` and call
    :meth:`_init_bits` in ``__init__``."""

    def _init_bits(self, codebook_dim: int, bit_order: str) -> None:
        self._codebook_dim = codebook_dim
        self.bit_order = check_bit_order(bit_order)
        self.register_buffer("_bit_values", torch.empty(codebook_dim, dtype=torch.int64), persistent=False)

    @property
    def codebook_size(self) -> int:
        return 2**self._codebook_dim

    @property
    def codebook_dim(self) -> int:
        return self._codebook_dim

    @property
    def code_scale(self) -> float:
        """|code_c|, the same for every channel."""
        raise NotImplementedError

    def init_weights(self) -> None:
        powers = torch.arange(self._codebook_dim, dtype=torch.int64)
        if self.bit_order == "msb_first":
            powers = powers.flip(0)
        init.copy_(self._bit_values, 2**powers)

    def grouped_entropy_terms(self, flat: torch.Tensor, groups: list[range]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean per-sample entropy, codebook entropy)`` in nats of ``softmax(2⟨x, c⟩/τ)`` over the codes
        c ∈ {±code_scale}^d for latents ``flat`` (N, d), summed over channel ``groups`` (each exact over its 2^g
        sub-codes, an N × 2^g softmax in memory-bounded chunks). −||x − c||² = 2 x·c − const(x) − ||c||², and ||c||²
        is the same for every code."""
        sample_entropy = codebook_entropy = flat.new_zeros((), dtype=torch.float32)
        for channels in groups:
            sub_codes = _sign_codes(len(channels), self.code_scale, flat.dtype, flat.device)
            sample, codebook = entropy_terms(
                flat[:, channels.start : channels.stop], sub_codes, scale=2 / self.entropy_temperature
            )
            sample_entropy, codebook_entropy = sample_entropy + sample, codebook_entropy + codebook
        return sample_entropy, codebook_entropy

    def indices_to_codes_flat(self, indices: torch.Tensor) -> torch.Tensor:
        """(N,) int64 → (N, d) codes ±code_scale."""
        bits = (indices.unsqueeze(-1) & self._bit_values) != 0
        scale = self.code_scale
        return torch.where(bits, scale, -scale).to(torch.get_default_dtype())

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        self.check_indices(indices)
        return self.indices_to_codes_flat(indices).permute(0, 3, 1, 2).contiguous()


@QUANTIZERS.register("lfq")
class LookupFreeQuantizer(BitPatternQuantizer):
    """Each channel is quantised to ±``codebook_scale``; the index is the bit pattern, channel 0 the most
    significant bit (``bit_order="msb_first"``, default) or the least significant one (``"lsb_first"``,
    Open-MAGVIT2's convention).

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
        bit_order: str = "msb_first",
    ):
        super().__init__()
        self._init_bits(codebook_dim, bit_order)
        self.commitment_weight = commitment_weight
        self.entropy_weight = entropy_weight
        self.diversity_weight = diversity_weight
        self.entropy_temperature = entropy_temperature
        self.codebook_scale = codebook_scale
        self.init_weights()

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive(spec, "codebook_dim", integer=True)
        check_positive(spec, "entropy_temperature", "codebook_scale")
        check_positive(spec, "commitment_weight", "entropy_weight", "diversity_weight", allow_zero=True)
        check_bit_order(spec["bit_order"])
        if 2 ** spec["codebook_dim"] > MAX_CODEBOOK_SIZE:
            raise ValueError(
                f"lfq codebook_dim must be <= 62 (2^62 codes; indices are int64), got {spec['codebook_dim']}"
            )

    @property
    def code_scale(self) -> float:
        return self.codebook_scale

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, D, h, w) → codes ±codebook_scale (B, D, h, w) and indices (B, h, w).

        Works in float32 whatever the latents' dtype (float64 stays float64), outside autocast (the base class's
        rule), and returns float32 codes, equal to ``indices_to_codes(indices)`` (±``codebook_scale`` rounded once,
        to float32).
        """
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
        sample_entropy, codebook_entropy = self.entropy_terms(flat)
        return sample_entropy - self.diversity_weight * codebook_entropy

    def entropy_terms(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean per-sample entropy, codebook entropy)`` in nats of ``p(c|z) = softmax(2⟨z, c⟩/τ)`` for latents
        ``flat`` (N, D): both exact up to :data:`MAX_EXACT_ENTROPY_BITS` bits; above, the per-sample entropy is
        still exact and the codebook entropy is the sum over :func:`entropy_bit_groups` (module docstring).
        Memory does not grow with N × 2^D: each group is an N × 2^bits softmax computed in bounded chunks."""
        return self.grouped_entropy_terms(flat, entropy_bit_groups(self._codebook_dim))


def check_bit_order(bit_order: str) -> str:
    """``bit_order`` unchanged if it is one of :data:`BIT_ORDERS`, else a ``ValueError`` naming them."""
    if bit_order not in BIT_ORDERS:
        raise ValueError(
            f"lfq bit_order must be one of {', '.join(map(repr, BIT_ORDERS))} (whether channel 0 is the most or the "
            f"least significant bit of the index), got {bit_order!r}"
        )
    return bit_order


def _sign_codes(bits: int, scale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """All 2^bits codes ±``scale`` of ``bits`` channels, (2^bits, bits) (order irrelevant to entropies)."""
    patterns = (torch.arange(2**bits, device=device).unsqueeze(-1) >> torch.arange(bits, device=device)) & 1
    return torch.where(patterns.bool(), scale, -scale).to(dtype)

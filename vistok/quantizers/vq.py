"""Vector quantisation (VQ-VAE) with the options studied by the seed: l2-normalised codes, EMA codebook
updates, entropy regularisation and the commitment weight β.

Where the formulas come from, and where vistok deviates:

- Lookup and losses: VQ-VAE (van den Oord et al., 2017, arXiv 1711.00937): nearest code by squared L2, loss
  ``||sg(z) − e||² + β·||z − sg(e)||²`` with β = 0.25 — vistok's ``codebook_weight`` (1.0) and
  ``commitment_weight`` (β, 0.25). Both terms are means over elements, as Taming and LlamaGen compute them (the
  paper's squared norms divided by D). Taming's ``VectorQuantizer2`` with ``legacy=True`` puts β on the codebook
  term instead (commitment 1.0, codebook 0.25).
- Initialisation U(−1/K, 1/K): Taming's and LlamaGen's.
- ``l2_norm``: ViT-VQGAN (Yu et al., 2021) as LlamaGen implements it: latents and codes are l2-normalised before
  the lookup and in both losses.
- EMA codebook: the update of VQ-VAE's Appendix A.1, ``N ← γN + (1 − γ)n``, ``m ← γm + (1 − γ)Σz``,
  ``e = m / N``, with Laplace smoothing of ``N`` as in vector-quantize-pytorch. The paper does not say how ``N``
  and ``m`` start; vistok starts them as vector-quantize-pytorch does (``N = 1``, ``m = e``: every code as if
  assigned once, to itself, so an unused code is not divided by a zero count). Taming's EMA quantizer starts
  ``N`` at 0.
- Entropy regulariser: LlamaGen's ``compute_entropy_loss`` (per-sample entropy minus the entropy of the batch-mean
  distribution of ``softmax(−d/τ)``; LlamaGen uses τ = 0.01). LlamaGen guards its logs with +1e-5; vistok
  computes exact entropies with logits floored at the row maximum − 60 (``vistok.entropy``), in memory-bounded
  chunks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..entropy import entropy_terms
from ..outputs import QuantizerOutput
from ..registry import QUANTIZERS
from .base import (
    Quantizer,
    all_reduce_sum,
    channels_first_grid,
    channels_last_flat,
    check_positive,
    code_histogram,
    straight_through,
    usage_stats,
)
from .search import nearest_code


@QUANTIZERS.register("vq")
class VectorQuantizer(Quantizer):
    """Nearest-neighbour codebook lookup.

    Args:
        codebook_size: number of codes K.
        codebook_dim: code dimension D.
        l2_norm: l2-normalise latents and codes before the lookup (cosine similarity; LlamaGen / ViT-VQGAN).
        commitment_weight: β of the commitment loss ``β·||z − sg(q)||²``.
        codebook_weight: weight of the codebook loss ``||sg(z) − q||²`` (unused with EMA updates).
        ema_decay: when set (e.g. 0.99) the codebook is updated by exponential moving averages of assigned
            latents (Laplace-smoothed counts) instead of by gradients; training mode only, statistics all-reduced
            across processes.
        ema_epsilon: Laplace smoothing of the EMA counts.
        entropy_weight: weight of the entropy regulariser (per-sample entropy minus codebook entropy of
            ``softmax(−d/τ)``); 0 disables it.
        entropy_temperature: τ of that softmax.
    """

    tiny = {"codebook_size": 32, "codebook_dim": 4}

    def __init__(
        self,
        codebook_size: int = 512,
        codebook_dim: int = 64,
        l2_norm: bool = False,
        commitment_weight: float = 0.25,
        codebook_weight: float = 1.0,
        ema_decay: float | None = None,
        ema_epsilon: float = 1e-5,
        entropy_weight: float = 0.0,
        entropy_temperature: float = 0.01,
    ):
        super().__init__()
        self._codebook_size = codebook_size
        self._codebook_dim = codebook_dim
        self.l2_norm = l2_norm
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        self.ema_decay = ema_decay
        self.ema_epsilon = ema_epsilon
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.codebook = nn.Parameter(torch.empty(codebook_size, codebook_dim), requires_grad=ema_decay is None)
        if ema_decay is not None:
            self.register_buffer("ema_cluster_size", torch.zeros(codebook_size))
            self.register_buffer("ema_embed_sum", torch.zeros(codebook_size, codebook_dim))
        self.init_weights()

    def set_trainable_flags(self) -> None:
        self.codebook.requires_grad_(self.ema_decay is None)

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive(spec, "codebook_size", "codebook_dim", integer=True)
        check_positive(spec, "ema_epsilon", "entropy_temperature")
        check_positive(spec, "commitment_weight", "codebook_weight", "entropy_weight", allow_zero=True)
        decay = spec["ema_decay"]
        if decay is not None and not (isinstance(decay, (int, float)) and 0.0 < decay < 1.0):
            raise ValueError(f"quantizer option 'ema_decay' must be None or in (0, 1), got {decay!r}")

    def init_weights(self) -> None:
        # Taming / LlamaGen initialisation: U(−1/K, 1/K).
        bound = 1.0 / self._codebook_size
        init.uniform_(self.codebook, -bound, bound)
        if self.ema_decay is not None:
            # Start the EMA as if every code had been assigned once, to itself.
            init.ones_(self.ema_cluster_size)
            init.copy_(self.ema_embed_sum, self.codebook.detach())

    def effective_codebook(self) -> torch.Tensor:
        """The (K, D) codes the lookup compares against (l2-normalised when ``l2_norm``)."""
        return F.normalize(self.codebook, dim=-1) if self.l2_norm else self.codebook

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, D, h, w) → quantized (B, D, h, w) straight-through codes and indices (B, h, w) int64."""
        flat = channels_last_flat(z)
        if self.l2_norm:
            flat = F.normalize(flat, dim=-1)
        codebook = self.effective_codebook()
        indices = nearest_code(flat.detach(), codebook.detach().to(flat.dtype))
        codes = F.embedding(indices, codebook).to(flat.dtype)

        losses = {"commitment_loss": self.commitment_weight * F.mse_loss(flat, codes.detach())}
        if self.ema_decay is None:
            losses["codebook_loss"] = self.codebook_weight * F.mse_loss(codes, flat.detach())
        elif self.training:
            self._ema_update(flat.detach(), indices)
        if self.entropy_weight > 0 and self.training:
            losses["entropy_loss"] = self.entropy_weight * self._entropy_loss(flat, codebook)

        quantized = channels_first_grid(straight_through(flat, codes), z)
        indices = indices.view(z.shape[0], z.shape[2], z.shape[3])
        return QuantizerOutput(
            quantized=quantized, indices=indices, losses=losses, stats=usage_stats(indices, self.codebook_size)
        )

    def _entropy_loss(self, flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        # −d/τ up to a per-row constant (which softmax ignores): (2 z·c − ||c||²)/τ, never formed as a whole.
        tau = self.entropy_temperature
        sample_entropy, codebook_entropy = entropy_terms(
            flat, codebook, scale=2 / tau, bias=-codebook.pow(2).sum(-1) / tau
        )
        return sample_entropy - codebook_entropy

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        counts = code_histogram(indices, self.codebook_size)
        embed_sum = torch.zeros_like(self.ema_embed_sum).index_add_(0, indices, flat.float())
        all_reduce_sum(counts)
        all_reduce_sum(embed_sum)
        decay = self.ema_decay
        self.ema_cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        self.ema_embed_sum.mul_(decay).add_(embed_sum, alpha=1 - decay)
        total = self.ema_cluster_size.sum()
        smoothed = (self.ema_cluster_size + self.ema_epsilon) / (total + self.codebook_size * self.ema_epsilon) * total
        self.codebook.data.copy_(self.ema_embed_sum / smoothed.unsqueeze(1))

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        self.check_indices(indices)
        codes = F.embedding(indices, self.effective_codebook())  # (B, h, w, D)
        return codes.permute(0, 3, 1, 2).contiguous()

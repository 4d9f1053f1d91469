"""SimVQ (Zhu et al., 2024): a frozen random codebook reparameterised by a learnable linear map.

Where the formulas come from (Zhu et al., "Addressing Representation Collapse in Vector Quantized Models with One
Linear Layer", arXiv 2411.02038; the authors' code youngsheen/SimVQ; vector-quantize-pytorch's ``SimVQ``):

- Codes ``q_k = W·c_k`` for a frozen random basis ``c`` and a learnable linear map ``W``; nearest code by squared
  L2; losses as VQ-VAE's, ``codebook_weight·||sg(z) − q||² + commitment_weight·||z − sg(q)||²`` (β = 0.25): the
  paper's and the authors' code.
- The frozen codebook: vistok follows vector-quantize-pytorch — a non-trainable buffer drawn from a normal
  distribution with std D^−1/2 (the same draw as the authors' code) and, by default, a bias-free D × D map. The
  authors' projection is an ``nn.Linear`` with a bias (``c·Wᵀ + b``): ``projection_bias=True`` adds it (converted
  SimVQ checkpoints use it; the default keeps existing vistok checkpoints unchanged).
- Whether every code ends up used is an empirical question, not a property of the method: in vistok's 600-step
  short run (512 codes, dim 64) SimVQ used 26.4 % of its codes (``benchmarks/results/quantizer_short_runs_cpu.json``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..outputs import QuantizerOutput
from ..registry import QUANTIZERS
from .base import (
    Quantizer,
    channels_first_grid,
    channels_last_flat,
    check_positive,
    straight_through,
    usage_stats,
)
from .search import nearest_code


@QUANTIZERS.register("simvq")
class SimVQQuantizer(Quantizer):
    """Codes are ``W · c_k`` (``+ b`` with ``projection_bias``) for a frozen Gaussian basis ``c`` (K, D) and a
    learnable ``W`` (D × D).

    Only the linear map learns, so every update moves every code (what the paper proposes against codebook
    collapse; it does not guarantee full usage, see the module docstring). Losses: ``codebook_weight·||sg(z) − q||² + commitment_weight·||z − sg(q)||²``.
    """

    tiny = {"codebook_size": 32, "codebook_dim": 4}

    def __init__(
        self,
        codebook_size: int = 512,
        codebook_dim: int = 64,
        commitment_weight: float = 0.25,
        codebook_weight: float = 1.0,
        projection_bias: bool = False,
    ):
        super().__init__()
        self._codebook_size = codebook_size
        self._codebook_dim = codebook_dim
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        self.register_buffer("frozen_codebook", torch.empty(codebook_size, codebook_dim))
        self.projection_bias = projection_bias
        self.codebook_proj = nn.Linear(codebook_dim, codebook_dim, bias=projection_bias)
        self.init_weights()

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive(spec, "codebook_size", "codebook_dim", integer=True)
        check_positive(spec, "commitment_weight", "codebook_weight", allow_zero=True)
        if not isinstance(spec["projection_bias"], bool):
            raise ValueError(f"simvq projection_bias must be true or false, got {spec['projection_bias']!r}")

    def init_weights(self) -> None:
        init.normal_(self.frozen_codebook, std=self._codebook_dim**-0.5)

    def effective_codebook(self) -> torch.Tensor:
        """(K, D) codes after the learnable projection: ``frozen_codebook @ Wᵀ (+ b)``. Decoding indices uses these
        rows too (SimVQ's own ``get_codebook_entry`` returns the unprojected ones, which the decoder was never
        trained on)."""
        return self.codebook_proj(self.frozen_codebook)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat = channels_last_flat(z)
        codebook = self.effective_codebook().to(flat.dtype)
        indices = nearest_code(flat.detach(), codebook.detach())
        codes = F.embedding(indices, codebook)
        losses = {
            "commitment_loss": self.commitment_weight * F.mse_loss(flat, codes.detach()),
            "codebook_loss": self.codebook_weight * F.mse_loss(codes, flat.detach()),
        }
        indices = indices.view(z.shape[0], z.shape[2], z.shape[3])
        return QuantizerOutput(
            quantized=channels_first_grid(straight_through(flat, codes), z),
            indices=indices,
            losses=losses,
            stats=usage_stats(indices, self.codebook_size),
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        self.check_indices(indices)
        return F.embedding(indices, self.effective_codebook()).permute(0, 3, 1, 2).contiguous()

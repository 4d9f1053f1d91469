"""Finite scalar quantisation (Mentzer et al., 2023): bounded per-channel rounding, implicit codebook.

Where the formulas come from (Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple", arXiv 2309.15505,
and its reference code in Appendix A.1; vector-quantize-pytorch's ``FSQ``):

- Rounding with a straight-through gradient, codes renormalised to [−1, 1] by ⌊L/2⌋, index = mixed-radix digits
  with basis (1, L0, L0·L1, …): the paper's.
- The bound ``tanh(z + shift)·half_l − offset`` (offset 0.5 for even L, else 0): vistok uses
  vector-quantize-pytorch's constants, ``half_l = (L − 1)(1 + eps)/2`` and ``shift = atanh(offset / half_l)``.
  The paper's code uses ``(1 − eps)`` and ``shift = tan(offset / half_l)``. Both reach every level (the paper's
  for L ≤ 1/eps = 1000); their bounded values differ by at most about (L − 1)·eps, so only latents that close to
  a cell boundary get another index than under the paper's code.
- Deviation from both: quantisation runs in float32 (float64 stays float64) outside autocast whatever the latents'
  dtype — the rule of every vistok quantizer (``vistok.quantizers.base.Quantizer``) — and ``quantized`` is float32,
  exactly ``indices_to_codes(indices)``.
"""

from __future__ import annotations

import math

import torch
from transformers import initialization as init

from ..outputs import QuantizerOutput
from ..registry import QUANTIZERS
from .base import MAX_CODEBOOK_SIZE, Quantizer, straight_through, usage_stats

#: Largest number of levels per channel: in float32 every one of 2^22 levels is reachable and recovered from its
#: code (tested); at 2^24 rounding to the float32 grid loses some.
MAX_LEVEL = 2**22


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through (identity) gradient (exactly ``x.round()`` in value)."""
    return straight_through(x, x.round())


@QUANTIZERS.register("fsq")
class FiniteScalarQuantizer(Quantizer):
    """Each of the D = len(levels) channels is squashed to a bounded range and rounded to ``levels[d]`` values.

    Codes lie in [−1, 1]; the codebook size is ∏ levels; index ⇄ code is the mixed-radix bijection with basis
    (1, L0, L0·L1, …). Even levels use the half-step offset so that exactly L values are reachable.
    """

    tiny = {"levels": [4, 3, 2]}

    def __init__(self, levels: tuple[int, ...] = (8, 5, 5, 5), eps: float = 1e-3):
        super().__init__()
        self.levels_list = list(levels)
        self.eps = eps
        # Derived from `levels`, so not saved: rebuilt by init_weights after from_pretrained.
        self.register_buffer("_levels", torch.empty(len(levels), dtype=torch.int64), persistent=False)
        self.register_buffer("_basis", torch.empty(len(levels), dtype=torch.int64), persistent=False)
        self.init_weights()

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        levels = spec["levels"]
        if not isinstance(levels, (list, tuple)) or not levels or not all(
            isinstance(level, int) and not isinstance(level, bool) for level in levels
        ):
            raise ValueError(f"fsq option 'levels' must be a non-empty list of integers, got {levels!r}")
        if any(level < 2 or level > MAX_LEVEL for level in levels):
            raise ValueError(f"fsq levels must all lie in [2, 2^22 = {MAX_LEVEL}], got {levels}")
        if math.prod(levels) > MAX_CODEBOOK_SIZE:
            raise ValueError(
                f"fsq codebook size prod(levels) = {math.prod(levels)} exceeds 2^62 (indices are int64), "
                f"levels {levels}"
            )

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels_list)

    @property
    def codebook_dim(self) -> int:
        return len(self.levels_list)

    def init_weights(self) -> None:
        basis = [1]
        for level in self.levels_list[:-1]:
            basis.append(basis[-1] * level)
        init.copy_(self._levels, torch.tensor(self.levels_list, dtype=torch.int64))
        init.copy_(self._basis, torch.tensor(basis, dtype=torch.int64))

    def _view(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.view(1, -1, 1, 1).to(like.dtype)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash (B, D, h, w) latents so that rounding yields exactly ``levels[d]`` values per channel."""
        levels = self._view(self._levels, z)
        half_l = (levels - 1) * (1 + self.eps) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, D, h, w) with D = len(levels) → codes in [−1, 1] and indices (B, h, w).

        Quantizes in float32 whatever the latents' dtype (float64 stays float64), outside autocast (the base
        class's rule): bfloat16's 8 significant bits would round the bound's half-width (3.5035 → 3.5 for 8 levels)
        and put latents on other levels. Returns float32 codes: ``quantized`` equals ``indices_to_codes(indices)``
        also for bfloat16 / float16 latents and bfloat16 models (whose decoder casts the codes to its own dtype, as
        ``decode`` does).
        """
        half_width = self._view(self._levels // 2, z)
        quantized = round_ste(self.bound(z)) / half_width
        indices = self.codes_to_indices(quantized)
        return QuantizerOutput(
            quantized=quantized, indices=indices, losses={}, stats=usage_stats(indices, self.codebook_size)
        )

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) codes on the grid → (B, h, w) int64 indices."""
        half_width = self._view(self._levels // 2, codes)
        digits = (codes * half_width + half_width).round().long()
        return (digits * self._basis.view(1, -1, 1, 1)).sum(dim=1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        self.check_indices(indices)
        digits = (indices.unsqueeze(1) // self._basis.view(1, -1, 1, 1)) % self._levels.view(1, -1, 1, 1)
        half_width = (self._levels // 2).view(1, -1, 1, 1)
        dtype = torch.get_default_dtype()
        return (digits - half_width).to(dtype) / half_width.to(dtype)


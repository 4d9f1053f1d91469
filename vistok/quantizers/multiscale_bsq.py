"""Multi-scale bitwise residual quantization with binary spherical codes: the tokenizer of Infinity (Han et al.,
"Infinity: Scaling Bitwise AutoRegressive Modeling for High-Resolution Image Synthesis", arXiv 2412.04431, CVPR 2025;
FoundationVision/Infinity ``infinity/models/bsq_vae/multiscale_bsq.py``), whose per-scale step is BSQ (Zhao et al.,
arXiv 2406.07548; :mod:`vistok.quantizers.bsq`, reused here, not repeated).

One latent f (B, d, P, P), P = the last patch number, becomes K token maps of sizes p_1 < … < p_K = P, coarse to fine.
With the residual r = f and f̂ = 0, scale k:

1. query = r resized to p_k × p_k with ``F.interpolate(mode="area")`` (adaptive average pooling: windows
   [⌊i·P/p⌋, ⌈(i+1)·P/p⌉), which overlap when p does not divide P, e.g. 8 → 6); the last scale uses r itself;
2. BSQ (:class:`~vistok.quantizers.bsq.BinarySphericalQuantizer`): each token's d-vector is l2-normalised, bit_c = 1
   iff the normalised value is > 0 (an exact 0 gives bit 0), the code is (2·bit − 1)/√d, straight-through to the
   normalised query;
3. e = the codes upsampled to P × P with ``mode="trilinear"`` on a (B, d, 1, p, p) map (align_corners False; with one
   frame this is bilinear); not for the last scale;
4. f̂ += e, r −= sg(e).

There is no codebook, no projection, no φ conv (unlike VAR) and no normalisation of the residual. ``quantized`` is f̂;
``indices_to_codes`` rebuilds it from the K token maps by steps 3–4 in the same order, so decoding indices and
decoding f̂ give identical images. Everything runs in float32 (upstream's ``force_quantization_f32``).

Tokens, three views of the same bits (channel c of the latent = bit c):

- ``indices`` (what ``encode`` returns): a list of (B, p, p) int64 maps, index = Σ_c bit_c · 2^(d−1−c), so **channel 0
  is the most significant bit** (upstream's ``mask`` buffer 2^(d−1) … 1; Open-MAGVIT2's LFQ is the reverse). For
  d = 64 the index is the 64-bit pattern stored in an int64, two's complement: bit 0 (the MSB) is the sign bit, as
  upstream's own ``mask[0] = −2^63``; every int64 value is then a valid token.
- :meth:`~MultiScaleBinarySphericalQuantizer.bits`: per scale (B, p, p, d) int64 in {0, 1} (upstream's
  ``bit_indices`` (B, 1, p, p, d) without the frame axis).
- :meth:`~MultiScaleBinarySphericalQuantizer.bit_labels`: per scale (B, p·p, d), tokens row-major: what Infinity's
  transformer is trained on (2 logits per bit, never a 2^d softmax). :meth:`bits_to_indices` takes either bit form
  back, so an image generated as bits decodes with ``tok.decode(tok.quantizer.bits_to_indices(bits))``.

Losses (training): BSQ's commitment and entropy terms of every scale, averaged over the scales.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F

from ..outputs import QuantizerOutput
from ..registry import QUANTIZERS
from .base import Quantizer, check_multiscale_indices, check_positive, usage_stats
from .bsq import BinarySphericalQuantizer

#: Infinity's 1:1 scale ladder (``infinity/utils/dynamic_resolution.py``, ``ratio2hws[1.0]``, patch 16): its
#: schedules are prefixes of it. 7 scales (…16) are "0.06M" (256 px), 10 "0.25M" (512), 12 "0.60M" (768), 13 "1M" (1024).
INFINITY_SQUARE_SCALES = (1, 2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64)
#: The most bits a token may have: an index is the bit pattern in an int64 (d = 64: two's complement).
MAX_BITS = 64


@QUANTIZERS.register("multiscale_bsq")
class MultiScaleBinarySphericalQuantizer(Quantizer):
    """Infinity's bitwise multi-scale residual quantizer: BSQ at every scale of ``patch_nums``, summed.

    Indices are a list of (B, p, p) int64 tensors, one per scale (:class:`vistok.layouts.MultiScaleLayout`), each
    token's d bits MSB-first (module docstring); the latent must be (B, d, p_K, p_K) with p_K = ``patch_nums[-1]``.

    Args:
        codebook_dim: bits per token d (2^d implicit codes of unit norm), 1 … 64.
        patch_nums: the square scales, strictly increasing; the default is Infinity's 1:1 "0.06M" schedule
            (256 px at f16, 7 scales, 521 tokens). Infinity's other 1:1 schedules are longer prefixes of
            :data:`INFINITY_SQUARE_SCALES`.
        commitment_weight, entropy_weight, sample_entropy_weight, codebook_entropy_weight, entropy_temperature,
            entropy_group_size: BSQ's loss options, applied at every scale (see
            :class:`~vistok.quantizers.bsq.BinarySphericalQuantizer`).
    """

    layout = "multiscale"
    tiny = {"codebook_dim": 5, "patch_nums": [1, 2, 3, 4]}

    def __init__(
        self,
        codebook_dim: int = 32,
        patch_nums: tuple[int, ...] = INFINITY_SQUARE_SCALES[:7],
        commitment_weight: float = 0.0,
        entropy_weight: float = 0.1,
        sample_entropy_weight: float = 1.0,
        codebook_entropy_weight: float = 1.0,
        entropy_temperature: float = 1.0,
        entropy_group_size: int = 9,
    ):
        super().__init__()
        self._codebook_dim = codebook_dim
        self.patch_nums = tuple(int(p) for p in patch_nums)
        # the per-scale step; holds only the non-persistent bit values 2^(d-1) … 1 (no state-dict keys)
        self.bsq = BinarySphericalQuantizer(
            codebook_dim=codebook_dim,
            commitment_weight=commitment_weight,
            entropy_weight=entropy_weight,
            sample_entropy_weight=sample_entropy_weight,
            codebook_entropy_weight=codebook_entropy_weight,
            entropy_temperature=entropy_temperature,
            entropy_group_size=entropy_group_size,
            bit_order="msb_first",
        )

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive(spec, "codebook_dim", integer=True)
        if spec["codebook_dim"] > MAX_BITS:
            raise ValueError(
                f"multiscale_bsq codebook_dim must be <= {MAX_BITS} (an index is the token's bit pattern in an "
                f"int64), got {spec['codebook_dim']}"
            )
        patch_nums = spec["patch_nums"]
        if (
            not isinstance(patch_nums, list)
            or not patch_nums
            or not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in patch_nums)
            or any(a >= b for a, b in pairwise(patch_nums))
        ):
            raise ValueError(
                "quantizer option 'patch_nums' must be a non-empty list of strictly increasing positive ints (the "
                f"side of each scale's token map, e.g. Infinity's {list(INFINITY_SQUARE_SCALES[:7])}), got "
                f"{patch_nums!r}"
            )
        # BSQ's own checks of its loss options (its 62-bit limit on integer indices does not apply here)
        bsq_options = {k: v for k, v in spec.items() if k not in ("type", "patch_nums")}
        BinarySphericalQuantizer.check_spec({**bsq_options, "codebook_dim": 1, "bit_order": "msb_first"})

    @property
    def codebook_size(self) -> int:
        return 2**self._codebook_dim

    @property
    def _bit_values(self) -> torch.Tensor:
        return self.bsq._bit_values

    # ------------------------------------------------------------------------------------------ quantizing
    def _check_latent(self, z: torch.Tensor) -> None:
        last = self.patch_nums[-1]
        if z.ndim != 4 or z.shape[1] != self._codebook_dim or tuple(z.shape[2:]) != (last, last):
            raise ValueError(
                f"the multiscale_bsq quantizer takes latents of shape (B, {self._codebook_dim}, {last}, {last}): its "
                f"last scale is {last}×{last} (patch_nums {list(self.patch_nums)}), so images must be {last}× the "
                f"downsample factor; got {tuple(z.shape)}"
            )

    @staticmethod
    def _upsample(codes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """A scale's (B, d, p, p) codes → (B, d, P, P): trilinear on one frame, as upstream (identity at P)."""
        if tuple(codes.shape[2:]) == tuple(size):
            return codes
        return F.interpolate(codes.unsqueeze(2), size=(1, *size), mode="trilinear", align_corners=False).squeeze(2)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, d, P, P) → quantized f̂ (B, d, P, P) float32 and indices, a list of (B, p, p) int64 tensors."""
        self._check_latent(z)
        size = tuple(z.shape[2:])
        residual = z.float()
        f_hat = torch.zeros_like(residual)
        indices: list[torch.Tensor] = []
        losses: dict[str, torch.Tensor] = {}
        for p in self.patch_nums:
            query = residual if (p, p) == size else F.interpolate(residual, size=(p, p), mode="area")
            out = self.bsq(query)
            contribution = self._upsample(out.quantized, size)
            f_hat = f_hat + contribution
            residual = residual - contribution.detach()
            indices.append(out.indices)
            for name, value in out.losses.items():
                losses[name] = losses[name] + value if name in losses else value
        losses = {name: value / len(self.patch_nums) for name, value in losses.items()}
        every_token = torch.cat([idx.reshape(-1) for idx in indices])
        return QuantizerOutput(
            quantized=f_hat, indices=indices, losses=losses, stats=usage_stats(every_token, self.codebook_size)
        )

    # ------------------------------------------------------------------------------------------ decoding
    def check_indices(self, indices: list[torch.Tensor]) -> None:
        """``TypeError`` / ``ValueError`` unless ``indices`` is one integer (B, p, p) map of codes per scale."""
        check_multiscale_indices(indices, self.patch_nums, self.codebook_size)

    def _scale_codes(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, p, p) indices → (B, d, p, p) float32 codes ±1/√d (the values BSQ's forward gives)."""
        return self.bsq.indices_to_codes_flat(idx.long()).float().permute(0, 3, 1, 2).contiguous()

    def progressive_codes(self, indices: list[torch.Tensor]) -> list[torch.Tensor]:
        """f̂ after 1, 2, …, K scales: K tensors (B, d, P, P); the last one is exactly :meth:`indices_to_codes`."""
        self.check_indices(indices)
        last = self.patch_nums[-1]
        f_hat = torch.zeros(indices[0].shape[0], self._codebook_dim, last, last, device=indices[0].device)
        out = []
        for idx in indices:
            f_hat = f_hat + self._upsample(self._scale_codes(idx), (last, last))
            out.append(f_hat)
        return out

    def indices_to_codes(self, indices: list[torch.Tensor]) -> torch.Tensor:
        """The K token maps → f̂ (B, d, P, P), exactly the ``quantized`` that ``forward`` returned for them."""
        return self.progressive_codes(indices)[-1]

    # ------------------------------------------------------------------------------------------ bits
    def bits(self, indices: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per scale (B, p, p, d) int64 bits in {0, 1}, last axis = channel (channel 0 the most significant bit)."""
        self.check_indices(indices)
        return [((idx.long().unsqueeze(-1) & self._bit_values) != 0).long() for idx in indices]

    def bit_labels(self, indices: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per scale (B, p·p, d) int64 bits, tokens row-major: the labels Infinity's transformer is trained on."""
        return [bits.reshape(bits.shape[0], -1, self._codebook_dim) for bits in self.bits(indices)]

    def bits_to_indices(self, bits: list[torch.Tensor]) -> list[torch.Tensor]:
        """The inverse of :meth:`bits` and :meth:`bit_labels`: per scale (B, p, p, d) or (B, p·p, d) bits (any
        integer or bool dtype, values 0 / 1; upstream's (B, 1, p, p, d) too) → (B, p, p) int64 indices."""
        if not isinstance(bits, (list, tuple)) or len(bits) != len(self.patch_nums):
            raise ValueError(f"bits must be a list of {len(self.patch_nums)} tensors, one per scale")
        out = []
        d = self._codebook_dim
        for k, (b, p) in enumerate(zip(bits, self.patch_nums, strict=True)):
            if not isinstance(b, torch.Tensor) or b.dtype.is_floating_point or b.dtype.is_complex:
                raise TypeError(f"bits[{k}] must be an integer or bool tensor")
            if b.ndim < 3 or b.shape[-1] != d or b[0].numel() != p * p * d:
                raise ValueError(
                    f"bits[{k}] must have shape (B, {p}, {p}, {d}) or (B, {p * p}, {d}), got {tuple(b.shape)}"
                )
            if b.numel() and (int(b.min()) < 0 or int(b.max()) > 1):
                raise ValueError(f"bits[{k}] must hold 0 / 1 values")
            flat = b.reshape(b.shape[0], p, p, d).long()
            out.append((flat * self._bit_values).sum(dim=-1))
        return out

    def next_scale_inputs(self, indices: list[torch.Tensor]) -> torch.Tensor:
        """Infinity's teacher-forcing inputs (``BitwiseSelfCorrection.flip_requant`` without bit flips): for scales
        2 … K, the running sum of the upsampled codes of the scales before, resized to that scale with trilinear
        interpolation (not area), as (B, Σ_{k≥2} p_k², d) tokens row-major (upstream's ``x_BLC_wo_prefix``, before
        its word embedding)."""
        progressive = self.progressive_codes(indices)
        inputs = []
        for f_hat, p in zip(progressive[:-1], self.patch_nums[1:], strict=True):
            x = F.interpolate(f_hat.unsqueeze(2), size=(1, p, p), mode="trilinear", align_corners=False).squeeze(2)
            inputs.append(x.flatten(2).transpose(1, 2))
        if not inputs:
            return progressive[0].new_zeros(progressive[0].shape[0], 0, self._codebook_dim)
        return torch.cat(inputs, dim=1)

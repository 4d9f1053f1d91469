"""VAR's multi-scale residual vector quantizer (Tian et al., 2024, "Visual Autoregressive Modeling: Scalable Image
Generation via Next-Scale Prediction", arXiv 2404.02905; FoundationVision/VAR models/quant.py ``VectorQuantizer2``).

One latent f (B, D, h, w), h = w = the last patch number, becomes K token maps of sizes p_1 < … < p_K = h, coarse to
fine. With the residual r = f and f̂ = 0, scale k:

1. query = r area-downsampled to p_k × p_k (the last scale uses r itself);
2. tokens = Euclidean nearest codes of the query (one codebook shared by all scales);
3. e = the codes as a (B, D, p_k, p_k) map, bicubic-upsampled to h × w (not for the last scale);
4. φ(e) = (1 − ρ)·e + ρ·conv3×3(e), ρ = ``phi_ratio`` (upstream's ``quant_resi``, 0.5);
5. f̂ += φ(e), r −= φ(e).

``quantized`` is f̂ (straight-through to f in training); ``indices_to_codes`` rebuilds f̂ from the K token maps by
steps 3–5 in the same order, so decoding indices and decoding f̂ give identical images.

The φ convs are shared between scales (upstream's ``PhiPartiallyShared``, ``share_quant_resi`` = ``num_phi_convs``):
scale k uses the conv whose tick is nearest to k / (K − 1), ticks = ``np.linspace(1/(3n), 1 − 1/(3n), n)`` for n = 4
convs (``1/(2n)`` otherwise), computed in float64 numpy as upstream. The ties are real: for the 10-scale schedule,
scales 2 and 7 lie exactly halfway between two ticks, and float rounding puts them on the higher conv, giving
[0, 0, 1, 1, 1, 2, 2, 3, 3, 3]; exact arithmetic with lowest-index tie-breaking would give
[0, 0, 0, 1, 1, 2, 2, 2, 3, 3], which is not what the released weights were trained with.

Losses, as upstream's training forward (means over elements, averaged over scales, f̂_k = f̂ after k scales):
``commitment_loss = β · mean_k ||sg(f̂_k) − f||²`` (β = ``commitment_weight``, 0.25) and
``codebook_loss = mean_k ||f̂_k − sg(f)||²`` (its gradient trains the codebook and the φ convs).

Where vistok deviates: the nearest code is :func:`vistok.quantizers.search.nearest_code` (exact Euclidean argmin,
memory-bounded) rather than upstream's full ``addmm`` distance matrix; they differ only at rounding-level near-ties.
The quantizer computes in float32 (float64 for a float64 model) with autocast off, as upstream does (the rule of
every vistok quantizer, ``vistok.quantizers.base.Quantizer``). Upstream's
``ema_vocab_hit_SV`` (a training-time usage buffer) is not kept. The codebook starts U(−1/K, 1/K) (upstream's
``eini(-1)``).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..outputs import QuantizerOutput
from ..registry import QUANTIZERS
from .base import (
    Quantizer,
    channels_last_flat,
    check_multiscale_indices,
    check_positive,
    straight_through,
    usage_stats,
)
from .search import nearest_code

VAR_PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


def phi_schedule(num_scales: int, num_phi_convs: int) -> list[int]:
    """Which shared φ conv each of ``num_scales`` scales uses (upstream's ``PhiPartiallyShared.__getitem__``),
    computed in float64 numpy exactly as upstream so that exact ties break the way upstream's rounding breaks them.
    ``num_scales`` ≥ 2."""
    n = num_phi_convs
    if n == 4:
        ticks = np.linspace(1 / 3 / n, 1 - 1 / 3 / n, n)
    else:
        ticks = np.linspace(1 / 2 / n, 1 - 1 / 2 / n, n)
    return [int(np.argmin(np.abs(ticks - k / (num_scales - 1)))) for k in range(num_scales)]


class SharedPhi(nn.Module):
    """The ``num_phi_convs`` conv3×3 of φ, as ``qresi_ls`` (upstream's key layout), and φ itself."""

    def __init__(self, dim: int, num_phi_convs: int, ratio: float):
        super().__init__()
        self.ratio = ratio
        self.qresi_ls = nn.ModuleList(nn.Conv2d(dim, dim, 3, padding=1) for _ in range(num_phi_convs))

    def apply_phi(self, h: torch.Tensor, which: int) -> torch.Tensor:
        """φ(h) = (1 − ρ)·h + ρ·conv_which(h), with the conv's weights in h's dtype."""
        conv = self.qresi_ls[which]
        weight, bias = conv.weight.to(h.dtype), conv.bias.to(h.dtype)
        return h.mul(1 - self.ratio) + F.conv2d(h, weight, bias, padding=1).mul_(self.ratio)


@QUANTIZERS.register("multiscale_vq")
class MultiScaleVectorQuantizer(Quantizer):
    """VAR's multi-scale residual VQ: one token map per scale of ``patch_nums``, summed through the shared φ convs.

    Indices are a list of (B, p, p) int64 tensors, one per scale (:class:`vistok.layouts.MultiScaleLayout`); the
    latent must be (B, D, p_K, p_K) with p_K = ``patch_nums[-1]``.

    Args:
        codebook_size: number of codes V (4096 in VAR's release).
        codebook_dim: code dimension D (upstream's ``Cvae``, 32).
        patch_nums: the scales, strictly increasing (VAR: 1, 2, 3, 4, 5, 6, 8, 10, 13, 16: 680 tokens).
        num_phi_convs: how many φ convs the scales share (``share_quant_resi``, 4).
        phi_ratio: ρ of φ(e) = (1 − ρ)·e + ρ·conv(e) (``quant_resi``, 0.5), in (0, 1].
        commitment_weight: β of ``||sg(f̂_k) − f||²`` (0.25).
        codebook_weight: weight of ``||f̂_k − sg(f)||²`` (1.0).
    """

    layout = "multiscale"
    tiny = {"codebook_size": 32, "codebook_dim": 4, "patch_nums": [1, 2, 3, 4]}

    def __init__(
        self,
        codebook_size: int = 4096,
        codebook_dim: int = 32,
        patch_nums: tuple[int, ...] = VAR_PATCH_NUMS,
        num_phi_convs: int = 4,
        phi_ratio: float = 0.5,
        commitment_weight: float = 0.25,
        codebook_weight: float = 1.0,
    ):
        super().__init__()
        self._codebook_size = codebook_size
        self._codebook_dim = codebook_dim
        self.patch_nums = tuple(int(p) for p in patch_nums)
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        self.phi_index_per_scale = phi_schedule(len(self.patch_nums), num_phi_convs)
        self.embedding = nn.Embedding(codebook_size, codebook_dim)
        self.quant_resi = SharedPhi(codebook_dim, num_phi_convs, phi_ratio)
        self.init_weights()

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive(spec, "codebook_size", "codebook_dim", "num_phi_convs", integer=True)
        check_positive(spec, "commitment_weight", "codebook_weight", allow_zero=True)
        patch_nums = spec["patch_nums"]
        if (
            not isinstance(patch_nums, list)
            or len(patch_nums) < 2
            or not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in patch_nums)
            or any(a >= b for a, b in pairwise(patch_nums))
        ):
            raise ValueError(
                "quantizer option 'patch_nums' must be a list of at least 2 strictly increasing positive ints (the "
                f"side of each scale's token map, e.g. {list(VAR_PATCH_NUMS)}), got {patch_nums!r}"
            )
        ratio = spec["phi_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            raise ValueError(f"quantizer option 'phi_ratio' must be a number in (0, 1], got {ratio!r}")

    def init_weights(self) -> None:
        bound = 1.0 / self._codebook_size  # upstream's eini(-1): U(−1/V, 1/V)
        init.uniform_(self.embedding.weight, -bound, bound)

    @property
    def compute_dtype(self) -> torch.dtype:
        """float32, or float64 for a float64 model: the dtype f̂ is accumulated in, on both paths."""
        return torch.promote_types(self.embedding.weight.dtype, torch.float32)

    def _contribution(self, scale: int, indices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """φ(e) of scale ``scale``'s (B, p, p) token map: (B, D, h, w) in :attr:`compute_dtype`."""
        codes = F.embedding(indices, self.embedding.weight.to(self.compute_dtype)).permute(0, 3, 1, 2)
        if scale < len(self.patch_nums) - 1:
            codes = F.interpolate(codes, size=size, mode="bicubic").contiguous()
        else:
            codes = codes.contiguous()
        return self.quant_resi.apply_phi(codes, self.phi_index_per_scale[scale])

    def _check_latent(self, z: torch.Tensor) -> None:
        last = self.patch_nums[-1]
        if z.ndim != 4 or z.shape[1] != self._codebook_dim or tuple(z.shape[2:]) != (last, last):
            raise ValueError(
                f"the multiscale_vq quantizer takes latents of shape (B, {self._codebook_dim}, {last}, {last}): its "
                f"last scale is {last}×{last} (patch_nums {list(self.patch_nums)}), so images must be {last}× the "
                f"downsample factor; got {tuple(z.shape)}"
            )

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, D, p_K, p_K) → quantized f̂ (same shape, straight-through to z) and indices, a list of (B, p, p)
        int64 tensors, one per scale."""
        self._check_latent(z)
        dtype, size = self.compute_dtype, tuple(z.shape[2:])
        indices: list[torch.Tensor] = []
        commitment, codebook_term = z.new_zeros((), dtype=dtype), z.new_zeros((), dtype=dtype)
        f = z.to(dtype)
        residual = f.detach().clone()
        f_hat = torch.zeros_like(residual)
        codebook = self.embedding.weight.detach().to(dtype)
        for k, p in enumerate(self.patch_nums):
            query = residual if k == len(self.patch_nums) - 1 else F.interpolate(residual, size=(p, p), mode="area")
            idx = nearest_code(channels_last_flat(query), codebook).view(z.shape[0], p, p)
            h = self._contribution(k, idx, size)
            f_hat = f_hat + h
            residual = residual - h.detach()
            indices.append(idx)
            commitment = commitment + F.mse_loss(f_hat.detach(), f)
            codebook_term = codebook_term + F.mse_loss(f_hat, f.detach())
        scales = len(self.patch_nums)
        losses = {
            "commitment_loss": self.commitment_weight * commitment / scales,
            "codebook_loss": self.codebook_weight * codebook_term / scales,
        }
        every_token = torch.cat([idx.reshape(-1) for idx in indices])
        return QuantizerOutput(
            quantized=straight_through(f, f_hat),
            indices=indices,
            losses=losses,
            stats=usage_stats(every_token, self.codebook_size),
        )

    def check_indices(self, indices: list[torch.Tensor]) -> None:
        """``TypeError`` / ``ValueError`` unless ``indices`` is one integer (B, p, p) map of codes per scale."""
        check_multiscale_indices(indices, self.patch_nums, self.codebook_size)

    def progressive_codes(self, indices: list[torch.Tensor]) -> list[torch.Tensor]:
        """f̂ after 1, 2, …, K scales: K tensors (B, D, p_K, p_K) (upstream's ``idxBl_to_img(last_one=False)``
        before the decoder). The last one is exactly :meth:`indices_to_codes`."""
        self.check_indices(indices)
        last = self.patch_nums[-1]
        out = []
        f_hat = torch.zeros(
            indices[0].shape[0], self._codebook_dim, last, last, dtype=self.compute_dtype, device=indices[0].device
        )
        for k, idx in enumerate(indices):
            f_hat = f_hat + self._contribution(k, idx, (last, last))
            out.append(f_hat)
        return out

    def indices_to_codes(self, indices: list[torch.Tensor]) -> torch.Tensor:
        """The K token maps → f̂ (B, D, p_K, p_K), exactly the ``quantized`` that ``forward`` returned for them."""
        return self.progressive_codes(indices)[-1]

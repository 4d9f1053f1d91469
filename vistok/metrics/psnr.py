"""PSNR on saved (uint8) images — or, under a protocol that measures floats, on clamped float images — averaged over
images."""

from __future__ import annotations

import torch

from .base import MeanOfPerImageValues
from .images import check_pair, to_unit


def psnr_per_image(original: torch.Tensor, reconstruction: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """(B,) float64 PSNR in dB of (B, C, H, W) images on [0, 1] (data range 1); ``inf`` for an exact copy.

    Images are uint8, or float pixel values in [-1, 1] (see :func:`~vistok.metrics.images.to_unit`). ``eps`` is
    added to each image's MSE first (MaskBit's evaluator adds 1e-10). Computed in float64, so the value does not
    depend on batch composition or memory layout.
    """
    check_pair(original, reconstruction, allow_float=True)
    original, reconstruction = to_unit(original, torch.float64), to_unit(reconstruction, torch.float64)
    mse = (reconstruction - original).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(1.0 / (mse + eps))


class PSNR(MeanOfPerImageValues):
    """Mean over images of per-image PSNR (each image's MSE over all channels and pixels).

    This is the mean of per-image PSNRs, not the PSNR of the pooled MSE (which torchmetrics' class computes);
    an exact reconstruction has infinite PSNR and makes the mean infinite (unless ``eps`` > 0).
    """

    name = "psnr"

    def __init__(self, eps: float = 0.0) -> None:
        super().__init__()
        self.eps = eps

    def update(self, original: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add a batch of (B, C, H, W) originals and reconstructions (uint8, or float in [-1, 1])."""
        self.add_values(psnr_per_image(original, reconstruction, self.eps))

"""PSNR on saved (uint8) images, averaged over images."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from .base import MeanOfPerImageValues
from .images import check_pair, uint8_to_unit


def psnr_per_image(original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """(B,) float64 PSNR in dB of uint8 (B, C, H, W) images on [0, 1] (data range 1); ``inf`` for an exact copy.

    Computed in float64, so the value does not depend on batch composition or memory layout.
    """
    check_pair(original, reconstruction)
    return peak_signal_noise_ratio(
        uint8_to_unit(reconstruction, torch.float64),
        uint8_to_unit(original, torch.float64),
        data_range=1.0,
        reduction="none",
        dim=(1, 2, 3),
    )


class PSNR(MeanOfPerImageValues):
    """Mean over images of per-image PSNR (each image's MSE over all channels and pixels).

    This is the mean of per-image PSNRs, not the PSNR of the pooled MSE (which torchmetrics' class computes);
    an exact reconstruction has infinite PSNR and makes the mean infinite.
    """

    name = "psnr"

    def update(self, original: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add a batch of uint8 (B, C, H, W) originals and reconstructions."""
        self.add_values(psnr_per_image(original, reconstruction))

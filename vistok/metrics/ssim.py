"""SSIM on saved (uint8) images: Gaussian window 11, σ 1.5, data range 1, averaged over images."""

from __future__ import annotations

import torch
from pytorch_msssim import ssim as separable_ssim

from .base import MeanOfPerImageValues
from .images import check_pair, uint8_to_unit

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # 2·int(3.5σ + 0.5) + 1, the window torchmetrics derives from σ
SSIM_BORDER = (SSIM_WINDOW - 1) // 2


def ssim_per_image(original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """(B,) SSIM of uint8 (B, C, H, W) images on [0, 1], averaged over channels and valid window positions.

    Gaussian window 11, σ 1.5, K1 0.01, K2 0.03, population covariances, and the mean taken over the positions
    where the whole window lies inside the image (no padded border): the convention of Wang et al. and
    scikit-image. Computed by pytorch-msssim (a separable window); it equals torchmetrics' SSIM map cropped by the
    5-pixel border within 1e-5, float32 rounding (tests/test_metrics.py). Images must be at least 12 pixels on each
    side.
    """
    check_pair(original, reconstruction)
    height, width = original.shape[-2:]
    if min(height, width) <= 2 * SSIM_BORDER:
        raise ValueError(
            f"SSIM needs images larger than {2 * SSIM_BORDER} pixels per side, got {height}×{width}"
        )
    return separable_ssim(
        uint8_to_unit(reconstruction),
        uint8_to_unit(original),
        data_range=1.0,
        size_average=False,
        win_size=SSIM_WINDOW,
        win_sigma=SSIM_SIGMA,
        K=(0.01, 0.03),
    )


class SSIM(MeanOfPerImageValues):
    """Mean over images of per-image SSIM (see :func:`ssim_per_image` for the exact convention)."""

    name = "ssim"

    def update(self, original: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add a batch of uint8 (B, C, H, W) originals and reconstructions."""
        self.add_values(ssim_per_image(original, reconstruction))

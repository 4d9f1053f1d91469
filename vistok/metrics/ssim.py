"""SSIM on saved (uint8) images: Gaussian window 11, σ 1.5, data range 1, averaged over images."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from .base import MeanOfPerImageValues
from .images import check_pair, uint8_to_unit

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # torchmetrics derives it from σ: 2·int(3.5σ + 0.5) + 1
SSIM_BORDER = (SSIM_WINDOW - 1) // 2


def ssim_per_image(original: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """(B,) SSIM of uint8 (B, C, H, W) images on [0, 1], averaged over channels and valid window positions.

    The SSIM map comes from torchmetrics (Gaussian window, σ 1.5, K1 0.01, K2 0.03, population covariances);
    its mean is taken after cropping the border of (window − 1) / 2 pixels, where the window would leave the
    image — the convention of Wang et al. and scikit-image. (torchmetrics' own mean also covers the
    reflect-padded border, which gives a different number.) Images must be at least 12 pixels on each side.
    """
    check_pair(original, reconstruction)
    height, width = original.shape[-2:]
    if min(height, width) <= 2 * SSIM_BORDER:
        raise ValueError(
            f"SSIM needs images larger than {2 * SSIM_BORDER} pixels per side, got {height}×{width}"
        )
    _, ssim_map = structural_similarity_index_measure(
        uint8_to_unit(reconstruction),
        uint8_to_unit(original),
        gaussian_kernel=True,
        sigma=SSIM_SIGMA,
        kernel_size=SSIM_WINDOW,
        data_range=1.0,
        reduction="none",
        return_full_image=True,
    )
    valid = ssim_map[..., SSIM_BORDER:-SSIM_BORDER, SSIM_BORDER:-SSIM_BORDER]
    return valid.flatten(1).mean(dim=1)


class SSIM(MeanOfPerImageValues):
    """Mean over images of per-image SSIM (see :func:`ssim_per_image` for the exact convention)."""

    name = "ssim"

    def update(self, original: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add a batch of uint8 (B, C, H, W) originals and reconstructions."""
        self.add_values(ssim_per_image(original, reconstruction))

"""SSIM on saved (uint8) images — vistok's convention: Gaussian window 11, σ 1.5, data range 1, averaged over
images — and the other projects' conventions an evaluation protocol names (:class:`SSIMConvention`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim as separable_ssim

from .base import MeanOfPerImageValues
from .images import check_pair, to_unit
from .protocols import VISTOK_SSIM, SSIMConvention

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # 2·int(3.5σ + 0.5) + 1, the window torchmetrics derives from σ
SSIM_BORDER = (SSIM_WINDOW - 1) // 2


def ssim_per_image(
    original: torch.Tensor, reconstruction: torch.Tensor, convention: SSIMConvention = VISTOK_SSIM
) -> torch.Tensor:
    """(B,) SSIM of (B, C, H, W) images on [0, 1], averaged over channels and positions.

    Images are uint8, or float pixel values in [-1, 1]. The default convention — vistok's: Gaussian window 11,
    σ 1.5, K1 0.01, K2 0.03, population covariances, data range 1, and the mean taken over the positions where the
    whole window lies inside the image (Wang et al., scikit-image) — is computed by pytorch-msssim (a separable
    window); it equals torchmetrics' SSIM map cropped by the 5-pixel border within 1e-5, float32 rounding
    (tests/test_metrics.py). Other conventions (a uniform window, sample covariances, another data range, MaskBit's
    reflect padding) are computed in float64 by :func:`ssim_map_mean`. Images must be larger than the window.
    """
    check_pair(original, reconstruction, allow_float=True)
    height, width = original.shape[-2:]
    border = (convention.size - 1) // 2
    if convention.border == "valid" and min(height, width) <= 2 * border:
        raise ValueError(f"SSIM needs images larger than {2 * border} pixels per side, got {height}×{width}")
    if convention == VISTOK_SSIM:
        return separable_ssim(
            to_unit(reconstruction),
            to_unit(original),
            data_range=1.0,
            size_average=False,
            win_size=SSIM_WINDOW,
            win_sigma=SSIM_SIGMA,
            K=(0.01, 0.03),
        )
    return ssim_map_mean(to_unit(original, torch.float64), to_unit(reconstruction, torch.float64), convention)


def ssim_window(convention: SSIMConvention, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The (size, size) window, summing to 1: a Gaussian of σ ``sigma`` sampled at integer offsets, or uniform."""
    size = convention.size
    if convention.window == "uniform":
        return torch.full((size, size), 1.0 / size**2, dtype=dtype)
    offsets = torch.arange(size, dtype=dtype) - (size - 1) / 2
    gauss = torch.exp(-0.5 * (offsets / convention.sigma) ** 2)
    gauss = gauss / gauss.sum()
    return torch.outer(gauss, gauss)


def ssim_map_mean(x: torch.Tensor, y: torch.Tensor, convention: SSIMConvention) -> torch.Tensor:
    """(B,) mean SSIM of float (B, C, H, W) images on [0, 1] under ``convention`` (the formula of Wang et al.,
    2004, with the window, covariance normalisation, border handling and data range the convention names)."""
    channels = x.shape[1]
    window = ssim_window(convention, x.dtype).to(x.device)
    kernel = window.expand(channels, 1, *window.shape)
    if convention.border == "reflect":
        pad = (convention.size - 1) // 2
        x, y = (F.pad(t, [pad, pad, pad, pad], mode="reflect") for t in (x, y))
    stacked = torch.cat([x, y, x * x, y * y, x * y])
    mu_x, mu_y, xx, yy, xy = F.conv2d(stacked, kernel, groups=channels).chunk(5)
    norm = 1.0
    if convention.covariance == "sample":
        count = convention.size**2
        norm = count / (count - 1)
    var_x, var_y, cov = norm * (xx - mu_x**2), norm * (yy - mu_y**2), norm * (xy - mu_x * mu_y)
    c1, c2 = (convention.k1 * convention.data_range) ** 2, (convention.k2 * convention.data_range) ** 2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim.mean(dim=(1, 2, 3))


class SSIM(MeanOfPerImageValues):
    """Mean over images of per-image SSIM (see :func:`ssim_per_image` for the exact convention)."""

    name = "ssim"

    def __init__(self, convention: SSIMConvention = VISTOK_SSIM) -> None:
        super().__init__()
        self.convention = convention

    def update(self, original: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add a batch of (B, C, H, W) originals and reconstructions (uint8, or float in [-1, 1])."""
        self.add_values(ssim_per_image(original, reconstruction, self.convention))

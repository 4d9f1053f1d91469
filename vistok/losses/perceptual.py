"""LPIPS perceptual loss (VGG16 trunk, the ``lpips`` package's calibrated linear heads).

The network is built by :func:`vistok.metrics.lpips.build_lpips_vgg`, the same loader the LPIPS metric uses: the
VGG16 trunk comes from an explicit file, ``$VISTOK_LPIPS_VGG_WEIGHTS``, torch hub's cache
(``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``) or a download; when none works,
:class:`~vistok.metrics.weights.MissingWeightsError` names the file and every way to provide it.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..metrics.lpips import build_lpips_vgg
from ..metrics.weights import MissingWeightsError

PerceptualWeightsNotFoundError = MissingWeightsError


class LPIPSLoss(nn.Module):
    """Mean LPIPS distance between two image batches in [-1, 1]; a scalar that backpropagates to the inputs.

    ``vgg_weights``: path to torchvision's VGG16 state dict (see the module docstring for the other sources).
    The network stays frozen and in eval mode whatever ``train()`` is called with.
    """

    def __init__(self, vgg_weights: str | os.PathLike | None = None, allow_download: bool = True):
        super().__init__()
        self.lpips = build_lpips_vgg(vgg_weights, allow_download=allow_download)

    def train(self, mode: bool = True) -> LPIPSLoss:
        super().train(mode)
        self.lpips.eval()
        return self

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if reconstruction.shape != target.shape or reconstruction.ndim != 4 or reconstruction.shape[1] != 3:
            raise ValueError(
                f"expected two (B, 3, H, W) batches of equal shape, got {tuple(reconstruction.shape)} "
                f"and {tuple(target.shape)}"
            )
        return self.lpips(reconstruction, target).mean()

"""LPIPS (VGG) via the ``lpips`` package, with a VGG16 backbone loaded from a local file.

The ``lpips`` package ships its calibrated linear layers, but takes the VGG16 trunk from torchvision's download.
:func:`build_lpips_vgg` instead loads the trunk from a file found by :mod:`vistok.metrics.weights` (explicit path,
``VISTOK_LPIPS_VGG_WEIGHTS``, the torch hub cache, then a download), so it works offline.
"""

from __future__ import annotations

import os
import warnings

import torch

from .base import MeanOfPerImageValues
from .images import check_pair, uint8_to_signed
from .weights import LPIPS_VGG16, MissingWeightsError, resolve_weights


def build_lpips_vgg(
    weights: str | os.PathLike | None = None,
    allow_download: bool = True,
    device: torch.device | str | None = None,
) -> torch.nn.Module:
    """An eval-mode, frozen ``lpips.LPIPS(net="vgg")`` whose VGG16 trunk comes from ``weights``.

    ``weights`` is a torchvision ``vgg16`` state dict file (the full model or only its ``features.*`` entries).
    Raises :class:`~vistok.metrics.weights.MissingWeightsError` when the file cannot be found or obtained.
    """
    import lpips as lpips_package

    path = resolve_weights(LPIPS_VGG16, weights, allow_download=allow_download)
    state = torch.load(path, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's deprecation notice for `pretrained=`
        model = lpips_package.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    model.net.load_state_dict(_vgg16_features_to_lpips_slices(model.net, state, path))
    model.requires_grad_(False).eval()
    return model.to(device) if device is not None else model


def _vgg16_features_to_lpips_slices(trunk: torch.nn.Module, state: dict, path: os.PathLike) -> dict:
    """Rename torchvision ``features.<i>.*`` entries to the lpips trunk's ``slice<k>.<i>.*`` names."""
    if not isinstance(state, dict):
        raise MissingWeightsError(f"{path} does not hold a state dict (got {type(state).__name__})")
    renamed = {}
    for slice_name, block in trunk.named_children():
        for layer_index, layer in block.named_children():
            for param_name, _ in layer.named_parameters(recurse=False):
                key = f"features.{layer_index}.{param_name}"
                if key not in state:
                    raise MissingWeightsError(
                        f"{path} is not a torchvision vgg16 state dict: it lacks {key!r}. "
                        "Expected the file torchvision downloads for vgg16 (IMAGENET1K_V1)."
                    )
                renamed[f"{slice_name}.{layer_index}.{param_name}"] = state[key]
    return renamed


class LPIPS(MeanOfPerImageValues):
    """Mean over images of LPIPS-VGG distance between uint8 originals and reconstructions (lower is better)."""

    name = "lpips"

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        allow_download: bool = True,
        device: torch.device | str | None = None,
        network: torch.nn.Module | None = None,
    ) -> None:
        """``network``: an already built LPIPS module (else :func:`build_lpips_vgg` loads one from ``weights``)."""
        super().__init__()
        self.network = network if network is not None else build_lpips_vgg(weights, allow_download, device)

    @torch.no_grad()
    def update(self, original: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add a batch of uint8 (B, 3, H, W) originals and reconstructions."""
        check_pair(original, reconstruction)
        device = next(self.network.parameters()).device
        distances = self.network(
            uint8_to_signed(original).to(device), uint8_to_signed(reconstruction).to(device)
        )
        self.add_values(distances.flatten())

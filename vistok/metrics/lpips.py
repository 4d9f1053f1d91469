"""LPIPS (VGG, or AlexNet where a protocol says so) via the ``lpips`` package, with the backbone loaded from a file.

The ``lpips`` package ships its calibrated linear layers, but takes the VGG16 / AlexNet trunk from torchvision's
download. :func:`build_lpips` instead loads the trunk from a file found by :mod:`vistok.metrics.weights` (explicit
path, ``VISTOK_LPIPS_VGG_WEIGHTS`` / ``VISTOK_LPIPS_ALEX_WEIGHTS``, the torch hub cache, then a download), so it
works offline.
"""

from __future__ import annotations

import os
import warnings

import torch

from .base import MeanOfPerImageValues
from .images import check_pair, to_signed
from .weights import LPIPS_ALEX, LPIPS_VGG16, MissingWeightsError, resolve_weights

LPIPS_BACKBONES = {"vgg": LPIPS_VGG16, "alex": LPIPS_ALEX}


def build_lpips_vgg(
    weights: str | os.PathLike | None = None,
    allow_download: bool = True,
    device: torch.device | str | None = None,
) -> torch.nn.Module:
    """An eval-mode, frozen ``lpips.LPIPS(net="vgg")`` whose VGG16 trunk comes from ``weights``.

    ``weights`` is a torchvision ``vgg16`` state dict file (the full model or only its ``features.*`` entries).
    Raises :class:`~vistok.metrics.weights.MissingWeightsError` when the file cannot be found or obtained.
    """
    return build_lpips("vgg", weights, allow_download, device)


def build_lpips(
    net: str = "vgg",
    weights: str | os.PathLike | None = None,
    allow_download: bool = True,
    device: torch.device | str | None = None,
) -> torch.nn.Module:
    """An eval-mode, frozen ``lpips.LPIPS(net=net)`` (``vgg`` or ``alex``) whose trunk comes from ``weights``: a
    torchvision ``vgg16`` / ``alexnet`` state dict file (the full model or only its ``features.*`` entries).
    Raises :class:`~vistok.metrics.weights.MissingWeightsError` when the file cannot be found or obtained."""
    import lpips as lpips_package

    if net not in LPIPS_BACKBONES:
        raise ValueError(f"LPIPS network must be one of {', '.join(LPIPS_BACKBONES)}, got {net!r}")
    path = resolve_weights(LPIPS_BACKBONES[net], weights, allow_download=allow_download)
    state = torch.load(path, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's deprecation notice for `pretrained=`
        model = lpips_package.LPIPS(net=net, pnet_rand=True, verbose=False)
    model.net.load_state_dict(_features_to_lpips_slices(model.net, state, path, net))
    model.requires_grad_(False).eval()
    return model.to(device) if device is not None else model


def _features_to_lpips_slices(trunk: torch.nn.Module, state: dict, path: os.PathLike, net: str = "vgg") -> dict:
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
                        f"{path} is not a torchvision {_TORCHVISION_NAMES[net]} state dict: it lacks {key!r}. "
                        f"Expected the file torchvision downloads for {_TORCHVISION_NAMES[net]} (IMAGENET1K_V1)."
                    )
                renamed[f"{slice_name}.{layer_index}.{param_name}"] = state[key]
    return renamed


_TORCHVISION_NAMES = {"vgg": "vgg16", "alex": "alexnet"}


class LPIPS(MeanOfPerImageValues):
    """Mean over images of LPIPS distance (VGG unless built otherwise) between originals and reconstructions
    (lower is better)."""

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
        self.net = getattr(self.network, "pnet_type", "vgg")

    @torch.no_grad()
    def update(self, original: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add a batch of (B, 3, H, W) originals and reconstructions (uint8, or float in [-1, 1])."""
        check_pair(original, reconstruction, allow_float=True)
        device = next(self.network.parameters()).device
        distances = self.network(to_signed(original).to(device), to_signed(reconstruction).to(device))
        self.add_values(distances.flatten())

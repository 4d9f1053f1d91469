"""LPIPS perceptual loss (VGG16 trunk, the ``lpips`` package's calibrated linear heads).

The ``lpips`` package ships its linear heads, but the VGG16 trunk is torchvision's ImageNet checkpoint, which
torchvision downloads on first use. Here the trunk is loaded explicitly from, in order: the path passed in,
``$VISTOK_VGG16_WEIGHTS``, torch hub's cache (``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``), and finally a
download; when none works, :class:`PerceptualWeightsNotFoundError` says which file is missing and where to put it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import torch
from torch import nn

VGG16_FILENAME = "vgg16-397923af.pth"
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILENAME}"
WEIGHTS_ENV = "VISTOK_VGG16_WEIGHTS"


class PerceptualWeightsNotFoundError(FileNotFoundError):
    """The VGG16 weights LPIPS needs are neither local nor downloadable."""


def hub_cache_path() -> Path:
    """Where torchvision / torch.hub keep the VGG16 checkpoint."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME


def _missing_message(reason: str) -> str:
    return (
        f"LPIPS needs torchvision's ImageNet VGG16 weights ({VGG16_FILENAME}, 528 MB) and could not get them: "
        f"{reason}.\nProvide the file in one of these ways:\n"
        f"  - download {VGG16_URL} on a connected machine and copy it to {hub_cache_path()} "
        "(torch hub's cache; TORCH_HOME moves it);\n"
        f"  - or point to it: the environment variable {WEIGHTS_ENV}=/path/to/{VGG16_FILENAME}, or the "
        "`vgg_weights` argument (training recipes: `--loss.perceptual_weights PATH`).\n"
        "A saved LPIPS state dict (keys `net.slice*` and `lin*`) is accepted as well."
    )


def resolve_vgg_weights(vgg_weights: str | os.PathLike | None = None, allow_download: bool = True) -> dict:
    """Load the VGG16 (or full LPIPS) state dict from the first available source (see module docstring)."""
    candidates = [vgg_weights, os.environ.get(WEIGHTS_ENV)]
    for candidate in candidates:
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise PerceptualWeightsNotFoundError(_missing_message(f"{path} does not exist"))
            return torch.load(path, map_location="cpu", weights_only=True)
    cached = hub_cache_path()
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    if not allow_download:
        raise PerceptualWeightsNotFoundError(_missing_message(f"{cached} does not exist and downloading is off"))
    try:
        return torch.hub.load_state_dict_from_url(VGG16_URL, map_location="cpu", progress=False)
    except Exception as err:  # URLError, HTTPError, SSL errors, timeouts…: all mean "not downloadable here"
        raise PerceptualWeightsNotFoundError(
            _missing_message(f"{cached} does not exist and the download failed ({type(err).__name__}: {err})")
        ) from err


def _load_trunk(model: nn.Module, state: dict) -> None:
    """Copy a torchvision VGG16 state dict (``features.N.*``) or a full LPIPS state dict into ``model``."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if any(key.startswith("net.slice") for key in state):
        model.load_state_dict(state, strict=False)
        missing = [k for k in model.state_dict() if k.startswith("net.") and k not in state]
        if missing:
            raise ValueError(f"LPIPS state dict lacks trunk weights: {missing[:4]}…")
        return
    if not any(key.startswith("features.") for key in state):
        raise ValueError(
            "unrecognised VGG16 weights: expected torchvision keys 'features.N.weight' or LPIPS keys 'net.sliceK.N.*'"
        )
    trunk = {}
    for slice_name, block in model.net.named_children():
        for key in block.state_dict():
            source = f"features.{key}"
            if source not in state:
                raise ValueError(f"VGG16 weights lack {source!r}")
            trunk[f"{slice_name}.{key}"] = state[source]
    model.net.load_state_dict(trunk, strict=True)


def _vgg16_features_only(*args, **kwargs) -> SimpleNamespace:
    from torchvision.models.vgg import cfgs, make_layers

    return SimpleNamespace(features=make_layers(cfgs["D"]))


def build_lpips(
    vgg_weights: str | os.PathLike | None = None,
    linear_weights: str | os.PathLike | None = None,
    allow_download: bool = True,
) -> nn.Module:
    """An ``lpips.LPIPS(net="vgg")`` model in eval mode with frozen parameters, built without network access
    when the weights are local. Inputs to the returned model are (B, 3, H, W) in [-1, 1]."""
    import lpips

    state = resolve_vgg_weights(vgg_weights, allow_download=allow_download)
    # lpips builds a whole torchvision VGG16 only to keep its ``features``; the unused 120M-parameter classifier
    # costs seconds of random init and ~500 MB, so hand it a features-only stand-in while it is constructed.
    with mock.patch.object(lpips.pretrained_networks.tv, "vgg16", _vgg16_features_only):
        model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, model_path=linear_weights, verbose=False)
    _load_trunk(model, state)
    model.eval().requires_grad_(False)
    return model


class LPIPSLoss(nn.Module):
    """Mean LPIPS distance between two image batches in [-1, 1]; a scalar that backpropagates to the inputs.

    The network stays frozen and in eval mode whatever ``train()`` is called with.
    """

    def __init__(self, vgg_weights: str | os.PathLike | None = None, allow_download: bool = True):
        super().__init__()
        self.lpips = build_lpips(vgg_weights, allow_download=allow_download)

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
        return self.lpips(reconstruction.float(), target.float()).mean()

"""Randomly initialised stand-ins for the pretrained backbones, for offline smoke tests of the full metric path.

Numbers computed with these files are meaningless as LPIPS / rFID values; they only exercise the loading and
computing code. Convolutions get Kaiming-normal initialisation so activations keep their scale through the depth.
"""

from __future__ import annotations

import os

import torch


def _kaiming(module: torch.nn.Module, generator: torch.Generator) -> None:
    for layer in module.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = layer.weight[0].numel()
            with torch.no_grad():
                layer.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if layer.bias is not None:
                    layer.bias.zero_()


def save_random_vgg16_weights(path: str | os.PathLike, seed: int = 0) -> None:
    """Write a torchvision-format vgg16 ``features.*`` state dict (random weights) to ``path``."""
    from torchvision.models import vgg16

    features = vgg16(weights=None).features
    _kaiming(features, torch.Generator().manual_seed(seed))
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()}, path)


def save_random_alexnet_weights(path: str | os.PathLike, seed: int = 0) -> None:
    """Write a torchvision-format alexnet ``features.*`` state dict (random weights) to ``path``."""
    from torchvision.models import alexnet

    features = alexnet(weights=None).features
    _kaiming(features, torch.Generator().manual_seed(seed))
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()}, path)


def save_random_inception_weights(path: str | os.PathLike, seed: int = 0) -> None:
    """Write a state dict (random weights) loadable by torch-fidelity's ``FeatureExtractorInceptionV3``."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the fresh initialisation
            return None

    placeholder = f"{os.fspath(path)}.empty"
    torch.save({}, placeholder)
    try:
        model = _Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=placeholder)
    finally:
        os.remove(placeholder)
    _kaiming(model, torch.Generator().manual_seed(seed))
    torch.save(model.state_dict(), path)

"""Conversions between model tensors and the saved-image form every metric is computed on.

vistok measures what a user would save: ``pixel_values`` in [-1, 1] are mapped to [0, 255], rounded half to
even (``torch.round``) and stored as uint8. Originals and reconstructions go through the same conversion.
"""

from __future__ import annotations

import torch

from ..image_processing import to_uint8

__all__ = ["to_uint8", "uint8_to_unit", "uint8_to_signed", "check_images", "check_pair"]


def uint8_to_unit(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, C, H, W) uint8 → ``dtype`` (default float32) in [0, 1]."""
    _check_uint8(images)
    return images.to(dtype) / 255.0


def uint8_to_signed(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) uint8 → float32 in [-1, 1]."""
    _check_uint8(images)
    return images.float() / 127.5 - 1.0


def check_images(images: torch.Tensor) -> None:
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got shape {tuple(images.shape)}")


def check_pair(original: torch.Tensor, reconstruction: torch.Tensor) -> None:
    """Both uint8 (B, C, H, W) tensors of the same shape."""
    _check_uint8(original)
    _check_uint8(reconstruction)
    if original.shape != reconstruction.shape:
        raise ValueError(
            f"originals and reconstructions must have the same shape, got {tuple(original.shape)} "
            f"and {tuple(reconstruction.shape)}"
        )


def _check_uint8(images: torch.Tensor) -> None:
    check_images(images)
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images (use vistok.metrics.to_uint8), got dtype {images.dtype}")

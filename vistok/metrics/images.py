"""Conversions between model tensors and the saved-image form every metric is computed on.

vistok measures what a user would save: ``pixel_values`` in [-1, 1] are mapped to [0, 255], rounded half to
even (``torch.round``) and stored as uint8. Originals and reconstructions go through the same conversion. An
evaluation protocol that follows a project measuring float images (:mod:`vistok.metrics.protocols`) passes float
pixel values in [-1, 1] instead; :func:`to_unit` and :func:`to_signed` take either form.
"""

from __future__ import annotations

import torch

from ..image_processing import to_uint8

__all__ = [
    "to_uint8",
    "uint8_to_unit",
    "uint8_to_signed",
    "to_unit",
    "to_signed",
    "check_images",
    "check_pair",
]


def uint8_to_unit(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, C, H, W) uint8 → ``dtype`` (default float32) in [0, 1]."""
    _check_uint8(images)
    return images.to(dtype) / 255.0


def uint8_to_signed(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) uint8 → float32 in [-1, 1]."""
    _check_uint8(images)
    return images.float() / 127.5 - 1.0


def to_unit(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images, or float pixel values in [-1, 1], → ``dtype`` in [0, 1]."""
    if images.dtype == torch.uint8:
        return uint8_to_unit(images, dtype)
    return (images.to(dtype) + 1) / 2


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 images, or float pixel values in [-1, 1] (returned as float32), → float32 in [-1, 1]."""
    if images.dtype == torch.uint8:
        return uint8_to_signed(images)
    return images.float()


def check_images(images: torch.Tensor) -> None:
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got shape {tuple(images.shape)}")


def check_pair(original: torch.Tensor, reconstruction: torch.Tensor, allow_float: bool = False) -> None:
    """Both (B, C, H, W) tensors of the same shape and dtype: uint8, or (``allow_float``) floating point."""
    for images in (original, reconstruction):
        if allow_float and torch.is_floating_point(images):
            check_images(images)
        else:
            _check_uint8(images)
    if original.dtype != reconstruction.dtype:
        raise TypeError(f"originals and reconstructions must have the same dtype, got {original.dtype} and "
                        f"{reconstruction.dtype}")
    if original.shape != reconstruction.shape:
        raise ValueError(
            f"originals and reconstructions must have the same shape, got {tuple(original.shape)} "
            f"and {tuple(reconstruction.shape)}"
        )


def _check_uint8(images: torch.Tensor) -> None:
    check_images(images)
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images (use vistok.metrics.to_uint8), got dtype {images.dtype}")

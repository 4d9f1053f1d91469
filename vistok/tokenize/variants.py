"""Augmented copies of each image, as LlamaGen pre-tokenizes for autoregressive training: the image and its mirror
(``--flip both``), optionally ten-crop (five crops of an image enlarged by ``TEN_CROP_SCALE``, each also mirrored).

Every copy is a *variant* ``(crop, flip)``; each becomes one row of the token dataset with both recorded. Variants of
one image are consecutive rows in :func:`variants_for` order: un-mirrored crops first, then the mirrored ones
(torchvision's ``TenCrop`` order: top-left, top-right, bottom-left, bottom-right, centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# LlamaGen's extract_codes_c2i.py: crop_range 1.1 — the ten crops come from an image of int(1.1 · size) pixels.
TEN_CROP_SCALE = 1.1
FLIP_CHOICES = ("none", "both")
FULL = "full"
FIVE_CROPS = ("top_left", "top_right", "bottom_left", "bottom_right", "center")


@dataclass(frozen=True)
class Variant:
    crop: str  # "full" (the whole preprocessed image) or one of FIVE_CROPS
    flip: bool  # mirrored left-right


def variants_for(flip: str, ten_crop: bool) -> tuple[Variant, ...]:
    """The variants of each image, in row order. ``flip``: ``"none"`` or ``"both"``."""
    if flip not in FLIP_CHOICES:
        raise ValueError(f"flip must be one of {', '.join(FLIP_CHOICES)}, got {flip!r}")
    crops = FIVE_CROPS if ten_crop else (FULL,)
    flips = (False, True) if flip == "both" else (False,)
    return tuple(Variant(crop, mirrored) for mirrored in flips for crop in crops)


def source_size(image_size: int, ten_crop: bool) -> int:
    """Side of the preprocessed image the variants are cut from."""
    return int(image_size * TEN_CROP_SCALE) if ten_crop else image_size


def _crop_box(crop: str, side: int, size: int) -> tuple[int, int]:
    """(top, left) of a ``size``² crop of a ``side``² image, as torchvision's five_crop / center_crop place it."""
    far = side - size
    if crop == "center":
        centre = int(round(far / 2.0))
        return centre, centre
    return {"top_left": (0, 0), "top_right": (0, far), "bottom_left": (far, 0), "bottom_right": (far, far)}[crop]


def expand_variants(pixel_values: torch.Tensor, variants: tuple[Variant, ...], size: int) -> torch.Tensor:
    """(B, C, S, S) preprocessed images → (B · V, C, size, size): image-major, each image's variants in order.

    Crops and mirrors are exact pixel copies, so a variant equals cropping / flipping the 8-bit image first.
    """
    side = pixel_values.shape[-1]
    out = []
    for variant in variants:
        if variant.crop == FULL:
            image = pixel_values
        else:
            top, left = _crop_box(variant.crop, side, size)
            image = pixel_values[..., top : top + size, left : left + size]
        out.append(image.flip(-1) if variant.flip else image)
    return torch.stack(out, dim=1).reshape(-1, *out[0].shape[1:])

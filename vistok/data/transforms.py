"""Image crops and flips used by the dataset presets. All take and return RGB PIL images.

Random transforms take an explicit ``numpy.random.Generator`` so that a sample's augmentation is a pure
function of ``(seed, epoch, index)`` — identical across DataLoader workers, processes and resumed runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# The seed project's CelebA preprocessing (after StyleGAN's dataset tool): a 128×128 box centred at
# (x=89, y=121) of the aligned 178×218 images, resized to the target size.
CELEBA_CENTER = (89, 121)
CELEBA_CROP = 128


def sample_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (e.g. epoch, index)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(k) & 0xFFFFFFFF for k in keys)])


def celeba_seed_crop(image: Image.Image, size: int = 64) -> Image.Image:
    """Crop the 128×128 box centred at (89, 121) and resize it to ``size``×``size`` (bilinear, antialiased).

    Expects an aligned CelebA image (178×218); raises ValueError if the box does not fit in ``image``.
    """
    cx, cy = CELEBA_CENTER
    half = CELEBA_CROP // 2
    box = (cx - half, cy - half, cx + half, cy + half)
    if image.width < box[2] or image.height < box[3]:
        raise ValueError(
            f"the CelebA crop box {box} needs an image of at least {box[2]}x{box[3]} (aligned CelebA is 178x218), "
            f"got {image.width}x{image.height}"
        )
    crop = image.crop(box)
    if size == CELEBA_CROP:
        return crop
    return crop.resize((size, size), Image.Resampling.BILINEAR)


def _downscale_shorter_side(image: Image.Image, target: int) -> Image.Image:
    """Resize so that the shorter side is ``target`` (box-halving first, then bicubic), as in ADM."""
    while min(image.size) >= 2 * target:
        image = image.resize(tuple(s // 2 for s in image.size), resample=Image.Resampling.BOX)
    scale = target / min(image.size)
    new_size = tuple(max(target, round(s * scale)) for s in image.size)
    return image.resize(new_size, resample=Image.Resampling.BICUBIC)


def center_crop_adm(image: Image.Image, size: int) -> Image.Image:
    """ADM (guided-diffusion) evaluation crop: shorter side → ``size``, then the central ``size``×``size``."""
    image = _downscale_shorter_side(image, size)
    left = (image.width - size) // 2
    top = (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def random_crop_adm(
    image: Image.Image, size: int, rng: np.random.Generator, min_crop_frac: float = 0.8, max_crop_frac: float = 1.0
) -> Image.Image:
    """ADM training crop: shorter side → a random length in [size/max_frac, size/min_frac], random square crop."""
    if not 0 < min_crop_frac <= max_crop_frac <= 1:
        raise ValueError(f"need 0 < min_crop_frac <= max_crop_frac <= 1, got {min_crop_frac}, {max_crop_frac}")
    shorter = int(rng.integers(math.ceil(size / max_crop_frac), math.ceil(size / min_crop_frac) + 1))
    image = _downscale_shorter_side(image, shorter)
    left = int(rng.integers(0, image.width - size + 1))
    top = int(rng.integers(0, image.height - size + 1))
    return image.crop((left, top, left + size, top + size))


def hflip(image: Image.Image) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


@dataclass(frozen=True)
class ImageTransform:
    """Crop to ``size`` then optionally flip with probability 1/2; randomness comes from the given generator.

    ``crop(image, size, rng)`` is any of the crops above (deterministic crops ignore ``rng``).
    """

    crop: Callable[[Image.Image, int, np.random.Generator], Image.Image]
    size: int
    hflip: bool = False

    @property
    def converts_modes(self) -> bool:
        """Whether an image should reach it in its own PIL mode (an upstream pipeline makes it RGB its own way:
        transparency, 16-bit…); otherwise images arrive as vistok's 8-bit RGB (transparency over white)."""
        return getattr(self.crop, "converts_modes", False)

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        out = self.crop(image, self.size, rng)
        if out.size != (self.size, self.size):
            raise ValueError(f"crop produced {out.size}, expected {(self.size, self.size)}")
        if self.hflip and rng.random() < 0.5:
            out = hflip(out)
        return out


@dataclass(frozen=True)
class UpstreamCrop:
    """A crop callable (as :class:`ImageTransform` takes) that runs an upstream project's pipeline
    (:class:`vistok.preprocessing.Preprocessing`) at the requested size."""

    pipeline: Any
    converts_modes = True  # an image reaches it in its own mode: the pipeline makes it RGB as upstream does

    def __call__(self, image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
        from ..preprocessing import preprocess

        return Image.fromarray(preprocess(image, self.pipeline.at(size)))


def celeba_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    return celeba_seed_crop(image, size)


def adm_center_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    return center_crop_adm(image, size)


def adm_random_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    return random_crop_adm(image, size, rng)

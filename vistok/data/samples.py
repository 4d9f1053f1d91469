"""``samples``: random square crops of natural photographs bundled with scikit-image and scikit-learn.

Needs no download, so it is what tests, the ``tiny`` recipe and offline demos train on. The held-out split uses
different photographs from ``train`` (whole photos are held out), so evaluation never sees a training pixel.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
from PIL import Image

from .datasets import ImageDataset
from .images import pil_to_pixel_values
from .transforms import hflip, sample_rng

TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "hubble_deep_field", "china")
HELD_OUT_PHOTOS = ("chelsea", "flower")
SPLIT_ALIASES = {"train": "train", "test": "test", "validation": "test", "valid": "test", "val": "test"}
DEFAULT_NUM_SAMPLES = {"train": 2048, "test": 256}
_SPLIT_KEYS = {"train": 0, "test": 1}


def _sklearn_image_path(name: str) -> Path:
    """Where scikit-learn keeps its sample JPEGs, found without importing scikit-learn (slow to import)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("scikit-learn is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images" / f"{name}.jpg"


def _load_photo(name: str) -> np.ndarray:
    if name in ("china", "flower"):
        with Image.open(_sklearn_image_path(name)) as image:
            return np.asarray(image.convert("RGB"))
    import skimage.data

    return getattr(skimage.data, name)()


@functools.cache
def load_photos(split: str) -> tuple[Image.Image, ...]:
    """The RGB photographs of a ``samples`` split (``train`` or ``test``), loaded once per process."""
    names = TRAIN_PHOTOS if split == "train" else HELD_OUT_PHOTOS
    try:
        return tuple(Image.fromarray(_load_photo(name)).convert("RGB") for name in names)
    except ImportError as err:
        raise ImportError(
            "the 'samples' dataset needs scikit-image and scikit-learn: pip install 'vistok[training]'"
        ) from err


def _crop_side(short_side: int, size: int, rng: np.random.Generator) -> int:
    """Log-uniform side length in [min(size, short_side), short_side]: never upsamples when avoidable."""
    low = min(size, short_side)
    return int(round(math.exp(rng.uniform(math.log(low), math.log(short_side)))))


class SampleCropsDataset(ImageDataset):
    """``num_samples`` crops of the split's photos; crop ``i`` is fixed by ``(seed, split, i)``.

    Items are ``{"pixel_values": float32 (3, size, size) in [-1, 1], "index": i}``; with ``hflip`` each crop is
    mirrored with probability 1/2, redrawn per epoch (see :meth:`set_epoch`).
    """

    def __init__(self, split: str, image_size: int, num_samples: int | None = None, hflip: bool = False, seed: int = 0):
        if split not in SPLIT_ALIASES:
            raise ValueError(f"unknown split {split!r} for 'samples'; valid splits: {sorted(SPLIT_ALIASES)}")
        self.split = SPLIT_ALIASES[split]
        self.photos = load_photos(self.split)
        self.image_size = int(image_size)
        self.hflip = hflip
        count = DEFAULT_NUM_SAMPLES[self.split] if num_samples is None else int(num_samples)
        if count <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        super().__init__(source=range(count), transform=None, seed=seed, name=f"samples[{self.split}]")

    def crop(self, index: int) -> Image.Image:
        """The ``index``-th crop (before flipping), as an RGB PIL image of ``image_size``²."""
        rng = sample_rng(self.seed, _SPLIT_KEYS[self.split], index)
        photo = self.photos[int(rng.integers(len(self.photos)))]
        side = _crop_side(min(photo.size), self.image_size, rng)
        left = int(rng.integers(0, photo.width - side + 1))
        top = int(rng.integers(0, photo.height - side + 1))
        crop = photo.crop((left, top, left + side, top + side))
        return crop.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.name} of length {len(self)}")
        image = self.crop(index)
        if self.hflip and sample_rng(self.seed, self.epoch, index, 2).random() < 0.5:
            image = hflip(image)
        return {"pixel_values": pil_to_pixel_values(image), "index": index}

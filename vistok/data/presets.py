"""Named datasets: which 🤗 dataset, which splits, which crop for training and for evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .transforms import adm_center_crop, adm_random_crop, celeba_crop


@dataclass(frozen=True)
class DatasetPreset:
    """A named dataset.

    ``splits`` maps accepted split names (aliases included) to the Hub's split names. The crops are
    ``crop(image, size, rng) -> image`` callables from :mod:`vistok.data.transforms`.
    """

    hub_id: str
    image_column: str
    splits: dict[str, str]
    train_crop: Callable
    eval_crop: Callable
    gated: bool = False
    notes: str = ""
    default_image_size: int = field(default=256)

    def hub_split(self, split: str, name: str) -> str:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} for dataset {name!r}; valid splits: {sorted(self.splits)}")
        return self.splits[split]


DATASET_PRESETS: dict[str, DatasetPreset] = {
    "celeba64": DatasetPreset(
        hub_id="flwrlabs/celeba",
        image_column="image",
        splits={"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"},
        train_crop=celeba_crop,
        eval_crop=celeba_crop,
        default_image_size=64,
        notes="aligned CelebA 178x218; 128x128 crop centred at (89, 121), resized (the seed's preprocessing)",
    ),
    "imagenet256": DatasetPreset(
        hub_id="ILSVRC/imagenet-1k",
        image_column="image",
        splits={"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
                "test": "test"},
        train_crop=adm_random_crop,
        eval_crop=adm_center_crop,
        gated=True,
        default_image_size=256,
        notes="train: ADM random crop (shorter side to [size, size/0.8], random square); eval: ADM centre crop",
    ),
}

"""Datasets for training and evaluating tokenizers: named presets, 🤗 datasets, local folders, bundled photos.

>>> ds = build_dataset("samples", "train", image_size=64, train=True)
>>> ds[0]["pixel_values"].shape, ds[0]["index"]
(torch.Size([3, 64, 64]), 0)
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset, IterableDataset

from .datasets import (
    HFColumn,
    ImageDataset,
    SkippedSample,
    StreamingImageDataset,
    build_dataloader,
    collate_images,
)
from .images import ImageInputError, UnreadableImageError, open_image, pil_to_pixel_values, to_rgb
from .presets import DATASET_PRESETS, DatasetPreset
from .samples import SampleCropsDataset
from .sources import DatasetUnavailableError, accepted_datasets, check_local_dataset, open_split
from .transforms import (
    ImageTransform,
    UpstreamCrop,
    adm_center_crop,
    adm_random_crop,
    celeba_seed_crop,
    center_crop_adm,
    random_crop_adm,
)

STREAM_SHUFFLE_BUFFER = 1000


def list_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset` besides Hub ids and local paths."""
    return sorted([*DATASET_PRESETS, "samples"])


def build_dataset(
    name_or_path: str,
    split: str,
    image_size: int,
    train: bool = False,
    streaming: bool = False,
    image_column: str | None = None,
    num_samples: int | None = None,
    hflip: bool | None = None,
    seed: int = 0,
    preprocessing: Any = None,
) -> Dataset | IterableDataset:
    """Build an image dataset whose items are ``{"pixel_values": float32 (3, image_size, image_size) in [-1, 1],
    "index": int}`` (``index`` = position in the split), or a :class:`SkippedSample` (position, file, reason) for an
    image that cannot be used — batch them with :func:`collate_images` / :func:`build_dataloader`, which drop,
    count and list those.

    ``name_or_path``: ``samples`` (bundled photos), a preset (``celeba64``, ``imagenet256``), any 🤗 Hub dataset
    id (pass ``image_column`` if it is not detected), or a local image folder / ``save_to_disk`` folder / parquet
    file. ``train`` selects the training crop (random for ImageNet and generic data) and turns on horizontal flips
    unless ``hflip`` says otherwise. ``streaming`` returns an IterableDataset (shuffled with a buffer when
    training). ``num_samples`` keeps the first N samples (for ``samples``: how many crops). Random augmentations
    are a function of ``(seed, epoch, index)``; call ``set_epoch`` on the dataset each epoch. ``preprocessing``
    (a :class:`vistok.preprocessing.Preprocessing`, evaluation only) replaces the dataset's evaluation crop with an
    upstream project's pipeline; ``samples`` refuses it (its crops are made in memory from the bundled photos).

    Raises :class:`DatasetUnavailableError` when a Hub dataset cannot be loaded (offline, gated, not cached), with
    the alternatives spelled out, and ``ValueError`` for ``samples`` with ``streaming`` or ``image_column``.
    """
    if not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if num_samples is not None and num_samples <= 0:
        raise ValueError(f"num_samples must be positive or None, got {num_samples}")
    flip = train if hflip is None else bool(hflip)

    if preprocessing is not None and train:
        raise ValueError("preprocessing replaces the evaluation crop; training crops are the dataset's own")
    if name_or_path == "samples":
        if preprocessing is not None:
            raise ValueError(
                "'samples' are crops made in memory from the bundled photos: an upstream pipeline cannot frame them; "
                "use a folder of photos, or the generic preprocessing"
            )
        # the bundled photos are crops made in memory: neither option has a meaning there, and neither is ignored
        if streaming:
            raise ValueError(
                "'samples' (crops of the bundled photos, made in memory) cannot be streamed: drop --streaming "
                "(streaming=True in Python; --data.streaming false in a training recipe)"
            )
        if image_column is not None:
            raise ValueError(
                f"'samples' (crops of the bundled photos) has no columns: image_column={image_column!r} applies to "
                "Hub and local datasets only"
            )
        return SampleCropsDataset(split, image_size, num_samples=num_samples, hflip=flip, seed=seed)

    preset = DATASET_PRESETS.get(name_or_path)
    if preset is not None:
        opened = open_split(
            preset.hub_id, preset.hub_split(split, name_or_path), streaming=streaming,
            image_column=image_column or preset.image_column, gated=preset.gated, label=name_or_path,
        )
        crop = preset.train_crop if train else preset.eval_crop
    else:
        try:
            opened = open_split(name_or_path, split, streaming=streaming, image_column=image_column)
        except DatasetUnavailableError as err:
            raise _typo_or(err, name_or_path, split) from err
        crop = adm_random_crop if train else adm_center_crop

    import datasets

    if preprocessing is not None:
        crop = UpstreamCrop(preprocessing)
    transform = ImageTransform(crop=crop, size=image_size, hflip=flip)
    name = f"{name_or_path}[{split}]"
    data = opened.dataset
    if isinstance(data, datasets.IterableDataset):
        if num_samples is not None:
            data = data.take(num_samples)
        if train:
            data = data.shuffle(seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER)
        return StreamingImageDataset(data, opened.image_column, transform, seed=seed, name=name)
    if num_samples is not None:
        data = data.select(range(min(num_samples, len(data))))
    return ImageDataset(HFColumn(data, opened.image_column), transform, seed=seed, name=name)


def _typo_or(error: DatasetUnavailableError, name: str, split: str) -> DatasetUnavailableError:
    """``error``, or — when ``name`` is close to one of vistok's dataset names (``sampels``) — a one-line message
    naming it instead of the how-to for an unreachable Hub dataset."""
    from ..suggest import closest_names

    close = closest_names(name, list_datasets())
    if not close:
        return error
    return DatasetUnavailableError(
        f"Could not load the dataset {name!r} (split {split!r}): it is not one of vistok's dataset names and could "
        f"not be loaded from the 🤗 Hub; did you mean {' or '.join(map(repr, close))}?"
    )


__all__ = [
    "DATASET_PRESETS",
    "DatasetPreset",
    "DatasetUnavailableError",
    "HFColumn",
    "ImageDataset",
    "ImageInputError",
    "ImageTransform",
    "SampleCropsDataset",
    "SkippedSample",
    "StreamingImageDataset",
    "UnreadableImageError",
    "accepted_datasets",
    "adm_center_crop",
    "adm_random_crop",
    "build_dataloader",
    "build_dataset",
    "celeba_seed_crop",
    "center_crop_adm",
    "check_local_dataset",
    "collate_images",
    "list_datasets",
    "open_image",
    "open_split",
    "pil_to_pixel_values",
    "random_crop_adm",
    "to_rgb",
]

"""Torch datasets that turn stored images into ``{"pixel_values", "index"}`` samples, and their DataLoader.

A sample whose image cannot be decoded or cropped is not a crash: the dataset yields a :class:`SkippedSample` (its
position, its file when the split stores paths, and why) in its place and logs a warning naming the file;
:func:`collate_images` drops it and reports how many it dropped (``num_skipped``) and which (``skipped``), so both
survive DataLoader worker processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from .images import UnreadableImageError, open_image, pil_to_pixel_values
from .transforms import ImageTransform, sample_rng

logger = logging.getLogger(__name__)

_MAX_WARNINGS = 20


@dataclass(frozen=True)
class SkippedSample:
    """What a dataset yields in place of a sample it cannot use: ``index`` (position in the split), ``file`` (the
    image's path when the split stores one, else ``None``) and ``reason`` (the error, as text)."""

    index: int
    file: str | None
    reason: str


def image_file(raw: Any) -> str | None:
    """The path a stored image came from (a 🤗 ``{"bytes", "path"}`` record or a path), or ``None``."""
    if isinstance(raw, dict):
        path = raw.get("path")
        return str(path) if path else None
    if isinstance(raw, (str, os.PathLike)):
        return str(raw)
    return None


class _SkipCounter:
    """Counts skipped samples and warns about the first few (per process), naming their files."""

    def __init__(self, name: str):
        self.name = name
        self.num_skipped = 0

    def record(self, index: int, err: Exception, file: str | None = None) -> SkippedSample:
        self.num_skipped += 1
        where = f"{file} (sample {index})" if file else f"sample {index}"
        if self.num_skipped <= _MAX_WARNINGS:
            logger.warning("%s: skipped %s: %s", self.name, where, err)
        if self.num_skipped == _MAX_WARNINGS:
            logger.warning("%s: further skipped samples are counted but not logged", self.name)
        return SkippedSample(index, file, str(err))


def _make_sample(raw: Any, index: int, transform: ImageTransform, rng_seed: int, epoch: int) -> dict | None:
    image = open_image(raw, keep_mode=getattr(transform, "converts_modes", False))
    image = transform(image, sample_rng(rng_seed, epoch, index))
    return {"pixel_values": pil_to_pixel_values(image), "index": index}


class _TransformedImages:
    """What both dataset kinds share: the per-sample transform, its seed and epoch, and the skip counter."""

    def __init__(self, source, transform: ImageTransform, seed: int, name: str):
        self.source = source
        self.transform = transform
        self.seed = seed
        self.name = name
        self.epoch = 0
        self.skips = _SkipCounter(name)

    @property
    def num_skipped(self) -> int:
        """Samples skipped in this process (DataLoader workers count separately: use the batches' num_skipped)."""
        return self.skips.num_skipped

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class ImageDataset(_TransformedImages, Dataset):
    """Map-style dataset over ``source``, any sequence whose items are stored images (see ``open_image``).

    Item ``i`` is ``{"pixel_values": float32 (3, size, size) in [-1, 1], "index": i}``, or a :class:`SkippedSample`
    when the stored image cannot be used (unreadable, or a shape vistok refuses). Random crops / flips depend only on ``(seed, epoch, i)``; call :meth:`set_epoch` each
    epoch to vary them.
    """

    def __init__(self, source: Sequence, transform: ImageTransform, seed: int = 0, name: str = "dataset"):
        super().__init__(source, transform, seed, name)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict | SkippedSample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.name} of length {len(self)}")
        raw = self.source[index]
        try:
            return _make_sample(raw, index, self.transform, self.seed, self.epoch)
        except (UnreadableImageError, ValueError) as err:
            return self.skips.record(index, err, image_file(raw))


class HFColumn(Sequence):
    """A read-only sequence view of one column of a 🤗 ``Dataset`` (``view[i] == ds[i][column]``)."""

    def __init__(self, dataset, column: str):
        self.dataset = dataset
        self.column = column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[int(index)][self.column]


class StreamingImageDataset(_TransformedImages, IterableDataset):
    """Iterable dataset over a 🤗 ``IterableDataset`` (streaming) with an image column.

    Yields the same items as :class:`ImageDataset` (a :class:`SkippedSample` for an image it cannot use). ``index`` is the position in
    the stream; with several DataLoader workers each worker reads its own shards (🤗 datasets splits them) and
    ``index = local_position * num_workers + worker_id`` — unique and deterministic, but not the map-style position.
    """

    def __init__(self, source, column: str, transform: ImageTransform, seed: int = 0, name: str = "dataset"):
        super().__init__(source, transform, seed, name)
        self.column = column

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.source, "set_epoch"):
            self.source.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[dict | SkippedSample]:
        info = get_worker_info()
        num_workers, worker_id = (info.num_workers, info.id) if info is not None else (1, 0)
        for position, example in enumerate(self.source):
            index = position * num_workers + worker_id
            raw = example[self.column]
            try:
                yield _make_sample(raw, index, self.transform, self.seed, self.epoch)
            except (UnreadableImageError, ValueError) as err:
                yield self.skips.record(index, err, image_file(raw))


def collate_images(batch: list[dict | SkippedSample | None]) -> dict[str, Any]:
    """Stack samples into ``{"pixel_values": (B, 3, H, W), "index": (B,) int64, "num_skipped": int,
    "skipped": [SkippedSample, …]}``.

    :class:`SkippedSample` (and ``None``) entries are dropped and counted, the former listed in ``skipped``; B may
    therefore be smaller than the batch size, and 0 when no sample of the batch could be used (``pixel_values`` is
    then an empty (0,) tensor).
    """
    kept = [item for item in batch if isinstance(item, dict)]
    skipped = [item for item in batch if isinstance(item, SkippedSample)]
    num_skipped = len(batch) - len(kept)
    if not kept:
        return {"pixel_values": torch.empty(0), "index": torch.empty(0, dtype=torch.long), "num_skipped": num_skipped,
                "skipped": skipped}  # fmt: skip
    return {
        "pixel_values": torch.stack([item["pixel_values"] for item in kept]),
        "index": torch.tensor([item["index"] for item in kept], dtype=torch.long),
        "num_skipped": num_skipped,
        "skipped": skipped,
    }


def build_dataloader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    drop_last: bool = False,
    seed: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader using :func:`collate_images`. ``shuffle`` applies to map-style datasets only (streaming
    datasets shuffle with a buffer inside the stream) and is seeded by ``seed`` for reproducible orders."""
    is_iterable = isinstance(dataset, IterableDataset)
    generator = torch.Generator().manual_seed(seed) if shuffle and not is_iterable else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=bool(shuffle and not is_iterable),
        num_workers=num_workers,
        drop_last=drop_last,
        collate_fn=collate_images,
        generator=generator,
        pin_memory=pin_memory,
    )

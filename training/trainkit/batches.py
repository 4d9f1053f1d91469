"""An endless, resumable stream of training batches for one process.

Map-style datasets: every epoch is a permutation seeded by ``(seed, epoch)``, cut into equal shards per process
(so all processes run the same number of steps), and a resumed run starts at the exact batch it stopped at
without loading the skipped samples. Streaming datasets: each process reads its part of the stream
(``datasets.distributed.split_dataset_by_node``); a resumed run re-reads and discards the batches already seen.
Random augmentations are a function of ``(seed, epoch, index)`` (see ``vistok.data``), so nothing here touches
the global RNGs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, Sampler

from vistok.data import collate_images


class ShardedEpochSampler(Sampler[int]):
    """Indices for one process and one epoch: ``batches_per_epoch · batch_size`` of them, skipping
    ``start_batch`` batches. Short datasets are repeated so that every process gets at least one batch."""

    def __init__(self, length: int, batch_size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        if length <= 0:
            raise ValueError("the training dataset is empty")
        self.length = length
        self.batch_size = batch_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return max(1, self.length // (self.batch_size * self.num_replicas))

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.length, generator=generator)
        needed = self.batches_per_epoch * self.batch_size * self.num_replicas
        if needed > self.length:
            order = order.repeat(math.ceil(needed / self.length))
        mine = order[:needed][self.rank :: self.num_replicas]
        return iter(mine[self.start_batch * self.batch_size :].tolist())

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


class BatchStream:
    """``next(stream)`` → the next batch dict from :func:`vistok.data.collate_images`; epochs roll over forever.

    ``epoch`` and ``batch_in_epoch`` say where the stream is (what a checkpoint stores to resume exactly).
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        num_workers: int = 0,
        seed: int = 0,
        rank: int = 0,
        num_replicas: int = 1,
        epoch: int = 0,
        batch_in_epoch: int = 0,
    ):
        self.streaming = isinstance(dataset, IterableDataset)
        if self.streaming and num_replicas > 1:
            from datasets.distributed import split_dataset_by_node

            dataset.source = split_dataset_by_node(dataset.source, rank=rank, world_size=num_replicas)
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.sampler = None if self.streaming else ShardedEpochSampler(len(dataset), batch_size, num_replicas, rank, seed)
        self.epoch = epoch
        self.batch_in_epoch = batch_in_epoch
        self._iterator: Iterator | None = None

    def _start_epoch(self, skip: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        # A private generator keeps DataLoader's worker seeding off the global torch RNG (exact resumes).
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch, start_batch=skip)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            num_workers=self.num_workers,
            collate_fn=collate_images,
            drop_last=self.sampler is not None,
            generator=generator,
            persistent_workers=False,
        )
        self._iterator = iter(loader)
        if self.streaming:
            for _ in range(skip):
                next(self._iterator, None)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict:
        if self._iterator is None:
            self._start_epoch(skip=self.batch_in_epoch)
        for _ in range(2):
            batch = next(self._iterator, None)
            if batch is not None:
                self.batch_in_epoch += 1
                return batch
            self.epoch += 1
            self.batch_in_epoch = 0
            self._start_epoch(skip=0)
        raise RuntimeError("the training dataset yields no batches (is it empty, or smaller than one batch?)")

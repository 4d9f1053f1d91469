"""The streaming-accumulator protocol shared by every vistok metric.

A metric is fed batch by batch with :meth:`update`, holds a state whose size does not grow with the number of
images, and turns it into numbers with :meth:`compute`. States are *mergeable*: :meth:`merge_state` folds another
accumulator's :meth:`state` in, and :meth:`sync` does that across every process of a ``torch.distributed`` run
(merging in rank order, so every process ends with the same state, equal to a single-process run's up to
floating-point summation order).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def distributed_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, or ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class StreamingMetric:
    """Base class: subclasses implement ``update``, ``compute``, ``state``, ``merge_state`` and ``reset``."""

    #: short key used in result dicts and tables (e.g. ``"psnr"``)
    name: str = ""

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, Any]:
        """The metric's numbers as JSON-native values, keyed by result name."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """A picklable snapshot of the accumulated state (tensors on CPU)."""
        raise NotImplementedError

    def merge_state(self, state: dict[str, Any]) -> None:
        """Fold another accumulator's :meth:`state` into this one."""
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        """Merge the states of all processes (collective: every rank must call it). No-op without a process group."""
        _, world = distributed_world()
        if world == 1:
            return
        gathered: list[dict[str, Any] | None] = [None] * world
        dist.all_gather_object(gathered, self.state())
        self.reset()
        for state in gathered:
            self.merge_state(state)


class MeanOfPerImageValues(StreamingMetric):
    """Accumulates a float64 sum and count of per-image values; ``compute`` reports their mean over images."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = torch.zeros((), dtype=torch.float64)
        self.count = 0

    def add_values(self, values: torch.Tensor) -> None:
        """Add a 1-D tensor of per-image values."""
        if values.ndim != 1:
            raise ValueError(f"expected one value per image (a 1-D tensor), got shape {tuple(values.shape)}")
        self.total += values.detach().to(device="cpu", dtype=torch.float64).sum()
        self.count += values.numel()

    def mean(self) -> float:
        if self.count == 0:
            raise ValueError(f"{type(self).__name__}.compute() called before any update()")
        return float(self.total / self.count)

    def compute(self) -> dict[str, Any]:
        return {self.name: self.mean()}

    def state(self) -> dict[str, Any]:
        return {"total": self.total.clone(), "count": self.count}

    def merge_state(self, state: dict[str, Any]) -> None:
        self.total += state["total"]
        self.count += int(state["count"])

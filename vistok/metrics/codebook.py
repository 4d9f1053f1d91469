"""Codebook usage: the seed's FIFO-queue usage, whole-split usage, perplexity and the per-code histogram.

Definitions (``K`` = codebook size):

- ``codebook_usage``: distinct codes among the last ``queue_size`` (65,536) indices in data order, divided by
  ``K`` — the seed's definition (a FIFO queue fed with each batch's indices, images in dataset order, each image's
  indices in raster order). With fewer indices than ``queue_size`` the queue holds them all
  (``codebook_queue_tokens`` says how many).
- ``codebook_usage_split``: distinct codes over every evaluated index, divided by ``K``.
- ``perplexity``: exp of the entropy (nats) of the code histogram over the whole split; ``K`` at uniform use.
- ``codebook_histogram``: how often each code occurred, a list of ``K`` ints — only for codebooks of up to
  ``DENSE_HISTOGRAM_MAX_CODES`` (2^20) codes; larger ones (LFQ and FSQ allow up to 2^62) get no histogram.

Codes are counted in a dense (K,) histogram up to ``DENSE_HISTOGRAM_MAX_CODES`` codes; above, only the codes that
occurred are stored (sorted codes and their counts), so memory grows with the number of distinct codes seen,
never with ``K``.

Data order across processes: every image carries a *position* (its index in the dataset). Each accumulator keeps
only the images with the largest positions that can still reach the queue, so its memory is bounded by
``queue_size`` plus one batch, and merging processes' states reproduces the single-process queue exactly.
"""

from __future__ import annotations

from typing import Any

import torch

from ..entropy import DENSE_HISTOGRAM_MAX_CODES, code_perplexity, outside_codebook, used_code_counts
from .base import StreamingMetric, distributed_world

SEED_QUEUE_SIZE = 65_536


class CodebookUsage(StreamingMetric):
    """Streaming codebook statistics over integer code indices in ``[0, codebook_size)``."""

    name = "codebook_usage"

    def __init__(self, codebook_size: int, queue_size: int = SEED_QUEUE_SIZE) -> None:
        if not isinstance(codebook_size, int) or codebook_size < 1:
            raise ValueError(f"codebook_size must be a positive int, got {codebook_size!r}")
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be a positive int, got {queue_size!r}")
        self.codebook_size = codebook_size
        self.queue_size = queue_size
        self.reset()

    def reset(self) -> None:
        dense = self.codebook_size <= DENSE_HISTOGRAM_MAX_CODES
        # Dense counts per code, or (above the cap) the sorted codes seen and their counts.
        self.histogram = torch.zeros(self.codebook_size, dtype=torch.int64) if dense else None
        self.seen_codes = torch.zeros(0, dtype=torch.int64)
        self.seen_counts = torch.zeros(0, dtype=torch.int64)
        # The queue candidates: one entry per image (position, number of indices), indices concatenated.
        self.positions = torch.zeros(0, dtype=torch.int64)
        self.lengths = torch.zeros(0, dtype=torch.int64)
        self.tokens = torch.zeros(0, dtype=torch.int64)
        self._images_seen = 0

    def update(self, indices: torch.Tensor, positions: torch.Tensor | None = None) -> None:
        """Add a batch of indices, (B, h, w) (or any (B, ...)) integers, one row per image.

        ``positions`` (B,) are the images' places in data order (dataset indices). Without them, images are
        numbered in the order this process sees them; in a distributed run, local image ``n`` of rank ``r`` gets
        ``n · world_size + r`` (the layout of a non-shuffling ``DistributedSampler``). Pass real positions for
        exact multi-process results under any other sharding.
        """
        if indices.ndim < 1 or torch.is_floating_point(indices) or indices.is_complex():
            raise TypeError(
                f"expected integer indices of shape (B, ...), got {indices.dtype} {tuple(indices.shape)}"
            )
        batch = indices.shape[0]
        flat = indices.detach().reshape(batch, -1).to(device="cpu", dtype=torch.int64)
        if flat.numel() and outside_codebook(int(flat.min()), int(flat.max()), self.codebook_size):
            raise ValueError(
                f"indices must lie in [0, {self.codebook_size}), got range [{int(flat.min())}, {int(flat.max())}]"
            )
        if positions is None:
            rank, world = distributed_world()
            positions = (self._images_seen + torch.arange(batch)) * world + rank
        positions = torch.as_tensor(positions, dtype=torch.int64).detach().cpu().reshape(-1)
        if positions.numel() != batch:
            raise ValueError(f"expected {batch} positions (one per image), got {positions.numel()}")
        self._images_seen += batch
        self._add_counts(*used_code_counts(flat, self.codebook_size))
        self._add_queue_candidates(
            positions, torch.full((batch,), flat.shape[1], dtype=torch.int64), flat.reshape(-1)
        )

    @property
    def num_tokens(self) -> int:
        """How many indices were counted so far."""
        return int(self.code_counts()[1].sum())

    def code_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The codes seen (ascending int64) and how often each occurred (int64, all > 0)."""
        if self.histogram is None:
            return self.seen_codes, self.seen_counts
        codes = self.histogram.nonzero().squeeze(1)
        return codes, self.histogram[codes]

    def _add_counts(self, codes: torch.Tensor, counts: torch.Tensor) -> None:
        if self.histogram is not None:
            self.histogram.index_add_(0, codes, counts)
            return
        codes, inverse = torch.unique(torch.cat([self.seen_codes, codes]), sorted=True, return_inverse=True)
        self.seen_counts = torch.zeros_like(codes).index_add_(0, inverse, torch.cat([self.seen_counts, counts]))
        self.seen_codes = codes

    def _add_queue_candidates(
        self, positions: torch.Tensor, lengths: torch.Tensor, tokens: torch.Tensor
    ) -> None:
        """Append images and keep only those that can still be among the last ``queue_size`` indices."""
        positions = torch.cat([self.positions, positions])
        lengths = torch.cat([self.lengths, lengths])
        tokens = torch.cat([self.tokens, tokens])
        if torch.unique(positions).numel() != positions.numel():
            raise ValueError(
                "the same image position was added twice (a sampler that pads or repeats images?)"
            )
        order = torch.argsort(positions)
        sorted_lengths = lengths[order]
        later_tokens = sorted_lengths.flip(0).cumsum(0).flip(0) - sorted_lengths  # indices of later images
        kept = order[later_tokens < self.queue_size]  # ascending position
        # Reorder the flat tokens image by image (stable sort on each token's image rank keeps raster order).
        rank_of_image = torch.full_like(positions, -1)
        rank_of_image[kept] = torch.arange(kept.numel())
        token_rank = torch.repeat_interleave(rank_of_image, lengths)
        keep_token = token_rank >= 0
        token_order = torch.argsort(token_rank[keep_token], stable=True)
        self.tokens = tokens[keep_token][token_order]
        self.positions = positions[kept]
        self.lengths = lengths[kept]

    def queue(self) -> torch.Tensor:
        """The last ``queue_size`` indices in data order (fewer if fewer were seen), int64 (Q,)."""
        return self.tokens[-self.queue_size :]

    def compute(self) -> dict[str, Any]:
        codes, counts = self.code_counts()
        total = int(counts.sum())
        if total == 0:
            raise ValueError("CodebookUsage.compute() called before any update()")
        queue = self.queue()
        results = {
            "codebook_usage": torch.unique(queue).numel() / self.codebook_size,
            "codebook_usage_split": codes.numel() / self.codebook_size,
            "perplexity": float(code_perplexity(counts)),
            "codebook_queue_tokens": int(queue.numel()),
            "codebook_tokens": total,
            "codebook_size": self.codebook_size,
        }
        if self.histogram is not None:
            results["codebook_histogram"] = self.histogram.tolist()
        return results

    def state(self) -> dict[str, Any]:
        codes, counts = self.code_counts()
        return {
            "codebook_size": self.codebook_size,
            "codes": codes.clone(),
            "counts": counts.clone(),
            "positions": self.positions.clone(),
            "lengths": self.lengths.clone(),
            "tokens": self.tokens.clone(),
            "images_seen": self._images_seen,
        }

    def merge_state(self, state: dict[str, Any]) -> None:
        if state["codebook_size"] != self.codebook_size:
            raise ValueError(
                f"cannot merge usage of a codebook of size {state['codebook_size']} into size {self.codebook_size}"
            )
        self._add_counts(state["codes"], state["counts"])
        self._images_seen += int(state["images_seen"])
        self._add_queue_candidates(state["positions"], state["lengths"], state["tokens"])

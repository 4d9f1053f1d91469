"""Plots of codebook statistics (matplotlib, headless)."""

from __future__ import annotations

import os
from collections.abc import Sequence


def save_code_histogram(histogram: Sequence[int], path: str | os.PathLike, title: str = "") -> None:
    """Write a PNG with two panels: occurrences per code index, and the same counts sorted (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(histogram, dtype=np.int64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"expected a non-empty 1-D histogram, got shape {counts.shape}")
    used = int((counts > 0).sum())
    figure, (by_index, by_rank) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    # one line collection, not one bar patch per code: drawing 16k bars takes tens of seconds
    by_index.vlines(
        np.arange(counts.size), 0, counts, color="tab:blue", linewidth=max(0.6, min(4.0, 400 / counts.size))
    )
    by_index.set_ylim(bottom=0)
    by_index.set(xlabel="code index", ylabel="occurrences", xlim=(-0.5, counts.size - 0.5))
    by_rank.plot(np.arange(1, counts.size + 1), np.sort(counts)[::-1] + 1, color="tab:orange")
    by_rank.set(xlabel="codes sorted by frequency", ylabel="occurrences + 1", yscale="log")
    figure.suptitle(f"{title}  ({used}/{counts.size} codes used)".strip())
    figure.savefig(path, dpi=100)
    plt.close(figure)

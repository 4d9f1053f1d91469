"""Pictures of a reconstruction: the token-id map, the absolute-error heat map and the code histogram.

Only matplotlib's object-oriented API is used (no pyplot state), so requests on several threads do not interfere.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

TOKEN_COLORMAP = "turbo"
ERROR_COLORMAP = "inferno"
# Fixed scale so heat maps of different images and tokenizers compare: black = exact, yellow = off by ≥ 64/255.
ERROR_MAP_MAX = 64


@functools.cache
def _palette(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colormap."""
    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def token_map_image(indices: torch.Tensor, codebook_size: int, size: tuple[int, int]) -> Image.Image:
    """(h, w) token ids → RGB image of ``size`` (W, H): one flat cell per token, id 0 blue … id K−1 red."""
    ids = indices.cpu().numpy().astype(np.float64)
    levels = np.round(ids * 255 / max(codebook_size - 1, 1)).astype(np.int64)
    cells = Image.fromarray(_palette(TOKEN_COLORMAP)[levels])
    return cells.resize(size, Image.Resampling.NEAREST)


def token_picture(result, size: tuple[int, int]) -> Image.Image:
    """The token map of a :class:`~vistok_space.analysis.Reconstruction`, drawn for its layout: the grid at the
    image's ``size`` (W, H); a sequence as a strip of cells ``size[0]`` wide; multi-scale tokens as one map per scale
    (coarse to fine, left to right) above the image decoded after each scale."""
    k = result.codebook_size
    if result.layout.kind == "grid":
        return token_map_image(result.indices, k, size)
    width = size[0]
    if result.layout.kind == "sequence":
        length = int(result.indices.numel())
        cell = max(4, width // length)
        return token_map_image(result.indices.reshape(1, length), k, (cell * length, max(cell, 16)))
    scales = len(result.indices)
    side = max(8, (width - 4 * (scales - 1)) // scales)
    rows = 2 if result.per_scale else 1
    canvas = Image.new("RGB", (scales * side + 4 * (scales - 1), rows * side + 4 * (rows - 1)), "white")
    for k_scale, ids in enumerate(result.indices):
        x = k_scale * (side + 4)
        canvas.paste(token_map_image(ids, k, (side, side)), (x, 0))
        if result.per_scale:
            image = Image.fromarray(result.per_scale[k_scale].permute(1, 2, 0).numpy())
            canvas.paste(image.resize((side, side), Image.Resampling.BICUBIC), (x, side + 4))
    return canvas


def error_map_image(original: torch.Tensor, reconstructed: torch.Tensor) -> Image.Image:
    """uint8 (3, H, W) pair → RGB heat map of the per-pixel absolute error averaged over channels, on a fixed
    0 … ``ERROR_MAP_MAX`` scale."""
    error = (original.int() - reconstructed.int()).abs().float().mean(dim=0).numpy()
    levels = np.clip(np.round(error * 255 / ERROR_MAP_MAX), 0, 255).astype(np.int64)
    return Image.fromarray(_palette(ERROR_COLORMAP)[levels])


def code_histogram_figure(codes: torch.Tensor, counts: torch.Tensor, codebook_size: int) -> Figure:
    """The used ``codes`` and their token ``counts`` (two (M,) tensors) → a matplotlib figure: one stem per used
    code over the index range [0, codebook_size).

    Sized to be shown 320–450 px wide (the Space's narrow and wide layouts) with readable text; constrained layout
    keeps the title, axis labels and tick labels inside the figure and clear of each other. The title says what the
    plot is, because the Space shows it without a Gradio label (that label would sit on top of the plot).
    """
    codes, counts = codes.cpu().numpy(), counts.cpu().numpy()
    figure = Figure(figsize=(4.8, 2.7), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.vlines(codes, 0, counts, color="tab:blue", linewidth=1.2)
    axes.set(
        xlim=(-0.5, codebook_size - 0.5),
        ylim=(0, max(1, int(counts.max(initial=0))) * 1.05),
        xlabel="code index",
        ylabel="tokens",
    )
    axes.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    axes.set_title(f"Tokens per code: {codes.size:,} of {codebook_size:,} codes used", loc="left", fontsize=10)
    return figure

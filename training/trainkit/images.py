"""Reconstruction grids: originals on the top row, reconstructions below."""

from __future__ import annotations

from pathlib import Path

import torch


@torch.no_grad()
def reconstruction_grid(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """A (3, H', W') float grid in [0, 1] of ``pixel_values`` (B, 3, H, W in [-1, 1]) and their reconstructions.

    The model is run in eval mode and put back in its previous mode.
    """
    from torchvision.utils import make_grid

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        reconstruction = model(pixel_values.to(device)).reconstruction.float().cpu().clamp(-1, 1)
    finally:
        model.train(was_training)
    pairs = torch.cat([pixel_values.float().cpu(), reconstruction])
    return make_grid(pairs.add(1).div(2), nrow=pixel_values.shape[0], padding=2, pad_value=1.0)


def save_grid(grid: torch.Tensor, path: str | Path) -> Path:
    from torchvision.utils import save_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return path

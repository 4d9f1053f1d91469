"""Optimisers and learning-rate schedules (linear warm-up, then constant or cosine)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def build_optimizer(
    params: Iterable[torch.nn.Parameter], kind: str, lr: float, betas, weight_decay: float, eps: float
) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters")
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, eps=eps)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, eps=eps)
    raise ValueError(f"unknown optimizer {kind!r}; valid: ['adam', 'adamw']")


class WarmupSchedule:
    """Multiplier of the base lr at optimiser step ``s``: linear warm-up over ``warmup_steps``, then 1
    (``constant``) or a half cosine from 1 down to ``min_ratio`` at ``total_steps`` (``cosine``)."""

    def __init__(self, kind: str, warmup_steps: int, total_steps: int, min_ratio: float = 0.0):
        if kind not in ("constant", "cosine"):
            raise ValueError(f"unknown lr_schedule {kind!r}; valid: ['constant', 'cosine']")
        if warmup_steps < 0 or not 0.0 <= min_ratio <= 1.0:
            raise ValueError(f"need warmup_steps >= 0 and 0 <= min_lr_ratio <= 1, got {warmup_steps}, {min_ratio}")
        self.kind = kind
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

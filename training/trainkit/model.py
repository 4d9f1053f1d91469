"""Building the tokenizer from a recipe, its weight EMA, and exporting ``save_pretrained`` folders."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from vistok import VisTokenizer, VisTokenizerConfig, create_tokenizer

logger = logging.getLogger(__name__)


def build_tokenizer(model_section: dict[str, Any]) -> VisTokenizer:
    """A tokenizer in training mode from ``{preset: NAME, **overrides}``, ``{pretrained: PATH}`` or a full config."""
    spec = copy.deepcopy(model_section)
    pretrained = spec.pop("pretrained", None)
    preset = spec.pop("preset", None)
    if pretrained is not None:
        if preset is not None or spec:
            raise ValueError("model.pretrained cannot be combined with other model options")
        return VisTokenizer.from_pretrained(pretrained).train()
    if preset is not None:
        return create_tokenizer(preset, **spec).train()
    return VisTokenizer(VisTokenizerConfig(**spec)).train()


class WeightEMA(AveragedModel):
    """Exponential moving average of a model's parameters (buffers are copied from the live model), with
    ``state_dict`` / ``load_state_dict`` for checkpoints. ``self.module`` is the averaged model."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay must be in (0, 1), got {decay}")
        super().__init__(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
        self.decay = decay
        self.module.requires_grad_(False)
        self.module.eval()

    def train(self, mode: bool = True) -> WeightEMA:  # the averaged copy is only ever evaluated
        super().train(False)
        return self


def training_metadata(recipe, step: int, global_batch_size: int, last_terms: dict[str, float]) -> dict[str, Any]:
    """The flat ``config.metadata["training"]`` entry that model cards render as "key: value" lines."""
    data = recipe.data
    meta: dict[str, Any] = {
        "recipe": f"`{recipe.source}`" if recipe.source else "command-line options",
        "dataset": f"{data.dataset} (split {data.train_split})",
        "steps": step,
        "global batch size": global_batch_size,
        "optimizer": f"{recipe.train.optimizer}, lr {recipe.train.lr:g}, betas {list(recipe.train.betas)}",
        "weights": f"EMA (decay {recipe.train.ema_decay:g})" if recipe.train.ema_decay else "raw (no EMA)",
        "trained with": "vistok training/train.py",
    }
    for name in ("reconstruction_loss", "perceptual_loss", "quantizer_loss"):
        if name in last_terms:
            meta[f"final {name.replace('_', ' ')}"] = round(float(last_terms[name]), 6)
    return meta


def export_tokenizer(model: VisTokenizer, directory: str | Path, training: dict[str, Any]) -> Path:
    """``save_pretrained`` into ``directory`` with ``training`` recorded in ``config.metadata``; the model card
    (README.md) is re-rendered from that metadata by vistok's card renderer."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    readme = directory / "README.md"
    if readme.exists():
        readme.unlink()  # re-render: the metadata (steps, losses) changed
    metadata = dict(model.config.metadata or {})
    metadata["training"] = training
    model.config.metadata = metadata
    model.save_pretrained(directory)
    return directory

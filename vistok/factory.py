"""Building tokenizers from preset names: ``list_tokenizers()`` and ``create_tokenizer(name, **overrides)``."""

from __future__ import annotations

from typing import Any

from . import presets  # noqa: F401  (fills PRESETS)
from .configuration import VisTokenizerConfig, vistok_fields
from .modeling import VisTokenizer
from .registry import PRESETS


def list_tokenizers() -> dict[str, str]:
    """Every registered preset name with its one-line description."""
    return {name: PRESETS.get(name).description for name in PRESETS.names()}


def create_tokenizer(name: str, *, pretrained: bool = False, **overrides: Any):
    """Build a randomly initialised :class:`~vistok.VisTokenizer` from a preset name.

    ``overrides`` replace top-level config fields; ``quantizer`` / ``net`` overrides are merged into the
    preset's specs (e.g. ``create_tokenizer("vqvae-celeba64-vq-d4", quantizer={"codebook_size": 1024})``).
    An unknown preset, field or option raises a ``ValueError`` listing the valid ones. ``pretrained=True`` raises:
    presets are architectures without weights (trained weights load with ``VisTokenizer.from_pretrained``).
    """
    preset = PRESETS.get(name)
    unknown = sorted(set(overrides) - set(vistok_fields()))
    if unknown:
        raise ValueError(
            f"create_tokenizer({name!r}): unknown option(s) {unknown}; valid options: {', '.join(vistok_fields())} "
            "(quantizer / net options go inside those dicts, e.g. quantizer={'codebook_size': 1024})"
        )
    if pretrained:
        raise ValueError(
            f"create_tokenizer({name!r}, pretrained=True): preset {name!r} is an architecture without weights; "
            "vistok does not ship weights for presets yet (they will come with the model zoo). Load trained weights with "
            "VisTokenizer.from_pretrained(<Hub repo or folder>), or convert an upstream checkpoint with "
            "`vistok convert llamagen|taming <checkpoint> <folder>`."
        )
    kwargs = dict(preset.config)
    for key, value in overrides.items():
        if key in ("quantizer", "net") and isinstance(value, dict) and "type" not in value:
            kwargs[key] = {**kwargs[key], **value}
        else:
            kwargs[key] = value
    kwargs.setdefault("preset", name)
    return VisTokenizer(VisTokenizerConfig(**kwargs))

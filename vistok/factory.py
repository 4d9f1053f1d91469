"""Building tokenizers from preset names: ``list_tokenizers()`` and ``create_tokenizer(name, **overrides)``."""

from __future__ import annotations

from typing import Any

from . import presets  # noqa: F401  (fills PRESETS)
from .configuration import VisTokenizerConfig, vistok_fields
from .modeling import VisTokenizer
from .registry import PRESETS, did_you_mean
from .zoo.catalogue import has_entry, zoo_names
from .zoo.loader import load_pretrained


def list_tokenizers() -> dict[str, str]:
    """Every registered preset name with its one-line description."""
    return {name: PRESETS.get(name).description for name in PRESETS.names()}


def create_tokenizer(
    name: str,
    *,
    pretrained: bool = False,
    revision: str | None = None,
    cache_dir: str | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    **overrides: Any,
):
    """Build a tokenizer from a preset name (random weights) or, with ``pretrained=True``, load a zoo entry.

    ``overrides`` replace top-level config fields; ``quantizer`` / ``net`` overrides are merged into the
    preset's specs (e.g. ``create_tokenizer("vqvae-celeba64-vq-d4", quantizer={"codebook_size": 1024})``).
    An unknown preset, field or option raises a ``ValueError`` listing the valid ones.

    ``pretrained=True`` loads the zoo entry ``name`` (``vistok.list_pretrained()``) in eval mode: downloaded through
    huggingface_hub with ``revision``, ``cache_dir``, ``token``, ``local_files_only`` and ``force_download``,
    converted once and cached (see :mod:`vistok.zoo`). The weights fix the architecture, so overrides are refused.
    """
    hub = {
        "revision": revision,
        "cache_dir": cache_dir,
        "token": token,
        "local_files_only": local_files_only,
        "force_download": force_download,
    }
    if pretrained:
        if overrides:
            raise ValueError(
                f"create_tokenizer({name!r}, pretrained=True) takes no architecture overrides (got "
                f"{sorted(overrides)}): the published weights fix the architecture"
            )
        if not has_entry(name):
            raise ValueError(
                f"create_tokenizer({name!r}, pretrained=True): {name!r} is not a zoo entry"
                + (
                    " (it is a preset: an architecture without published weights)"
                    if name in PRESETS
                    else did_you_mean(name, zoo_names())
                )
                + f". Zoo entries: {', '.join(zoo_names())} (`vistok zoo list`). Load other trained weights with "
                "VisTokenizer.from_pretrained(<Hub repo or folder>)."
            )
        return load_pretrained(name, **hub)
    given = sorted(k for k, v in hub.items() if v not in (None, False))
    if given:
        raise ValueError(
            f"create_tokenizer({name!r}): {', '.join(given)} only apply with pretrained=True (downloading a zoo "
            "entry); a preset is built with random weights"
        )
    preset = PRESETS.get(name)
    unknown = sorted(set(overrides) - set(vistok_fields()))
    if unknown:
        raise ValueError(
            f"create_tokenizer({name!r}): unknown option(s) {unknown}; valid options: {', '.join(vistok_fields())} "
            "(quantizer / net options go inside those dicts, e.g. quantizer={'codebook_size': 1024})"
        )
    kwargs = dict(preset.config)
    for key, value in overrides.items():
        if key in ("quantizer", "net") and isinstance(value, dict) and "type" not in value:
            kwargs[key] = {**kwargs[key], **value}
        else:
            kwargs[key] = value
    kwargs.setdefault("preset", name)
    return VisTokenizer(VisTokenizerConfig(**kwargs))

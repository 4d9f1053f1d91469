"""Tokenizers by name: ``list_tokenizers()``, ``create_tokenizer(name, pretrained=False, **overrides)`` and what the
commands call, ``load_tokenizer(name, random_init=False)`` — every name as :func:`vistok.resolver.resolve` reads it."""

from __future__ import annotations

import os
from typing import Any

from .configuration import VisTokenizerConfig, vistok_fields
from .modeling import VisTokenizer
from .registry import PRESETS
from .resolver import (
    PRESET,
    ZOO,
    Resolved,
    UnknownNameError,
    load_call,
    load_zoo_entry,
    preset_message,
    resolve,
)


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
) -> VisTokenizer:
    """The architecture ``name`` with random weights or, with ``pretrained=True``, its trained weights (timm's
    ``create_model``: one name for both).

    ``name`` is resolved as everywhere in vistok (:func:`vistok.resolver.resolve`): a preset or a zoo name gives its
    architecture; with ``pretrained=True`` a zoo name (or catalogued upstream repo id) loads the release —
    downloaded through huggingface_hub with ``revision``, ``cache_dir``, ``token``, ``local_files_only`` and
    ``force_download``, converted once and cached (see :mod:`vistok.zoo`) — and a folder, ``vistok/<name>`` or
    vistok Hub repo loads its weights. A preset has no weights: ``pretrained=True`` refuses it.

    ``overrides`` replace top-level config fields of a random-weights build; ``quantizer`` / ``net`` overrides are
    merged into the preset's specs (e.g. ``create_tokenizer("vqvae-celeba64-vq-d4", quantizer={"codebook_size":
    1024})``). An unknown name, field or option raises an error listing the valid ones.
    """
    hub = {
        "revision": revision,
        "cache_dir": cache_dir,
        "token": token,
        "local_files_only": local_files_only,
        "force_download": force_download,
    }
    resolved = resolve(name)
    if pretrained:
        if overrides:
            raise ValueError(
                f"create_tokenizer({name!r}, pretrained=True) takes no architecture overrides (got "
                f"{sorted(overrides)}): the published weights fix the architecture"
            )
        if not resolved.has_weights:
            raise ValueError(
                f"create_tokenizer({name!r}, pretrained=True): {name!r} is a preset, an architecture without "
                "published weights; drop pretrained=True to build it with random weights (`vistok zoo list` shows "
                "the releases)"
            )
        return load_resolved(resolved, **{k: v for k, v in hub.items() if v not in (None, False)})
    given = sorted(k for k, v in hub.items() if v not in (None, False))
    if given:
        raise ValueError(
            f"create_tokenizer({name!r}): {', '.join(given)} only apply with pretrained=True (downloading weights)"
        )
    return build_resolved(resolved, **overrides)


def load_tokenizer(name: str | os.PathLike, *, random_init: bool = False, **hub: Any) -> VisTokenizer:
    """An eval-mode tokenizer for a command: the trained weights of ``name`` or, with ``random_init``, its
    architecture with random weights seeded 0 (every process of a run builds the same ones). A preset without
    ``random_init`` is refused, naming ``--random-init``."""
    if random_init:
        import torch

        torch.manual_seed(0)
        return build_resolved(resolve(name)).eval()
    resolved = resolve(name)
    if resolved.kind == PRESET:
        raise UnknownNameError(preset_message(resolved.target, "--random-init"))
    return load_resolved(resolved, **hub)


def load_resolved(resolved: Resolved, **hub: Any) -> VisTokenizer:
    """The trained tokenizer a resolved name points at, in eval mode. ``hub``: huggingface_hub's download options
    (``revision``, ``cache_dir``, ``token``, ``local_files_only``, ``force_download``) and, for a folder or Hub repo,
    transformers' ``from_pretrained`` options."""
    if resolved.kind == PRESET:
        raise UnknownNameError(preset_message(resolved.target))
    if resolved.kind == ZOO:
        return load_zoo_entry(resolved, **hub)
    return VisTokenizer.from_pretrained(resolved.path, **hub).eval()


def build_resolved(resolved: Resolved, **overrides: Any) -> VisTokenizer:
    """The architecture of a resolved name with random weights: its preset (a zoo name's is the entry's)."""
    if resolved.preset is None:
        raise UnknownNameError(
            f"{resolved.name!r} has no architecture vistok can build without its weights"
            + (" (the zoo entry records no preset: its file decides)" if resolved.kind == ZOO else "")
            + f"; load it with {load_call(resolved.name)}"
        )
    return build_preset(resolved.preset, **overrides)


def read_config(resolved: Resolved) -> VisTokenizerConfig:
    """The config of a resolved name: a folder's or repo's config.json, a preset's, or a zoo entry's as converted
    (converted on first use: the file, not the catalogue, decides the architecture)."""
    if resolved.kind == PRESET:
        return VisTokenizerConfig(**PRESETS.get(resolved.target).config)
    if resolved.kind == ZOO:
        return load_zoo_entry(resolved).config
    return VisTokenizerConfig.from_pretrained(resolved.path)


def build_preset(name: str, **overrides: Any) -> VisTokenizer:
    """The preset ``name`` with random weights and ``overrides`` applied (see :func:`create_tokenizer`)."""
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

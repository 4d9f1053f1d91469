"""Building tokenizers by name: ``list_tokenizers()`` and ``create_tokenizer(name, pretrained=False, **overrides)``."""

from __future__ import annotations

from typing import Any

from .configuration import VisTokenizerConfig, vistok_fields
from .modeling import VisTokenizer
from .registry import PRESETS


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
    from .resolver import resolve

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
        return resolved.load(**{k: v for k, v in hub.items() if v not in (None, False)})
    given = sorted(k for k, v in hub.items() if v not in (None, False))
    if given:
        raise ValueError(
            f"create_tokenizer({name!r}): {', '.join(given)} only apply with pretrained=True (downloading weights)"
        )
    return resolved.build(**overrides)


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

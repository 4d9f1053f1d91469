"""transformers' Auto classes answer every vistok name as :func:`vistok.resolver.resolve` reads it."""

from __future__ import annotations

import functools

from .factory import load_resolved
from .image_processing import VisTokenizerImageProcessor
from .resolver import PRESET, ZOO, UnknownNameError, preset_message, resolve


def resolve_names_in(loader_class: type) -> None:
    """Make ``loader_class.from_pretrained`` (``AutoConfig``, ``AutoModel``, ``AutoImageProcessor``) answer every
    vistok name: bundled and zoo names load, presets and unknown names are refused at once (no Hub retries);
    folders and Hub repo ids reach transformers unchanged.

    transformers offers no hook for name aliases, so the class's ``from_pretrained`` is wrapped. Idempotent.
    """
    current = loader_class.from_pretrained
    if getattr(current, "resolves_vistok_names", False):
        return
    original = current.__func__

    @functools.wraps(original)
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        resolved = resolve(pretrained_model_name_or_path)
        if resolved.kind == PRESET:
            raise UnknownNameError(preset_message(resolved.target))
        if resolved.kind != ZOO:
            return original(cls, resolved.path, *args, **kwargs)
        if args:
            raise TypeError(f"from_pretrained({resolved.name!r}) takes its download options as keywords only")
        if cls.__name__ == "AutoImageProcessor":  # the entry's upstream pipeline: nothing to download
            return VisTokenizerImageProcessor.for_zoo_entry(resolved.entry)
        tok = load_resolved(resolved, **kwargs)
        return tok.config if cls.__name__ == "AutoConfig" else tok

    from_pretrained.resolves_vistok_names = True
    loader_class.from_pretrained = classmethod(from_pretrained)

"""Name → class registries for quantizers, nets and presets.

Everything in vistok is referenced by registered name (configs, YAML recipes, the Space, tests), never by
import path. Registering a quantizer or a net enrols it in the common tests automatically.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def did_you_mean(names: list[str] | tuple[str, ...] | str, valid: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` naming the closest of ``valid`` to each misspelt name in ``names``, or ``""``."""
    names = [names] if isinstance(names, str) else names
    close = [c for name in names for c in difflib.get_close_matches(str(name), [str(v) for v in valid], n=2, cutoff=0.6)]
    return f" (did you mean {' or '.join(repr(c) for c in dict.fromkeys(close))}?)" if close else ""


class Registry:
    """A mapping from names to classes (or factories) with helpful errors for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._loaders: list[Callable[[], None]] = []

    def add_loader(self, loader: Callable[[], None]) -> None:
        """Run ``loader`` (which imports the modules that register entries) before the next lookup."""
        self._loaders.append(loader)

    def _load(self) -> None:
        while self._loaders:
            self._loaders.pop(0)()

    def register(self, name: str) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            if isinstance(obj, type):
                obj.registered_name = name
            return obj

        return decorator

    def get(self, name: str) -> Any:
        self._load()
        if name not in self._entries:
            raise ValueError(
                f"Unknown {self.kind} {name!r}{did_you_mean(name, list(self._entries))}; "
                f"valid names: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self):
        return iter(self.names())


QUANTIZERS = Registry("quantizer")
NETS = Registry("net")
PRESETS = Registry("preset")  # vistok.presets and the family modules (vistok.families) register into it


def normalize_spec(registry: Registry, spec: dict[str, Any]) -> dict[str, Any]:
    """Validate a `{"type": name, **kwargs}` spec against the registered class's ``__init__`` signature.

    Returns a new dict with every constructor argument filled in (defaults included), tuples turned into lists
    so the result is JSON-native, and ``type`` first. Unknown keys raise a ``ValueError`` listing the valid ones;
    the class's ``check_spec`` (if any) then validates values.
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(
            f"A {registry.kind} spec must be a dict with a 'type' key (one of {', '.join(registry.names())}), "
            f"got {spec!r}"
        )
    cls = registry.get(spec["type"])
    params = {
        name: p
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    unknown = sorted(set(spec) - set(params) - {"type"})
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown}{did_you_mean(unknown, list(params))} for {registry.kind} {spec['type']!r}; "
            f"valid options: {', '.join(params)}"
        )
    out: dict[str, Any] = {"type": spec["type"]}
    for name, p in params.items():
        if name in spec:
            value = spec[name]
        elif p.default is not inspect.Parameter.empty:
            value = p.default
        else:
            raise ValueError(f"{registry.kind} {spec['type']!r} requires the option {name!r}")
        out[name] = list(value) if isinstance(value, tuple) else value
    if hasattr(cls, "check_spec"):
        cls.check_spec(out)
    return out


@dataclass(frozen=True)
class Preset:
    """A named tokenizer configuration.

    ``config`` holds the keyword arguments of :class:`~vistok.VisTokenizerConfig`; ``source`` says where its
    hyper-parameters come from (seed table row or paper); ``training`` names the recipe that trains it.
    """

    name: str
    description: str
    config: dict[str, Any]
    source: str
    training: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def register_preset(preset: Preset) -> Preset:
    PRESETS.register(preset.name)(preset)
    return preset

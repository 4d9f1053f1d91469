"""The family registry: everything vistok knows about one upstream project, in one record.

A family module (``vistok/families/<project>.py``, or any module outside vistok) defines its origin, presets,
releases and zoo entries, then decorates its converter with :func:`register_family`. Every list of families in
vistok — ``vistok convert``'s choices and options, the zoo catalogue, the resolver, the cards — is read from this
registry, so adding a family is one new module.

The modules of this package are imported on first use of the registry (:func:`all_families`), so a new file here
needs no list either.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..convert.origins import Origin, Release, file_sha256
from ..preprocessing import Preprocessing
from ..registry import Preset, register_preset
from .records import ZooEntry

# Modules of this package that are machinery, not families.
_NOT_FAMILIES = {"base", "records"}
# vistok packages whose modules are part of what a conversion computes (a converter's imports from these count).
_CONVERSION_PACKAGES = ("vistok.convert", "vistok.families")


@dataclass(frozen=True)
class ConverterOption:
    """An option of ``vistok convert`` that only this family's converter takes.

    ``flag`` is the command-line flag (``--patch-nums``), ``keyword`` the converter's keyword argument, ``parse``
    turns the text into its value (raising ``ValueError`` with a message naming the expected form)."""

    flag: str
    keyword: str
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    parse: Callable[[str], Any] = str


@dataclass(frozen=True)
class Family:
    """One upstream project.

    Attributes:
        name: the converter's name (``vistok convert NAME``), e.g. ``"llamagen"``.
        origin: the project (paper, citation, code licence).
        convert: ``convert(path, *, weights="auto", image_size=None, trust_checkpoint=False, **options)`` →
            an eval-mode :class:`~vistok.VisTokenizer`.
        summary: one line for ``vistok convert --help`` (what files it reads).
        weights_help: what ``--weights`` means for this format.
        options: the converter options only this family takes.
        presets: architectures (registered into :data:`vistok.registry.PRESETS`).
        releases: published checkpoint families whose numbers a ``vistok convert`` result carries when its
            architecture matches.
        entries: the zoo entries (published files vistok downloads and converts).
        preprocessing: ``preprocessing(size)`` is the upstream evaluation pipeline at ``size`` px (how the
            project turns a photo into its tokenizer's input): the image processor of its entries and conversions.
        preprocessing_note: for a family whose upstream pipeline a fixed-size processor cannot reproduce (it works
            at each image's own size), what upstream does; shown in cards and ``vistok zoo info`` beside the generic
            preprocessing its entries then get.
        module: the module whose code (and whose imports from vistok.convert / vistok.families) decides what a
            conversion computes: the converted cache is keyed on it.
    """

    name: str
    origin: Origin
    convert: Callable[..., Any]
    summary: str
    module: str
    weights_help: str = "auto"
    options: tuple[ConverterOption, ...] = ()
    presets: tuple[Preset, ...] = ()
    releases: tuple[Release, ...] = ()
    entries: tuple[ZooEntry, ...] = field(default_factory=tuple)
    preprocessing: Callable[[int], Preprocessing] | None = None
    preprocessing_note: str = ""

    def code_hash(self) -> str:
        """sha256 of the converter's source: its module and every module of vistok.convert / vistok.families it
        imports (transitively), plus vistok's version. A converter fix changes it, so converted caches rebuild."""
        return code_hash(self.module)


FAMILIES: dict[str, Family] = {}
_discovered = False


def register_family(
    name: str,
    *,
    origin: Origin,
    summary: str,
    weights_help: str = "auto",
    options: Sequence[ConverterOption] = (),
    presets: Sequence[Preset] = (),
    releases: Sequence[Release] = (),
    entries: Sequence[ZooEntry] = (),
    preprocessing: Callable[[int], Preprocessing] | None = None,
    preprocessing_note: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a family's converter: registers the family, its presets and its zoo entries.

    Raises ``ValueError`` for a name, preset or zoo name that is already registered, or an entry whose
    ``converter`` is not ``name``.
    """

    def decorator(convert: Callable[..., Any]) -> Callable[..., Any]:
        if name in FAMILIES:
            raise ValueError(f"family {name!r} is already registered (by {FAMILIES[name].module})")
        for entry in entries:
            if entry.converter != name:
                raise ValueError(f"zoo entry {entry.name!r} names converter {entry.converter!r}, not {name!r}")
        taken = {e.name for f in FAMILIES.values() for e in f.entries}
        clash = sorted(taken & {e.name for e in entries})
        if clash:
            raise ValueError(f"zoo name(s) {clash} are already registered")
        if preprocessing is not None and preprocessing_note:
            raise ValueError(f"family {name!r}: give preprocessing or preprocessing_note (why there is none), not both")
        for preset in presets:
            register_preset(preset)
        FAMILIES[name] = Family(
            name=name,
            origin=origin,
            convert=convert,
            summary=summary,
            module=convert.__module__,
            weights_help=weights_help,
            options=tuple(options),
            presets=tuple(presets),
            releases=tuple(releases),
            entries=tuple(entries),
            preprocessing=preprocessing,
            preprocessing_note=preprocessing_note,
        )
        return convert

    return decorator


def unregister_family(name: str) -> None:
    """Remove a family and its presets (for tests that register one of their own)."""
    from ..registry import PRESETS

    family = FAMILIES.pop(name)
    for preset in family.presets:
        PRESETS._entries.pop(preset.name, None)


def load_builtin_families() -> None:
    """Import every family module of this package (once): each registers itself."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = sys.modules[__package__]
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_FAMILIES and not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")


def all_families() -> list[Family]:
    """Every registered family, in registration order (vistok's own first)."""
    load_builtin_families()
    return list(FAMILIES.values())


def family_names() -> list[str]:
    return [family.name for family in all_families()]


def get_family(name: str) -> Family:
    """The family ``name``; ``KeyError`` naming the registered ones otherwise."""
    load_builtin_families()
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"no converter {name!r}; converters: {', '.join(FAMILIES)}") from None


def releases_of(origin: Origin) -> list[Release]:
    """The catalogued releases of ``origin``, whichever family registered them."""
    return [r for family in all_families() for r in family.releases if r.origin == origin]


def conversion_metadata(
    origin: Origin,
    converter: str,
    inferred: dict[str, Any],
    checkpoint: str | Path | None = None,
    weights: str | None = None,
    extra_origin: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """``config.metadata`` for a converted tokenizer: origin (project, release, file, sha256, which weights),
    licence, paper, citation, converter name and code hash, and — when the architecture is a known release and the
    file name does not point to a different checkpoint of it — that release's numbers, labelled as reported.
    ``notes`` (assumptions the converter made) are recorded under ``converter.notes``."""
    from ..version import __version__

    meta = origin.metadata()
    meta["origin"].update(extra_origin or {})
    if weights is not None:
        meta["origin"]["weights"] = weights
    if checkpoint is not None:
        meta["origin"]["checkpoint_file"] = Path(checkpoint).name
        meta["origin"]["checkpoint_sha256"] = file_sha256(checkpoint)
    family = get_family(converter)
    meta["converter"] = {"name": converter, "code": code_hash(family.module), "vistok_version": __version__}
    if notes:
        meta["converter"]["notes"] = list(notes)
    release = next(
        (r for r in family.releases if r.matches(inferred["net"], inferred["codebook_size"], inferred["codebook_dim"])),
        None,
    )
    if release is not None:
        meta["origin"]["release"] = release.name
        meta["origin"]["release_checkpoints"] = list(release.checkpoints)
        name = Path(checkpoint).name if checkpoint is not None else None
        applies = not release.metrics_checkpoints or name is None or name in release.metrics_checkpoints
        if release.reported_metrics and applies:
            meta["reported_metrics"] = [
                {**m, "applies_to": f"{origin.name} {release.name} as released by its authors"}
                for m in release.reported_metrics
            ]
    return meta


# ------------------------------------------------------------------------------------------------ code identity
def code_hash(module: str) -> str:
    """sha256 over the source of ``module`` and of the vistok.convert / vistok.families modules it imports,
    transitively, and vistok's version (hex, 16 characters)."""
    from ..version import __version__

    digest = hashlib.sha256(__version__.encode())
    for name in sorted(_conversion_modules(module)):
        digest.update(name.encode() + b"\0" + _source_bytes(name) + b"\0")
    return digest.hexdigest()[:16]


def _conversion_modules(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(m for m in _imports(name) if m.startswith(_CONVERSION_PACKAGES) and m not in seen)
    return seen


@functools.cache
def _module_file(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _source_bytes(name: str) -> bytes:
    path = _module_file(name)
    return path.read_bytes() if path is not None else b""


def _imports(name: str) -> list[str]:
    """The absolute names of the modules ``name`` imports (``from .x import y`` resolved; a ``from pkg import
    mod`` counts ``pkg.mod`` when that is a module)."""
    path = _module_file(name)
    if path is None:
        return []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append(base)
            if base.startswith(_CONVERSION_PACKAGES):
                found += [f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")]
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False

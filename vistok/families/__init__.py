"""One module per upstream project: its origin, presets, releases, zoo entries and converter, registered by
decorating the converter with :func:`register_family`. Shared converter machinery (safe loading, containers, shape
inference, the layouts several families share) lives in :mod:`vistok.convert`; building blocks (nets, quantizers)
in their own packages. ``docs/zoo.md`` says how to add a family."""

from ..registry import PRESETS
from .base import (
    FAMILIES,
    ConverterOption,
    Family,
    all_families,
    code_hash,
    family_names,
    get_family,
    load_builtin_families,
    register_family,
    releases_of,
    unregister_family,
)
from .catalogue import all_entries, entries_for_repo, entry_preprocessing, get_entry, has_entry, zoo_names
from .records import APACHE_2, MIT, License, ZooEntry

# The family modules register presets too: a preset lookup imports them first.
PRESETS.add_loader(load_builtin_families)

__all__ = [
    "APACHE_2",
    "FAMILIES",
    "MIT",
    "ConverterOption",
    "Family",
    "License",
    "ZooEntry",
    "all_entries",
    "all_families",
    "entries_for_repo",
    "entry_preprocessing",
    "get_entry",
    "has_entry",
    "zoo_names",
    "code_hash",
    "family_names",
    "get_family",
    "load_builtin_families",
    "register_family",
    "releases_of",
    "unregister_family",
]

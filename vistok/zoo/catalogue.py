"""Looking entries up: by zoo name, by Hub repo id, and near misses of either."""

from __future__ import annotations

import difflib
import functools

from .entries import all_entries
from .entry import ZooEntry


@functools.cache
def _by_name() -> dict[str, ZooEntry]:
    entries: dict[str, ZooEntry] = {}
    for entry in all_entries():
        if entry.name in entries:
            raise RuntimeError(f"two zoo entries are named {entry.name!r}")
        entries[entry.name] = entry
    return entries


def zoo_names() -> list[str]:
    """Every zoo entry's name, sorted."""
    return sorted(_by_name())


def has_entry(name: str) -> bool:
    return name in _by_name()


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``; ``KeyError`` listing the closest names (or all of them) otherwise."""
    try:
        return _by_name()[name]
    except KeyError:
        close = _close_names(name, zoo_names())
        hint = f"Did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise KeyError(f"{name!r} is not a zoo entry. {hint}Zoo entries: {', '.join(zoo_names())}") from None


def entries_for_repo(repo_id: str) -> list[ZooEntry]:
    """The entries whose files live in the Hub repo ``repo_id`` (compared case-insensitively, as the Hub does)."""
    key = repo_id.lower()
    return [e for e in _by_name().values() if e.repo_id is not None and e.repo_id.lower() == key]


def close_zoo_names(name: str) -> list[str]:
    """Zoo names and repo ids that ``name`` is probably a typo of (at most three)."""
    candidates = [e.name for e in _by_name().values()]
    candidates += [e.repo_id for e in _by_name().values() if e.repo_id]
    return difflib.get_close_matches(name, candidates, n=3, cutoff=0.75)


def _close_names(name: str, names: list[str]) -> list[str]:
    """Up to three of ``names`` that ``name`` is a reordering or a typo of: names sharing most of its words first
    (``taming-vqgan-imagenet-f16-16384`` → ``vqgan-taming-f16-16384``), then close spellings."""
    words = set(name.lower().replace("_", "-").split("-"))
    shared = sorted(((len(words & set(other.split("-"))), other) for other in names), key=lambda p: (-p[0], p[1]))
    close = [other for count, other in shared if count >= max(2, (len(words) + 1) // 2)]
    close += [c for c in difflib.get_close_matches(name, names, n=3, cutoff=0.6) if c not in close]
    return close[:3]

"""The zoo's entries, one module per upstream family (each defines ``ENTRIES``, a tuple of
:class:`~vistok.zoo.entry.ZooEntry`). Add a family by adding its module here."""

from __future__ import annotations

from ..entry import ZooEntry
from . import llamagen, taming

FAMILIES = (llamagen, taming)


def all_entries() -> tuple[ZooEntry, ...]:
    return tuple(entry for family in FAMILIES for entry in family.ENTRIES)

"""The zoo's entries, one module per upstream family (each defines ``ENTRIES``, a tuple of
:class:`~vistok.zoo.entry.ZooEntry`). Add a family by adding its module here."""

from __future__ import annotations

from ..entry import ZooEntry
from . import ibq, janus, llamagen, maskgit, open_magvit2, simvq, taming, titok, var

FAMILIES = (llamagen, taming, ibq, open_magvit2, simvq, janus, maskgit, titok, var)


def all_entries() -> tuple[ZooEntry, ...]:
    return tuple(entry for family in FAMILIES for entry in family.ENTRIES)

"""The zoo catalogue: looking entries up by zoo name and by Hub repo id. The entries are those of the registered
families, read at each lookup, so a family registered later is found too."""

from __future__ import annotations

from ..preprocessing import Preprocessing
from ..suggest import closest_names
from .base import FAMILIES, all_families
from .records import ZooEntry


def all_entries() -> list[ZooEntry]:
    """Every registered family's zoo entries, family by family."""
    return [entry for family in all_families() for entry in family.entries]


def _by_name() -> dict[str, ZooEntry]:
    return {entry.name: entry for entry in all_entries()}  # register_family refuses a name twice


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
        close = closest_names(name, zoo_names())
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise KeyError(f"{name!r} is not a zoo entry; {hint}Zoo entries: {', '.join(zoo_names())}") from None


def entry_preprocessing(entry: ZooEntry) -> Preprocessing | None:
    """The upstream pipeline of ``entry`` at its native resolution (``None`` when its family states none)."""
    family = FAMILIES.get(entry.converter)
    return family.preprocessing(entry.image_size) if family is not None and family.preprocessing else None


GENERIC_PREPROCESSING = "vistok generic (bicubic shorter side, centre crop)"


def entry_preprocessing_note(entry: ZooEntry) -> str:
    """What ``entry``'s upstream does where no fixed-size pipeline reproduces it (``""`` when none is recorded)."""
    family = FAMILIES.get(entry.converter)
    return family.preprocessing_note if family is not None else ""


def entry_preprocessing_metadata(entry: ZooEntry) -> dict:
    """The ``config.metadata`` keys that record ``entry``'s preprocessing: ``preprocessing`` (the pipeline's dict,
    which the folder's image processor runs) or ``preprocessing_note``; ``{}`` when its family states neither."""
    pipeline = entry_preprocessing(entry)
    if pipeline is not None:
        return {"preprocessing": pipeline.to_dict()}
    note = entry_preprocessing_note(entry)
    return {"preprocessing_note": note} if note else {}


def describe_preprocessing(pipeline: Preprocessing | None, note: str = "") -> str:
    """One line for cards and ``vistok zoo info``: the upstream pipeline, or the generic one and why."""
    if pipeline is not None:
        return pipeline.describe()
    return GENERIC_PREPROCESSING + (f"; upstream instead: {note}" if note else "")


def entries_for_repo(repo_id: str) -> list[ZooEntry]:
    """The entries whose files live in the Hub repo ``repo_id`` (compared case-insensitively, as the Hub does)."""
    key = repo_id.lower()
    return [e for e in _by_name().values() if e.repo_id is not None and e.repo_id.lower() == key]

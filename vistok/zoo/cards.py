"""Model cards for zoo entries, rendered from the catalogue before anything is downloaded
(``vistok card --all-presets --output-dir model_cards/`` writes them to ``model_cards/zoo/``)."""

from __future__ import annotations

from ..configuration import VisTokenizerConfig
from ..families import ZooEntry
from ..families.catalogue import entry_preprocessing_metadata, get_entry
from .loader import expected_config


def zoo_card_config(name_or_entry: str | ZooEntry) -> VisTokenizerConfig:
    """The config the entry is expected to load as, with the card metadata: origin, paper, citation, licence,
    where the files are and the authors' reported numbers (labelled as reported by the origin).

    Raises ``ValueError`` for an entry that records no preset (its architecture is then only known from the file).
    """
    entry = get_entry(name_or_entry) if isinstance(name_or_entry, str) else name_or_entry
    if entry.preset is None:
        raise ValueError(f"zoo entry {entry.name!r} records no preset, so its card cannot describe the architecture")
    config = expected_config(entry)
    meta = entry.origin.metadata()
    meta["license"] = entry.license.id
    meta["origin"]["release"] = entry.description
    meta["zoo"] = entry.zoo_metadata()
    meta.update(entry_preprocessing_metadata(entry))
    if entry.reported_metrics:
        meta["reported_metrics"] = entry.reported_metrics_metadata()
    config.metadata = meta
    config.source = f"vistok zoo entry {entry.name}"
    return config

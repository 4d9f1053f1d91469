"""The model zoo: published upstream tokenizers, loaded in one line from the files their authors released.

- :mod:`.entry` / :mod:`.entries`: the catalogue as data (one module per family).
- :mod:`.catalogue`: lookups by name and repo id.
- :mod:`.loader`: download through huggingface_hub, convert, and cache the converted tokenizer.
"""

from .catalogue import entries_for_repo, get_entry, zoo_names
from .entry import ZooEntry
from .fetch import ZooDownloadError
from .loader import (
    ZooArchitectureWarning,
    explain_unknown,
    is_catalogued,
    list_pretrained,
    load_catalogued,
    load_pretrained,
)


class CatalogueLoader:
    """What :func:`vistok.modeling.install_catalogued_loader` expects: the zoo's answer to a name."""

    load = staticmethod(load_catalogued)
    explain = staticmethod(explain_unknown)
    is_catalogued = staticmethod(is_catalogued)


__all__ = [
    "CatalogueLoader",
    "ZooArchitectureWarning",
    "ZooDownloadError",
    "ZooEntry",
    "entries_for_repo",
    "get_entry",
    "list_pretrained",
    "load_pretrained",
    "zoo_names",
]

"""The model zoo: published upstream tokenizers, loaded in one line from the files their authors released.

- the entries are data, registered by their family modules (:mod:`vistok.families`);
- :mod:`.catalogue`: lookups by name and repo id;
- :mod:`.loader`: download through huggingface_hub, convert, and cache the converted tokenizer (:mod:`.cache`).

What a name means (a zoo name, a repo id, a folder, …) is decided by :mod:`vistok.resolver`.
"""

from ..families import ZooEntry
from ..families.catalogue import entries_for_repo, get_entry, zoo_names
from ..resolver import install_zoo_loader
from .fetch import ZooDownloadError
from .loader import ZooArchitectureWarning, list_pretrained, load_pretrained

install_zoo_loader(load_pretrained)  # zoo names answer through the resolver in every entry point

__all__ = [
    "ZooArchitectureWarning",
    "ZooDownloadError",
    "ZooEntry",
    "entries_for_repo",
    "get_entry",
    "list_pretrained",
    "load_pretrained",
    "zoo_names",
]

"""The model zoo: published upstream tokenizers, loaded in one line from the files their authors released.

- :mod:`.entry` / :mod:`.entries`: the catalogue as data (one module per family).
- :mod:`.catalogue`: lookups by name and repo id.
- :mod:`.loader`: download through huggingface_hub, convert, and cache the converted tokenizer.
"""

from .catalogue import entries_for_repo, get_entry, zoo_names
from .entry import ZooEntry

__all__ = ["ZooEntry", "entries_for_repo", "get_entry", "zoo_names"]

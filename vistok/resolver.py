"""One name, one answer: what every name a user can type means, decided in one place for every entry point.

``VisTokenizer.from_pretrained``, ``create_tokenizer``, the ``Auto*`` loaders, ``vistok tokenize / evaluate /
reconstruct / zoo``, the Space and training's ``model.pretrained`` all call :func:`resolve`. In order:

1. an existing local path → a folder written by ``save_pretrained``;
2. ``vistok/<name>`` of a bundled tokenizer → its package folder;
3. a zoo name, or the Hub repo id of one catalogued upstream release → that zoo entry (its architecture is the
   entry's preset, as in timm: the same name is the architecture without weights and the release with them);
4. a preset name → an architecture without trained weights (refused where weights are needed);
5. ``org/name`` → a vistok-format Hub repo;
6. anything else → refused at once, with the same suggestions whichever command was used.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .families import ZooEntry, all_entries, entries_for_repo, get_entry, has_entry
from .hub import BUNDLED_PREFIX, cached_repo_files, hub_unreachable, list_bundled, resolve_bundled, root_cause
from .registry import PRESETS
from .suggest import closest_names

FOLDER, BUNDLED, ZOO, HUB, PRESET = "folder", "bundled", "zoo", "hub", "preset"


class UnknownNameError(OSError, ValueError):
    """A name that is no folder, bundled tokenizer, zoo entry, preset or Hub repo id (the message suggests the
    closest names), or a name of the wrong kind for what was asked (a preset where weights are needed)."""


@dataclass(frozen=True)
class Resolved:
    """What a name means.

    ``kind`` is one of ``folder``, ``bundled``, ``zoo``, ``hub``, ``preset``; ``target`` is the folder path
    (folder, bundled), the zoo entry name, the Hub repo id or the preset name; ``preset`` names the architecture's
    preset when there is one (a preset, or a zoo entry's recorded preset)."""

    name: str
    kind: str
    target: str
    entry: ZooEntry | None = None
    preset: str | None = None

    @property
    def has_weights(self) -> bool:
        return self.kind != PRESET

    @property
    def path(self) -> str:
        """What transformers' ``from_pretrained`` is given for a folder, bundled or Hub name."""
        return self.target


# The zoo's loader (download, convert, cache): installed by vistok.zoo, which builds tokenizers and so sits above
# this module; models, configs and processors reach it through load_zoo_entry.
_zoo_loader: Callable[..., Any] | None = None


def install_zoo_loader(loader: Callable[..., Any]) -> None:
    """``loader(entry_name, **hub) -> VisTokenizer`` answers zoo names (vistok.zoo installs it at import)."""
    global _zoo_loader
    _zoo_loader = loader


def load_zoo_entry(resolved: Resolved, **hub: Any) -> Any:
    """The zoo entry ``resolved`` names, as an eval-mode tokenizer (downloaded, converted once, cached)."""
    if _zoo_loader is None:
        raise RuntimeError("vistok.zoo is not imported: `import vistok` installs the zoo's loader")
    return _zoo_loader(resolved.target, **hub)


def resolve(name: str | os.PathLike) -> Resolved:
    """What ``name`` means (see the module docstring); never touches the network.

    Raises :class:`UnknownNameError` (an ``OSError``) for a local-looking path that does not exist, a misspelt
    bundled name, a repo id that holds several catalogued releases, and any other name that cannot be a Hub repo id.
    """
    text = str(name)
    if Path(text).expanduser().exists():
        return Resolved(text, FOLDER, text)
    bundled = resolve_bundled(text)
    if bundled != text:
        return Resolved(text, BUNDLED, str(bundled))
    entry = _zoo_entry(text)
    if entry is not None:
        return Resolved(text, ZOO, entry.name, entry=entry, preset=entry.preset)
    bare = text[len(BUNDLED_PREFIX) :] if text.startswith(BUNDLED_PREFIX) else text
    if bare in PRESETS:
        return Resolved(text, PRESET, bare, preset=bare)
    if _looks_like_local_path(text):
        raise UnknownNameError(_missing_folder_message(text))
    if "/" not in text or (text.startswith(BUNDLED_PREFIX) and suggestions(text)):
        raise UnknownNameError(unknown_message(text))
    return Resolved(text, HUB, text)


def resolve_weights(name: str | os.PathLike, *, random_init_option: str | None = None) -> Resolved:
    """:func:`resolve` for a command that needs trained weights: a preset name is refused, saying how to use its
    random weights (``random_init_option``, e.g. ``"--random-init"``, where the command has one)."""
    resolved = resolve(name)
    if resolved.kind == PRESET:
        raise UnknownNameError(preset_message(resolved.target, random_init_option))
    return resolved


# ----------------------------------------------------------------------------------------------------- messages
def preset_message(name: str, random_init_option: str | None = None) -> str:
    remedy = (
        f"add {random_init_option} to use its random weights"
        if random_init_option
        else f"build it with random weights with vistok.create_tokenizer({name!r})"
    )
    return f"{name!r} is a vistok preset: an architecture without trained weights; {remedy}"


def load_call(name: str) -> str:
    return f"vistok.VisTokenizer.from_pretrained({name!r})"


def suggestions(name: str) -> list[str]:
    """Up to three known names ``name`` is probably a typo or a reordering of, among zoo names, catalogued repo ids,
    bundled names and presets (a ``vistok/…`` name among bundled names only)."""
    entries = all_entries()
    candidates = [e.name for e in entries] + [e.repo_id for e in entries if e.repo_id] + list_bundled()
    candidates += PRESETS.names()
    if name.startswith(BUNDLED_PREFIX):
        candidates = [c for c in candidates if c.startswith(BUNDLED_PREFIX)]
    return closest_names(name, candidates, prefix=BUNDLED_PREFIX)


def unknown_message(name: str) -> str:
    close = suggestions(name)
    hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "`vistok zoo list` and `vistok list` show them"
    return f"{name!r} is not a folder, bundled tokenizer, zoo entry, preset or Hub repo id 'org/name'; {hint}"


def _zoo_entry(name: str) -> ZooEntry | None:
    if has_entry(name):
        return get_entry(name)
    if name.count("/") != 1:
        return None
    entries = entries_for_repo(name)
    if len(entries) > 1:
        raise UnknownNameError(
            f"the Hub repo {name!r} holds several tokenizers; name one: "
            + ", ".join(sorted(e.name for e in entries))
        )
    return entries[0] if entries else None


def _looks_like_local_path(name: str) -> bool:
    """``./x``, ``../x``, ``/x``, ``~/x``, ``a/b/c``, ``C:\\x``, ``out/`` …: anything a Hub repo id cannot be."""
    if name.startswith(("./", "../", "/", "~", ".\\", "..\\")) or "\\" in name or os.sep in name.replace("/", "", 1):
        return True
    if "/" not in name:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def _missing_folder_message(name: str) -> str:
    path = Path(name).expanduser().absolute()
    message = f"No folder {name!r} (looked for {path})"
    parent = path.parent
    if parent.is_dir():
        folders = [p.name for p in parent.iterdir() if (p / "config.json").is_file()]
        close = difflib.get_close_matches(path.name, folders, n=3, cutoff=0.6)
        if close:
            message += f"; did you mean {' or '.join(repr(str(parent / c)) for c in close)}?"
    else:
        message += f"; its parent folder {str(parent)!r} does not exist either"
    return message


def hub_load_message(name: str, err: Exception) -> str:
    """The message for a folder or Hub repo that could not be loaded: what failed and how to provide it."""
    if Path(name).exists():
        return f"Could not load a vistok tokenizer from the folder {name!r}: {err}"
    if huggingface_hub.is_offline_mode():
        cause = "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache"
    elif hub_unreachable(err):
        cause = f"the Hub is unreachable ({root_cause(err)}) and it is not in the Hugging Face cache (set HF_HUB_OFFLINE=1 to skip the retries)"
    else:
        cause = "the Hub could not provide it"
    close = suggestions(name)
    remedy = (
        _not_vistok_hint(name)
        or (f"did you mean {' or '.join(map(repr, close))}?" if close else None)
        or f"run `hf download {name}` where there is network and copy the cache (HF_HUB_CACHE) here"
    )
    return f"Could not load the tokenizer {name!r}: {cause}; {remedy} (underlying error: {err})"


def _not_vistok_hint(name: str) -> str | None:
    """For a repo in the Hugging Face cache without a config.json: it is not a vistok repo, and what it holds."""
    files = cached_repo_files(name)
    if not files or "config.json" in files:
        return None
    shown = ", ".join(files[:8]) + (", …" if len(files) > 8 else "")
    return (
        f"it is not a vistok repo (it has no config.json; cached files: {shown}): convert an upstream file with "
        "`vistok convert` (`vistok convert --help` lists the formats)"
    )

"""Fetching a zoo entry's files through huggingface_hub, with one clear message per way it can fail.

huggingface_hub downloads into ``<file>.incomplete`` and moves the file into the cache only when complete, so a
download that fails half-way never leaves a file that could be loaded; this module only adds the messages.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ..families import ZooEntry
from ..hub import HUB_OPTIONS, hub_unreachable

_CONTENT_ID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # git sha1 or sha256: the HF cache's blob names


class ZooDownloadError(OSError):
    """A zoo entry's files could not be fetched; the message says which entry and what to do."""


@dataclass
class FetchedFiles:
    """Local paths of an entry's files in the HF cache: ``main`` (what the converter is given), every file
    fetched (shards and companions included) and the upstream commit they belong to (``None`` outside a cache
    snapshot)."""

    main: Path
    files: dict[str, Path] = field(default_factory=dict)
    commit: str | None = None

    def content_ids(self) -> dict[str, str]:
        """``{filename: blob id}``: the HF cache names each blob by its sha256 (LFS) or git sha1, which identifies
        the content without reading it; files outside a cache are identified by size and mtime."""
        ids = {}
        for name, path in self.files.items():
            blob = Path(os.path.realpath(path)).name
            if _CONTENT_ID.match(blob):
                ids[name] = blob
            else:
                stat = path.stat()
                ids[name] = f"size={stat.st_size},mtime_ns={stat.st_mtime_ns}"
        return ids


def fetch_entry(entry: ZooEntry, *, tqdm_class: Any = None, **hub: Any) -> FetchedFiles:
    """Download (or find in the HF cache) the files of ``entry``: the first of ``entry.filenames`` that the repo
    has, the shards an ``*.index.json`` names (only those holding ``entry.tensor_prefix`` tensors when it is set),
    and the companion files. ``hub`` holds huggingface_hub options
    (:data:`HUB_OPTIONS`); ``revision`` defaults to the entry's pinned one.

    Raises :class:`ZooDownloadError` for: an entry that is not on the Hub (with its manual instructions), offline /
    unreachable without a cached copy, a licence to accept (gated repo), a missing repo, revision or file, and a
    failed download.
    """
    if not entry.on_hub:
        raise ZooDownloadError(f"zoo entry {entry.name!r}: {entry.manual_download}")
    unknown = sorted(set(hub) - set(HUB_OPTIONS))
    if unknown:
        raise TypeError(f"unknown download option(s) {unknown} for zoo entry {entry.name!r}; valid: {HUB_OPTIONS}")
    hub = {k: v for k, v in hub.items() if v is not None}
    hub.setdefault("revision", entry.revision)
    if hub.get("force_download") and (huggingface_hub.is_offline_mode() or hub.get("local_files_only")):
        raise ZooDownloadError(
            f"zoo entry {entry.name!r}: force_download asks for a fresh download, which needs the Hub, but "
            + ("HF_HUB_OFFLINE is set" if huggingface_hub.is_offline_mode() else "local_files_only=True was given")
            + "; drop force_download to load the cached files"
        )
    main_name, main = _first_present(entry, hub, tqdm_class)
    files = {main_name: main}
    if main_name.endswith(".index.json"):
        for shard in _shards(main, main_name, entry):
            files[shard] = _download(entry, shard, hub, tqdm_class)
    for companion in entry.companion_files:
        files[companion] = _download(entry, companion, hub, tqdm_class)
    return FetchedFiles(main=main, files=files, commit=_snapshot_commit(main, main_name))


def _first_present(entry: ZooEntry, hub: dict[str, Any], tqdm_class: Any) -> tuple[str, Path]:
    not_cached = []
    for filename in entry.filenames:
        try:
            return filename, _download(entry, filename, hub, tqdm_class, missing_ok=True)
        except _Missing:
            continue
        except _NotCached:
            not_cached.append(filename)
    if not_cached:
        raise ZooDownloadError(_offline_message(entry, not_cached, hub))
    raise ZooDownloadError(
        f"zoo entry {entry.name!r}: the repo {entry.repo_id} (revision {hub.get('revision') or 'main'}) has none of "
        f"the files {list(entry.filenames)}; the release may have moved. Check https://huggingface.co/"
        f"{entry.repo_id}/tree/{hub.get('revision') or 'main'}"
    )


class _Missing(Exception):
    """The file is not in the repo (another candidate may be)."""


class _NotCached(Exception):
    """Offline (or the Hub is unreachable) and the file is not in the cache."""


def _download(entry: ZooEntry, filename: str, hub: dict[str, Any], tqdm_class: Any, missing_ok: bool = False) -> Path:
    assert entry.repo_id is not None
    try:
        return Path(
            huggingface_hub.hf_hub_download(entry.repo_id, filename, tqdm_class=tqdm_class, **hub)
        )
    except LocalEntryNotFoundError as err:
        if missing_ok:
            raise _NotCached from err
        raise ZooDownloadError(_offline_message(entry, [filename], hub)) from err
    except GatedRepoError as err:
        raise ZooDownloadError(
            f"zoo entry {entry.name!r}: the repo {entry.repo_id} is gated — its licence "
            f"({entry.license.name}, {entry.license.url}) must be accepted first. Open "
            f"https://huggingface.co/{entry.repo_id}, accept it, then log in (`hf auth login`) or pass token=..."
        ) from err
    except RepositoryNotFoundError as err:
        raise ZooDownloadError(
            f"zoo entry {entry.name!r}: the Hub repo {entry.repo_id} does not exist or is private (if it is "
            "private, log in with `hf auth login` or pass token=...)"
        ) from err
    except RevisionNotFoundError as err:
        raise ZooDownloadError(
            f"zoo entry {entry.name!r}: the repo {entry.repo_id} has no revision {hub.get('revision')!r}"
        ) from err
    except EntryNotFoundError as err:
        if missing_ok:
            raise _Missing from err
        raise ZooDownloadError(
            f"zoo entry {entry.name!r}: the repo {entry.repo_id} has no file {filename!r} (revision "
            f"{hub.get('revision') or 'main'})"
        ) from err
    except Exception as err:
        if not isinstance(err, (HfHubHTTPError, OSError)) and not hub_unreachable(err):
            raise
        raise ZooDownloadError(
            f"zoo entry {entry.name!r}: downloading {filename} from {entry.repo_id} failed ({type(err).__name__}: "
            f"{err}). Nothing half-downloaded is kept or loaded; run the same call again to retry."
        ) from err


def _offline_message(entry: ZooEntry, filenames: list[str], hub: dict[str, Any]) -> str:
    why = (
        "HF_HUB_OFFLINE is set"
        if huggingface_hub.is_offline_mode()
        else "local_files_only=True was given"
        if hub.get("local_files_only")
        else "the Hugging Face Hub could not be reached (set HF_HUB_OFFLINE=1 to skip the retries)"
    )
    return (
        f"zoo entry {entry.name!r} is not available: {why} and {' / '.join(filenames)} from {entry.repo_id} is not "
        f"in the Hugging Face cache ({hub.get('cache_dir') or huggingface_hub.constants.HF_HUB_CACHE}). Pre-fetch it "
        f"on a machine with network with `vistok zoo download {entry.name}` and copy the cache (HF_HUB_CACHE) here."
    )


def _shards(index_file: Path, index_name: str, entry: ZooEntry) -> list[str]:
    try:
        weight_map = json.loads(index_file.read_text())["weight_map"]
        prefix_of_tokenizer = entry.tensor_prefix or ""
        shards = sorted({shard for key, shard in weight_map.items() if key.startswith(prefix_of_tokenizer)})
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ZooDownloadError(
            f"zoo entry {entry.name!r}: {index_file.name} is not a weight index (expected a JSON object with a "
            f"'weight_map' of tensor name → shard file): {type(err).__name__}: {err}"
        ) from err
    if not shards:
        raise ZooDownloadError(
            f"zoo entry {entry.name!r}: {index_name} lists no tensor under {entry.tensor_prefix!r}; this release "
            "does not contain the tokenizer"
        )
    prefix = str(Path(index_name).parent)
    return [shard if prefix == "." else f"{prefix}/{shard}" for shard in shards]


def _snapshot_commit(path: Path, filename: str) -> str | None:
    snapshot = path.parents[len(Path(filename).parts) - 1]
    return snapshot.name if snapshot.parent.name == "snapshots" else None

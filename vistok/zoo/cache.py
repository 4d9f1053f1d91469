"""The converted cache: each zoo conversion saved once as a vistok folder, so later loads read only safetensors.

Layout: ``<root>/converted/<entry name>/<key>/`` holding what ``save_pretrained`` writes (config.json,
model.safetensors, preprocessor_config.json, README.md) plus ``manifest.json``. The key hashes everything the
conversion depends on (repo, upstream commit, the files' content ids, converter name, options and the hash of the
converter's own code), so a new upstream commit or a converter fix gets a new folder; :func:`cached_entries` and
:func:`remove_entries` list and clear them (``vistok zoo cache``). While one process converts an entry, the others
wait on its lock (:func:`entry_lock`) and then read the result. A folder is written under a temporary name and renamed into
place in one step, with the manifest (sha256 of every file) written last and everything flushed to disk first: a
crash leaves either nothing or a complete entry (and a temporary folder that the next write into that entry's folder
deletes), and an entry whose manifest does not validate or whose files do not match it is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..atomic import fsync_tree, publish_folder, remove_stale_temporaries, temporary_folder

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def cache_root() -> Path:
    """``$VISTOK_CACHE``, else ``$XDG_CACHE_HOME/vistok``, else ``~/.cache/vistok``."""
    if os.environ.get("VISTOK_CACHE"):
        return Path(os.environ["VISTOK_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "vistok"


def cache_key(identity: Mapping[str, Any]) -> str:
    """A short stable hash of ``identity`` (a JSON-serialisable mapping)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def entry_dir(entry_name: str, key: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / "converted" / entry_name / key


@contextmanager
def entry_lock(folder: Path) -> Iterator[None]:
    """Hold the cross-process lock of the cache entry ``folder`` (a ``filelock`` in ``<root>/locks/``, released on
    any exit, the process's death included)."""
    locks = folder.parent.parent.parent / "locks" / folder.parent.name
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"{folder.name}.lock")):
        yield


def cached_entries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every converted cache folder: ``entry`` (zoo name), ``key``, ``path``, ``bytes`` (on disk), ``identity``
    (what its manifest records, ``{}`` when unreadable) and ``problem`` (``None`` when complete), by name and key."""
    base = (root or cache_root()) / "converted"
    rows = []
    for folder in sorted(base.glob("*/*")) if base.is_dir() else []:
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        manifest = read_manifest(folder)
        identity = manifest.get("identity", {}) if isinstance(manifest, dict) else {}
        rows.append(
            {
                "entry": folder.parent.name,
                "key": folder.name,
                "path": str(folder),
                "bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
                "identity": identity if isinstance(identity, dict) else {},
                "problem": check_entry(folder, verify_hashes=False),
            }
        )
    return rows


def remove_entries(rows: list[dict[str, Any]]) -> int:
    """Delete the cache folders ``rows`` (from :func:`cached_entries`), each under its lock; returns bytes freed."""
    freed = 0
    for row in rows:
        folder = Path(row["path"])
        with entry_lock(folder):
            if folder.exists():
                trash = folder.parent / f".{folder.name}.removed-{uuid.uuid4().hex[:8]}"
                os.replace(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
                freed += row["bytes"]
    return freed


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | str:
    """The manifest of the cache folder ``folder`` when it validates, else what is wrong with it: a JSON object with
    ``format`` :data:`MANIFEST_FORMAT`, an ``identity`` object and ``files`` mapping plain file names (model.safetensors
    among them) to ``{"size": int, "sha256": 64 hex digits}``. Anything else means the entry is rebuilt."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"no readable manifest ({type(err).__name__})"
    if not isinstance(manifest, dict):
        return "manifest is not a JSON object"
    if manifest.get("format") != MANIFEST_FORMAT:
        return "manifest of an unknown format"
    files = manifest.get("files")
    if not isinstance(files, dict) or "model.safetensors" not in files:
        return "manifest lists no files (or no model.safetensors)"
    if not isinstance(manifest.get("identity", {}), dict):
        return "manifest identity is not a JSON object"
    for name, expected in files.items():
        if not isinstance(name, str) or name in ("", ".", "..", MANIFEST) or "/" in name or "\\" in name:
            return "manifest names a file outside its folder"
        if not (
            isinstance(expected, dict)
            and isinstance(expected.get("size"), int)
            and not isinstance(expected.get("size"), bool)
            and expected["size"] >= 0
            and isinstance(expected.get("sha256"), str)
            and len(expected["sha256"]) == 64
        ):
            return f"manifest entry of {name} is not {{size: int, sha256: hex}}"
    return manifest


def check_entry(folder: Path, verify_hashes: bool = True) -> str | None:
    """``None`` when ``folder`` is a complete, undamaged cache entry; otherwise what is wrong with it (a manifest that
    does not validate included: the entry is then rebuilt, never loaded). ``verify_hashes=False`` checks presence and
    sizes only (for listings; loading always verifies the hashes)."""
    if not folder.is_dir():
        return "missing"
    manifest = read_manifest(folder)
    if isinstance(manifest, str):
        return manifest
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {expected['size']}"
        if verify_hashes and sha256_file(path) != expected["sha256"]:
            return f"{name} does not match its sha256 in the manifest"
    return None


def remove_stale_files(parent: Path) -> None:
    """Delete what killed writers left in the entry folder ``parent``: temporaries whose writer is gone (see
    :func:`vistok.atomic.remove_stale_temporaries`; the older ``.<key>.tmp-<pid>-…`` ones when that process is gone)
    and renamed-away folders a crash kept from being deleted."""
    remove_stale_temporaries(parent)
    for path in parent.iterdir() if parent.is_dir() else []:
        name = path.name
        legacy = re.fullmatch(r"\.[^/]+\.tmp-(\d+)-[0-9a-f]{8}", name)
        trash = re.fullmatch(r"\.[^/]+\.(damaged|removed)-[0-9a-f]{8}", name)
        if (legacy and not _process_alive(int(legacy.group(1)))) or trash:
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # pragma: no cover  (os.kill would end the process on Windows)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def write_entry(
    folder: Path, save: Callable[[Path], None], identity: Mapping[str, Any], replace: bool = False
) -> None:
    """Create the cache entry ``folder`` atomically; the caller holds :func:`entry_lock` for it. ``save(path)``
    writes the files into a new folder ``path`` inside a temporary sibling, the manifest goes in last, every file
    and folder is flushed to disk, then the folder is renamed into place, replacing a damaged entry (or any entry
    with ``replace=True``, as a forced rebuild asks). What earlier writes killed mid-way left in the entry's folder
    is deleted first.

    Otherwise, if another process completed the same entry meanwhile, its entry is kept and this one discarded.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_files(folder.parent)
    with temporary_folder(folder.parent, folder.name) as work:
        staged = work / "entry"
        save(staged)
        files = {
            p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(staged.iterdir())
            if p.is_file()
        }
        manifest = {"format": MANIFEST_FORMAT, "identity": dict(identity), "files": files}
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        fsync_tree(staged)
        if folder.exists():
            if not replace and check_entry(folder) is None:  # another process finished first
                return
            trash = folder.parent / f".{folder.name}.damaged-{uuid.uuid4().hex[:8]}"
            os.replace(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            publish_folder(staged, folder)
        except OSError:
            if check_entry(folder) is not None:  # not a lost race: a real failure
                raise

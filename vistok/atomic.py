"""Writing folders so that a crash leaves the old content or the new, never a mixture: shared by
``save_pretrained``, ``vistok convert`` and the zoo's converted cache.

- :func:`temporary_folder` makes a hidden folder beside the destination (``.<name>.vistok-tmp-<pid>-<id>``), held by
  an advisory lock for as long as the writer lives; a writer killed mid-write leaves it behind unlocked, and the next
  :func:`temporary_folder` (or :func:`remove_stale_temporaries`) in that place deletes it.
- :func:`publish_folder` flushes every file of such a folder to disk and renames it into place in one step.
- :func:`incomplete_folder_message` recognises a folder whose files were being replaced one by one when the writer
  died (``save_pretrained`` into an existing folder marks it with :data:`INCOMPLETE_MARKER` meanwhile).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

TEMP_TAG = ".vistok-tmp-"
LOCK_SUFFIX = ".lock"
# Present in a folder while save_pretrained replaces its files one by one (removed once all are in place).
INCOMPLETE_MARKER = ".vistok-incomplete.json"

try:  # POSIX advisory locks: released by the kernel when the holder dies, however it dies
    import fcntl
except ImportError:  # pragma: no cover  (Windows: temporaries are never judged stale, only left behind)
    fcntl = None


# --------------------------------------------------------------------------------------------------- flushing
def fsync_file(path: str | os.PathLike) -> None:
    """Flush ``path``'s data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (renames, new and removed files) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: str | os.PathLike) -> None:
    """Flush every file under ``folder``, then every folder (deepest first)."""
    folder = Path(folder)
    dirs = [folder]
    for root, subdirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                fsync_file(path)
        dirs += [Path(root) / d for d in subdirs]
    for path in reversed(dirs):
        fsync_dir(path)


# ----------------------------------------------------------------------------------------------- temporaries
def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path`` (created if missing), or ``None`` when another holder has it."""
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the last descriptor releases the flock


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(parent: str | os.PathLike, stem: str | None = None) -> list[Path]:
    """Delete the temporaries :func:`temporary_folder` left in ``parent`` (those of ``stem`` only, when given) whose
    writer is gone (their lock is free); a temporary still being written is left alone. Returns what was removed."""
    parent = Path(parent)
    if fcntl is None or not parent.is_dir():
        return []
    prefix = f".{stem}{TEMP_TAG}" if stem is not None else "."
    removed = []
    for path in sorted(parent.iterdir()):
        name = path.name
        if not name.startswith(prefix) or TEMP_TAG not in name:
            continue
        lock_path = path if name.endswith(LOCK_SUFFIX) else path.with_name(name + LOCK_SUFFIX)
        target = path.with_name(name[: -len(LOCK_SUFFIX)]) if name.endswith(LOCK_SUFFIX) else path
        if name.endswith(LOCK_SUFFIX) and target.exists():
            continue  # handled with its folder
        fd = _try_lock(lock_path)
        if fd is None:
            continue  # its writer is alive
        try:
            if target.exists() or target.is_symlink():
                _remove(target)
                removed.append(target)
        finally:
            lock_path.unlink(missing_ok=True)
            _unlock(fd)
    return removed


@contextlib.contextmanager
def temporary_folder(parent: str | os.PathLike, stem: str) -> Iterator[Path]:
    """A new, empty, hidden folder ``parent/.<stem>.vistok-tmp-<pid>-<id>`` locked for this process's lifetime;
    deleted on exit unless it was renamed away (:func:`publish_folder`). Stale temporaries of ``stem`` left in
    ``parent`` by killed writers are deleted first."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(parent, stem)
    name = f".{stem}{TEMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    lock_path = parent / (name + LOCK_SUFFIX)
    fd = _try_lock(lock_path)  # a new name: nobody else holds it
    tmp = parent / name
    try:
        tmp.mkdir()
        yield tmp
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)
        if fcntl is not None:
            lock_path.unlink(missing_ok=True)
        _unlock(fd)


# ------------------------------------------------------------------------------------------------- renaming
def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); ``False`` where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EOPNOTSUPP):
        return False  # a file system or kernel without exchange
    raise OSError(code, os.strerror(code), str(b))


def publish_folder(tmp: Path, target: Path, *, replace: bool = False) -> None:
    """Flush everything in ``tmp`` and rename it to ``target`` in one step: ``target`` must be missing or an empty
    folder, or, with ``replace=True``, a folder that is swapped out (its old content ends up in ``tmp``, which the
    caller deletes). A crash leaves ``target`` as it was or complete."""
    fsync_tree(tmp)
    try:
        os.replace(tmp, target)
    except OSError as err:
        if not replace or err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        if not _exchange(tmp, target):  # without an atomic swap: move the old folder aside, then rename
            aside = tmp.with_name(tmp.name + "-old")  # a stale temporary once this process is gone
            os.replace(target, aside)
            os.replace(tmp, target)
            _remove(aside)
    fsync_dir(target.parent)


# ------------------------------------------------------------------------------------------ incomplete folders
def mark_incomplete(folder: Path, files: list[str]) -> Path:
    """Write the marker saying ``folder``'s files are being replaced (``files``, in that order)."""
    marker = folder / INCOMPLETE_MARKER
    record = {"writer": "vistok save_pretrained", "pid": os.getpid(), "files": files}
    with marker.open("w", encoding="utf-8") as f:  # its presence is what counts: a partial marker marks as well
        f.write(json.dumps(record, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(folder)
    return marker


def incomplete_folder_message(folder: str | os.PathLike) -> str | None:
    """``None`` unless ``folder`` holds the marker of an unfinished ``save_pretrained``; then why it cannot be
    loaded and what to do."""
    marker = Path(folder) / INCOMPLETE_MARKER
    if not marker.is_file():
        return None
    return (
        f"the folder {str(folder)!r} is incomplete: a save_pretrained into it was replacing its files when it stopped "
        f"(or is still running), so they may belong to two different tokenizers ({INCOMPLETE_MARKER} is there). "
        "Save the tokenizer into it again; the marker goes away once a save finishes"
    )

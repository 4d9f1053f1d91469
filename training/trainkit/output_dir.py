"""A run's output folder is never written over silently (the ``--overwrite_output_dir`` convention of transformers'
Trainer), and nothing vistok did not write is ever deleted.

A run records what it writes into its output folder in ``RUN_MARKER`` (``.vistok_run.json``: the top-level names of
its checkpoints, logs, images, recipe, history and exported model files), each name before the file is written. A
folder that exists and is not empty is used only when it carries that record: to resume (``--resume``) or, when asked
(``--overwrite_output_dir``), after the names it lists are deleted, so that no old checkpoint, image or log is left
beside the new run's (a later ``--resume latest`` would otherwise pick up the old run's newest checkpoint). Files the
record does not list (the user's own) are left alone. A non-empty folder without the record is refused whatever the
flags: it is someone's folder, not a run's. The one exception is ``--resume`` into a run from before the record
existed, recognised by its complete checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .checkpoints import CheckpointManager

RUN_MARKER = ".vistok_run.json"


class OutputDirNotEmptyError(ValueError):
    """The output folder holds files and neither ``--resume`` nor ``--overwrite_output_dir`` may be used on it."""


def recorded_names(output_dir: str | Path) -> list[str] | None:
    """The top-level names a vistok run recorded in ``output_dir`` (``None`` when it has no :data:`RUN_MARKER`).
    Only plain names are returned: an entry that reaches outside the folder (``..``, ``a/b``) is ignored."""
    marker = Path(output_dir) / RUN_MARKER
    if not marker.is_file():
        return None
    try:
        names = json.loads(marker.read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return sorted({n for n in names if isinstance(n, str) and n not in ("", ".", "..", RUN_MARKER) and
                   "/" not in n and "\\" not in n})


def record_run_files(output_dir: str | Path, *names: str) -> None:
    """Add ``names`` (top-level names inside ``output_dir``) to the folder's :data:`RUN_MARKER`; call on the main
    process *before* writing them, so that an interrupted write is still on record."""
    path = Path(output_dir)
    known = set(recorded_names(path) or [])
    if set(names) <= known and (path / RUN_MARKER).is_file():
        return
    path.mkdir(parents=True, exist_ok=True)
    content = {
        "written_by": "vistok training/train.py",
        "note": "the files and folders of this folder that a vistok training run wrote; --overwrite_output_dir "
        "deletes these and nothing else",
        "files": sorted(known | set(names)),
    }
    tmp = path / f"{RUN_MARKER}.tmp"
    tmp.write_text(json.dumps(content, indent=1))
    os.replace(tmp, path / RUN_MARKER)


def check_output_dir(output_dir: str | Path, resume: str | None, overwrite: bool) -> None:
    """Raise :class:`OutputDirNotEmptyError` unless ``output_dir`` may be written: it does not exist or is empty, or
    it is a vistok run's folder (:data:`RUN_MARKER`) and the run resumes (``resume``) or replaces it (``overwrite``).
    ``resume`` and ``overwrite`` together are refused (resuming keeps the previous run, overwriting deletes it)."""
    path = Path(output_dir)
    if resume and overwrite:
        raise OutputDirNotEmptyError(
            f"--resume {resume} and --overwrite_output_dir contradict each other: --resume continues the run in "
            f"{str(path)!r}, --overwrite_output_dir deletes it; pass one of them"
        )
    if path.exists() and not path.is_dir():
        raise OutputDirNotEmptyError(f"output folder {str(path)!r} is a file, not a folder")
    if not path.is_dir():
        return
    entries = sorted(entry.name for entry in path.iterdir())
    if not entries:
        return
    shown = ", ".join(entries[:8]) + (", …" if len(entries) > 8 else "")
    earlier_run = bool(resume) and bool(CheckpointManager(path).checkpoints())  # a run from before RUN_MARKER
    if recorded_names(path) is None and not earlier_run:
        raise OutputDirNotEmptyError(
            f"output folder {str(path)!r} is not empty ({shown}) and no vistok run wrote it (it has no {RUN_MARKER}): "
            "refusing to write or delete anything in it; choose another --output_dir"
        )
    if resume or overwrite:
        return
    raise OutputDirNotEmptyError(
        f"output folder {str(path)!r} already exists and is not empty ({shown}). Refusing to write over it: "
        "pass --resume latest to continue that run, --overwrite_output_dir to replace it (what the run wrote is "
        "deleted first, other files are kept), or choose another --output_dir"
    )


def clear_previous_run(output_dir: str | Path) -> list[Path]:
    """Delete what a previous run recorded in ``output_dir``'s :data:`RUN_MARKER`, then the record itself; any other
    file is left alone. Returns the removed paths."""
    path = Path(output_dir)
    removed = []
    for name in recorded_names(path) or []:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            continue
        removed.append(target)
    (path / RUN_MARKER).unlink(missing_ok=True)
    return removed

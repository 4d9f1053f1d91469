"""Checkpoint folders that are either complete or absent.

A checkpoint is written into ``checkpoints/.tmp-checkpoint-<step>`` and renamed to ``checkpoints/checkpoint-<step>``
only once every file is on disk (``os.replace`` of a directory is atomic on POSIX). A process killed mid-write
leaves a ``.tmp-*`` folder that is never mistaken for a checkpoint and is removed on the next start.
``COMPLETE_MARKER`` is written last inside the temporary folder as a second guard.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TMP_PREFIX = ".tmp-"
COMPLETE_MARKER = "training_state.json"


class CheckpointManager:
    """Names, writes, finds and prunes the checkpoints under ``<output_dir>/checkpoints``."""

    def __init__(self, output_dir: str | os.PathLike, keep: int = 3):
        if keep < 1:
            raise ValueError(f"output.keep_checkpoints must be >= 1, got {keep}")
        self.root = Path(output_dir) / "checkpoints"
        self.keep = keep

    def path_for(self, step: int) -> Path:
        return self.root / f"checkpoint-{step:08d}"

    def temporary_path_for(self, step: int) -> Path:
        return self.root / f"{TMP_PREFIX}checkpoint-{step:08d}"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints as ``(step, path)``, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = CHECKPOINT_PATTERN.match(entry.name)
            if match and entry.is_dir() and (entry / COMPLETE_MARKER).is_file():
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete ``.tmp-*`` folders left by interrupted writes (call on the main process before training)."""
        removed = []
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.name.startswith(TMP_PREFIX) and entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
        return removed

    def write(
        self, step: int, fill: Callable[[Path], None], state: dict, is_main: bool, barrier: Callable[[], None]
    ) -> Path:
        """Write checkpoint ``step``: every process runs ``fill(tmp_dir)`` (e.g. ``accelerator.save_state``), then
        the main process writes ``state`` as the completion marker, renames the folder into place and prunes old
        checkpoints. ``barrier`` synchronises the processes."""
        tmp = self.temporary_path_for(step)
        final = self.path_for(step)
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier()
        fill(tmp)
        barrier()
        if is_main:
            (tmp / COMPLETE_MARKER).write_text(json.dumps(state, indent=2))
            _fsync_tree(tmp)
            if final.exists():  # re-saving a step (e.g. the final save after a resume at that step)
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(self.root)
            self.prune()
        barrier()
        return final

    def prune(self) -> None:
        for _, path in self.checkpoints()[: -self.keep]:
            shutil.rmtree(path, ignore_errors=True)


def read_state(checkpoint: Path) -> dict:
    return json.loads((Path(checkpoint) / COMPLETE_MARKER).read_text())


def resolve_resume(resume: str | None, manager: CheckpointManager) -> Path | None:
    """``None`` → no resume; ``latest`` → the newest complete checkpoint (``None`` if there is none yet);
    a path → that checkpoint, which must be complete."""
    if not resume:
        return None
    if resume == "latest":
        return manager.latest()
    path = Path(resume)
    if not (path / COMPLETE_MARKER).is_file():
        raise FileNotFoundError(
            f"--resume {resume}: not a complete checkpoint folder (no {COMPLETE_MARKER}); "
            f"available: {[str(p) for _, p in manager.checkpoints()] or 'none'}"
        )
    return path


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

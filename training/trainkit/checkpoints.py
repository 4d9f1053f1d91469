"""Checkpoint folders that are either complete or absent.

A checkpoint is written into ``checkpoints/.tmp-checkpoint-<step>`` and renamed to ``checkpoints/checkpoint-<step>``
only once every file is on disk (``os.replace`` of a directory is atomic on POSIX). A process killed mid-write
leaves a ``.tmp-*`` folder that is never mistaken for a checkpoint and is removed on the next start.
``COMPLETE_MARKER`` is written last inside the temporary folder as a second guard.

What a checkpoint holds, and how it is read back without running anyone's code:

- accelerate's ``save_state`` files: the models as safetensors, the optimisers (``optimizer*.bin``), the fp16 gradient
  scaler (``scaler.pt``) and each process's RNG states (``random_states_<rank>.pkl``). These are ``torch.save``
  pickles; accelerate reads them with ``torch.load(weights_only=True)`` (accelerate 1.x), which refuses anything but
  tensors and plain data.
- vistok's own state, never pickled: the weight EMA (``ema.safetensors``), the logged history
  (``training_history.json``) and the step counters and data position (``training_state.json``, with
  ``CHECKPOINT_FORMAT``). vistok registers nothing with ``accelerator.register_for_checkpointing``, whose
  ``custom_checkpoint_<i>.pkl`` files accelerate loads with ``weights_only=False`` (a full unpickle).

:func:`check_checkpoint` refuses, before anything is loaded, a folder that does not carry ``CHECKPOINT_FORMAT``, that
holds a ``custom_checkpoint_*.pkl``, or whose pickles do not load with ``weights_only=True``, unless the user trusts
it (``--trust_checkpoint``).
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
# The "format" entry of COMPLETE_MARKER: vistok wrote this checkpoint, with its own state in the files below.
CHECKPOINT_FORMAT = "vistok-training-checkpoint-2"
EMA_FILE = "ema.safetensors"
HISTORY_FILE = "training_history.json"
# accelerate's register_for_checkpointing files, unpickled in full by accelerator.load_state: vistok writes none.
CUSTOM_STATE_PATTERN = re.compile(r"^custom_checkpoint_\d+\.pkl$")
PICKLE_SUFFIXES = (".bin", ".pkl", ".pt", ".pth")
TRUST_REMEDY = "pass --trust_checkpoint to resume from it if you trust where it came from"


class CheckpointError(ValueError):
    """A ``--resume`` target that cannot be used: not a complete checkpoint, or one vistok did not write."""


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
            # out of the checkpoint names first: a deletion cut short leaves a .tmp-* folder, never half a checkpoint
            doomed = self.root / f"{TMP_PREFIX}{path.name}"
            shutil.rmtree(doomed, ignore_errors=True)
            os.replace(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)


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
        raise CheckpointError(
            f"--resume {resume}: not a complete checkpoint folder (no {COMPLETE_MARKER}); "
            f"available: {[str(p) for _, p in manager.checkpoints()] or 'none'}"
        )
    return path


def check_checkpoint(checkpoint: Path, trust: bool = False) -> dict:
    """The checkpoint's state (``COMPLETE_MARKER``) once it is safe to load: vistok wrote it (``CHECKPOINT_FORMAT``),
    it holds no ``custom_checkpoint_*.pkl``, and each of its pickles loads with ``weights_only=True`` (memory-mapped:
    the tensors are not read). Raises :class:`CheckpointError` otherwise, unless ``trust``. Reads only JSON and
    runs the weights-only unpickler: nothing in the folder can run code here."""
    try:
        state = read_state(checkpoint)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"--resume {checkpoint}: {COMPLETE_MARKER} is not readable JSON ({err})") from None
    if trust:
        return state
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"--resume {checkpoint}: vistok did not write this checkpoint (its {COMPLETE_MARKER} has no "
            f"{CHECKPOINT_FORMAT!r} format), and loading its pickle files could run code; {TRUST_REMEDY}"
        )
    from accelerate.utils import load  # torch.load with accelerate's allow-list (numpy RNG states)

    for entry in sorted(Path(checkpoint).iterdir()):
        if CUSTOM_STATE_PATTERN.match(entry.name):
            raise CheckpointError(
                f"--resume {checkpoint}: vistok never writes {entry.name} (accelerate would unpickle it in full, "
                f"which can run code); {TRUST_REMEDY}"
            )
        if entry.suffix in PICKLE_SUFFIXES and entry.is_file():
            try:
                load(entry, map_location="cpu", weights_only=True, mmap=True)
            except Exception:  # noqa: BLE001 - the unpickler's refusal, or not a torch.save file at all
                raise CheckpointError(
                    f"--resume {checkpoint}: {entry.name} holds more than tensors and plain data, so vistok did not "
                    f"write it and loading it could run code; {TRUST_REMEDY}"
                ) from None
    return state


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

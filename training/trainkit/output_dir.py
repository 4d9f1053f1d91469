"""A run's output folder is never written over silently (the ``--overwrite_output_dir`` convention of transformers'
Trainer): a folder that exists and is not empty is used only to resume (``--resume``) or, when asked
(``--overwrite_output_dir``), after the previous run's files are removed, so that no old checkpoint, image or log is
left beside the new run's (a later ``--resume latest`` would otherwise pick up the old run's newest checkpoint).
"""

from __future__ import annotations

import shutil
from pathlib import Path

# What a run writes into its output folder: training state, then the exported save_pretrained tokenizer.
RUN_FOLDERS = ("checkpoints", "logs", "images")
RUN_FILES = (
    "recipe.yaml",
    "training_history.json",
    "config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "README.md",
)


class OutputDirNotEmptyError(ValueError):
    """The output folder holds files and neither ``--resume`` nor ``--overwrite_output_dir`` was given."""


def check_output_dir(output_dir: str | Path, resume: str | None, overwrite: bool) -> None:
    """Raise :class:`OutputDirNotEmptyError` unless ``output_dir`` may be written: it does not exist, is empty,
    the run resumes (``resume``), or ``overwrite`` is set. ``resume`` and ``overwrite`` together are refused
    (resuming keeps the previous run, overwriting deletes it)."""
    path = Path(output_dir)
    if resume and overwrite:
        raise OutputDirNotEmptyError(
            f"--resume {resume} and --overwrite_output_dir contradict each other: --resume continues the run in "
            f"{str(path)!r}, --overwrite_output_dir deletes it; pass one of them"
        )
    if path.exists() and not path.is_dir():
        raise OutputDirNotEmptyError(f"output folder {str(path)!r} is a file, not a folder")
    if resume or overwrite or not path.is_dir():
        return
    entries = sorted(entry.name for entry in path.iterdir())
    if entries:
        shown = ", ".join(entries[:8]) + (", …" if len(entries) > 8 else "")
        raise OutputDirNotEmptyError(
            f"output folder {str(path)!r} already exists and is not empty ({shown}). Refusing to write over it: "
            "pass --resume latest to continue that run, --overwrite_output_dir to replace it (its checkpoints, "
            "logs, images and exported model are deleted first), or choose another --output_dir"
        )


def clear_previous_run(output_dir: str | Path) -> list[Path]:
    """Delete what a previous run wrote into ``output_dir`` (:data:`RUN_FOLDERS`, :data:`RUN_FILES`); any other
    file is left alone. Returns the removed paths."""
    path = Path(output_dir)
    removed = []
    for name in RUN_FOLDERS:
        if (path / name).is_dir():
            shutil.rmtree(path / name)
            removed.append(path / name)
    for name in RUN_FILES:
        if (path / name).is_file():
            (path / name).unlink()
            removed.append(path / name)
    return removed

"""``vistok tokenize --verify FOLDER``: check a finished token dataset against its manifest, on demand.

Loading a token dataset never hashes it (``datasets.load_from_disk`` memory-maps the shards): a shard damaged on disk
after the run — a flipped bit, a truncated copy — is found here. Every shard's size and sha256 are compared with
those ``vistok_tokens.json`` recorded when it was written, then the folder is loaded as a user would load it. A
damaged shard is redone by the command that wrote the folder with ``--resume`` (:func:`resume_command`): only the
damaged shards are tokenized again.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rows import MANIFEST_NAME
from .store import PROGRESS, _file_sha256


@dataclass
class Verification:
    """``problems``: one sentence per damaged shard (or a folder that does not load); empty when intact.
    ``remedy``: what to run about them. ``num_shards`` / ``num_rows``: what the manifest records."""

    folder: Path
    num_shards: int = 0
    num_rows: int = 0
    problems: list[str] = field(default_factory=list)
    remedy: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def resume_command(manifest: dict[str, Any], folder: str | Path) -> str:
    """The ``vistok tokenize`` command that writes ``folder`` again as ``manifest`` records it, with ``--resume``:
    every option that decides the run's identity, so that the run is continued, not refused."""
    identity = manifest["identity"]
    words = ["vistok", "tokenize", "--model", manifest["tokenizer"]["name"], "--dataset", identity["dataset"],
             "--split", identity["split"], "--output-dir", str(folder)]  # fmt: skip
    if identity["dataset"] != "samples" and identity.get("image_column"):
        words += ["--image-column", identity["image_column"]]
    if identity.get("columns"):
        words += ["--columns", ",".join(identity["columns"])]
    words += ["--image-size", str(identity["image_size"])]
    if identity.get("num_samples") is not None:
        words += ["--num-samples", str(identity["num_samples"])]
    if identity.get("flip", "none") != "none":
        words += ["--flip", identity["flip"]]
    if identity.get("ten_crop"):
        words.append("--ten-crop")
    words += ["--shard-size", str(identity["shard_size"])]
    if identity.get("dtype", "float32") != "float32":
        words += ["--dtype", identity["dtype"]]
    if identity.get("preprocessing") == "generic":  # harmless when the tokenizer records no upstream pipeline
        words += ["--preprocessing", "generic"]
    if identity.get("model_ids"):
        words.append("--model-ids")
    return shlex.join([*words, "--resume"])


def verify_token_dataset(folder: str | Path) -> Verification:
    """Check every shard of the finished token dataset ``folder`` against its manifest (presence, size, sha256),
    then that ``datasets.load_from_disk`` reads it with the recorded number of rows. ``FileNotFoundError`` when
    ``folder`` holds no finished token dataset (with what to do)."""
    folder = Path(folder).expanduser()
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file() or not (folder / "state.json").is_file():
        if (folder / PROGRESS / "job.json").is_file():
            raise FileNotFoundError(
                f"{folder} is an unfinished `vistok tokenize` run, not a finished dataset: finish it by running the "
                "command that started it again with --resume"
            )
        raise FileNotFoundError(f"{folder} holds no token dataset written by `vistok tokenize` (no {MANIFEST_NAME}); "
                                "check the path")  # fmt: skip
    import json

    manifest = json.loads(manifest_path.read_text())
    shards = manifest.get("shards", [])
    result = Verification(folder, num_shards=len(shards), num_rows=int(manifest["counts"]["num_rows"]))
    damaged = []
    for record in shards:
        path = folder / record["file"]
        if not path.is_file():
            damaged.append(f"{path} is missing")
        elif path.stat().st_size != record["bytes"]:
            damaged.append(f"{path} is damaged: {path.stat().st_size:,} bytes, not the {record['bytes']:,} recorded")
        elif _file_sha256(path) != record["sha256"]:
            damaged.append(f"{path} is damaged: its sha256 differs from the one recorded in {MANIFEST_NAME}")
    result.problems += damaged
    if not damaged:
        import datasets

        try:
            rows = datasets.load_from_disk(str(folder)).num_rows
        except Exception as err:  # whatever datasets raises for a folder it cannot read is the finding
            result.problems.append(f"{folder} does not load with datasets.load_from_disk ({type(err).__name__}: {err})")
        else:
            if rows != result.num_rows:
                result.problems.append(f"{folder} loads with {rows:,} rows, not the {result.num_rows:,} recorded")
    if result.problems:
        result.remedy = (
            f"redo {'it' if len(damaged) == 1 else 'them'} with `{resume_command(manifest, folder)}` (only damaged "
            "shards are tokenized again)"
            if damaged
            else f"write it again with `{resume_command(manifest, folder).replace(' --resume', ' --overwrite')}`"
        )
    return result

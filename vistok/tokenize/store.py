"""The output folder of ``vistok tokenize``: per-shard Arrow files written atomically, resumable progress, and the
final manifest that turns them into one 🤗 dataset (``datasets.load_from_disk(folder)``).

Layout of a finished folder::

    shards/shard-000000.arrow …   one Arrow stream file per shard (rows of positions [s·S, (s+1)·S) in order)
    dataset_info.json, state.json  what ``save_to_disk`` writes; state.json lists the shards in order
    vistok_tokens.json             the manifest: tokenizer, layout, preprocessing, shards with row counts and sha256
    README.md                      the dataset card

While a run is in progress the folder has ``.vistok/job.json`` (the run's identity: what decides the tokens) and
one ``.vistok/shard-NNNNNN.json`` record per finished shard, written after its Arrow file is in place; a shard
without a record, or whose file no longer matches its record's sha256, is redone. ``state.json`` is written last,
so a folder that ``load_from_disk`` accepts is always complete; the progress folder is removed once it is.

The main process of a run holds ``.vistok/lock`` (``fcntl.flock``) from the moment it takes the folder until it
is complete, so a second run into the same folder is refused instead of mixing its shards with the first's; the
operating system releases the lock when the process ends, however it ends, so a killed run leaves no stale lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from .rows import MANIFEST_NAME

PROGRESS = ".vistok"
SHARDS = "shards"
LOCK = "lock"

try:  # POSIX; elsewhere runs are not protected against a concurrent run into the same folder
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class OutputError(ValueError):
    """The output folder cannot be used as asked (exists, holds other tokens, not writable, another run in it)."""


class IncompleteOutputError(OutputError):
    """A run could not finish the folder (shards missing, damaged or cut from a changed split); it stays unfinished."""


def shard_name(shard: int) -> str:
    return f"shard-{shard:06d}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k)]


class TokenStore:
    """One output folder. Every process may read it; :meth:`prepare` and :meth:`finalize` are the main process's."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self.progress = self.path / PROGRESS
        self.shards = self.path / SHARDS
        self._lock_fd: int | None = None

    # -------------------------------------------------------------------------------------------------- lock
    def _take_lock(self) -> None:
        """Hold ``.vistok/lock`` for this process; ``OutputError`` naming the holder when another run has it."""
        if fcntl is None or self._lock_fd is not None:
            return
        self.progress.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.progress / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise OutputError(
                f"another `vistok tokenize` run ({holder}) is writing to {self.path}; wait for it to finish, or stop "
                "it and run again with --resume"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._lock_fd = fd

    def release(self) -> None:
        """Give up this process's hold on the folder (no-op when it holds none); :meth:`finalize` does it too."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    # ------------------------------------------------------------------------------------------------- state
    def state(self) -> str:
        """``absent`` | ``empty`` | ``incomplete`` (a vistok run in progress) | ``complete`` | ``foreign``."""
        if not self.path.exists():
            return "absent"
        if not self.path.is_dir():
            return "foreign"
        if (self.path / MANIFEST_NAME).is_file() and (self.path / "state.json").is_file():
            return "complete"
        if (self.progress / "job.json").is_file():
            return "incomplete"
        return "empty" if not any(self.path.iterdir()) else "foreign"

    def recorded_identity(self) -> dict | None:
        state = self.state()
        if state == "complete":
            return json.loads((self.path / MANIFEST_NAME).read_text())["identity"]
        if state == "incomplete":
            return json.loads((self.progress / "job.json").read_text())["identity"]
        return None

    def check(self, identity: dict, resume: bool, overwrite: bool) -> str:
        """Decide what to do with the folder without changing it: ``"start"`` (fresh), ``"resume"``, ``"done"``
        (complete with this identity, ``--resume``) or ``"overwrite"``. ``OutputError`` says why it cannot be
        used otherwise."""
        state = self.state()
        where = str(self.path)
        if state == "foreign":
            what = "a file" if self.path.exists() and not self.path.is_dir() else "a folder with other files"
            raise OutputError(
                f"--output {where} is {what}, not a token dataset written by `vistok tokenize`; nothing is "
                "overwritten there (not even with --overwrite): choose a new or empty folder"
            )
        if state in ("absent", "empty"):
            if resume:
                raise OutputError(f"--resume: {where} holds no run to resume; run without --resume to start one")
            return "start"
        if overwrite:
            return "overwrite"
        recorded = self.recorded_identity()
        if recorded != identity:
            changes = "; ".join(_differences(recorded, identity))
            raise OutputError(
                f"--output {where} already holds {'tokens' if state == 'complete' else 'an unfinished run'} of a "
                f"different tokenizer or different settings ({changes}). Use a new --output, or --overwrite to "
                "replace it"
            )
        if not resume:
            raise OutputError(
                f"--output {where} already holds {'a complete token dataset' if state == 'complete' else 'an unfinished run'} "
                "of this tokenizer and these settings: add --resume to "
                + ("keep it" if state == "complete" else "finish it (finished shards are kept)")
                + ", or --overwrite to start again"
            )
        return "done" if state == "complete" else "resume"

    def check_writable(self) -> None:
        """``OutputError`` naming the folder when it cannot be created or written."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise OutputError(f"cannot write to --output {self.path}: {type(err).__name__}: {err}") from err

    def prepare(self, action: str, job: dict) -> None:
        """Main process: take the folder's lock (``OutputError`` when another run holds it), clear the folder for
        ``"overwrite"``, record the job (fresh / overwritten runs) or, to resume, drop partial files and the records
        of shards whose files no longer match them (those are redone)."""
        if action == "overwrite":
            if self.progress.is_dir():
                self._take_lock()  # an unfinished run may still be writing: never delete under it
            shutil.rmtree(self.path)
            self.release()
        if action in ("start", "overwrite"):
            self.check_writable()
            self._take_lock()
            self.shards.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.progress / "job.json", job)
        if action == "resume":
            self._take_lock()
            for stale in [*self.shards.glob(".*.tmp-*"), *self.progress.glob(".*.tmp-*")]:
                stale.unlink(missing_ok=True)
            for shard, record in self.finished().items():
                if _file_sha256(self.path / record["file"]) != record["sha256"]:
                    (self.progress / f"{shard_name(shard)}.json").unlink()

    # ------------------------------------------------------------------------------------------------ shards
    def finished(self) -> dict[int, dict]:
        """Records of the shards finished so far (their Arrow files present with the recorded size)."""
        done = {}
        if not self.progress.is_dir():
            return done
        for record_path in sorted(self.progress.glob("shard-*.json")):
            record = json.loads(record_path.read_text())
            arrow = self.path / record["file"]
            if arrow.is_file() and arrow.stat().st_size == record["bytes"]:
                done[int(record["shard"])] = record
        return done

    def write_shard(self, shard: int, table, record: dict) -> dict:
        """Write one shard's rows (a ``pyarrow.Table`` with the dataset's schema) and then its record."""
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue().to_pybytes()
        relative = f"{SHARDS}/{shard_name(shard)}.arrow"
        atomic_write_bytes(self.path / relative, data)
        record = {**record, "shard": shard, "file": relative, "bytes": len(data),
                  "sha256": hashlib.sha256(data).hexdigest(), "num_rows": table.num_rows}
        atomic_write_json(self.progress / f"{shard_name(shard)}.json", record)
        return record

    # ---------------------------------------------------------------------------------------------- finalize
    def finalize(self, plan, features, manifest: dict, card: str, description: str) -> dict:
        """Main process, after every process finished: check every shard of ``plan`` (a
        :class:`~vistok.tokenize.source.ShardPlan`) is there, intact and covers exactly its positions, then write
        dataset_info.json, the manifest, the card and — last — state.json, and release the lock. Returns the
        manifest; :class:`IncompleteOutputError` (the folder stays unfinished) otherwise."""
        done = self.finished()
        missing = [s for s in range(plan.num_shards) if s not in done]
        if missing:
            raise IncompleteOutputError(
                f"cannot finish {self.path}: {len(missing)} shard(s) missing ({missing[:5]}); run again with --resume"
            )
        records = [done[s] for s in range(plan.num_shards)]
        for record in records:
            expected = plan.positions(record["shard"])
            if list(record["positions"]) != [expected.start, expected.stop]:
                raise IncompleteOutputError(
                    f"cannot finish {self.path}: shard {record['shard']} holds positions {record['positions']} of the "
                    f"split, not [{expected.start}, {expected.stop}) — the split changed since it was written; run "
                    "again with --overwrite"
                )
            if _file_sha256(self.path / record["file"]) != record["sha256"]:
                raise IncompleteOutputError(
                    f"{self.path / record['file']} does not match its record; run again with --resume (it is redone)"
                )
        fingerprint = hashlib.sha256("".join(r["sha256"] for r in records).encode()).hexdigest()[:16]
        manifest = {**manifest, "shards": [{k: r[k] for k in ("shard", "file", "positions", "num_rows",
                                                              "num_images", "num_skipped", "bytes", "sha256")}
                                           for r in records]}
        info = {"citation": "", "description": description, "features": features.to_dict(), "homepage": "",
                "license": ""}
        atomic_write_json(self.path / "dataset_info.json", info)
        atomic_write_json(self.path / MANIFEST_NAME, manifest)
        atomic_write_bytes(self.path / "README.md", card.encode())
        state = {
            "_data_files": [{"filename": r["file"]} for r in records],
            "_fingerprint": fingerprint,
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": None,
        }
        atomic_write_json(self.path / "state.json", state)
        shutil.rmtree(self.progress, ignore_errors=True)
        self.release()
        return manifest

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

The main process of a run holds ``.vistok/lock`` (``filelock.FileLock``: ``flock`` on POSIX, ``LockFileEx`` on
Windows) from before it looks at the folder until it is complete, so a second run into the same folder is refused
at once instead of mixing its shards with the first's, and every decision (complete, resume, start, refuse) is taken
on a folder no other run is changing. The operating system releases the lock when the process ends, however it ends,
so a killed run leaves no stale lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .rows import MANIFEST_NAME

PROGRESS = ".vistok"
SHARDS = "shards"
LOCK = "lock"
# The files a run writes at the top of the folder (besides shards/ and .vistok/): --overwrite removes these only.
OUTPUT_FILES = ("dataset_info.json", "state.json", MANIFEST_NAME, "README.md")
HOLDER = "holder"  # who holds the lock, for the message of a refused run (filelock may truncate the lock file)


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


def _short(value: Any) -> Any:
    """A sha256 hex digest cut to 12 characters, anything else unchanged (for messages)."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"
    return value


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {_short(old.get(k))!r} there, {_short(new.get(k))!r} now" for k in keys if old.get(k) != new.get(k)]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class TokenStore:
    """One output folder. Every process may read it; :meth:`prepare` and :meth:`finalize` are the main process's."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self.progress = self.path / PROGRESS
        self.shards = self.path / SHARDS
        self._lock = None  # the held filelock.FileLock

    # -------------------------------------------------------------------------------------------------- lock
    def acquire(self) -> None:
        """Hold ``.vistok/lock`` for this process, without waiting: ``OutputError`` naming the holder when another
        run has it. Holding it already is a no-op."""
        from filelock import FileLock, Timeout

        if self._lock is not None:
            return
        lock = FileLock(str(self.progress / LOCK), timeout=0)
        try:
            self.progress.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except Timeout:  # before OSError: filelock's Timeout is a TimeoutError
            try:
                holder = (self.progress / HOLDER).read_text().strip()
            except OSError:
                holder = ""
            raise OutputError(
                f"another `vistok tokenize` run ({holder or 'unknown process'}) is writing to {self.path}; wait for "
                "it to finish, or stop it and run again with --resume"
            ) from None
        except OSError as err:
            raise OutputError(f"cannot write to --output-dir {self.path}: {type(err).__name__}: {err}") from err
        self._lock = lock
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        atomic_write_bytes(self.progress / HOLDER, f"pid {os.getpid()} on {socket.gethostname()}, since {since}".encode())

    def release(self) -> None:
        """Give up this process's hold on the folder (no-op when it holds none); :meth:`finalize` does it too."""
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.release(force=True)

    def _drop_progress(self) -> None:
        """Remove ``.vistok`` and release the lock. The lock file goes last, while still held: a run that opened it
        meanwhile and gets it after the release finds it unlinked and retries on a new file (filelock 4 checks)."""
        if self.progress.is_dir():
            for child in self.progress.iterdir():
                if child.name != LOCK:
                    _remove(child)
            try:
                (self.progress / LOCK).unlink(missing_ok=True)
                self.progress.rmdir()
            except OSError:  # Windows keeps a held file open (filelock deletes it on release); or a new run has it
                pass
        self.release()
        if self.progress.is_dir():
            try:
                self.progress.rmdir()  # left by Windows above; never removes a folder a new run has put its lock in
            except OSError:
                pass

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
        # a .vistok folder without a job is a lock taken on an empty folder (by this run, or one that stopped)
        return "foreign" if any(p.name != PROGRESS for p in self.path.iterdir()) else "empty"

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
                f"--output-dir {where} is {what}, not a token dataset written by `vistok tokenize`; nothing is "
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
                f"--output-dir {where} already holds {'tokens' if state == 'complete' else 'an unfinished run'} of a "
                f"different tokenizer, settings or split content ({changes}). Use a new --output-dir, or --overwrite to "
                "replace it"
            )
        if not resume:
            raise OutputError(
                f"--output-dir {where} already holds {'a complete token dataset' if state == 'complete' else 'an unfinished run'} "
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
            raise OutputError(f"cannot write to --output-dir {self.path}: {type(err).__name__}: {err}") from err

    def claim(self, identity: dict, resume: bool, overwrite: bool, job: dict) -> str:
        """Main process: take the folder's lock, then — under it, so that no other run changes the folder meanwhile
        — decide with :meth:`check` and :meth:`prepare` the folder. Returns ``"done"`` (complete with this
        identity and every shard intact: nothing to do, the lock is given back), or the action to carry out
        (``"start"``, ``"resume"``, ``"overwrite"``; a complete folder with a damaged shard is reopened and
        resumed). ``OutputError`` says why the folder cannot be used."""
        if not self.progress.is_dir() and self.state() in ("absent", "empty", "foreign"):
            self.check(identity, resume, overwrite)  # refuse before writing the lock into a folder that is not ours
        if not self.path.exists():
            self.check_writable()
        self.acquire()
        try:
            if self.state() == "complete":
                self._drop_leftovers()  # a run killed between state.json and the removal of its progress files
            action = self.check(identity, resume, overwrite)
            if action == "done":
                damaged = self.damaged_shards()
                if not damaged:
                    self._drop_progress()
                    return "done"
                self._reopen(job, damaged)
                action = "resume"
                print(f"{self.path}: {len(damaged)} shard(s) no longer match the manifest ({shard_name(damaged[0])}"
                      f"{', …' if len(damaged) > 1 else ''}); redoing them.", file=sys.stderr)  # fmt: skip
            self.prepare(action, job)
        except BaseException:
            if not (self.progress / "job.json").exists():
                self._drop_progress()  # a refused run leaves no progress folder where no run is unfinished
            raise
        return action

    def _drop_leftovers(self) -> None:
        """Holding the lock of a complete folder: remove what a run left in ``.vistok`` (its job and shard records)
        when it was stopped after writing state.json; the lock and its holder note stay until :meth:`release`."""
        for child in self.progress.iterdir():
            if child.name not in (LOCK, HOLDER):
                _remove(child)

    def damaged_shards(self) -> list[int]:
        """Shards of a complete folder whose file is missing or differs from the manifest's sha256."""
        shards = json.loads((self.path / MANIFEST_NAME).read_text())["shards"]
        return [s["shard"] for s in shards
                if not (self.path / s["file"]).is_file() or _file_sha256(self.path / s["file"]) != s["sha256"]]

    def _reopen(self, job: dict, damaged: list[int]) -> None:
        """Turn a complete folder with damaged shards back into an unfinished run of ``job`` whose intact shards
        are finished: records and job first, state.json last, so that a crash leaves it complete or resumable."""
        for record in json.loads((self.path / MANIFEST_NAME).read_text())["shards"]:
            if record["shard"] not in damaged:
                atomic_write_json(self.progress / f"{shard_name(record['shard'])}.json", record)
        atomic_write_json(self.progress / "job.json", job)
        (self.path / "state.json").unlink()

    def prepare(self, action: str, job: dict) -> None:
        """Main process, holding the lock (taken if it is not): for ``"overwrite"`` forget the previous run and
        remove its files; record the job (fresh / overwritten runs) or, to resume, drop partial files and the
        records of shards whose files no longer match them (those are redone)."""
        self.acquire()
        if action == "overwrite":
            # In this order the folder is always the old run (with fewer finished shards) or the new one, never
            # something a later run would refuse as foreign.
            for record in self.progress.glob("shard-*.json"):
                record.unlink()
            atomic_write_json(self.progress / "job.json", job)
            (self.path / "state.json").unlink(missing_ok=True)
            for child in self.path.iterdir():  # only what a run writes: files the user added stay
                if child.name in OUTPUT_FILES:
                    _remove(child)
                elif child.name == SHARDS and child.is_dir():
                    for shard in child.iterdir():
                        if shard.name.startswith(("shard-", ".shard-")):
                            _remove(shard)
            for child in self.progress.iterdir():
                if child.name not in (LOCK, HOLDER, "job.json"):
                    _remove(child)
        if action in ("start", "overwrite"):
            self.check_writable()
            self.shards.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.progress / "job.json", job)
        if action == "resume":
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
        # state.json as ``Dataset.save_to_disk`` writes it (load_from_disk reads these keys). datasets has no writer
        # for it that fits: save_to_disk writes a whole dataset in one call, from one process, and cannot add one
        # shard at a time atomically, resume, or take shards other processes wrote; building the dataset from the
        # shards to call it would copy every token once more. Written last, so the folder loads only when complete.
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
        self._drop_progress()
        return manifest

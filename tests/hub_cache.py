"""Build a Hugging Face Hub cache on disk, laid out as huggingface_hub writes it, so that loading code runs
offline (``HF_HUB_OFFLINE=1``) against real repo ids and file names.

Layout (huggingface_hub's cache): ``models--{org}--{name}/blobs/{sha256}``, ``snapshots/{commit}/{file}`` (a
symlink to the blob) and ``refs/main`` (the commit).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def add_to_hub_cache(cache: Path, repo_id: str, files: dict[str, Path | bytes], commit: str | None = None) -> Path:
    """Put ``files`` (repo file name → local file or bytes) into ``cache`` under ``repo_id`` at ``commit``
    (default: a hash of the contents) and point ``refs/main`` at it. Returns the snapshot folder."""
    contents = {name: src if isinstance(src, bytes) else Path(src).read_bytes() for name, src in files.items()}
    if commit is None:
        commit = hashlib.sha1(b"".join(hashlib.sha256(c).digest() for c in contents.values())).hexdigest()
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for name, data in contents.items():
        sha = hashlib.sha256(data).hexdigest()
        blob = repo / "blobs" / sha
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def add_folder_to_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str | None = None) -> Path:
    """Every file of ``folder`` (recursively) as a repo in ``cache``."""
    files = {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}
    return add_to_hub_cache(cache, repo_id, files, commit)


def remove_repo(cache: Path, repo_id: str) -> None:
    shutil.rmtree(cache / f"models--{repo_id.replace('/', '--')}", ignore_errors=True)

"""Bundled tokenizers (``vistok/<name>``) and talking to the Hub: uploads that explain an unreachable Hub. What a
name means is :mod:`vistok.resolver`'s job. Offline mode is huggingface_hub's own
(``huggingface_hub.is_offline_mode()``). Model cards are rendered by :mod:`vistok.cards`."""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import huggingface_hub

BUNDLED_PREFIX = "vistok/"
# huggingface_hub's download options that a zoo load forwards (every other option would be silently ignored)
HUB_OPTIONS = ("revision", "cache_dir", "token", "local_files_only", "force_download")


def bundled_dir() -> Path:
    return Path(str(resources.files("vistok") / "pretrained"))


def list_bundled() -> list[str]:
    """Names (``vistok/<name>``) of the tokenizers shipped inside the package."""
    root = bundled_dir()
    if not root.is_dir():
        return []
    return sorted(BUNDLED_PREFIX + p.name for p in root.iterdir() if (p / "config.json").is_file())


def resolve_bundled(name_or_path: str | os.PathLike) -> str | os.PathLike:
    """Map ``vistok/<name>`` to the package folder when it is bundled (and no local folder of that name exists)."""
    name = str(name_or_path)
    if name.startswith(BUNDLED_PREFIX) and not Path(name).exists():
        candidate = bundled_dir() / name[len(BUNDLED_PREFIX) :]
        if (candidate / "config.json").is_file():
            return str(candidate)
    return name_or_path


# What an unreachable Hub raises, by class name: huggingface_hub's HTTP stack has changed transports (requests, httpx,
# httpx2), each with its own exception classes, so matching on one module's classes misses the others.
_TRANSPORT_ERROR_NAMES = {"TransportError", "NetworkError", "ConnectError", "ConnectTimeout", "TimeoutException",
                          "ConnectionError", "ProxyError", "NameResolutionError"}


def hub_unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it was raised from) says the Hub could not be reached: offline mode, a
    failed name lookup, a refused or timed-out connection, whatever HTTP library raised it."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (ConnectionError, socket.gaierror, socket.timeout)):
            return True
        if any(cls.__name__ in _TRANSPORT_ERROR_NAMES for cls in type(error).__mro__):
            return True
        error = error.__cause__ or error.__context__
    return False


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception ``error`` was raised from (the one that names the real failure)."""
    seen = set()
    while (error.__cause__ or error.__context__) is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return error


def cached_repo_files(repo_id: str) -> list[str]:
    """The files of ``repo_id``'s ``main`` snapshot in the Hugging Face cache (empty when it is not cached)."""
    if repo_id.count("/") != 1:
        return []
    repo = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    try:
        commit = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return []
    snapshot = repo / "snapshots" / commit
    return sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())


class HubUnreachableError(ConnectionError):
    """The Hugging Face Hub could not be reached; the message says what failed and how to upload later."""


def upload_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | bool | None = None,
    private: bool | None = None,
    commit_message: str = "Upload vistok tokenizer",
    revision: str | None = None,
    create_pr: bool = False,
    repo_type: str = "model",
    later: str | None = None,
    upload_from: str = "<folder>",
    ignore_patterns: Sequence[str] = (),
):
    """Create ``repo_id`` if needed and upload ``folder`` to it, leaving out files matching ``ignore_patterns``
    (fnmatch patterns relative to ``folder``, as ``hf upload --exclude`` takes them); returns huggingface_hub's commit
    info.

    Raises :class:`HubUnreachableError` when the Hub cannot be reached (no network, ``HF_HUB_OFFLINE`` set, whatever
    HTTP library huggingface_hub uses), saying what failed and how to upload the same files later (``later``: what to
    do first, e.g. save the tokenizer; ``upload_from``: the folder to name in the ``hf upload`` command); the Hub's own
    errors (authentication, permissions) pass through.
    """
    api = huggingface_hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type)
        return api.upload_folder(
            repo_id=repo_id,
            repo_type=repo_type,
            folder_path=str(folder),
            commit_message=commit_message,
            revision=revision,
            create_pr=create_pr,
            ignore_patterns=list(ignore_patterns) or None,
        )
    except Exception as err:
        if not hub_unreachable(err):  # authentication, permissions, …: the Hub's own message says it
            raise
        offline = huggingface_hub.is_offline_mode()
        why = "HF_HUB_OFFLINE is set" if offline else str(root_cause(err))
        command = ["hf", "upload", repo_id, upload_from if upload_from == "<folder>" else shlex.quote(upload_from)]
        command += [] if repo_type == "model" else ["--repo-type", repo_type]
        command += ["--private"] if private else []
        for pattern in ignore_patterns:
            command += ["--exclude", shlex.quote(pattern)]
        raise HubUnreachableError(
            f"Could not upload to the Hub {repo_type} repo {repo_id!r}: the Hugging Face Hub is unreachable ({why}); "
            f"nothing was uploaded. {later or 'Save the tokenizer with tok.save_pretrained(<folder>)'}; to upload "
            f"it, run `{' '.join(command)}` on a machine with network"
            + (" (HF_HUB_OFFLINE unset)." if offline else ".")
        ) from err

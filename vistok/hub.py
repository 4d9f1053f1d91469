"""Bundled tokenizers (``vistok/<name>``) and talking to the Hub: uploads that explain an unreachable Hub. What a
name means is :mod:`vistok.resolver`'s job. Offline mode is huggingface_hub's own
(``huggingface_hub.is_offline_mode()``). Model cards are rendered by :mod:`vistok.cards`."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import httpx
import huggingface_hub

BUNDLED_PREFIX = "vistok/"


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
):
    """Create ``repo_id`` if needed and upload ``folder`` to it; returns huggingface_hub's commit info.

    Raises :class:`HubUnreachableError` when the Hub cannot be reached (no network, ``HF_HUB_OFFLINE`` set),
    saying what failed and how to upload later; the Hub's own errors (authentication, permissions) pass through.
    """
    api = huggingface_hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            commit_message=commit_message,
            revision=revision,
            create_pr=create_pr,
        )
    except (httpx.TransportError, ConnectionError) as err:  # OfflineModeIsEnabled is a ConnectionError
        offline = huggingface_hub.is_offline_mode()
        raise HubUnreachableError(
            f"Could not upload to the Hub repo {repo_id!r}: "
            + ("HF_HUB_OFFLINE is set, so " if offline else "")
            + f"the Hugging Face Hub is unreachable ({type(err).__name__}: {err}). Nothing was uploaded. To upload "
            "later, save the tokenizer now with tok.save_pretrained(<folder>), then on a machine with network run "
            f"`hf upload {repo_id} <folder>`"
            + (" (with HF_HUB_OFFLINE unset)." if offline else ".")
        ) from err

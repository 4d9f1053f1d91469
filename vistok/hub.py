"""Where a tokenizer name points, and talking to the Hub: bundled tokenizers (``vistok/<name>``), names refused
at once (presets, near misses, missing local paths), one clear message when loading fails, and uploads that
explain an unreachable Hub. Offline mode is huggingface_hub's own (``huggingface_hub.is_offline_mode()``).
Model cards are rendered by :mod:`vistok.cards`."""

from __future__ import annotations

import difflib
import functools
import os
from importlib import resources
from pathlib import Path

import httpx
import huggingface_hub
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from . import presets  # noqa: F401  (fills PRESETS)
from .registry import PRESETS

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


def check_tokenizer_name(name_or_path: str | os.PathLike) -> None:
    """Refuse at once, without touching the network, a name that cannot be a tokenizer folder or Hub repo.

    Passes (returns ``None``) for an existing local path, a bundled name and anything shaped like a Hub repo id
    ``org/name``. Raises ``OSError`` saying what the name is and what to do for: a preset name (an architecture
    without weights: ``create_tokenizer``), a local-looking path that does not exist (``./x``, ``../x``, ``/x``,
    ``~/x``, ``a/b/c``, …), a near miss of a preset or bundled name, and any other name without an ``org/``
    part (vistok tokenizers on the Hub always have one). Only ``org/name`` ids reach the Hub.
    """
    name = str(name_or_path)
    if Path(name).expanduser().exists() or resolve_bundled(name) != name_or_path:
        return
    bare = name[len(BUNDLED_PREFIX) :] if name.startswith(BUNDLED_PREFIX) else name
    if bare in PRESETS:
        raise OSError(
            f"{name!r} is a vistok preset: an architecture without trained weights, which from_pretrained cannot "
            f"load. Build it with random weights with vistok.create_tokenizer({bare!r}) (e.g. to train it); load "
            "trained weights from a folder written by save_pretrained or a Hub repo id 'org/name'. "
            f"Bundled tokenizers with weights: {', '.join(list_bundled()) or 'none'}."
        )
    if _looks_like_local_path(name):
        raise OSError(_missing_folder_message(name))
    bundled = list_bundled()
    if "/" in name:
        close = difflib.get_close_matches(name, bundled, n=3, cutoff=0.8) if name.startswith(BUNDLED_PREFIX) else []
    else:  # compare with presets and bundled names without their prefix, suggest the names that load
        known = {**{p: p for p in PRESETS.names()}, **{b[len(BUNDLED_PREFIX) :]: b for b in bundled}}
        close = [known[c] for c in difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)]
    if close or "/" not in name:
        hint = f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise OSError(
            f"{name!r} is not a local folder, a bundled tokenizer or a preset"
            + ("" if "/" in name else ", and Hub repo ids have the form 'org/name'")
            + f". {hint}Bundled tokenizers: {', '.join(bundled) or 'none'}; presets (random weights, "
            "vistok.create_tokenizer): run `vistok list` or vistok.list_tokenizers()."
        )


def _looks_like_local_path(name: str) -> bool:
    """``./x``, ``../x``, ``/x``, ``~/x``, ``a/b/c``, ``C:\\x``, ``out/`` …: anything a Hub repo id cannot be."""
    if name.startswith(("./", "../", "/", "~", ".\\", "..\\")) or "\\" in name or os.sep in name.replace("/", "", 1):
        return True
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def _missing_folder_message(name: str) -> str:
    path = Path(name).expanduser().absolute()
    message = f"No folder {name!r} (looked for {path})."
    parent = path.parent
    if parent.is_dir():
        folders = [p.name for p in parent.iterdir() if (p / "config.json").is_file()]
        close = difflib.get_close_matches(path.name, folders, n=3, cutoff=0.6)
        if close:
            message += f" Did you mean {' or '.join(repr(str(parent / c)) for c in close)}?"
    else:
        message += f" Its parent folder {str(parent)!r} does not exist either."
    return message + " A tokenizer folder is what save_pretrained writes (config.json + model.safetensors)."


def resolve_bundled_names_in(loader_class: type) -> None:
    """Make ``loader_class.from_pretrained`` (a transformers auto class: ``AutoConfig``, ``AutoModel``,
    ``AutoImageProcessor``) accept bundled names such as ``vistok/default``.

    transformers offers no hook for local name aliases, so the class's ``from_pretrained`` is wrapped: a name that
    :func:`resolve_bundled` maps to a package folder is replaced by that folder; every other name reaches
    transformers unchanged. Idempotent (a second call does nothing).
    """
    current = loader_class.from_pretrained
    if getattr(current, "resolves_vistok_bundled_names", False):
        return
    original = current.__func__

    @functools.wraps(original)
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        return original(cls, resolve_bundled(pretrained_model_name_or_path), *args, **kwargs)

    from_pretrained.resolves_vistok_bundled_names = True
    loader_class.from_pretrained = classmethod(from_pretrained)


def load_error_message(name_or_path: str | os.PathLike, err: Exception) -> str:
    """One message that says what could not be loaded and how to provide it."""
    name = str(name_or_path)
    if Path(name).exists():
        return f"Could not load a vistok tokenizer from the folder {name!r}: {err}"
    try:
        check_tokenizer_name(name)
    except OSError as refusal:  # not a Hub repo id: Hub advice would mislead
        return str(refusal)
    offline = huggingface_hub.is_offline_mode()
    bundled = ", ".join(list_bundled()) or "none"
    return (
        f"Could not load the tokenizer {name!r}: it is not a local folder and "
        + ("HF_HUB_OFFLINE is set and it is not in the Hugging Face cache. " if offline else "the Hub could not provide it. ")
        + "Download it on a machine with network (`hf download "
        f"{name}`) and copy the cache (HF_HUB_CACHE) or the folder here, or pass a local folder written by "
        f"save_pretrained. Bundled tokenizers: {bundled}. (Underlying error: {err})"
    )


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

"""Hub helpers: bundled tokenizers, clear offline errors, model-card rendering from the config's metadata."""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

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
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    bundled = ", ".join(list_bundled()) or "none"
    return (
        f"Could not load the tokenizer {name!r}: it is not a local folder and "
        + ("HF_HUB_OFFLINE is set and it is not in the Hugging Face cache. " if offline else "the Hub could not provide it. ")
        + "Download it on a machine with network (`hf download "
        f"{name}`) and copy the cache (HF_HUB_CACHE) or the folder here, or pass a local folder written by "
        f"save_pretrained. Bundled tokenizers: {bundled}. (Underlying error: {err})"
    )

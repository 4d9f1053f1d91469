"""Hub helpers: bundled tokenizers, clear offline errors, model-card rendering from the config's metadata."""

from __future__ import annotations

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

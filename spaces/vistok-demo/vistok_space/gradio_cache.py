"""Gradio's image cache, written atomically.

Gradio stores every output image at a path named by the hash of its bytes and writes it with ``write_bytes``, which
first truncates the file. Two requests with the same output (two visitors trying the same example at once) write the
same path: while one browser downloads the image, the other request truncates and rewrites it, and the download ends
early ("peer closed connection without sending complete message body"). Writing to a temporary file and renaming it
over the target keeps every reader on a complete file (a reader holds the old, identical one).
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
from pathlib import Path

from gradio import processing_utils

logger = logging.getLogger("vistok_space")


def save_pil_to_cache_atomically(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """What ``gradio.processing_utils.save_pil_to_cache`` does (same path, same bytes), written atomically."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = (folder / f"{name}.{format}").resolve()
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)  # as write_bytes leaves it (mkstemp makes 0600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return str(target)


def install() -> bool:
    """Make gradio's components save output images through :func:`save_pil_to_cache_atomically` (they call it as
    ``processing_utils.save_pil_to_cache``). Only where gradio's function has the signature this one replaces (it
    has since gradio 4); returns whether it was installed."""
    current = processing_utils.save_pil_to_cache
    if current is save_pil_to_cache_atomically:
        return True
    if list(inspect.signature(current).parameters) != ["img", "cache_dir", "name", "format"]:
        logger.warning("gradio's save_pil_to_cache has another signature: its own (non-atomic) image cache is kept")
        return False
    processing_utils.save_pil_to_cache = save_pil_to_cache_atomically
    return True

"""Load upstream checkpoint files without running code from them.

``torch.load(weights_only=True)`` only rebuilds tensors and plain containers. Upstream training scripts also pickle
a few harmless non-tensor objects next to the weights; those, and only those, are allowed here:

- ``argparse.Namespace`` — LlamaGen stores its training arguments (``args``) as one;
- numpy scalars and dtypes — Lightning callback states (``best_model_score``) may hold them;
- the *names* of Lightning callback classes — Lightning < 1.5 keys ``callbacks`` by the class itself. Those names
  resolve to inert stand-in classes defined here, so nothing is imported from, or run by, Lightning.

Anything else is refused with a message that lists what the file references; arbitrary unpickling happens only
with ``trust_checkpoint=True`` (``--trust-checkpoint``). safetensors files are read directly.
"""

from __future__ import annotations

import argparse
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_checkpoint", "allowed_global_names"]

TRUST_HINT = (
    "If you trust where the file comes from, pass --trust-checkpoint (trust_checkpoint=True) to unpickle it "
    "without restrictions; unpickling an untrusted file can run arbitrary code."
)
LIGHTNING_CALLBACKS = (
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
    "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint",
    "lightning.pytorch.callbacks.early_stopping.EarlyStopping",
)
NUMPY_DTYPE_CLASSES = (
    "BoolDType",
    "Int8DType",
    "Int16DType",
    "Int32DType",
    "Int64DType",
    "UInt8DType",
    "UInt16DType",
    "UInt32DType",
    "UInt64DType",
    "Float16DType",
    "Float32DType",
    "Float64DType",
)
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a"  # pickled magic number that starts a pre-1.6 torch.save file
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """The file is not a checkpoint of the expected kind; the message says what was found."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint references Python objects outside the allow-list; it was not unpickled."""


class UpstreamClassStandIn:
    """Inert placeholder for an upstream class that a checkpoint names (e.g. a Lightning callback used as a dict
    key). ``upstream_name`` is the dotted name found in the file."""

    upstream_name = ""

    def __repr__(self) -> str:
        return f"<stand-in for {self.upstream_name}>"


def _stand_in(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (UpstreamClassStandIn,), {"upstream_name": name})


def _safe_globals() -> list[Any]:
    entries: list[Any] = [argparse.Namespace]
    try:
        import numpy as np
    except ImportError:  # numpy is optional for torch; without it numpy globals are simply refused
        np = None
    if np is not None:
        entries.append((np.dtype, "numpy.dtype"))
        # numpy 1.x pickles scalars as numpy.core.multiarray.scalar, numpy 2.x as numpy._core.multiarray.scalar
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            entries.append((_numpy_scalar(), f"{module}.scalar"))
        # Unpickling a dtype instance also needs its (numeric) dtype class.
        entries.extend(getattr(np.dtypes, name) for name in NUMPY_DTYPE_CLASSES if hasattr(np, "dtypes"))
    entries.extend((_stand_in(name), name) for name in LIGHTNING_CALLBACKS)
    return entries


def _numpy_scalar():
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    return core.multiarray.scalar


def allowed_global_names() -> list[str]:
    """Dotted names of the non-tensor globals a checkpoint may reference and still be loaded safely."""
    names = []
    for entry in _safe_globals():
        names.append(entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}")
    return sorted(set(names))


def load_checkpoint(path: str | os.PathLike, *, trust_checkpoint: bool = False, mmap: bool | None = None) -> Any:
    """Read a ``torch.save`` file (zip or legacy format) or a ``.safetensors`` file onto the CPU.

    Returns whatever the file holds (usually a dict). A zip-format (torch >= 1.6) file's tensors are memory-mapped
    by default (``mmap=None``): read from disk only when used, copy-on-write, so a converter reads only the tensors
    it keeps and keeps them without a copy; a legacy-format file cannot be mapped and is read whole.
    ``mmap=True`` insists on mapping (a legacy file is refused: reading part of it would mean reading all of it),
    ``mmap=False`` reads the whole file into memory. safetensors files are always memory-mapped.

    Raises ``FileNotFoundError`` for a missing path, :class:`CheckpointError` for a file that is not a checkpoint
    (saying what it looks like instead), and :class:`UnsafeCheckpointError` when the pickle references objects
    outside the allow-list and ``trust_checkpoint`` is false.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    if path.is_dir():
        raise CheckpointError(
            f"{str(path)!r} is a folder, expected a checkpoint file (.pt / .ckpt / .pth / .safetensors); "
            "a folder written by save_pretrained is loaded with VisTokenizer.from_pretrained instead"
        )
    head = _read_head(path)
    if _looks_like_safetensors(path, head):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except SafetensorError as err:
            raise CheckpointError(
                f"{str(path)!r} starts like a safetensors file but cannot be read as one ({err}): it is truncated "
                "or damaged (an interrupted download or copy?); download or copy it again"
            ) from err
    if head.startswith(_ZIP_MAGIC):
        _check_torch_zip(path)
        mmap = mmap is not False
    elif not head.startswith(_LEGACY_TORCH_MAGIC):
        raise CheckpointError(f"{str(path)!r} is not a PyTorch checkpoint: {_describe_bytes(head, path)}")
    elif mmap is None:
        mmap = False
    elif mmap:
        raise CheckpointError(
            f"{str(path)!r} is in torch's legacy (pre-1.6) format, which cannot be memory-mapped, so reading "
            "part of it would mean loading all of it; re-save it with a current torch.save"
        )
    if trust_checkpoint:
        try:
            return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
        except ModuleNotFoundError as err:
            raise CheckpointError(
                f"unpickling {str(path)!r} needs the Python module {err.name!r}, which is not installed"
            ) from err
    if head.startswith(_ZIP_MAGIC):
        _refuse_unsafe_globals(path)
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refusing to unpickle {str(path)!r}: torch's weights-only loader rejected it ({_reason(err)}). "
            f"{TRUST_HINT}"
        ) from err


def _reason(err: Exception) -> str:
    """The informative line of torch's weights-only error (it is surrounded by generic advice)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error" in line:
            detail = line.split("WeightsUnpickler error:", 1)[-1].strip() or (
                lines[i + 1] if i + 1 < len(lines) else ""
            )
            return detail[:300]
    return (lines[-1] if lines else repr(err))[:300]


def _read_head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(64)


def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < header_len < path.stat().st_size


def _check_torch_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as err:
        raise CheckpointError(
            f"{str(path)!r} starts like a zip archive but cannot be read as one: {err}"
        ) from err
    if not any(name.endswith("data.pkl") for name in names):
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise CheckpointError(
            f"{str(path)!r} is a zip archive but not a PyTorch checkpoint (no data.pkl inside; it holds {shown})"
        )


def _refuse_unsafe_globals(path: Path) -> None:
    referenced = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    allowed = set(allowed_global_names())
    refused = sorted(set(referenced) - allowed)
    if refused:
        raise UnsafeCheckpointError(
            f"refusing to unpickle {str(path)!r}: it references {', '.join(refused)}, which "
            f"{'is' if len(refused) == 1 else 'are'} not on vistok's allow-list of harmless checkpoint types "
            f"({', '.join(sorted(allowed))}). {TRUST_HINT}"
        )


def _describe_bytes(head: bytes, path: Path) -> str:
    if not head:
        return "the file is empty"
    signatures = {
        b"\x89PNG": "it is a PNG image",
        b"\xff\xd8\xff": "it is a JPEG image",
        b"GIF8": "it is a GIF image",
        b"\x1f\x8b": "it is gzip-compressed (decompress it first)",
        b"version https://git-lfs": "it is a Git LFS pointer, not the weights (run `git lfs pull`)",
        b"<": "it looks like HTML/XML text (a download error page?)",
        b"{": "it looks like JSON text",
    }
    for magic, description in signatures.items():
        if head.startswith(magic):
            return description
    if head[:1] == b"\x80":
        return "it is a plain pickle without torch.save's header (not supported; re-save it with torch.save)"
    # Nothing of the file is quoted: it may be any file the user (or a crafted index) pointed at.
    textual = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 128 for b in head)
    return "it looks like text" if textual >= 0.95 * len(head) else "unrecognised binary content"

"""Read the tensors of a TorchScript archive (``torch.jit.save`` / ``torch.jit.trace(...).save``) without running it.

A ``.jit`` / ``.pt`` TorchScript file is a zip archive ``<name>/...`` holding

- ``data.pkl``: a pickle (protocol 2) of the module tree — one object per module, whose class is named
  ``__torch__.<python module>.<Class>`` (often with a ``___torch_mangle_N`` suffix) and whose state is a dict of its
  attributes: submodules, parameters, buffers (persistent or not: a traced module's ``state_dict()`` returns them
  all) and plain values (``training``, …). Tensors are ``torch._utils._rebuild_tensor_v2`` records whose storage
  is a persistent id ``("storage", torch.<Type>Storage, key, location, numel)``;
- ``data/<key>``: the raw bytes of each storage (``byteorder`` says little- or big-endian);
- ``code/``: the module's TorchScript source, ``constants.pkl`` (tensors the traced code uses as constants),
  ``traced_inputs.pkl`` and ``version``.

**Why a reader of its own.** What torch offers all either run the archive or do not give tensors:

- ``torch.jit.load`` compiles and links the archive's ``code/`` — the archive's own program — and builds real
  script objects: loading is running the author's code in the TorchScript interpreter (``__setstate__`` methods of
  custom classes run at load time). It is never called here.
- ``torch.load(weights_only=True)`` recognises a TorchScript zip and refuses it (``weights_only=False`` hands it
  to ``torch.jit.load``); its allow-list unpickler (``torch._weights_only_unpickler``, private) would also need
  every mangled ``__torch__`` class name registered in advance.
- ``torch.utils.show_pickle.DumpUnpickler`` (used by ``torch.utils.model_dump``) accepts *any* global as an inert
  fake, so it runs nothing, but it neither rebuilds tensors nor refuses a pickle that names ``os.system``.

So this module unpickles ``data.pkl`` with a restricted :class:`pickle.Unpickler` in the manner of
:mod:`vistok.convert.safe_load`: every global the pickle names is either one of a fixed handful — a ``__torch__.*``
module class becomes an inert :class:`ScriptObject` that only records its name and state; ``torch.<Type>Storage``
a dtype marker; ``torch._utils._rebuild_tensor_v2`` and ``torch.jit._pickle``'s container builders vistok's own
re-implementations (bounds-checked views of the archive's storages); ``collections.OrderedDict`` — or the file is
refused with :class:`~vistok.convert.safe_load.UnsafeCheckpointError` naming it, before anything it names is
imported or called. ``code/`` and ``constants.pkl`` are never read: the tensors a model's ``state_dict()`` holds
are the attributes of ``data.pkl``. Nothing from torch's TorchScript machinery is used.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .safe_load import CheckpointError, UnsafeCheckpointError

__all__ = ["ScriptObject", "TorchScriptArchive", "is_torchscript_archive", "read_torchscript"]

# torch.<Name>Storage → dtype: the storage classes a TorchScript pickle names (legacy typed-storage names).
STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
_SCRIPT_CLASS_PREFIX = "__torch__."


class ScriptObject:
    """Inert stand-in for an object of a TorchScript class (a module of the traced model): the class's qualified
    name, as the pickle gives it, and its attributes. Nothing of the original class is imported or run; each
    ``__torch__`` name the pickle gives becomes a subclass of this one (pickle's NEWOBJ needs a class)."""

    qualified_name = ""
    state: Any = None
    args: tuple = ()

    def __init__(self, *args: Any):  # pickle's REDUCE: record the arguments, run nothing
        self.args = args

    def __setstate__(self, state: Any) -> None:  # pickle's BUILD
        self.state = state

    @property
    def class_name(self) -> str:
        """The class name without module or TorchScript's ``___torch_mangle_N`` suffix (``Conv2d``)."""
        return self.qualified_name.rsplit(".", 1)[-1]

    @property
    def attributes(self) -> dict[str, Any]:
        return self.state if isinstance(self.state, dict) else {}

    def __repr__(self) -> str:
        return f"<TorchScript object {self.qualified_name}>"


def _script_class(qualified_name: str) -> type:
    return type("ScriptObject", (ScriptObject,), {"qualified_name": qualified_name, "__slots__": ()})


@dataclass(frozen=True)
class _StorageType:
    """``torch.<Name>Storage`` as a pickle names it: only its dtype is used (never called)."""

    name: str
    dtype: torch.dtype


@dataclass
class TorchScriptArchive:
    """What :func:`read_torchscript` found: the archive's name (its top folder), the root module, every tensor
    attribute of the module tree by dotted name (``state_dict()``'s keys: parameters and all buffers, in the
    archive's order) and the class name of every module by dotted name (``""`` = the root)."""

    path: Path
    name: str
    root: ScriptObject
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    module_classes: dict[str, str] = field(default_factory=dict)


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zip archive laid out as TorchScript saves modules (``<name>/data.pkl`` beside
    ``<name>/code/`` or ``<name>/constants.pkl``); a plain ``torch.save`` zip has neither."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _prefix(archive.namelist(), Path(path)) is not None and _is_script_layout(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_torchscript(path: str | os.PathLike) -> TorchScriptArchive:
    """The tensors of the TorchScript archive ``path``, read without running anything from it (see the module
    docstring). Tensors keep their stored dtype (a bfloat16 release stays bfloat16) and live in memory (read from
    the file, not mapped).

    Raises ``FileNotFoundError`` for a missing path, :class:`~vistok.convert.safe_load.CheckpointError` for a file
    that is not a TorchScript archive (saying what it is), and
    :class:`~vistok.convert.safe_load.UnsafeCheckpointError` when its pickle names anything but module classes,
    storages and the tensor / container builders above — nothing it names is imported or called.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"TorchScript file {str(path)!r} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{str(path)!r} is a folder, expected a TorchScript (.jit) file")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise CheckpointError(
            f"{str(path)!r} is not a TorchScript archive (TorchScript files are zip archives): {err}"
        ) from err
    with archive:
        names = archive.namelist()
        prefix = _prefix(names, path)
        if prefix is None:
            shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
            raise CheckpointError(f"{str(path)!r} is a zip archive without a data.pkl (it holds {shown})")
        if not _is_script_layout(names):
            raise CheckpointError(
                f"{str(path)!r} is a plain torch.save checkpoint (no TorchScript code or constants inside), not a "
                "TorchScript archive"
            )
        byteorder = f"{prefix}byteorder"
        if byteorder in names and archive.read(byteorder).strip() not in (b"little", b""):
            raise CheckpointError(
                f"{str(path)!r} stores its tensors {archive.read(byteorder).decode(errors='replace')}-endian; only "
                "little-endian archives are read"
            )
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(f"{prefix}data.pkl")), archive, prefix, path)
        try:
            root = unpickler.load()
        except (UnsafeCheckpointError, CheckpointError):
            raise
        except Exception as err:  # a malformed pickle: say so instead of a bare pickle / struct error
            raise CheckpointError(
                f"{str(path)!r}: its data.pkl could not be read as a TorchScript module tree "
                f"({type(err).__name__}: {err})"
            ) from err
    if not isinstance(root, ScriptObject):
        raise CheckpointError(
            f"{str(path)!r}: data.pkl holds a {type(root).__name__}, not a TorchScript module"
        )
    result = TorchScriptArchive(path=path, name=prefix.rstrip("/"), root=root)
    for name, value in _walk(root, "", set()):
        if isinstance(value, ScriptObject):
            result.module_classes[name] = value.class_name
        else:
            result.tensors[name] = value
    return result


def _prefix(names: list[str], path: Path) -> str | None:
    """The archive's top folder (``encoder/``) holding ``data.pkl``; ``None`` without one."""
    candidates = sorted({n[: -len("data.pkl")] for n in names if n.endswith("data.pkl") and n.count("/") == 1})
    if not candidates:
        return None
    stem = f"{path.stem}/"
    return stem if stem in candidates else candidates[0]


def _is_script_layout(names: list[str]) -> bool:
    return any("/code/" in n or n.endswith("/constants.pkl") for n in names)


def _walk(obj: ScriptObject, prefix: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    """(dotted name, module or tensor) for the module tree under ``obj``: the module itself, then its tensor
    attributes and submodules in the archive's order. A module reached twice (shared) is listed once."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield prefix, obj
    for key, value in obj.attributes.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, torch.Tensor):
            yield name, value
        elif isinstance(value, ScriptObject):
            yield from _walk(value, name, seen)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl``: module classes become :class:`ScriptObject`, tensors are rebuilt from
    the archive's own storages; any other global is refused before it is imported (see the module docstring)."""

    def __init__(self, stream: io.BytesIO, archive: zipfile.ZipFile, prefix: str, path: Path):
        super().__init__(stream)
        self._archive = archive
        self._prefix = prefix
        self._path = path
        self._storages: dict[str, torch.Tensor] = {}
        self._classes: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified.startswith(_SCRIPT_CLASS_PREFIX):
            if qualified not in self._classes:
                self._classes[qualified] = _script_class(qualified)
            return self._classes[qualified]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name, STORAGE_DTYPES[name])
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch.jit._pickle" and name in _JIT_PICKLE_BUILDERS:
            return _JIT_PICKLE_BUILDERS[name]
        raise UnsafeCheckpointError(
            f"refusing to read {str(self._path)!r}: its data.pkl references {qualified}, which a TorchScript "
            "module's weights never need (allowed: __torch__.* module classes, torch.*Storage, "
            "torch._utils._rebuild_tensor_v2, collections.OrderedDict, torch.jit._pickle container builders). "
            "Nothing was run."
        )

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{str(self._path)!r}: unexpected persistent id {pid!r:.80} in data.pkl")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not key.isdigit():
            raise CheckpointError(f"{str(self._path)!r}: malformed storage record {pid!r:.80} in data.pkl")
        if key not in self._storages:
            self._storages[key] = self._read_storage(key, storage_type.dtype, numel)
        flat = self._storages[key]
        if flat.dtype != storage_type.dtype:
            raise CheckpointError(f"{str(self._path)!r}: storage {key} is read as two dtypes")
        return flat


    def _read_storage(self, key: str, dtype: torch.dtype, numel: Any) -> torch.Tensor:
        """``data/<key>`` as a flat tensor of ``numel`` elements, read once into memory of its own."""
        try:
            info = self._archive.getinfo(f"{self._prefix}data/{key}")
        except KeyError:
            raise CheckpointError(f"{str(self._path)!r}: data.pkl names storage {key}, which is missing") from None
        itemsize = torch.empty((), dtype=dtype).element_size()
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0 or info.file_size != numel * itemsize:
            raise CheckpointError(
                f"{str(self._path)!r}: storage {key} holds {info.file_size} bytes, not {numel!r} x {itemsize}"
            )
        buffer = bytearray(info.file_size)
        with self._archive.open(info) as stream:
            if stream.readinto(buffer) != info.file_size:
                raise CheckpointError(f"{str(self._path)!r}: storage {key} is truncated")
        return torch.frombuffer(buffer, dtype=dtype) if numel else torch.empty(0, dtype=dtype)


def _rebuild_tensor(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False, hooks: Any = None, *extra: Any
) -> torch.Tensor:
    """vistok's ``_rebuild_tensor_v2``: the strided view (``size``, ``stride``, ``offset``) of a storage read from
    the archive, after checking that it lies inside it; a copy unless the view is the whole storage."""
    if not isinstance(storage, torch.Tensor):
        raise CheckpointError("a tensor record in data.pkl does not point to a storage of the archive")
    dims = (size, stride)
    if not all(isinstance(d, tuple) for d in dims) or len(size) != len(stride):
        raise CheckpointError(f"malformed tensor record in data.pkl (size {size!r:.60}, stride {stride!r:.60})")
    values = (offset, *size, *stride)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise CheckpointError(f"malformed tensor record in data.pkl (offset {offset!r}, size {size}, stride {stride})")
    if math.prod(size) and offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) >= storage.numel():
        raise CheckpointError(
            f"a tensor of size {size} (stride {stride}, offset {offset}) reaches past its storage of "
            f"{storage.numel()} elements"
        )
    view = torch.as_strided(storage, size, stride, offset)
    whole = offset == 0 and view.is_contiguous() and view.numel() == storage.numel()
    return view if whole else view.clone()  # a tensor that is its whole storage keeps it: no second copy


def _restore_type_tag(value: Any, _type_str: Any) -> Any:
    return value


def _build_list(items: Any) -> list:
    if not isinstance(items, list):
        raise CheckpointError(f"a list record in data.pkl holds a {type(items).__name__}")
    return list(items)


# torch.jit._pickle's builders for typed containers in module attributes, re-implemented (they only wrap values).
_JIT_PICKLE_BUILDERS = {
    "restore_type_tag": _restore_type_tag,
    "build_intlist": _build_list,
    "build_doublelist": _build_list,
    "build_boollist": _build_list,
    "build_tensorlist": _build_list,
}

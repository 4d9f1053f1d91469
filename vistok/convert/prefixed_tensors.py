"""Read only the tensors under one name prefix from a transformers-style weight release, never the rest.

A release (e.g. Janus-Pro, whose image tokenizer is the ``gen_vision_model.*`` part of a multi-billion-parameter
model) is one of :data:`WEIGHT_FILES`: a single ``model.safetensors`` / ``pytorch_model.bin``, or an
``*.index.json`` whose ``weight_map`` names the shard holding each tensor. Only the shards that hold a wanted
tensor are opened; safetensors files are read tensor by tensor, pickles are memory-mapped (the unwanted tensors'
bytes are never read into memory) and go through the same allow-list as :func:`~vistok.convert.load_checkpoint`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .safe_load import CheckpointError, _looks_like_safetensors, _read_head, load_checkpoint

# Weight files of a transformers-style release, in the order a folder is searched.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass
class PrefixedTensors:
    """What :func:`read_prefixed_tensors` found.

    Attributes:
        tensors: the wanted tensors, prefix stripped, in the dtype stored (independent of the file).
        weight_file: the file that was asked for (the index for a sharded release).
        all_names: every tensor name of the release (for messages saying what a release holds instead).
        files_read: the weight files that were opened (shards for an index).
    """

    tensors: dict[str, torch.Tensor]
    weight_file: Path
    all_names: list[str]
    files_read: list[str] = field(default_factory=list)


def find_weight_file(path: str | os.PathLike) -> Path:
    """``path`` itself when it is a file, else the first of :data:`WEIGHT_FILES` in the folder ``path``.

    Raises ``FileNotFoundError`` for a missing path and :class:`CheckpointError` for a folder holding none of
    them (naming what it holds)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.is_file():
        return path
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    held = sorted(p.name for p in path.iterdir())
    shown = ", ".join(held[:12]) + (", …" if len(held) > 12 else "") if held else "nothing"
    raise CheckpointError(
        f"the folder {str(path)!r} holds none of the weight files {list(WEIGHT_FILES)}; it holds {shown}"
    )


def read_prefixed_tensors(
    path: str | os.PathLike, prefix: str, *, trust_checkpoint: bool = False
) -> PrefixedTensors:
    """The tensors whose names start with ``prefix`` (returned with ``prefix`` stripped) from a release folder,
    a weight file or a sharded ``*.index.json``; no other tensor is read.

    An empty ``tensors`` means the release has no such tensors (``all_names`` says what it has). Raises
    :class:`CheckpointError` for a file that is not a weight file, an index that is malformed or names a shard
    that is missing, and :class:`UnsafeCheckpointError` for a pickle that references objects outside the
    allow-list (unless ``trust_checkpoint``).
    """
    weight_file = find_weight_file(path)
    if weight_file.name.endswith(".json"):
        return _read_sharded(weight_file, prefix, trust_checkpoint)
    wanted = lambda names: [n for n in names if n.startswith(prefix)]  # noqa: E731
    all_names, tensors = _read_file(weight_file, wanted, trust_checkpoint)
    return PrefixedTensors(_strip(tensors, prefix), weight_file, all_names, [weight_file.name])


def _read_sharded(index_file: Path, prefix: str, trust_checkpoint: bool) -> PrefixedTensors:
    weight_map = _weight_map(index_file)
    by_shard: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        if name.startswith(prefix):
            by_shard.setdefault(shard, []).append(name)
    tensors: dict[str, torch.Tensor] = {}
    for shard, names in sorted(by_shard.items()):
        shard_path = index_file.parent / shard
        if not shard_path.is_file():
            raise CheckpointError(
                f"{index_file.name} places {len(names)} {prefix}* tensors (e.g. {names[0]!r}) in the shard "
                f"{shard!r}, which is not in {str(index_file.parent)!r}; download the shard too"
            )
        shard_names, found = _read_file(shard_path, lambda _, wanted=names: wanted, trust_checkpoint)
        missing = sorted(set(names) - set(found))
        if missing:
            raise CheckpointError(
                f"{index_file.name} says the shard {shard!r} holds {missing[:3]}"
                f"{' …' if len(missing) > 3 else ''}, but it does not (the index and the shards do not belong "
                "together)"
            )
        tensors.update(found)
    return PrefixedTensors(_strip(tensors, prefix), index_file, sorted(weight_map), sorted(by_shard))


def _weight_map(index_file: Path) -> dict[str, str]:
    try:
        weight_map = json.loads(index_file.read_text())["weight_map"]
        if not isinstance(weight_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
        ):
            raise TypeError("weight_map is not a mapping of tensor names to shard file names")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{str(index_file)!r} is not a weight index: expected a JSON object with a 'weight_map' of tensor "
            f"name → shard file ({type(err).__name__}: {err})"
        ) from err
    outside = sorted({shard for shard in weight_map.values() if not _inside_folder(shard)})
    if outside:
        raise CheckpointError(
            f"{str(index_file)!r} names {len(outside)} shard file(s) outside its own folder (an absolute path, a "
            "'..' component or a drive); a weight index names shard files inside the folder that holds it, so none "
            "was opened"
        )
    return weight_map


def _inside_folder(shard: str) -> bool:
    """Whether the index entry ``shard`` names a file inside the index's folder: a relative path with no empty,
    ``.`` or ``..`` component (either slash), no drive and no NUL. Symlinks inside the folder are allowed (a
    Hugging Face cache snapshot is made of them)."""
    if not shard or "\0" in shard or shard.startswith(("/", "\\")) or ":" in shard:
        return False
    parts = shard.replace("\\", "/").split("/")
    return all(part not in ("", ".", "..") for part in parts)


def _read_file(path: Path, select, trust_checkpoint: bool) -> tuple[list[str], dict[str, torch.Tensor]]:
    """(every tensor name in the file, the selected tensors); ``select`` maps the names to the wanted ones."""
    if _looks_like_safetensors(path, _read_head(path)):
        return _read_safetensors(path, select)
    return _read_pickle(path, select, trust_checkpoint)


def _read_safetensors(path: Path, select) -> tuple[list[str], dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            names = list(f.keys())
            present = set(names)
            return names, {name: f.get_tensor(name) for name in select(names) if name in present}
    except SafetensorError as err:
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors file: {err}") from err


def _read_pickle(path: Path, select, trust_checkpoint: bool) -> tuple[list[str], dict[str, torch.Tensor]]:
    loaded = load_checkpoint(path, trust_checkpoint=trust_checkpoint, mmap=True)  # the one safe loader, mapped
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        raise CheckpointError(
            f"{str(path)!r} does not hold a state dict (a mapping of tensor names to tensors); it holds a "
            f"{type(loaded).__name__}"
        )
    names = list(loaded)
    selected = {}
    for name in select(names):
        value = loaded.get(name)
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{str(path)!r}: {name!r} is a {type(value).__name__}, not a tensor")
        selected[name] = value.clone()  # own memory: the file's mapping is released with ``loaded``
    return names, selected


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name[len(prefix) :]: value for name, value in tensors.items()}


def top_level_names(names: Iterable[str], limit: int = 8) -> str:
    """``"language_model.* (12), vision_model.* (11), …"``: what a release holds, by first name component."""
    counts: dict[str, int] = {}
    for name in names:
        head = name.split(".", 1)[0] + (".*" if "." in name else "")
        counts[head] = counts.get(head, 0) + 1
    parts = [f"{head} ({n})" for head, n in counts.items()]
    if not parts:
        return "no tensors"
    return ", ".join(parts[:limit]) + (", …" if len(parts) > limit else "")

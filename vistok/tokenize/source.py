"""The images to tokenize and the source columns stored beside their tokens, cut into fixed shards.

Images come from :func:`vistok.data.build_dataset` (the evaluation crop of the dataset, no random flip: the same
preprocessing ``vistok evaluate`` uses, corrupt images skipped and counted); the identifying columns (label, id,
file name) come from the same split with all its columns. Shard ``s`` is the images at positions
``[s · shard_size, (s + 1) · shard_size)`` of the split — a function of the split alone, so any number of processes,
and a resumed run, cut the same shards and write the same rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from ..data import build_dataset, collate_images
from ..data.datasets import UnreadableImageError, _make_sample, image_file
from ..data.presets import DATASET_PRESETS
from ..data.sources import _is_local, _load_hub, load_local_split

LABEL_COLUMNS = ("label", "labels", "class", "class_id", "cls", "fine_label", "coarse_label", "target")
ID_COLUMNS = ("id", "image_id", "img_id", "file_name", "filename", "key", "__key__", "__url__", "url")
FILE_NAME = "file_name"  # added from the image records' paths when the split has no column of that name
RESERVED = ("index", "crop", "flip", "indices")


@dataclass
class TokenSource:
    """What to tokenize: ``images`` (a dataset of ``{"pixel_values", "index"}`` samples, a ``SkippedSample`` in place
    of an image it cannot use), the split with every column (``full``, ``None`` for ``samples``), the columns to
    store and their features."""

    name: str
    split: str
    images: Any
    streaming: bool
    num_images: int | None  # None for a stream (its length is known once read)
    full: Any = None
    image_column: str | None = None
    columns: list[str] = field(default_factory=list)  # stored source columns (FILE_NAME may be derived)
    features: dict[str, Any] = field(default_factory=dict)  # datasets feature of each stored column
    file_name_root: str | None = None  # paths are stored relative to this local dataset folder
    split_used: str | None = ""  # the split actually read ("" = ``split``; None = a dataset without splits)
    hub_content: str | None = None  # the 🤗 fingerprint or Hub revision of a dataset that is not a local path

    @property
    def split_read(self) -> str | None:
        """The split actually read: ``split``, the single split of a dataset that has only one, or ``None`` for a
        dataset without splits (read whole)."""
        return self.split if self.split_used == "" else self.split_used

    def content(self, exclude: str | os.PathLike | None = None) -> str | None:
        """What the split's images are, beyond its name and length: the files of a local dataset (their names,
        sizes and modification times; ``exclude``, the output folder, left out), the 🤗 fingerprint of a Hub split
        (it includes the Hub commit) or the commit a stream reads; ``None`` when a stream names no revision."""
        if self.name == "samples":
            return "bundled photographs"
        if _is_local(self.name):
            return local_files_digest(self.name, exclude)
        return self.hub_content

    def metadata(self, example_or_rows: dict[str, list], positions: list[int], first: int) -> dict[str, list]:
        """Stored column values of the images at ``positions``, read from a slice starting at ``first``."""
        return {c: [example_or_rows[c][p - first] for p in positions] for c in self.columns}


def open_full_split(name: str, split: str, streaming: bool):
    """``(data, split_used)``: the split with all its columns, loaded as :func:`vistok.data.open_split` loads it
    (same cache, same order), and the split actually read (see :func:`vistok.data.sources.load_local_split`)."""
    preset = DATASET_PRESETS.get(name)
    if preset is not None:
        return _load_hub(preset.hub_id, preset.hub_split(split, name), streaming, preset.gated, name), split
    if _is_local(name):
        return load_local_split(name, split, streaming)
    return _load_hub(name, split, streaming, False, None), split


def local_files_digest(path: str | os.PathLike, exclude: str | os.PathLike | None = None) -> str:
    """``"N files, sha256 …"`` over the sorted relative paths, sizes and modification times of the files under
    ``path`` (or of the file ``path``), hidden ones (which 🤗 datasets does not read) and ``exclude`` left out."""
    import hashlib

    root = Path(path).expanduser().resolve()
    skip = Path(exclude).expanduser().resolve() if exclude is not None else None
    entries = []
    if root.is_file():
        stat = root.stat()
        entries.append((root.name, stat.st_size, stat.st_mtime_ns))
    for folder, dirs, files in os.walk(root, followlinks=True) if root.is_dir() else ():
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".") and here / d != skip]
        for name in files:
            if not name.startswith("."):
                stat = (here / name).stat()
                entries.append(((here / name).relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    digest = hashlib.sha256()
    for entry in sorted(entries):
        digest.update(("\0".join(map(str, entry)) + "\n").encode())
    return f"{len(entries)} files, sha256 {digest.hexdigest()[:16]}"


def _hub_content(full) -> str | None:
    """The 🤗 fingerprint of a map-style split (for a Hub dataset it includes the commit read), or the Hub commits
    the data files of a stream are read at (``hf://datasets/<repo>@<commit>/…``)."""
    import re

    fingerprint = getattr(full, "_fingerprint", None)
    if fingerprint is not None:
        return f"fingerprint {fingerprint}"
    files: list[str] = []
    iterable = getattr(full, "_ex_iterable", None)
    while iterable is not None:  # a stream's examples iterable, wrapped once per take / cast / select
        kwargs = getattr(iterable, "kwargs", None) or {}
        files += [str(f) for value in kwargs.values() if isinstance(value, (list, tuple)) for f in value]
        iterable = getattr(iterable, "ex_iterable", None)
    revisions = sorted({m.group(1) for f in files if (m := re.search(r"@([0-9a-f]{40})/", f))})
    return f"Hub revision {', '.join(revisions)}" if revisions else None


def _stored_column_features(full, image_column: str, requested: list[str] | None, where: str) -> dict[str, Any]:
    from datasets import ClassLabel, Value
    from datasets import Image as ImageFeature

    features = full.features or {}
    scalar = {c: f for c, f in features.items() if isinstance(f, (Value, ClassLabel)) and c != image_column}
    if requested is None:
        chosen = {c: f for c, f in scalar.items() if c in LABEL_COLUMNS or c in ID_COLUMNS or isinstance(f, ClassLabel)}
        chosen = {c: f for c, f in chosen.items() if c not in RESERVED}
        if FILE_NAME not in features and isinstance(features.get(image_column), ImageFeature):
            chosen[FILE_NAME] = Value("string")
        return chosen
    chosen = {}
    for column in requested:
        if column in RESERVED:
            raise ValueError(
                f"--columns: {column!r} is a column of the token dataset itself ({', '.join(RESERVED)}); the split's "
                "column of that name cannot be stored"
            )
        if column == FILE_NAME and column not in features:
            if not isinstance(features.get(image_column), ImageFeature):
                raise ValueError(f"--columns: {where} has no {FILE_NAME!r} column and its images carry no paths")
            chosen[column] = Value("string")
        elif column not in features:
            raise ValueError(f"--columns: {column!r} is not a column of {where}; columns: {sorted(features)}")
        elif column not in scalar:
            raise ValueError(
                f"--columns: {column!r} of {where} is a {type(features[column]).__name__}, not an id or label "
                "(only scalar columns are stored beside the tokens)"
            )
        else:
            chosen[column] = features[column]
    return chosen


def open_token_source(
    dataset: str,
    split: str,
    image_size: int,
    streaming: bool = False,
    image_column: str | None = None,
    num_samples: int | None = None,
    columns: list[str] | None = None,
    preprocessing: Any = None,
) -> TokenSource:
    """Open ``dataset``'s ``split`` at ``image_size`` (the dataset's evaluation crop) with the columns to store:
    ``columns`` (validated) or, by default, its labels, ids and image file names. Raises the loaders' errors
    (``FileNotFoundError``, :class:`~vistok.data.DatasetUnavailableError`, ``ValueError``) for bad input.
    ``preprocessing`` (an upstream :class:`~vistok.preprocessing.Preprocessing`) replaces the evaluation crop."""
    images = build_dataset(
        dataset, split, image_size=image_size, train=False, streaming=streaming, image_column=image_column,
        num_samples=num_samples, hflip=False, preprocessing=preprocessing,
    )  # fmt: skip
    if dataset == "samples":
        if columns:
            raise ValueError("--columns: the bundled 'samples' crops have no columns besides their index")
        return TokenSource(dataset, split, images, streaming=False, num_images=len(images))
    is_stream = not hasattr(images, "__len__")
    column = images.column if is_stream else images.source.column
    full, split_used = open_full_split(dataset, split, streaming)
    hub_content = None if _is_local(dataset) else _hub_content(full)
    where = f"{dataset!r} (split {split!r})"
    chosen = _stored_column_features(full, column, columns, where)
    from datasets import Image as ImageFeature

    if full.features is not None and isinstance(full.features.get(column), ImageFeature):
        full = full.cast_column(column, ImageFeature(decode=False))
    if is_stream:
        if num_samples is not None:
            full = full.take(num_samples)
    elif num_samples is not None:
        full = full.select(range(min(num_samples, len(full))))
    root = os.path.abspath(os.path.expanduser(dataset)) if _is_local(dataset) and Path(dataset).expanduser().is_dir() else None
    return TokenSource(
        dataset, split, images, streaming=is_stream, num_images=None if is_stream else len(images), full=full,
        split_used=split_used, hub_content=hub_content,
        image_column=column, columns=list(chosen), features=chosen, file_name_root=root,
    )  # fmt: skip


def _relative_path(path: str | None, root: str | None) -> str | None:
    if path is None or root is None:
        return path
    try:
        relative = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


class _MapMetadata:
    """Reads the stored columns of a map-style split by position ranges (Arrow slices, images left unread)."""

    def __init__(self, source: TokenSource):
        self.source = source
        plain = [c for c in source.columns if c != FILE_NAME or c in (source.full.features or {})]
        self.plain = source.full.select_columns(plain) if plain else None
        self.derive_file_name = FILE_NAME in source.columns and FILE_NAME not in (source.full.features or {})
        self.paths = source.full.select_columns([source.image_column]).with_format("arrow") if self.derive_file_name else None

    def read(self, start: int, stop: int, positions: list[int]) -> dict[str, list]:
        out: dict[str, list] = {}
        if self.plain is not None:
            rows = self.plain[start:stop]
            out.update({c: [rows[c][p - start] for p in positions] for c in rows})
        if self.derive_file_name:
            import pyarrow.compute as pc

            records = self.paths[start:stop].column(self.source.image_column)
            paths = pc.struct_field(records, "path").to_pylist()
            out[FILE_NAME] = [_relative_path(paths[p - start], self.source.file_name_root) for p in positions]
        return {c: out[c] for c in self.source.columns}


@dataclass(frozen=True)
class ShardPlan:
    """Shard ``s`` holds positions ``[s · shard_size, min((s + 1) · shard_size, num_images))``."""

    shard_size: int
    num_images: int | None = None

    @property
    def num_shards(self) -> int | None:
        return None if self.num_images is None else math.ceil(self.num_images / self.shard_size)

    def positions(self, shard: int) -> range:
        stop = (shard + 1) * self.shard_size
        return range(shard * self.shard_size, stop if self.num_images is None else min(stop, self.num_images))


def owner(shard: int, world: int) -> int:
    """The process that tokenizes ``shard`` (round-robin)."""
    return shard % world


class ShardBatches(IterableDataset):
    """Collated batches of the shards to do, each batch inside one shard: ``{"pixel_values", "index",
    "num_skipped", "shard", "last", "columns"}`` (``last``: the shard's final batch). A stream yields, at its end,
    ``{"stream_length": n}``.

    Map-style: DataLoader worker ``w`` of ``W`` reads shards ``todo[w::W]`` in order by random access. Stream: one
    reader (a stream's positions must be global) goes through the whole stream, decoding only positions of shards
    ``wanted(shard)`` says to do, so a resumed run or another process's shards cost no decoding.
    """

    def __init__(self, source: TokenSource, plan: ShardPlan, batch_size: int, todo: list[int] | None = None,
                 wanted: Callable[[int], bool] | None = None):
        self.source, self.plan, self.batch_size = source, plan, batch_size
        self.todo, self.wanted = todo or [], wanted

    def __iter__(self) -> Iterator[dict]:
        if self.source.streaming:
            yield from self._stream()
        else:
            yield from self._map()

    def _batch(self, samples: list, shard: int, last: bool, columns: dict[str, list]) -> dict:
        batch = collate_images(samples)
        batch.update(shard=shard, last=last, columns=columns)
        return batch

    def _map(self) -> Iterator[dict]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        metadata = _MapMetadata(self.source) if self.source.columns else None
        images = self.source.images
        for shard in self.todo[worker::workers]:
            positions = self.plan.positions(shard)
            for start in range(positions.start, positions.stop, self.batch_size):
                stop = min(start + self.batch_size, positions.stop)
                samples = [images[i] for i in range(start, stop)]
                kept = [s["index"] for s in samples if isinstance(s, dict)]  # not the skipped ones
                columns = metadata.read(start, stop, kept) if metadata is not None else {}
                yield self._batch(samples, shard, stop == positions.stop, columns)

    def _stream(self) -> Iterator[dict]:
        images, source = self.source.images, self.source
        samples: list = []
        columns: dict[str, list] = {c: [] for c in source.columns}
        current, position = None, -1

        def flush(last: bool):
            nonlocal samples, columns
            batch = self._batch(samples, current, last, columns)
            samples, columns = [], {c: [] for c in source.columns}
            return batch

        closed = True
        for position, example in enumerate(source.full):
            shard = position // self.plan.shard_size
            if shard != current:
                if current is not None and self.wanted(current) and not closed:
                    yield flush(last=True)
                current, closed = shard, False
            if not self.wanted(shard):
                continue
            raw = example[source.image_column]
            try:
                sample = _make_sample(raw, position, images.transform, images.seed, 0)
            except (UnreadableImageError, ValueError) as err:
                sample = images.skips.record(position, err, image_file(raw))
            samples.append(sample)
            if isinstance(sample, dict):
                for c in source.columns:
                    if c == FILE_NAME and c not in example:
                        record = example[source.image_column]
                        path = record.get("path") if isinstance(record, dict) else None
                        columns[c].append(_relative_path(path, source.file_name_root))
                    else:
                        columns[c].append(example[c])
            end_of_shard = (position + 1) % self.plan.shard_size == 0
            if len(samples) == self.batch_size or end_of_shard:
                yield flush(last=end_of_shard)
                closed = end_of_shard
        if current is not None and self.wanted(current) and not closed:
            yield flush(last=True)
        yield {"stream_length": position + 1}

"""Open a split of a 🤗 dataset — by Hub id, from a local image folder, a ``save_to_disk`` folder or parquet files —
with its image column left undecoded (decoding happens per sample, so a corrupt file is skipped, not fatal).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ACCEPTED_DATASETS = (
    "`samples` (photographs bundled with scikit-image / scikit-learn, no download), a named dataset ({presets}), "
    "a 🤗 Hub dataset id (e.g. `flwrlabs/celeba`), or a local image folder (one image per file, optional train/ and "
    "test/ subfolders), `save_to_disk` folder or .parquet / .arrow file"
)
IMAGE_COLUMN_CANDIDATES = ("image", "img", "images", "jpg", "jpeg", "png", "webp", "picture", "pixel_values")
_DATA_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be loaded (no network, not cached, gated, or not found)."""


def unavailable_message(name: str, split: str, reason: str, gated: bool = False, label: str | None = None) -> str:
    """The user-facing explanation for a dataset that cannot be loaded, with the ways out."""
    shown = f"{label!r} (🤗 {name})" if label and label != name else repr(name)
    lines = [f"Could not load the dataset {shown}, split {split!r}: {reason}."]
    if gated:
        lines.append(
            f"It is gated on the Hugging Face Hub: accept its terms at https://huggingface.co/datasets/{name} "
            "and log in (`hf auth login` or the HF_TOKEN environment variable)."
        )
    lines += [
        "This machine may be offline, or the dataset is not in the local cache. Options:",
        f"  - on a connected machine run `datasets.load_dataset({name!r}, split={split!r})` (or "
        f"`hf download {name} --repo-type dataset`) and copy the cache folder (HF_HOME) here, then set HF_HUB_OFFLINE=1;",
        "  - train / evaluate on a local image folder: `--dataset /path/to/images` (one image per file, "
        "optional train/ and test/ subfolders), a parquet file or a `save_to_disk` folder;",
        "  - use the bundled photographs, which need no download: `--dataset samples`.",
    ]
    return "\n".join(lines)


@dataclass
class OpenedSplit:
    """A loaded split: a 🤗 ``Dataset`` or ``IterableDataset`` and the name of its (undecoded) image column."""

    dataset: object
    image_column: str
    description: str


def _is_local(name_or_path: str) -> bool:
    looks_like_path = name_or_path.startswith(("/", "./", "../", "~")) or any(c in name_or_path for c in "*?")
    return looks_like_path or os.path.exists(os.path.expanduser(name_or_path))


def accepted_datasets() -> str:
    """One sentence naming every kind of dataset :func:`vistok.data.build_dataset` accepts."""
    from .presets import DATASET_PRESETS

    return ACCEPTED_DATASETS.format(presets=", ".join(f"`{name}`" for name in sorted(DATASET_PRESETS)))


def check_local_dataset(name_or_path: str) -> None:
    """Raise ``FileNotFoundError`` naming the accepted datasets when ``name_or_path`` is a local path (it starts
    with ``/``, ``./``, ``../`` or ``~``) that does not exist; anything else is left to the loader."""
    if not _is_local(name_or_path) or any(ch in name_or_path for ch in "*?"):
        return
    path = os.path.expanduser(name_or_path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"the dataset folder or file {path!r} does not exist. Accepted datasets: {accepted_datasets()}."
        )


def _pick_split(splits: dict, split: str, where: str):
    """(name, data) of ``split``; a dataset with a single split gives that one whatever was asked (with a
    warning), so a plain image folder (split ``train``) serves every split; ``ValueError`` otherwise."""
    if split in splits:
        return split, splits[split]
    if len(splits) == 1:
        (only_name, only), = splits.items()
        logger.warning("%s has a single split %r; using it for the requested split %r", where, only_name, split)
        return only_name, only
    raise ValueError(f"split {split!r} not found in {where}; available splits: {sorted(splits)}")


def load_local_split(path: str, split: str, streaming: bool):
    """``(data, split_used)`` of a local dataset: the split's 🤗 dataset and the name of the split actually read
    (another than ``split`` when the dataset has a single one; ``None`` for a ``save_to_disk`` dataset without
    splits, read whole)."""
    import datasets

    check_local_dataset(path)
    path = os.path.expanduser(path)
    local = Path(path)
    if local.is_dir() and (local / "dataset_dict.json").exists():
        used, data = _pick_split(dict(datasets.load_from_disk(path)), split, path)
        return (data.to_iterable_dataset() if streaming else data), used
    if local.is_dir() and (local / "state.json").exists():
        logger.warning("%s is a dataset without splits; reading all of it for the requested split %r", path, split)
        data = datasets.load_from_disk(path)
        return (data.to_iterable_dataset() if streaming else data), None
    if local.is_dir():
        builder, kwargs = "imagefolder", {"data_dir": path}
    else:
        suffix = "".join(Path(path).suffixes[-1:])
        if suffix not in _DATA_FILE_BUILDERS:
            raise ValueError(
                f"cannot read {path!r}: expected an image folder, a save_to_disk folder, or "
                f"{'/'.join(_DATA_FILE_BUILDERS)} data files"
            )
        builder, kwargs = _DATA_FILE_BUILDERS[suffix], {"data_files": path}
    splits = datasets.load_dataset(builder, streaming=streaming, **kwargs)
    used, data = _pick_split(dict(splits), split, path)
    return data, used


def _load_hub(name: str, split: str, streaming: bool, gated: bool, label: str | None):
    import datasets
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    try:
        return datasets.load_dataset(name, split=split, streaming=streaming)
    except (GatedRepoError, DatasetNotFoundError) as err:
        is_gated = gated or isinstance(err, GatedRepoError) or "gated" in str(err).lower()
        reason = "it is gated and you have no access" if is_gated else f"it was not found ({err})"
        raise DatasetUnavailableError(unavailable_message(name, split, reason, gated=is_gated, label=label)) from err
    except (ConnectionError, OSError, HfHubHTTPError) as err:
        reason = f"{type(err).__name__}: {err}"
        raise DatasetUnavailableError(unavailable_message(name, split, reason, gated=gated, label=label)) from err


def _can_hold_images(feature) -> bool:
    """Whether a column of this feature can hold images: an ``Image`` feature, encoded bytes, file paths or a
    ``{"bytes", "path"}`` struct."""
    from datasets import Image as ImageFeature
    from datasets import Value

    if isinstance(feature, ImageFeature):
        return True
    if isinstance(feature, Value):
        return feature.dtype in ("string", "large_string", "binary", "large_binary")
    return isinstance(feature, dict) and bool({"bytes", "path"} & set(feature))


def find_image_column(features, column: str | None, where: str) -> str:
    """The image column: ``column`` if given (must exist), else the first ``Image`` feature or a usual name."""
    from datasets import Image as ImageFeature

    names = list(features) if features is not None else []
    if column is not None:
        if features is not None and column not in names:
            raise ValueError(f"image_column {column!r} not in {where}; columns: {names}")
        if features is not None and not _can_hold_images(features[column]):
            raise ValueError(
                f"image_column {column!r} of {where} is a {type(features[column]).__name__} column "
                f"({features[column]}), not images (an Image feature, encoded bytes or file paths); columns: {names}"
            )
        return column
    for name in names:
        if isinstance(features[name], ImageFeature):
            return name
    for name in IMAGE_COLUMN_CANDIDATES:
        if name in names:
            return name
    raise ValueError(f"no image column found in {where} (columns: {names}); pass image_column=...")


def open_split(
    name_or_path: str,
    split: str,
    streaming: bool = False,
    image_column: str | None = None,
    gated: bool = False,
    label: str | None = None,
) -> OpenedSplit:
    """Load ``split`` of a Hub dataset or a local dataset, keep only the image column, and leave it undecoded.

    Raises :class:`DatasetUnavailableError` (with instructions) when a Hub dataset cannot be reached or is gated,
    ValueError for an unknown split or image column. ``label`` is the user-facing name (e.g. a preset name).
    """
    from datasets import Image as ImageFeature

    if _is_local(name_or_path):
        data, _ = load_local_split(name_or_path, split, streaming)
    else:
        data = _load_hub(name_or_path, split, streaming, gated, label)
    where = f"{name_or_path!r} (split {split!r})"
    column = find_image_column(data.features, image_column, where)
    if data.features is not None:
        data = data.select_columns([column])
        if isinstance(data.features[column], ImageFeature):
            data = data.cast_column(column, ImageFeature(decode=False))
    return OpenedSplit(dataset=data, image_column=column, description=where)

"""Loading zoo entries: fetch the upstream files, convert them once, and serve later loads from the converted cache.

``load_pretrained(name)`` is what ``create_tokenizer(name, pretrained=True)`` and
``VisTokenizer.from_pretrained(<zoo name or catalogued repo id>)`` call. The first load downloads through
huggingface_hub (``revision``, ``cache_dir``, ``token``, ``local_files_only``, ``force_download`` forwarded),
converts with the entry's converter and writes the result into the converted cache (:mod:`.cache`); later loads
verify that cache entry and read only its safetensors — no unpickling, no conversion.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ..architecture import build_modules
from ..cards import vocabulary_size
from ..configuration import VisTokenizerConfig
from ..families import ZooEntry, get_family
from ..families.catalogue import entry_preprocessing_metadata, get_entry, zoo_names
from ..modeling import VisTokenizer
from ..registry import PRESETS
from .cache import cache_key, check_entry, entry_dir, entry_lock, write_entry
from .fetch import FetchedFiles, fetch_entry

logger = logging.getLogger(__name__)

# Options of a net / quantizer spec that change what the tokenizer computes (loss weights and training-only
# options such as dropout do not).
ARCHITECTURE_QUANTIZER_KEYS = (
    "type",
    "codebook_size",
    "codebook_dim",
    "l2_norm",
    "levels",
    "bit_order",
    "projection_bias",
    "patch_nums",
    "num_phi_convs",
    "phi_ratio",
)
TRAINING_ONLY_NET_KEYS = ("dropout",)


class ZooArchitectureWarning(UserWarning):
    """A zoo entry's file has another architecture than the catalogue records (a fine-tuned variant, a stand-in);
    it was loaded as the file describes it."""


def load_pretrained(name: str, *, tqdm_class: Any = None, **hub: Any) -> VisTokenizer:
    """The zoo entry ``name`` as an eval-mode :class:`~vistok.VisTokenizer`.

    ``hub`` takes huggingface_hub's ``revision``, ``cache_dir``, ``token``, ``local_files_only`` and
    ``force_download`` (which also rebuilds the converted cache entry). Raises ``KeyError`` for an unknown name
    (closest names listed), :class:`~vistok.zoo.fetch.ZooDownloadError` when the files cannot be fetched, and the
    converter's :class:`~vistok.convert.CheckpointError` when a file is not in the format the entry expects.
    """
    entry = get_entry(name)
    fetched = fetch_entry(entry, tqdm_class=tqdm_class, **hub)
    folder = converted_folder(entry, fetched)
    force = bool(hub.get("force_download"))
    if force or check_entry(folder) is not None:
        # One process converts; the others (8 ranks of one launch) wait here and then read its result.
        with entry_lock(folder):
            problem = check_entry(folder)
            if force or problem is not None:
                if problem not in (None, "missing"):
                    logger.warning("converted cache entry %s is damaged (%s); converting again", folder, problem)
                tok = convert_entry(entry, fetched)
                write_entry(folder, _saver(tok), _identity(entry, fetched), replace=force)
                warn_if_architecture_differs(entry, tok.config)
                return tok.eval()
    tok = VisTokenizer.from_pretrained(str(folder))
    warn_if_architecture_differs(entry, tok.config)
    return tok.eval()


def convert_entry(entry: ZooEntry, fetched: FetchedFiles) -> VisTokenizer:
    """Run the entry's converter on the fetched files and record where they came from in ``config.metadata``."""
    converter = get_family(entry.converter).convert
    tok = converter(str(fetched.main), image_size=entry.image_size, **entry.converter_options)
    meta = dict(tok.config.metadata or {})
    meta["zoo"] = {**entry.zoo_metadata(), "commit": fetched.commit, "files": sorted(fetched.files)}
    # The authors' numbers describe their release: not a file of another architecture under the same name.
    if entry.reported_metrics and "reported_metrics" not in meta and not architecture_differences(entry, tok.config):
        meta["reported_metrics"] = entry.reported_metrics_metadata()
    # the folder's processor runs the upstream pipeline (VisTokenizerImageProcessor.for_config)
    meta.update(entry_preprocessing_metadata(entry))
    tok.config.metadata = meta
    tok.config.source = f"vistok zoo entry {entry.name} ({entry.repo_id}, {Path(fetched.main).name})"
    return tok


def converted_folder(entry: ZooEntry, fetched: FetchedFiles) -> Path:
    return entry_dir(entry.name, cache_key(_identity(entry, fetched)))


def _identity(entry: ZooEntry, fetched: FetchedFiles) -> dict[str, Any]:
    return {
        "entry": entry.name,
        "repo_id": entry.repo_id,
        "commit": fetched.commit,
        "files": fetched.content_ids(),
        "converter": entry.converter,
        "converter_code": get_family(entry.converter).code_hash(),
        "converter_options": entry.converter_options,
        "image_size": entry.image_size,
    }


def _saver(tok: VisTokenizer):
    def save(folder: Path) -> None:
        tok.save_pretrained(folder)  # config.json, model.safetensors, preprocessor_config.json, README.md card

    return save


def architecture_differences(entry: ZooEntry, config: VisTokenizerConfig) -> list[str]:
    """``"net.base_channels: catalogue 128, file 32"``-style lines for every architecture option in which
    ``config`` differs from the preset the entry records (empty when it has none or they agree)."""
    if entry.preset is None:
        return []
    expected = expected_config(entry)
    lines = []
    for part, keys in (("net", None), ("quantizer", ARCHITECTURE_QUANTIZER_KEYS)):
        want, have = _resolved(expected, part), _resolved(config, part)
        names = keys or sorted((set(want) | set(have)) - set(TRAINING_ONLY_NET_KEYS))
        for key in names:
            if want.get(key) != have.get(key):
                lines.append(f"{part}.{key}: catalogue {want.get(key)!r}, file {have.get(key)!r}")
    return lines


def _resolved(config: VisTokenizerConfig, part: str) -> dict[str, Any]:
    """The ``net`` / ``quantizer`` spec with options left at ``None`` ("the family's default") replaced by the value
    the net actually uses (e.g. vqgan's ``attention_levels``), so equal architectures compare equal."""
    spec = dict(getattr(config, part))
    if part == "net":
        family = config.net_family()
        spec = {k: getattr(family, k, v) if v is None else v for k, v in spec.items()}
    return spec


def expected_config(entry: ZooEntry) -> VisTokenizerConfig:
    """The config the catalogue expects for ``entry``: its preset at the entry's resolution."""
    preset = PRESETS.get(entry.preset)
    net = dict(preset.config["net"])
    if "image_size" in net:  # a net with fixed position embeddings (TiTok) is sized like the tokenizer
        net["image_size"] = entry.image_size
    return VisTokenizerConfig(**{**preset.config, "net": net, "image_size": entry.image_size})


def warn_if_architecture_differs(entry: ZooEntry, config: VisTokenizerConfig) -> None:
    differences = architecture_differences(entry, config)
    if differences:
        warnings.warn(
            ZooArchitectureWarning(
                f"zoo entry {entry.name!r}: the file's architecture differs from the catalogued one "
                f"({'; '.join(differences)}); loaded as the file describes it"
            ),
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------------- listing
def list_pretrained() -> list[dict[str, Any]]:
    """One row per zoo entry: name, description, source (repo and file, or where to get it), tokens per image,
    codebook size, fp32 weight bytes, licence (and whether it is permissive), the authors' reported rFID, whether the
    download is a whole larger release the tokenizer is part of, and whether it is cached
    (``"converted"``, ``"downloaded"`` or ``"no"``), in name order."""
    rows = []
    for name in zoo_names():
        entry = get_entry(name)
        row: dict[str, Any] = {
            "name": name,
            "description": entry.description,
            "source": _source(entry),
            "license": entry.license.name,
            "permissive_license": entry.license.permissive,
            "reported_rfid": entry.reported("rfid"),
            "whole_release_download": entry.tensor_prefix is not None,
            "cached": cache_state(entry),
        }
        if entry.preset is not None:
            config = expected_config(entry)
            row["tokens_per_image"] = config.tokens_per_image()
            row["codebook_size"] = vocabulary_size(config)
            row["weights_bytes"] = 4 * parameter_count(config)
        rows.append(row)
    return rows


def _source(entry: ZooEntry) -> str:
    if not entry.on_hub:
        return "not on the Hub (see zoo info)"
    if len(entry.filenames) == 1:
        return f"{entry.repo_id}/{entry.filenames[0]}"
    return f"{entry.repo_id} (the first present of {' / '.join(entry.filenames)})"


def parameter_count(config: VisTokenizerConfig) -> int:
    """Parameters of the tokenizer ``config`` describes (built on the meta device: no memory)."""
    with torch.device("meta"):
        return build_modules(config).num_parameters()


def cache_state(entry: ZooEntry) -> str:
    """``"converted"`` when a converted cache entry exists for the cached files, ``"downloaded"`` when only the
    upstream files are in the HF cache, else ``"no"``. Never touches the network."""
    if not entry.on_hub:
        return "no"
    try:
        fetched = fetch_entry(entry, local_files_only=True)
    except OSError:
        return "no"
    folder = converted_folder(entry, fetched)
    return "converted" if check_entry(folder, verify_hashes=False) is None else "downloaded"


def download(name: str, **hub: Any) -> tuple[FetchedFiles, Path, float]:
    """Fetch and convert the entry ``name`` (for a cluster without network: copy the HF cache and the vistok cache
    afterwards). Returns the fetched files, the converted cache folder and the seconds it took."""
    start = time.perf_counter()
    load_pretrained(name, **hub)
    entry = get_entry(name)
    fetched = fetch_entry(entry, **{**hub, "force_download": False})
    return fetched, converted_folder(entry, fetched), time.perf_counter() - start

"""The tokenizing loop: each process encodes its shards (DataLoader workers decode images meanwhile) and writes them;
the main process merges the shards into one dataset at the end."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..entropy import outside_codebook
from ..version import __version__
from .card import render_dataset_card
from .source import ShardBatches, ShardPlan, TokenSource, owner
from .store import TokenStore
from .variants import expand_variants, source_size, variants_for

DEFAULT_SHARD_SIZE = 4096
CONVENTIONS = {
    "pixels": "RGB, float32 in [-1, 1] (0 ↦ -1, 255 ↦ 1) after the crop, as vistok's image processor prepares them",
    "reading_order": "row-major for a grid; the sequence order for 1-D tokens; scales coarse to fine, each "
    "row-major, for multi-scale tokens (vistok.layouts TokenLayout.flatten)",
    "rows": "sorted by source position (index), then variant: un-mirrored crops before mirrored ones",
}


@dataclass
class TokenizeOptions:
    """Everything that decides the tokens, plus how fast they are made (batch size, workers, compile)."""

    image_size: int
    flip: str = "none"
    ten_crop: bool = False
    shard_size: int = DEFAULT_SHARD_SIZE
    batch_size: int = 32
    num_workers: int = 0
    dtype: str = "float32"
    compile: bool = False
    resume: bool = False
    overwrite: bool = False
    progress: bool = False
    model_ids: Any = None  # a vistok.model_ids.ModelIdMap: store the model's vocabulary ids instead of indices
    extra: dict = field(default_factory=dict)


def weights_sha256(tok: Any) -> str:
    """sha256 over the tokenizer's state dict (names, dtypes, shapes, values in order): which weights made the
    tokens, whatever file they came from."""
    digest = hashlib.sha256()
    for name, tensor in tok.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


DESCRIPTIVE_CONFIG_FIELDS = ("preset", "source", "metadata")  # vistok config fields that change no token


def config_sha256(tok: Any) -> str:
    """sha256 of what the tokenizer's config decides beyond its weights: ``model_type`` and every field vistok's
    config class adds (image size, net and quantizer specs — LFQ bit order, VQ l2_norm, pixel range…), without
    the descriptive ones (preset and source names, metadata) and transformers' bookkeeping (name_or_path,
    transformers_version, output flags …)."""
    from transformers import PreTrainedConfig

    config = tok.config
    full = config.to_dict()
    inherited = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    decisive = {"model_type": full.get("model_type")}
    decisive.update({f.name: full.get(f.name) for f in dataclasses.fields(config)
                     if f.name not in inherited and f.name not in DESCRIPTIVE_CONFIG_FIELDS})  # fmt: skip
    return hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode()).hexdigest()


def tokenizer_record(tok: Any, name: str) -> dict[str, Any]:
    config = tok.config
    full = config.to_dict()
    metadata = full.pop("metadata", None) or {}
    return {
        "name": name,
        "weights_sha256": weights_sha256(tok),
        "config_sha256": config_sha256(tok),
        "revision": getattr(config, "_commit_hash", None),
        "net": config.net.get("type") if isinstance(config.net, dict) else config.net,
        "quantizer": config.quantizer.get("type") if isinstance(config.quantizer, dict) else config.quantizer,
        "preset": getattr(config, "preset", None),
        "codebook_size": int(tok.codebook_size),
        "downsample_factor": int(tok.downsample_factor),
        "native_image_size": int(config.image_size),
        "config": {k: v for k, v in full.items() if not k.startswith("_")},
        "metadata": {k: v for k, v in metadata.items() if k != "evaluation"},
    }


def latent_hw_at(tok: Any, image_size: int) -> tuple[int, int]:
    """(h, w) of the latent of ``image_size``² images; ``ValueError`` when the tokenizer cannot take that size."""
    f = tok.downsample_factor
    layout = tok.token_layout
    if image_size % f:
        raise ValueError(f"--image-size {image_size} is not a multiple of the tokenizer's downsample factor {f}")
    if layout.kind == "sequence":
        if image_size != tok.config.image_size:
            raise ValueError(
                f"this tokenizer turns {tok.config.image_size}-px images into a 1-D sequence (fixed position "
                f"embeddings): --image-size must be {tok.config.image_size}, got {image_size}"
            )
        return tuple(tok.config.latent_hw)
    hw = (image_size // f, image_size // f)
    layout.spec(hw)  # a multi-scale tokenizer checks its finest scale here
    return hw


def _framing(identity: dict, dataset: str) -> str:
    """How the images were framed: the upstream pipeline the identity records, else the dataset's crop."""
    recorded = identity.get("preprocessing")
    if isinstance(recorded, dict):
        from ..preprocessing import Preprocessing

        return "upstream: " + Preprocessing.from_dict(recorded).describe()
    return crop_description(dataset)


def crop_description(dataset: str) -> str:
    from ..data import DATASET_PRESETS

    if dataset == "samples":
        return "square crops of the bundled photographs (position and size fixed by the index), bicubic resize"
    preset = DATASET_PRESETS.get(dataset)
    if preset is not None:
        return f"the {dataset} preset's evaluation crop ({preset.notes})"
    return "ADM centre crop (shorter side resized to the resolution with box-halving then bicubic, centre square)"


def build_features(source: TokenSource, storage_dtype: str, tokens: int):
    import datasets

    return datasets.Features({
        "index": datasets.Value("int64"),
        **source.features,
        "crop": datasets.Value("string"),
        "flip": datasets.Value("bool"),
        "indices": datasets.List(datasets.Value(storage_dtype), length=tokens),
    })  # fmt: skip


class _Wanted:
    """Shards this process does in a stream: its own, not finished.

    Not ``datasets.distributed.split_dataset_by_node``: its ``"examples"`` strategy gives a process single examples
    in turn and ``"shards"`` whole files of the stream, while a shard here must be the positions
    ``[s · S, (s + 1) · S)`` of the whole split (what one process writes and a resumed run, with any number of
    processes, finds finished), so every process reads the stream and decodes only its own shards' images."""

    def __init__(self, done: set[int], rank: int, world: int):
        self.done, self.rank, self.world = done, rank, world

    def __call__(self, shard: int) -> bool:
        return owner(shard, self.world) == self.rank and shard not in self.done


class _ShardRows:
    """Rows of one shard collected batch by batch, turned into one Arrow table."""

    def __init__(self, features, storage_dtype: str):
        self.schema = features.arrow_schema
        self.storage = np.dtype(storage_dtype)
        self.parts: list = []
        self.num_images = 0
        self.num_skipped = 0
        self.started = time.perf_counter()

    def add(self, positions: np.ndarray, columns: dict[str, list], variants, flat: np.ndarray) -> None:
        import pyarrow as pa

        repeat = len(variants)
        arrays = {
            "index": pa.array(np.repeat(positions, repeat), type=pa.int64()),
            **{c: pa.array([v for v in values for _ in range(repeat)], type=self.schema.field(c).type)
               for c, values in columns.items()},
            "crop": pa.array([v.crop for v in variants] * len(positions), type=pa.string()),
            "flip": pa.array([v.flip for v in variants] * len(positions), type=pa.bool_()),
            "indices": pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(self.storage).ravel()), flat.shape[1]),
        }  # fmt: skip
        self.parts.append(pa.Table.from_arrays([arrays[f.name] for f in self.schema], schema=self.schema))

    def table(self):
        import pyarrow as pa

        return pa.concat_tables(self.parts).combine_chunks() if self.parts else self.schema.empty_table()


def _progress_bar(enabled: bool, total: int | None, rank: int, world: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    desc = "tokenizing" + (f" (process 0 of {world})" if world > 1 else "")
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def tokenize_shards(tok: Any, fast: Any, source: TokenSource, store: TokenStore, plan: ShardPlan,
                    options: TokenizeOptions, features, storage_dtype: str, rank: int, world: int,
                    device: torch.device) -> dict[str, Any]:
    """This process's part: encode and write every unfinished shard it owns. Returns its counts and the stream
    length (streams only)."""
    variants = variants_for(options.flip, options.ten_crop)
    done = set(store.finished())
    if source.streaming:
        batches = ShardBatches(source, plan, options.batch_size, wanted=_Wanted(done, rank, world))
        workers, total = min(options.num_workers, 1), None  # one reader keeps stream positions global
    else:
        todo = [s for s in range(plan.num_shards) if owner(s, world) == rank and s not in done]
        batches = ShardBatches(source, plan, options.batch_size, todo=todo)
        workers, total = min(options.num_workers, max(len(todo), 1)), sum(len(plan.positions(s)) for s in todo)
    loader = DataLoader(batches, batch_size=None, num_workers=workers, pin_memory=device.type == "cuda")
    bar = _progress_bar(options.progress and rank == 0, total, rank, world)
    open_shards: dict[int, _ShardRows] = {}
    counts = {"num_images": 0, "num_skipped": 0, "num_rows": 0, "shards_written": 0, "stream_length": None}
    layout, codebook = tok.token_layout, tok.codebook_size
    for batch in loader:
        if "stream_length" in batch:
            counts["stream_length"] = int(batch["stream_length"])
            continue
        shard = int(batch["shard"])
        rows = open_shards.setdefault(shard, _ShardRows(features, storage_dtype))
        rows.num_skipped += int(batch["num_skipped"])
        pixels = batch["pixel_values"]
        if pixels.numel():
            x = expand_variants(pixels.to(device, non_blocking=True), variants, options.image_size)
            flat = layout.flatten(fast.encode(x)).cpu().numpy()
            if flat.size and outside_codebook(int(flat.min()), int(flat.max()), codebook):
                raise RuntimeError(f"the tokenizer returned ids outside [0, {codebook}): {flat.min()}…{flat.max()}")
            if options.model_ids is not None:
                flat = options.model_ids.to_model_ids(flat).numpy()
            rows.add(batch["index"].numpy(), batch["columns"], variants, flat)
            rows.num_images += len(pixels)
        if bar is not None:
            bar.update(len(pixels) + int(batch["num_skipped"]))
        if batch["last"]:
            rows = open_shards.pop(shard)
            start = plan.positions(shard).start
            table = rows.table()
            store.write_shard(shard, table, {
                "positions": [start, start + rows.num_images + rows.num_skipped], "num_images": rows.num_images,
                "num_skipped": rows.num_skipped, "seconds": round(time.perf_counter() - rows.started, 3),
                "process": rank,
            })  # fmt: skip
            counts["num_images"] += rows.num_images
            counts["num_skipped"] += rows.num_skipped
            counts["num_rows"] += table.num_rows
            counts["shards_written"] += 1
    if bar is not None:
        bar.close()
    if open_shards:
        raise RuntimeError(f"internal error: shards {sorted(open_shards)} were read but never completed")
    return counts


def make_manifest(tok_record: dict, identity: dict, source: TokenSource, options: TokenizeOptions, layout_spec: dict,
                  layout_description: str, tokens: int, storage_dtype: str, records: list[dict],
                  num_positions: int) -> dict[str, Any]:
    variants = variants_for(options.flip, options.ten_crop)
    return {
        "format": "vistok-tokens",
        "format_version": 1,
        "vistok_version": __version__,
        "identity": identity,
        "tokenizer": tok_record,
        "token_layout": layout_spec,
        "token_layout_description": layout_description,
        "tokens_per_image": tokens,
        "token_dtype": storage_dtype,
        "dataset": {
            "name": source.name, "split": source.split_read, "split_requested": source.split,
            "image_column": source.image_column, "content": identity.get("split_content"),
            "num_samples": identity["num_samples"], "columns": ["index", *source.columns],
        },
        "preprocessing": {
            "image_size": options.image_size, "crop": _framing(identity, source.name), "flip": options.flip,
            "ten_crop": options.ten_crop, "source_size": source_size(options.image_size, options.ten_crop),
            "variants": [{"crop": v.crop, "flip": v.flip} for v in variants],
        },
        "inference": {"dtype": options.dtype, "compile": options.compile},
        "counts": {
            "num_positions": num_positions,
            "num_images": sum(r["num_images"] for r in records),
            "num_skipped": sum(r["num_skipped"] for r in records),
            "num_rows": sum(r["num_rows"] for r in records),
        },
        "conventions": CONVENTIONS,
    }  # fmt: skip


def card_for(manifest: dict) -> str:
    return render_dataset_card(manifest)

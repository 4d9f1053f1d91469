"""Measure tokenizers' reconstructions on a dataset split: codebook usage, PSNR, SSIM, LPIPS and rFID.

    vistok evaluate --model runs/celeba-vq/final --dataset celeba64 --split test
    vistok evaluate --model a/ --model b/ --dataset samples          # several models, one table
    vistok evaluate --model vqgan-llamagen-vq16 --dataset imagenet256 --protocol llamagen   # LlamaGen's conventions
    accelerate launch --multi_gpu --num_processes 8 -m vistok.evaluate --model org/repo --dataset imagenet256
    torchrun --nproc_per_node 2 -m vistok.evaluate --device cpu ...  # multi-process on CPU (gloo)

--protocol fixes every convention that changes the numbers (split, framing, uint8 conversion, SSIM, LPIPS
network, resize into Inception, rFID reference): `upstream` (default: vistok's metrics on the pixels each
tokenizer's upstream pipeline builds), `vistok` (vistok's generic preprocessing: identical pixels for every
tokenizer), `llamagen`, `torch-fidelity`, `clean-fid`, `original-resolution` (docs/evaluation.md). The report
records the protocol and each convention.

Images are split between processes without padding or repetition, so a multi-process run measures exactly the
images (and the data order, for the codebook-usage queue) of a single-process run; results are gathered once.
Prints the seed-style table and writes a JSON report (every number, the conventions, each model's config summary,
the vistok version) plus a code-histogram PNG per model. LPIPS / rFID are skipped, with a how-to, when their
pretrained backbones cannot be found.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset

from .metrics import METRIC_NAMES, ReconstructionMetrics, load_backbones, save_code_histogram
from .metrics.base import distributed_world
from .metrics.model_card import card_summary, record_evaluation
from .metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, get_protocol, reconstructions_to_uint8
from .metrics.report import format_results_table, format_skipped, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME",
        help="any tokenizer name: a folder, vistok/<name>, a zoo name or upstream repo id (its published weights), a "
        "vistok Hub repo; repeat for a side-by-side table",
    )
    parser.add_argument(
        "--dataset", default="samples", help="celeba64, imagenet256, samples, a Hub id or a folder"
    )
    parser.add_argument(
        "--split", default=None, help="dataset split (default: the protocol's — validation for the upstream "
        "projects' protocols — else test)"
    )
    parser.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        choices=list(PROTOCOLS),
        help=f"evaluation conventions (default: {DEFAULT_PROTOCOL}); see docs/evaluation.md",
    )
    parser.add_argument(
        "--preprocessing",
        choices=("upstream", "generic"),
        default=None,
        help="frame images with each tokenizer's upstream pipeline, or vistok's generic preprocessing (identical "
        "pixels for every tokenizer), instead of the protocol's framing; the report records it",
    )
    parser.add_argument(
        "--rfid-reference",
        default=None,
        metavar="NPZ",
        help="compare reconstructions with this .npz (arr_0 uint8 images of the same split, e.g. LlamaGen's "
        "val_ddp.py output, or mu/sigma) instead of their originals; generation reference batches are refused",
    )
    parser.add_argument("--image-column", default=None, help="image column of a Hub / local dataset")
    parser.add_argument(
        "--image-size", type=int, default=None, help="evaluation resolution (default: the model's)"
    )
    parser.add_argument("--num-samples", type=int, default=None, help="evaluate the first N images only")
    parser.add_argument(
        "--streaming", action="store_true", help="stream the dataset instead of downloading it"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="images per batch and process (default: 32)"
    )
    parser.add_argument(
        "--num-workers", type=int, default=min(4, os.cpu_count() or 1), help="DataLoader worker processes"
    )
    parser.add_argument(
        "--metrics",
        default=",".join(METRIC_NAMES),
        help=f"comma-separated subset of {','.join(METRIC_NAMES)} (default: all)",
    )
    parser.add_argument("--lpips-weights", default=None, help="torchvision vgg16 state dict file for LPIPS")
    parser.add_argument("--inception-weights", default=None, help="pt_inception-2015-12-05 file for rFID")
    parser.add_argument("--no-download", action="store_true", help="never download backbone weights")
    parser.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:1 … (default: cuda when available; under accelerate: its)",
    )
    parser.add_argument(
        "--queue-size", type=int, default=65_536, help="codebook-usage queue length (seed: 65536)"
    )
    parser.add_argument(
        "--reconstructions-dir",
        "--save-dir",
        dest="save_dir",
        metavar="DIR",
        default=None,
        help="write reconstructions as PNG to DIR/<model>/<index>.png (--save-dir is the older spelling)",
    )
    parser.add_argument(
        "--output", metavar="FILE", default=None, help="JSON report path (default: evaluation/<dataset>_<split>.json)"
    )
    parser.add_argument(
        "--update-card",
        action="store_true",
        help="store the numbers with each (local) model: config metadata, eval_results.json and README.md",
    )
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="allow preset names (random weights; for smoke tests and speed measurements only)",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "bf16"),
        default="float32",
        help="bf16: encoder and decoder with bfloat16 weights, the code search in float32 (a GPU option; "
        "see vistok.inference.fast_inference). The results record it",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder and decoder")


# ----------------------------------------------------------------------------------------------- models
@dataclass
class ModelSpec:
    """A model to evaluate, resolved (config only) before any work is done."""

    name: str
    config: Any
    local_dir: Path | None
    random_model: Any = None  # the randomly initialised preset model (``--random-init``)
    resolved: Any = None  # the name as vistok.resolver resolved it

    def load(self):
        if self.random_model is not None:
            return self.random_model.eval()
        from .factory import load_resolved

        return load_resolved(self.resolved)


def resolve_model(name: str, random_init: bool = False) -> ModelSpec:
    """Read a model's config before any work is done: any name vistok resolves (a folder, a Hub repo,
    ``vistok/<name>``, a zoo name or catalogued upstream repo id) or — with ``random_init`` — a preset's or zoo
    entry's architecture with random weights.

    Raises ``OSError`` / ``ValueError`` that say what is missing and how to provide it.
    """
    from .factory import load_tokenizer, read_config
    from .resolver import resolve_weights

    if random_init:
        model = load_tokenizer(name, random_init=True)
        return ModelSpec(name, model.config, None, random_model=model)
    resolved = resolve_weights(name, random_init_option="--random-init")
    try:
        config = read_config(resolved)
    except OSError as error:
        from .resolver import ZOO, hub_load_message

        if resolved.kind == ZOO:  # the zoo's own errors already say what is missing
            raise
        raise OSError(hub_load_message(resolved.path, error)) from error
    local = Path(resolved.path) if resolved.kind in ("folder", "bundled") else None
    return ModelSpec(name, config, local, resolved=resolved)


def check_compatible(spec: ModelSpec, image_size: int | None) -> None:
    """Raise ``ValueError`` when the model cannot run on RGB images of ``image_size``² (``None``: images of any
    size padded to a multiple of its downsampling factor, which needs a grid of tokens)."""
    config = spec.config
    if config.num_channels != 3:
        raise ValueError(
            f"model {spec.name!r} expects {config.num_channels}-channel images, but datasets yield RGB (3 channels)"
        )
    if image_size is None:
        if config.token_layout.kind != "grid":
            raise ValueError(
                f"model {spec.name!r} produces a {config.token_layout.kind} of tokens for {config.image_size}-px "
                "images, so it cannot take full-size images of other sizes (the original-resolution protocol); "
                "choose another --protocol"
            )
        return
    factor = config.downsample_factor
    if image_size % factor:
        raise ValueError(
            f"model {spec.name!r} downsamples by {factor}, so the evaluation resolution must be a multiple of "
            f"{factor}; got {image_size} (choose --image-size accordingly)"
        )


def token_grid(image_size: int, downsample_factor: int) -> list[int]:
    """[h, w] tokens of a square ``image_size``² image (``check_compatible`` has checked the divisibility)."""
    side = image_size // downsample_factor
    return [side, side]


def token_layout_summary(config: Any, image_size: int) -> dict[str, Any]:
    """``token_layout`` (see :meth:`vistok.layouts.TokenLayout.spec`) and ``tokens_per_image`` at ``image_size``."""
    layout = config.token_layout
    side = image_size // config.downsample_factor
    latent_hw = config.latent_hw if layout.kind == "sequence" else (side, side)
    return {"token_layout": layout.spec(latent_hw), "tokens_per_image": layout.tokens_per_image(latent_hw)}


def config_summary(spec: ModelSpec, tok: Any, image_size: int) -> dict[str, Any]:
    """The model as evaluated: ``image_size`` and ``tokens`` are those of the evaluation resolution
    (``native_image_size`` is the config's), so the grid is the one the reconstructions were made from."""
    config = spec.config
    return {
        "image_size": image_size,
        "native_image_size": config.image_size,
        "num_channels": config.num_channels,
        "downsample_factor": config.downsample_factor,
        # the token grid for grid tokenizers; other layouts are described by token_layout alone
        "tokens": token_grid(image_size, config.downsample_factor) if config.token_layout.kind == "grid" else None,
        **token_layout_summary(config, image_size),
        "codebook_size": tok.codebook_size,
        "codebook_dim": tok.codebook_dim,
        "net": config.net,
        "quantizer": config.quantizer,
        "preset": config.preset,
        "source": config.source,
        "num_parameters": sum(p.numel() for p in tok.parameters()),
        "random_init": spec.random_model is not None,
    }


# ------------------------------------------------------------------------------------------------- data
class _EveryNthItem(IterableDataset):
    """Items ``rank, rank + world, …`` of an iterable dataset (each process reads the stream and keeps its share)."""

    def __init__(self, dataset: IterableDataset, rank: int, world: int):
        self.dataset, self.rank, self.world = dataset, rank, world

    def __iter__(self):
        for position, item in enumerate(self.dataset):
            if position % self.world == self.rank:
                yield item


def shard_for_process(dataset: Dataset, rank: int, world: int) -> Dataset:
    """This process's share of ``dataset``: items ``rank::world``, never padded or repeated."""
    if world == 1:
        return dataset
    if isinstance(dataset, IterableDataset):
        return _EveryNthItem(dataset, rank, world)
    return Subset(dataset, range(rank, len(dataset), world))


def dataset_context(name: str, split: str, image_size: int) -> dict[str, Any]:
    """How the dataset is named in reports and model cards."""
    from .data import DATASET_PRESETS

    preset = DATASET_PRESETS.get(name)
    if preset is not None:
        return {"dataset": name, "dataset_id": preset.hub_id, "split": split, "image_size": image_size}
    if name == "samples":
        return {
            "dataset": "samples (vistok's bundled photos)",
            "dataset_id": "samples",
            "split": split,
            "image_size": image_size,
        }
    dataset_id = Path(name).name if Path(name).exists() else name
    return {"dataset": name, "dataset_id": dataset_id, "split": split, "image_size": image_size}


# ---------------------------------------------------------------------------------------------- framing
@dataclass(frozen=True)
class Framing:
    """How the images one model sees were made from the dataset's photos (recorded in its report).

    ``source``: ``generic`` (vistok's: the dataset preset's crop, else ADM's centre crop), ``upstream`` (the
    tokenizer's recorded pipeline), ``pipeline`` (the protocol's fixed pipeline) or ``original`` (full size, padded
    to ``pad_multiple``)."""

    source: str
    pipeline: Any = None  # a vistok.preprocessing.Preprocessing (for ``upstream`` / ``pipeline``)
    pad_multiple: int | None = None
    note: str | None = None

    def key(self) -> tuple:
        return (self.source, self.pipeline, self.pad_multiple)

    def to_dict(self, image_size: int) -> dict[str, Any]:
        pipeline = self.pipeline.at(image_size) if self.pipeline is not None else None
        if self.source == "original":
            described = f"full size, padded to a multiple of {self.pad_multiple} and cropped back"
        elif pipeline is not None:
            described = pipeline.describe()
        else:
            described = "vistok generic (the dataset preset's evaluation crop, else ADM centre crop)"
        return {"source": self.source, "pipeline": pipeline.to_dict() if pipeline else None,
                "pad_multiple": self.pad_multiple, "describe": described, "note": self.note}  # fmt: skip


def image_framing(protocol: Protocol, spec: ModelSpec, dataset: str, preprocessing: str | None = None) -> Framing:
    """The framing ``protocol`` gives ``spec``'s images (``preprocessing`` — ``upstream`` / ``generic`` — replaces
    the protocol's): generic where the pipeline cannot apply (the in-memory ``samples`` crops, a dataset whose
    preset has its own crop, a tokenizer that records no pipeline), with a note saying so."""
    from .data import DATASET_PRESETS, adm_center_crop
    from .preprocessing import Preprocessing

    source = preprocessing or protocol.images
    if source == "generic":
        return Framing("generic")
    if dataset == "samples":
        what = "full-size images" if source == "original" else "an upstream pipeline"
        return Framing("generic", note=f"'samples' are square crops made in memory from the bundled photos, so "
                       f"{what} cannot apply: they are evaluated as made")  # fmt: skip
    preset = DATASET_PRESETS.get(dataset)
    if preset is not None and preset.eval_crop is not adm_center_crop:
        return Framing("generic", note=f"{dataset!r} has its own evaluation crop ({preset.notes}), kept")
    if source == "original":
        factor = spec.config.downsample_factor
        multiple = math.lcm(protocol.pad_multiple or factor, factor)
        return Framing("original", pad_multiple=multiple)
    if source == "pipeline":
        return Framing("pipeline", protocol.pipeline)
    recorded = (spec.config.metadata or {}).get("preprocessing")
    if recorded is None:
        return Framing("generic", note=f"{spec.name} records no upstream pipeline: vistok's generic preprocessing")
    return Framing("upstream", Preprocessing.from_dict(recorded))


class _FullSize:
    """The image as stored (RGB), for the ``original`` framing."""

    def __call__(self, image, rng):
        return image


def original_size_dataset(
    name: str, split: str, streaming: bool = False, image_column: str | None = None, num_samples: int | None = None
) -> Dataset | IterableDataset:
    """The split's images at their stored size (items as :func:`vistok.data.build_dataset`'s, of varying sizes)."""
    import datasets

    from .data import DATASET_PRESETS, HFColumn, ImageDataset, StreamingImageDataset, open_split

    preset = DATASET_PRESETS.get(name)
    if preset is not None:
        opened = open_split(preset.hub_id, preset.hub_split(split, name), streaming=streaming,
                            image_column=image_column or preset.image_column, gated=preset.gated, label=name)
    else:
        opened = open_split(name, split, streaming=streaming, image_column=image_column)
    data, label = opened.dataset, f"{name}[{split}]"
    if isinstance(data, datasets.IterableDataset):
        if num_samples is not None:
            data = data.take(num_samples)
        return StreamingImageDataset(data, opened.image_column, _FullSize(), name=label)
    if num_samples is not None:
        data = data.select(range(min(num_samples, len(data))))
    return ImageDataset(HFColumn(data, opened.image_column), _FullSize(), name=label)


def protocol_split(protocol: Protocol, split: str | None) -> str:
    """The split evaluated: the one given, else the protocol's, else ``test``."""
    return split or protocol.split or "test"


# ------------------------------------------------------------------------------------------- evaluation
def evaluate_tokenizer(
    tok: Any,
    dataset: Dataset,
    metrics: ReconstructionMetrics,
    batch_size: int = 32,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    save_dir: str | os.PathLike | None = None,
    show_progress: bool = False,
    dtype: str = "float32",
    compile: bool = False,
    pad_multiple: int | None = None,
    pad_value: float = 0.0,
) -> dict[str, Any] | None:
    """Reconstruct every image of ``dataset`` with ``tok`` and feed ``metrics``; works under torch.distributed.

    Each process takes the items ``rank::world_size``. Returns ``metrics.compute()`` plus ``num_skipped``
    (images that could not be used), ``skipped_images`` (the first :data:`MAX_LISTED_SKIPS` of them: ``index``,
    ``file``, ``reason``), ``tokens_per_image`` (the mean number of tokens), ``encode_images_per_second`` and
    ``decode_images_per_second`` (encoder + quantizer, and decoder, timed apart over ``timed_images``: every batch
    but each process's first, the warm-up, when there are more), ``seconds``, ``images_per_second`` (everything,
    metrics included) and the ``inference`` mode on the main process, ``None`` on the others. :class:`NoImagesError` (on every
    process) when no image could be used. ``dtype="bf16"`` / ``compile=True`` run through
    :func:`vistok.inference.fast_inference` (float32 and no compile: exactly ``tok(x)``). ``pad_multiple``: pad
    each batch to a multiple of it with ``pad_value`` (centred, the extra pixel after: SEED-Voken's
    ``pad_images``), reconstruct, and crop the reconstruction back (the ``original-resolution`` protocol).
    """
    from .data import collate_images
    from .inference import fast_inference

    rank, world = distributed_world()
    shard = shard_for_process(dataset, rank, world)
    if isinstance(shard, IterableDataset):
        num_workers = 0  # worker-split streams would lose the data order the usage queue relies on
    loader = DataLoader(shard, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_images)
    out_dir = Path(save_dir) if save_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    tok = tok.to(device).eval()
    fast = fast_inference(tok, dtype, compile) if (dtype != "float32" or compile) else None
    num_images, num_skipped, skipped, num_tokens = 0, 0, [], 0
    batches, timed_images, encode_seconds, decode_seconds, warmup = 0, 0, 0.0, 0.0, (0, 0.0, 0.0)
    started = time.perf_counter()
    progress = _progress(loader, show_progress)
    for batch in progress:
        num_skipped += int(batch["num_skipped"])
        skipped += [vars(s) for s in batch.get("skipped", ())][: MAX_LISTED_SKIPS - len(skipped)]
        pixel_values = batch["pixel_values"]
        if pixel_values.numel() == 0:
            continue
        num_images += len(pixel_values)
        pixel_values = pixel_values.to(device)
        inputs, region = (pixel_values, None) if pad_multiple is None else pad_to_multiple(
            pixel_values, pad_multiple, pad_value)
        with torch.no_grad():  # encode then decode: what tok(inputs) computes, timed apart
            encode_started = _now(device)
            if fast is None:
                encoded = tok.encode(inputs)
                indices = encoded.indices
            else:
                indices = fast.encode(inputs)
            decode_started = _now(device)
            reconstruction = tok.decode_quantized(encoded.quantized) if fast is None else fast.decode(indices)
            decode_ended = _now(device)
        batches += 1
        if batches > 1:  # the first batch warms up (allocations, kernels, compilation)
            timed_images += len(inputs)
            encode_seconds += decode_started - encode_started
            decode_seconds += decode_ended - decode_started
        else:
            warmup = (len(inputs), decode_started - encode_started, decode_ended - decode_started)
        if region is not None:
            top, left, height, width = region
            reconstruction = reconstruction[..., top : top + height, left : left + width]
        # (B, N) in the layout's reading order: grid, sequence and multi-scale tokens are counted alike
        flat = tok.token_layout.flatten(indices)
        num_tokens += flat.numel()
        metrics.update(pixel_values, reconstruction, flat, batch["index"])
        if out_dir is not None:
            _save_pngs(reconstructions_to_uint8(reconstruction, metrics.protocol).cpu(), batch["index"].tolist(),
                       out_dir)
    seconds = time.perf_counter() - started
    if timed_images == 0:  # a single batch: time it, warm-up included
        timed_images, encode_seconds, decode_seconds = warmup
    num_tokens = _gather_sum(num_tokens)
    speed = _gather_speed(timed_images, encode_seconds, decode_seconds)
    num_images, num_skipped, skipped, seconds = _gather_counts(num_images, num_skipped, skipped, seconds)
    if num_images == 0:  # every process knows it: none waits in metrics.sync() for the others
        raise NoImagesError(num_skipped, skipped)
    metrics.sync()
    if rank != 0:
        return None
    results = metrics.compute()
    results["num_skipped"] = num_skipped
    results["skipped_images"] = skipped
    results["tokens_per_image"] = num_tokens / results["num_images"]
    results.update(speed)
    results["seconds"] = seconds
    results["images_per_second"] = results["num_images"] / seconds if seconds > 0 else None
    results["inference"] = {"dtype": dtype, "compile": bool(compile)}
    return results


def pad_to_multiple(
    pixel_values: torch.Tensor, multiple: int, value: float = 0.0
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad (B, C, H, W) to multiples of ``multiple`` with ``value``: ``pad // 2`` before, the rest after (SEED-Voken's
    ``pad_images``). Returns the padded batch and the original's region ``(top, left, height, width)``."""
    height, width = pixel_values.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    top, left = pad_h >> 1, pad_w >> 1
    padded = torch.nn.functional.pad(pixel_values, (left, pad_w - left, top, pad_h - top), "constant", value)
    return padded, (top, left, height, width)


def _now(device: torch.device | str) -> float:
    """A timestamp after the device's queued work has finished."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _gather_speed(images: int, encode_seconds: float, decode_seconds: float) -> dict[str, Any]:
    """Encode and decode throughput over every process (images ÷ the slowest process's time), the first batch of
    each process left out as warm-up when there are more."""
    _, world = distributed_world()
    if world > 1:
        import torch.distributed as dist

        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (images, encode_seconds, decode_seconds))
        images = sum(g[0] for g in gathered)
        encode_seconds, decode_seconds = max(g[1] for g in gathered), max(g[2] for g in gathered)
    return {
        "encode_images_per_second": images / encode_seconds if encode_seconds > 0 else None,
        "decode_images_per_second": images / decode_seconds if decode_seconds > 0 else None,
        "timed_images": images,
    }


def _gather_sum(value: int) -> int:
    _, world = distributed_world()
    if world == 1:
        return value
    import torch.distributed as dist

    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, value)
    return sum(gathered)


def _progress(loader: DataLoader, show: bool):
    if not show:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc="evaluating", unit="batch", file=sys.stderr)


def _save_pngs(images: torch.Tensor, indices: list[int], out_dir: Path) -> None:
    from PIL import Image

    for image, index in zip(images, indices, strict=True):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(out_dir / f"{index:06d}.png")


MAX_LISTED_SKIPS = 1000  # skipped images named in a report; more are counted only


class NoImagesError(ValueError):
    """Not one image of the dataset could be used: ``num_skipped`` were skipped, ``skipped`` lists them."""

    def __init__(self, num_skipped: int, skipped: list[dict[str, Any]]):
        self.num_skipped, self.skipped = num_skipped, skipped
        super().__init__(f"none of the {num_skipped} image(s) could be used")


def _gather_counts(num_images: int, num_skipped: int, skipped: list, seconds: float) -> tuple[int, int, list, float]:
    """Totals over every process: images, skips, the skipped images (in position order) and the longest time."""
    _, world = distributed_world()
    if world == 1:
        return num_images, num_skipped, skipped, seconds
    import torch.distributed as dist

    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, (num_images, num_skipped, skipped, seconds))
    listed = sorted((s for _, _, part, _ in gathered for s in part), key=lambda s: s["index"])
    return (sum(g[0] for g in gathered), sum(g[1] for g in gathered), listed[:MAX_LISTED_SKIPS],
            max(g[3] for g in gathered))  # fmt: skip


def _shown_file(file: str | None, index: int, dataset: str) -> str:
    """A skipped image as the user knows it: its path inside the dataset folder, or its position."""
    if not file:
        return f"image {index}"
    root = Path(dataset).expanduser()
    if root.is_dir():
        try:
            return Path(file).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return file


def no_images_message(error: NoImagesError, dataset: str, split: str) -> str:
    """One line: none of the images could be used, the first few named with their reasons, and what to do."""
    if error.num_skipped == 0:
        return f"{dataset!r} (split {split!r}) has no images: there is nothing to measure; choose another --dataset"
    named = "; ".join(f"{_shown_file(s['file'], s['index'], dataset)}: {s['reason']}" for s in error.skipped[:3])
    more = f"; and {error.num_skipped - 3} more" if error.num_skipped > 3 else ""
    return (
        f"none of the {error.num_skipped} images of {dataset!r} (split {split!r}) could be used ({named}{more}): "
        "there is nothing to measure; replace or remove those files, or choose another --dataset"
    )


def skipped_images_note(reports: list[dict[str, Any]], dataset: str, shown: int = 10) -> str:
    """The images the evaluation could not use, named with their reasons (each once across models)."""
    for report in reports:  # every model read the same images; the first report with skips names them
        results = report["results"]
        if results.get("num_skipped"):
            total = results["num_images"] + results["num_skipped"]
            lines = [f"Skipped {results['num_skipped']} of {total} images that could not be used:"]
            lines += [f"  {_shown_file(s['file'], s['index'], dataset)}: {s['reason']}"
                      for s in results["skipped_images"][:shown]]  # fmt: skip
            if results["num_skipped"] > shown:
                lines.append(f"  … and {results['num_skipped'] - shown} more (the report lists up to "
                             f"{MAX_LISTED_SKIPS})")  # fmt: skip
            return "\n".join(lines)
    return ""


def _gather_sum_and_max(count: int, seconds: float) -> tuple[int, float]:
    _, world = distributed_world()
    if world == 1:
        return count, seconds
    import torch.distributed as dist

    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, (count, seconds))
    return sum(c for c, _ in gathered), max(s for _, s in gathered)


def slug(name: str) -> str:
    """A file-name-safe version of a model name or path."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name).strip("/")).strip("_.")
    return text or "model"


# ------------------------------------------------------------------------------------------------ command
@dataclass
class ProcessContext:
    """Where this process runs. Under ``accelerate launch`` / ``torchrun`` (``WORLD_SIZE`` > 1) an accelerate
    ``Accelerator`` sets up the process group and device; a single process needs no global state."""

    device: torch.device
    num_processes: int = 1
    accelerator: Any = None

    @classmethod
    def create(cls, device: str | None = None) -> ProcessContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            from accelerate import Accelerator

            # Without cpu=True, accelerate on a machine without accelerators silently runs every process alone.
            use_cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
            accelerator = Accelerator(cpu=use_cpu)
            if accelerator.num_processes != world:
                raise RuntimeError(
                    f"WORLD_SIZE is {world} but accelerate set up {accelerator.num_processes} process(es); "
                    "launch with `accelerate launch --multi_gpu --num_processes N -m vistok.evaluate …` (add "
                    "`--device cpu` without GPUs) or `torchrun --nproc_per_node N -m vistok.evaluate …`"
                )
            return cls(accelerator.device, accelerator.num_processes, accelerator)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(torch.device(device))

    @property
    def is_main(self) -> bool:
        return self.accelerator is None or self.accelerator.is_main_process

    def wait_for_everyone(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()


def run(args: argparse.Namespace) -> int:
    from .metrics import metric_conventions
    from .metrics.protocols import GenerationReferenceError, check_rfid_reference
    from .version import __version__

    requested = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    unknown = sorted(set(requested) - set(METRIC_NAMES))
    if unknown:
        raise SystemExit(f"unknown metric(s) {unknown} in --metrics; valid names: {', '.join(METRIC_NAMES)}")
    for option in ("batch_size", "num_samples", "image_size", "queue_size"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            raise SystemExit(f"--{option.replace('_', '-')} must be positive, got {value}")
    protocol = get_protocol(getattr(args, "protocol", None) or DEFAULT_PROTOCOL)
    split = protocol_split(protocol, args.split)
    preprocessing = getattr(args, "preprocessing", None)
    rfid_reference = getattr(args, "rfid_reference", None)
    if rfid_reference is not None:
        try:
            check_rfid_reference(rfid_reference)
            if not Path(rfid_reference).is_file():
                raise FileNotFoundError(f"--rfid-reference {rfid_reference} is not a file")
        except (GenerationReferenceError, OSError) as error:
            raise SystemExit(f"vistok evaluate: {error}") from error

    # Everything that can be checked is checked before any image is processed.
    try:
        specs = [resolve_model(name, args.random_init) for name in args.model]
        framings = [image_framing(protocol, spec, args.dataset, preprocessing) for spec in specs]
        for spec, framing in zip(specs, framings, strict=True):
            check_compatible(spec, None if framing.source == "original" else args.image_size or spec.config.image_size)
    except (OSError, ValueError) as error:
        raise SystemExit(f"vistok evaluate: {error}") from error
    if args.update_card:
        not_local = [spec.name for spec in specs if spec.local_dir is None]
        if not_local:
            raise SystemExit(f"--update-card needs local model folders; not local: {', '.join(not_local)}")

    processes = ProcessContext.create(args.device)
    is_main = processes.is_main
    networks, skipped = load_backbones(
        requested, args.lpips_weights, args.inception_weights, processes.device, not args.no_download,
        lpips_net=protocol.lpips_net,
    )
    datasets: dict[tuple, Dataset] = {}
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    reports: list[dict[str, Any]] = []
    output = Path(args.output or Path("evaluation") / f"{slug(args.dataset)}_{slug(split)}.json")
    if is_main:
        for note in sorted({f.note for f in framings if f.note}):
            print(f"note: {note}", file=sys.stderr)

    for spec, framing in zip(specs, framings, strict=True):
        image_size = args.image_size or spec.config.image_size
        original = framing.source == "original"
        key = (None if original else image_size, framing.key())
        if key not in datasets:
            try:
                datasets[key] = build_protocol_dataset(args, split, image_size, framing)
            except (OSError, RuntimeError, ValueError) as error:
                raise SystemExit(f"vistok evaluate: {error}") from error
        tok = spec.load()
        metrics = ReconstructionMetrics(
            codebook_size=tok.codebook_size,
            metrics=requested,
            queue_size=args.queue_size,
            lpips_network=networks.get("lpips"),
            inception_extractor=networks.get("rfid"),
            skipped=skipped,
            protocol=protocol,
            rfid_reference=rfid_reference,
        )
        if is_main:
            size = "full size" if original else f"{image_size}px"
            print(
                f"Evaluating {spec.name} on {args.dataset} [{split}] at {size} (protocol {protocol.name}) …",
                file=sys.stderr,
            )
        try:
            results = evaluate_tokenizer(
                tok,
                datasets[key],
                metrics,
                batch_size=1 if original else args.batch_size,
                num_workers=args.num_workers,
                device=processes.device,
                save_dir=Path(args.save_dir) / slug(spec.name) if args.save_dir else None,
                show_progress=is_main and sys.stderr.isatty(),
                dtype=args.dtype,
                compile=args.compile,
                pad_multiple=framing.pad_multiple,
                pad_value=protocol.pad_value,
            )
        except NoImagesError as error:
            raise SystemExit(f"vistok evaluate: {no_images_message(error, args.dataset, split)}") from None
        if not is_main:
            continue
        context = dataset_context(args.dataset, split, image_size)
        if original:
            context["image_size"] = "original"
        context["protocol"] = protocol.name
        histogram_png = None
        if "codebook_histogram" in results:
            histogram_png = output.with_name(f"{output.stem}_{slug(spec.name)}_codes.png")
            histogram_png.parent.mkdir(parents=True, exist_ok=True)
            save_code_histogram(results["codebook_histogram"], histogram_png, title=spec.name)
        summary = config_summary(spec, tok, image_size)
        if original:
            summary.update(image_size="original", tokens=None, tokens_per_image=results["tokens_per_image"])
        results["bits_per_image"] = results["tokens_per_image"] * math.log2(tok.codebook_size)
        report = {
            "model": spec.name,
            "dataset": context,
            "protocol": protocol.name,
            "images": framing.to_dict(image_size),
            "config": summary,
            "results": results,
            "histogram_png": histogram_png,
        }
        reports.append(report)
        rows.append((spec.name, results, table_info(summary, results, protocol)))
        if args.update_card:
            summary = card_summary(results, {**context, "vistok_version": __version__})
            for path in record_evaluation(spec.local_dir, tok, summary, report):
                print(f"Updated {path}", file=sys.stderr)

    if is_main:
        write_json(
            {
                "vistok_version": __version__,
                "dataset": {
                    **dataset_context(args.dataset, split, args.image_size or specs[0].config.image_size),
                    "name": args.dataset,
                    "num_samples_requested": args.num_samples,
                    "streaming": args.streaming,
                    "split_requested": args.split,
                },
                "protocol": protocol.name,
                "preprocessing_override": preprocessing,
                "rfid_reference": str(rfid_reference) if rfid_reference else None,
                "num_processes": processes.num_processes,
                "batch_size_per_process": args.batch_size,
                "conventions": metric_conventions(args.queue_size, protocol),
                "models": reports,
            },
            output,
        )
        print(format_results_table(rows))
        notes = format_skipped(rows)
        if notes:
            print("\n" + notes)
        skipped_images = skipped_images_note(reports, args.dataset)
        if skipped_images:
            print("\n" + skipped_images)
        print(f"\nProtocol {protocol.name}: {protocol.summary}", file=sys.stderr)
        print(f"Report: {output}", file=sys.stderr)
    processes.wait_for_everyone()
    return 0


def build_protocol_dataset(args: argparse.Namespace, split: str, image_size: int, framing: Framing):
    """The dataset one model is evaluated on under its :class:`Framing`."""
    from .data import build_dataset

    if framing.source == "original":
        return original_size_dataset(args.dataset, split, args.streaming, args.image_column, args.num_samples)
    return build_dataset(
        args.dataset,
        split,
        image_size=image_size,
        train=False,
        streaming=args.streaming,
        image_column=args.image_column,
        num_samples=args.num_samples,
        preprocessing=framing.pipeline,
    )


def table_info(summary: dict[str, Any], results: dict[str, Any], protocol: Protocol) -> dict[str, Any]:
    """What the results table shows beside the metrics: resolution, tokens and bits per image, and which codebook
    usage the protocol's origin reports."""
    return {
        "image_size": summary["image_size"],
        "tokens_per_image": results.get("tokens_per_image"),
        "bits_per_image": results.get("bits_per_image"),
        "usage_key": protocol.usage_key,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vistok.evaluate",
        allow_abbrev=False,
        description=__doc__.strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""``tokenize_dataset``: the Python entry point behind ``vistok tokenize`` (one process or many)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from .rows import read_manifest, token_storage_dtype
from .runner import (
    DEFAULT_SHARD_SIZE,
    TokenizeOptions,
    build_features,
    card_for,
    latent_hw_at,
    make_manifest,
    tokenize_shards,
    tokenizer_record,
)
from .source import ShardPlan, open_token_source
from .store import IncompleteOutputError, OutputError, TokenStore
from .variants import source_size


def _on_main_then_shared(processes: Any, action: Any, share_result: bool = False) -> Any:
    """Run ``action()`` on the main process and return its result there (elsewhere ``None``, or the main one's
    result with ``share_result``). Every process then learns whether it failed: the main one re-raises its error,
    the others raise :class:`OutputError` quoting it, so no process waits forever for a main process that stopped."""
    result, error = None, None
    if processes.is_main:
        try:
            result = action()
        except Exception as err:  # shared with the other processes, then re-raised unchanged below
            error = err
    if processes.num_processes > 1:
        import torch.distributed as dist

        box = [None if error is None else f"{type(error).__name__}: {error}", result if share_result else None]
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None and error is None:
            raise OutputError(f"the main process stopped: {box[0]}")
        if share_result:
            result = box[1]
    if error is not None:
        raise error
    return result


def load_tokenizer(name: str, random_init: bool = False):
    """A tokenizer in eval mode from any name vistok resolves (:func:`vistok.factory.load_tokenizer`): the trained
    weights, or with ``random_init`` the architecture with random weights seeded 0 (every process builds the same)."""
    from ..factory import load_tokenizer as resolve_and_load

    return resolve_and_load(name, random_init=random_init)


def push_dataset_to_hub(folder: str | os.PathLike, repo_id: str, private: bool | None = None) -> Any:
    """Upload a finished token dataset folder to the Hub dataset repo ``repo_id``; offline or unreachable, raise
    :class:`vistok.hub.HubUnreachableError` saying how to upload it later."""
    from ..hub import upload_to_hub

    return upload_to_hub(
        folder,
        repo_id,
        private=private,
        repo_type="dataset",
        commit_message="Upload token dataset written by vistok tokenize",
        later=f"The token dataset is complete in {folder}",
        upload_from=str(folder),
    )


def upstream_pipeline(tok: Any, preprocessing: str, dataset: str) -> Any:
    """The upstream :class:`~vistok.preprocessing.Preprocessing` to frame images with, or ``None`` for the
    dataset's own evaluation crop: ``"upstream"`` takes the one the tokenizer records (none: generic), ``"generic"``
    never. The bundled ``samples`` are crops made in memory: they stay generic, with a notice."""
    from ..preprocessing import Preprocessing

    if preprocessing not in ("upstream", "generic"):
        raise ValueError(f"--preprocessing must be 'upstream' or 'generic', got {preprocessing!r}")
    recorded = (tok.config.metadata or {}).get("preprocessing")
    if preprocessing == "generic" or recorded is None:
        return None
    if dataset == "samples":
        print("note: 'samples' are crops made in memory, so the tokenizer's upstream preprocessing does not apply to "
              "them; they are tokenized as they are", file=sys.stderr)  # fmt: skip
        return None
    return Preprocessing.from_dict(recorded)


def tokenize_dataset(
    model: Any,
    dataset: str,
    output: str | os.PathLike,
    *,
    split: str = "train",
    image_size: int | None = None,
    flip: str = "none",
    ten_crop: bool = False,
    batch_size: int = 32,
    num_workers: int = 0,
    shard_size: int = DEFAULT_SHARD_SIZE,
    num_samples: int | None = None,
    streaming: bool = False,
    image_column: str | None = None,
    columns: list[str] | None = None,
    dtype: str = "float32",
    compile: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = False,
    random_init: bool = False,
    push_to_hub: str | None = None,
    preprocessing: str = "upstream",
    model_ids: bool = False,
) -> dict[str, Any] | None:
    """Tokenize ``split`` of ``dataset`` with ``model`` (a :class:`~vistok.VisTokenizer` or a name
    :func:`load_tokenizer` accepts) into the 🤗 dataset folder ``output``; see ``vistok tokenize --help``.

    ``preprocessing="upstream"`` (default) frames each image as the tokenizer's upstream project does when the
    tokenizer records that pipeline (a zoo entry, a conversion), so the rows are the upstream project's tokens;
    ``"generic"`` uses the dataset's evaluation crop (identical pixels for every tokenizer). The manifest records
    which ran.

    ``model_ids=True`` stores the multimodal model's vocabulary ids (:meth:`VisTokenizer.to_model_ids`) instead of
    codebook indices; the manifest and the resume identity record the mapping. ``ValueError`` for a tokenizer that
    records none.

    Under ``accelerate launch`` / ``torchrun`` each process tokenizes its shards and the main process merges them.
    Returns, on the main process, the manifest plus ``seconds`` and ``images_per_second`` of this run (``None``
    on the others); for an output already complete with the same identity (``resume``), its manifest with
    ``already_complete`` set, after uploading it when ``push_to_hub`` asks. Raises ``ValueError`` / ``OSError`` / :class:`~vistok.tokenize.store.OutputError` for bad input
    before any image is tokenized.
    """
    from ..evaluate import ProcessContext, _gather_sum_and_max
    from ..inference import fast_inference, parse_dtype

    for option, value in (("batch_size", batch_size), ("shard_size", shard_size), ("num_samples", num_samples),
                          ("image_size", image_size)):
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ValueError(f"--{option.replace('_', '-')} must be a positive integer, got {value!r}")
    if num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {num_workers}")
    parse_dtype(dtype)
    dtype = "bf16" if parse_dtype(dtype) is not None else "float32"

    tok = load_tokenizer(model, random_init) if isinstance(model, (str, os.PathLike)) else model.eval()
    name = str(model) if isinstance(model, (str, os.PathLike)) else (tok.config.name_or_path or "tokenizer")
    image_size = image_size or int(tok.config.image_size)
    latent_hw = latent_hw_at(tok, image_size)
    id_map = model_id_map_for(tok) if model_ids else None
    options = TokenizeOptions(
        image_size=image_size, flip=flip, ten_crop=ten_crop, shard_size=shard_size, batch_size=batch_size,
        num_workers=num_workers, dtype=dtype, compile=compile, resume=resume, overwrite=overwrite, progress=progress,
        model_ids=id_map,
    )  # fmt: skip
    from .variants import variants_for

    variants_for(flip, ten_crop)  # validates --flip
    pipeline = upstream_pipeline(tok, preprocessing, dataset)
    source = open_token_source(dataset, split, source_size(image_size, ten_crop), streaming=streaming,
                               image_column=image_column, num_samples=num_samples, columns=columns,
                               preprocessing=pipeline)
    if source.num_images == 0:
        raise ValueError(f"{dataset!r} (split {split!r}) has no images to tokenize")
    layout = tok.token_layout
    layout_spec, tokens = layout.spec(latent_hw), layout.tokens_per_image(latent_hw)
    largest = id_map.id_range()[1] if id_map is not None else int(tok.codebook_size) - 1
    storage_dtype = token_storage_dtype(largest + 1)
    features = build_features(source, storage_dtype, tokens)
    tok_record = tokenizer_record(tok, name)
    # What decides the rows, compared by --resume: the tokenizer (weights and config: LFQ bit order, VQ l2_norm,
    # pixel range… change tokens, not weights), the split and its content, the preprocessing, the sharding.
    identity = {
        "tokenizer_weights_sha256": tok_record["weights_sha256"],
        "tokenizer_config_sha256": tok_record["config_sha256"], "dataset": dataset, "split": split,
        "image_column": source.image_column, "num_samples": num_samples, "image_size": image_size, "flip": flip,
        "ten_crop": ten_crop, "shard_size": shard_size, "columns": source.columns, "dtype": dtype,
        "num_images": source.num_images,  # a split that grew or shrank since a crash is not resumed into
        "preprocessing": pipeline.at(source_size(image_size, ten_crop)).to_dict() if pipeline else "generic",
    }  # fmt: skip
    if id_map is not None:  # only then: the identity of an index dataset stays what it was
        identity["model_ids"] = id_map.record

    store = TokenStore(output)
    processes = ProcessContext.create(device)
    rank = processes.accelerator.process_index if processes.accelerator is not None else 0
    world = processes.num_processes

    def claim() -> str:
        # the split's content (files, 🤗 fingerprint or Hub revision), on the main process only: listing a large
        # image folder takes a while. A split whose images were replaced since a crash is not resumed into.
        identity["split_content"] = source.content(exclude=store.path)
        return store.claim(identity, resume, overwrite, {"identity": identity, "tokenizer": tok_record})

    try:  # whatever happens, this process lets go of the folder (the lock) when it returns
        action = _on_main_then_shared(processes, claim, share_result=True)  # the folder is checked under its lock
        if action == "done":
            if not processes.is_main:
                return None
            print(f"{store.path} is already complete (same tokenizer and settings, every shard intact); nothing to "
                  "tokenize.", file=sys.stderr)  # fmt: skip
            if push_to_hub:
                push_dataset_to_hub(store.path, push_to_hub)
            return {**read_manifest(store.path), "already_complete": True, "seconds": 0.0, "images_this_run": 0,
                    "images_per_second": None}

        tok = tok.to(processes.device)
        fast = fast_inference(tok, dtype=dtype, compile=compile)
        plan = ShardPlan(shard_size, source.num_images)
        started = time.perf_counter()
        counts = tokenize_shards(tok, fast, source, store, plan, options, features, storage_dtype, rank, world,
                                 processes.device)
        seconds = time.perf_counter() - started
        images_this_run, seconds = _gather_sum_and_max(counts["num_images"], seconds)  # every process takes part

        def finish() -> dict:
            num_positions = source.num_images if not source.streaming else counts["stream_length"]
            if not num_positions:
                raise ValueError(f"{dataset!r} (split {split!r}) has no images to tokenize")
            plan = ShardPlan(shard_size, num_positions)
            finished = store.finished()
            records = [finished[s] for s in range(plan.num_shards) if s in finished]
            manifest = make_manifest(tok_record, identity, source, options, layout_spec, layout.describe(latent_hw),
                                     tokens, storage_dtype, records, num_positions)
            if records and len(records) == plan.num_shards and manifest["counts"]["num_images"] == 0:
                raise IncompleteOutputError(
                    f"none of the {num_positions:,} images of {dataset!r} (split {split!r}) could be read (column "
                    f"{source.image_column!r}): nothing was tokenized, and {store.path} is left unfinished. Check "
                    "--image-column and the files, then run again with --overwrite"
                )
            if id_map is not None:
                lo, hi = id_map.id_range()
                manifest["model_ids"] = {**id_map.record, "id_range": [lo, hi],
                                         "note": "rows hold the model's vocabulary ids; tok.from_model_ids turns them "
                                         "back into codebook indices"}  # fmt: skip
            description = "Token ids written by vistok tokenize; see README.md and vistok_tokens.json."
            return store.finalize(plan, features, manifest, card_for(manifest), description)

        manifest = _on_main_then_shared(processes, finish)
        if not processes.is_main:
            return None
        result = {**manifest, "seconds": seconds, "images_this_run": images_this_run,
                  "images_per_second": images_this_run / seconds if seconds > 0 else None}
        if push_to_hub:
            push_dataset_to_hub(store.path, push_to_hub)
        return result

    finally:
        store.release()

def model_id_map_for(tok: Any):
    """The tokenizer's :class:`~vistok.model_ids.ModelIdMap` for ``--model-ids``; ``ValueError`` saying why when it
    has none, or when its record names tokens whose ids only the model's text tokenizer knows."""
    from ..model_ids import ModelIdsUnavailableError

    try:
        id_map = tok.model_id_map
    except ModelIdsUnavailableError as err:
        raise ValueError(f"--model-ids: {err}") from err
    if id_map.kind == "named":
        raise ValueError(
            f"--model-ids: this tokenizer's record names its image tokens ({id_map.record['token_format'].format(0)!r} "
            "…) without their ids, which only the model's text tokenizer knows: tokenize with a release that "
            "carries its vocabulary (e.g. movq-emu3-gen-hf), or store indices and convert them with "
            "tok.to_model_ids(indices, vocabulary=...)"
        )
    return id_map


__all__ = ["OutputError", "load_tokenizer", "push_dataset_to_hub", "tokenize_dataset"]

"""The training loop: one accelerate process of tokenizer (+ discriminator) training."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vistok.data import DatasetUnavailableError, build_dataset
from vistok.hub import HubUnreachableError
from vistok.losses import TokenizerLoss

from .batches import BatchStream
from .checkpoints import (
    CHECKPOINT_FORMAT,
    CUSTOM_STATE_PATTERN,
    EMA_FILE,
    HISTORY_FILE,
    CheckpointError,
    CheckpointManager,
    check_checkpoint,
    resolve_resume,
)
from .config import Recipe, dump_recipe
from .images import reconstruction_grid, save_grid
from .model import WeightEMA, build_tokenizer, export_tokenizer, training_metadata
from .optim import WarmupSchedule, build_optimizer
from .output_dir import check_output_dir, clear_previous_run, record_run_files

logger = logging.getLogger("vistok.train")


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the run stops without saving over the last good checkpoint."""


@dataclass
class Progress:
    """Where training is; saved in every checkpoint (in its training_state.json)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    samples_skipped: int = 0

    def state_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key, value in state.items():
            setattr(self, key, int(value))


@dataclass
class TrainResult:
    """What :func:`train` returns: the exported (EMA) tokenizer, its folder and the logged history."""

    tokenizer: Any
    output_dir: Path
    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    steps_per_second: float = float("nan")


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, (int, float, str, bool)):
        out[prefix] = value
    else:
        out[prefix] = str(value)
    return out


def _set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def enable_activation_checkpointing(tok: torch.nn.Module) -> None:
    """Non-reentrant activation checkpointing (the adaptive GAN weight takes autograd.grad through the decoder).

    transformers 5.23 renamed ``gradient_checkpointing_enable`` to ``activation_checkpointing_enable`` and
    deprecated the old name; both are accepted so that the library keeps working on earlier 5.x releases."""
    if hasattr(tok, "activation_checkpointing_enable"):
        tok.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        tok.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _frozen_call(module: torch.nn.Module):
    """Call ``module`` with its parameters detached: gradients reach the input only (generator's GAN term)."""

    def call(inputs: torch.Tensor) -> torch.Tensor:
        params = {name: p.detach() for name, p in module.named_parameters()}
        return torch.func.functional_call(module, params, (inputs,))

    return call


class Trainer:
    def __init__(
        self, recipe: Recipe, resume: str | None = None, overwrite_output_dir: bool = False,
        trust_checkpoint: bool = False,
    ):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, set_seed

        self.recipe = recipe
        cfg_t, cfg_o = recipe.train, recipe.output
        self.output_dir = Path(cfg_o.dir)
        ddp = DistributedDataParallelKwargs(
            find_unused_parameters=cfg_t.find_unused_parameters,
            broadcast_buffers=False,  # quantizers all-reduce their own statistics; rank 0 must not overwrite them
        )
        self.accelerator = Accelerator(
            # Without a GPU (or other accelerator) say so explicitly: accelerate then runs several processes
            # launched by torchrun / `accelerate launch --multi_gpu` as MULTI_CPU (gloo) instead of as
            # independent single-process runs.
            cpu=not torch.accelerator.is_available(),
            mixed_precision=cfg_t.mixed_precision,
            log_with="tensorboard" if cfg_o.tracker == "tensorboard" else None,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir), logging_dir=str(self.output_dir)),
            kwargs_handlers=[ddp],
        )
        acc = self.accelerator
        self.is_main = acc.is_main_process
        self.checkpoints = CheckpointManager(self.output_dir, keep=cfg_o.keep_checkpoints)
        # Every process checks before any writes (the barrier below); nothing is written into the output folder
        # until the models and the data are built, so a run that fails to start leaves no folder to refuse next time.
        check_output_dir(self.output_dir, resume, overwrite_output_dir)
        # The checkpoint to resume from is found and checked (JSON and weights-only unpickling: nothing in it can run
        # code) before anything is built or written.
        self.resumed_from = resolve_resume(resume, self.checkpoints)
        self.trust_checkpoint = trust_checkpoint
        self.resume_state = check_checkpoint(self.resumed_from, trust_checkpoint) if self.resumed_from else None
        if self.resumed_from is not None:
            self._check_resume_state(self.resumed_from, self.resume_state)
        acc.wait_for_everyone()
        if cfg_t.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        set_seed(cfg_t.seed)

        # ---------------------------------------------------------------------------------------- models
        tok = build_tokenizer(recipe.model)
        # The data next: a missing dataset is reported before anything slow (LPIPS, discriminator) is built.
        cfg_d = recipe.data
        self.image_size = cfg_d.image_size or tok.config.image_size
        dataset = build_dataset(
            cfg_d.dataset, cfg_d.train_split, self.image_size, train=True, streaming=cfg_d.streaming,
            image_column=cfg_d.image_column, num_samples=cfg_d.num_samples, hflip=cfg_d.hflip, seed=cfg_t.seed,
        )
        if cfg_t.gradient_checkpointing:
            enable_activation_checkpointing(tok)
        self.objective = TokenizerLoss(recipe.loss).to(acc.device)
        disc = self.objective.build_discriminator(tok.config.num_channels) if self.objective.uses_discriminator else None
        shards = cfg_t.gradient_accumulation_steps * acc.num_processes
        if cfg_t.batch_size % shards:
            raise ValueError(
                f"train.batch_size {cfg_t.batch_size} (images per optimiser step) must be divisible by "
                f"gradient_accumulation_steps × num_processes = {shards}"
            )
        self.global_batch_size = cfg_t.batch_size
        self.micro_batch_size = cfg_t.batch_size // shards
        lr = cfg_t.lr * (self.global_batch_size if cfg_t.scale_lr else 1)
        self.lr = lr
        opt = build_optimizer(tok.parameters(), cfg_t.optimizer, lr, cfg_t.betas, cfg_t.weight_decay, cfg_t.eps)
        # The learning rate is a pure function of the step (set before every update): nothing to checkpoint.
        self.schedule = WarmupSchedule(cfg_t.lr_schedule, cfg_t.warmup_steps, cfg_t.max_steps, cfg_t.min_lr_ratio)
        self.ema = WeightEMA(tok, cfg_t.ema_decay) if cfg_t.ema_decay else None
        if cfg_t.compile:
            tok.encoder.compile()
            tok.decoder.compile()
        self.tok, self.opt = acc.prepare(tok, opt)
        self.disc = self.opt_d = None
        self.lr_d = cfg_t.discriminator_lr if cfg_t.discriminator_lr is not None else lr
        if disc is not None:
            d_betas = cfg_t.discriminator_betas or cfg_t.betas
            opt_d = build_optimizer(disc.parameters(), cfg_t.optimizer, self.lr_d, d_betas, cfg_t.weight_decay, cfg_t.eps)
            self.disc, self.opt_d = acc.prepare(disc, opt_d)
        if self.ema is not None:
            self.ema.to(acc.device)
        # Progress, the EMA and the history are vistok's own checkpoint files (JSON, safetensors), not accelerate
        # custom states: accelerate unpickles those in full on load (see checkpoints.py).
        self.progress = Progress()
        self.history: list[dict[str, float]] = []
        self.last_terms: dict[str, float] = {}

        # ---------------------------------------------------------------------------------- output folder
        if self.is_main:
            if overwrite_output_dir:
                for path in clear_previous_run(self.output_dir):
                    logger.warning("--overwrite_output_dir: removed %s of the previous run", path)
            # what this run writes at the top of its folder, on record before it is written (output_dir.py)
            record_run_files(self.output_dir, "checkpoints", "images", "logs", "recipe.yaml", HISTORY_FILE,
                             EXPORT_TMP)
            for stale in self.checkpoints.remove_stale_temporaries():
                logger.warning("removed an incomplete checkpoint left by an interrupted run: %s", stale)
            shutil.rmtree(self.output_dir / EXPORT_TMP, ignore_errors=True)
            (self.output_dir / "recipe.yaml").write_text(dump_recipe(recipe))
        acc.wait_for_everyone()

        # ----------------------------------------------------------------------------------------- resume
        if resume == "latest" and self.resumed_from is None:
            logger.warning("--resume latest: no checkpoint in %s yet, starting from scratch", self.checkpoints.root)
        if self.resumed_from is not None:
            self.load_checkpoint(self.resumed_from, self.resume_state)
            logger.info("resumed from %s at step %d", self.resumed_from, self.progress.step)

        # ------------------------------------------------------------------------------------------- data
        self.batches = BatchStream(
            dataset, self.micro_batch_size, num_workers=cfg_d.num_workers, seed=cfg_t.seed, rank=acc.process_index,
            num_replicas=acc.num_processes, epoch=self.progress.epoch, batch_in_epoch=self.progress.batch_in_epoch,
        )
        self.preview = self._preview_images() if self.is_main else None
        if cfg_o.tracker == "tensorboard":
            acc.init_trackers("logs", config=_flat("", recipe.to_dict(), {}))

    # ------------------------------------------------------------------------------------------ helpers
    @property
    def unwrapped(self):
        return self.accelerator.unwrap_model(self.tok)

    @property
    def export_model(self):
        return self.ema.module if self.ema is not None else self.unwrapped

    def _preview_images(self) -> torch.Tensor | None:
        """The first ``output.num_images`` images of the eval split (eval crops), for reconstruction grids."""
        cfg_d, count = self.recipe.data, self.recipe.output.num_images
        if count <= 0:
            return None
        try:
            dataset = build_dataset(cfg_d.dataset, cfg_d.eval_split, self.image_size, streaming=cfg_d.streaming,
                                    image_column=cfg_d.image_column, seed=self.recipe.train.seed)
        except (ValueError, DatasetUnavailableError) as err:
            logger.warning("no %r split for reconstruction grids (%s); using the training split", cfg_d.eval_split, err)
            dataset = build_dataset(cfg_d.dataset, cfg_d.train_split, self.image_size, streaming=cfg_d.streaming,
                                    image_column=cfg_d.image_column, seed=self.recipe.train.seed)
        images = []
        items = iter(dataset) if cfg_d.streaming else (dataset[i] for i in range(len(dataset)))
        for item in items:
            if item is not None:
                images.append(item["pixel_values"])
            if len(images) == count:
                break
        return torch.stack(images) if images else None

    def _sync_context(self, model, sync: bool):
        return contextlib.nullcontext() if sync else self.accelerator.no_sync(model)

    def _next_batch(self) -> torch.Tensor:
        while True:
            batch = next(self.batches)
            self.progress.samples_skipped += int(batch["num_skipped"])
            if batch["index"].numel():
                return batch["pixel_values"].to(self.accelerator.device, non_blocking=True)

    def _check_finite(self, terms: dict[str, torch.Tensor], step: int, phase: str) -> None:
        bad = {name: float(value) for name, value in terms.items() if not torch.isfinite(value).all()}
        flag = torch.tensor([1.0 if bad else 0.0], device=self.accelerator.device)
        if self.accelerator.reduce(flag, reduction="sum").item() == 0:
            return
        latest = self.checkpoints.latest()
        where = ", ".join(f"{name} = {value}" for name, value in bad.items()) or "a loss term on another process"
        raise TrainingDiverged(
            f"non-finite {phase} loss in training step {step + 1}: {where}. Training stopped without saving; the "
            "last good "
            f"checkpoint is {latest if latest else 'none (no checkpoint was written yet)'}."
        )

    def _clip(self, optimizer, parameters) -> torch.Tensor | None:
        max_norm = self.recipe.train.grad_clip
        if not max_norm:
            return None
        self.accelerator.unscale_gradients(optimizer=optimizer)
        return torch.nn.utils.clip_grad_norm_([p for p in parameters if p.grad is not None], max_norm)

    # ------------------------------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, float]:
        acc, step = self.accelerator, self.progress.step
        accum = self.recipe.train.gradient_accumulation_steps
        last_layer = self.unwrapped.get_last_layer()
        disc_for_generator = _frozen_call(acc.unwrap_model(self.disc)) if self.disc is not None else None
        disc_active = self.disc is not None and self.objective.adversarial_active(step)
        sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=acc.device))
        kept: list[tuple[torch.Tensor, torch.Tensor]] = []

        for micro in range(accum):
            pixel_values = self._next_batch()
            with self._sync_context(self.tok, micro == accum - 1), acc.autocast():
                out = self.tok(pixel_values)
                gen = self.objective.generator_loss(pixel_values, out, step, last_layer, disc_for_generator)
            acc.backward(gen.loss / accum)
            for name, value in {**gen.terms, **{k: v.detach().float() for k, v in out.stats.items()}}.items():
                sums[name] = sums[name] + value / accum
            if disc_active:
                kept.append((pixel_values, out.reconstruction.detach()))
        self._check_finite(dict(sums), step, "tokenizer")
        grad_norm = self._clip(self.opt, self.unwrapped.parameters())
        lr_scale = self.schedule(step)
        _set_lr(self.opt, self.lr * lr_scale)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if grad_norm is not None:
            # fp16: the scaler skips steps whose gradients overflowed; keep those out of the logged norm
            finite = bool(torch.isfinite(grad_norm))
            sums["grad_norm"] = grad_norm.detach().float() if finite else torch.zeros((), device=acc.device)
            sums["overflow_steps"] = torch.tensor(0.0 if finite else 1.0, device=acc.device)

        if disc_active:
            d_sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=acc.device))
            for micro, (pixel_values, reconstruction) in enumerate(kept):
                with self._sync_context(self.disc, micro == accum - 1), acc.autocast():
                    disc_out = self.objective.discriminator_loss(pixel_values, reconstruction, step, self.disc)
                acc.backward(disc_out.loss / accum)
                for name, value in disc_out.terms.items():
                    d_sums[name] = d_sums[name] + value / accum
            self._check_finite(dict(d_sums), step, "discriminator")
            self._clip(self.opt_d, acc.unwrap_model(self.disc).parameters())
            _set_lr(self.opt_d, self.lr_d * lr_scale)
            self.opt_d.step()
            self.opt_d.zero_grad(set_to_none=True)
            sums.update(d_sums)

        if self.ema is not None:
            self.ema.update_parameters(self.unwrapped)
        self.progress.step += 1
        sums["lr"] = torch.tensor(self.lr * lr_scale, device=acc.device)
        return sums

    # ------------------------------------------------------------------------------------------ saving
    def save_checkpoint(self) -> Path:
        from safetensors.torch import save_model

        acc, step = self.accelerator, self.progress.step
        self.progress.epoch, self.progress.batch_in_epoch = self.batches.epoch, self.batches.batch_in_epoch
        metadata = training_metadata(self.recipe, step, self.global_batch_size, self.last_terms)

        def fill(folder: Path) -> None:
            acc.save_state(str(folder))  # models (safetensors), optimisers, scaler, RNG states
            if self.is_main:
                if self.ema is not None:
                    save_model(self.ema, str(folder / EMA_FILE))
                (folder / HISTORY_FILE).write_text(json.dumps(self.history, indent=1))
                export_tokenizer(self.export_model, folder / "tokenizer", metadata)

        # training_state.json, written last: the completion marker, vistok's format, where training is
        state = {"format": CHECKPOINT_FORMAT, "step": step, "epoch": self.progress.epoch,
                 "batch_in_epoch": self.progress.batch_in_epoch, "progress": self.progress.state_dict(),
                 "ema": self.ema is not None, "num_processes": acc.num_processes, "recipe": self.recipe.to_dict()}
        path = self.checkpoints.write(step, fill, state, self.is_main, acc.wait_for_everyone)
        logger.info("checkpoint written: %s", path)
        return path

    @staticmethod
    def _legacy_checkpoint(folder: Path, trust: bool) -> bool:
        return trust and any(CUSTOM_STATE_PATTERN.match(p.name) for p in folder.iterdir())

    def _check_resume_state(self, folder: Path, state: dict) -> None:
        """What :meth:`load_checkpoint` needs from a checked checkpoint, checked before anything is written."""
        if self._legacy_checkpoint(folder, self.trust_checkpoint):
            return
        if not isinstance(state.get("progress"), dict):
            raise CheckpointError(
                f"--resume {folder}: its training_state.json does not say where training stopped (no 'progress' "
                "entry), so it is not a vistok checkpoint; resume from one that a vistok run wrote"
            )
        if self.recipe.train.ema_decay and not (folder / EMA_FILE).is_file():
            raise CheckpointError(
                f"--resume {folder}: the checkpoint has no weight EMA ({EMA_FILE}) and this run keeps one "
                "(train.ema_decay); resume with the recipe that wrote it"
            )

    def load_checkpoint(self, folder: Path, state: dict) -> None:
        """Restore what :meth:`save_checkpoint` wrote (``state``: its checked training_state.json). A checkpoint of
        vistok before its own format (accelerate custom states, only with ``--trust_checkpoint``) is read as then."""
        from safetensors.torch import load_model

        acc = self.accelerator
        if self._legacy_checkpoint(folder, self.trust_checkpoint):
            # Progress, then the EMA, were registered custom states: accelerate unpickles them in full (trusted).
            objects = [self.progress] + ([self.ema] if self.ema is not None else [])
            for obj in objects:
                acc.register_for_checkpointing(obj)
            try:
                acc.load_state(str(folder), load_kwargs={"weights_only": False})
            finally:  # never save them that way again
                for obj in objects:
                    acc._custom_objects.remove(obj)
        else:
            # accelerate reads its pickles with weights_only=True already; said here so that it stays so
            acc.load_state(str(folder), load_kwargs={"weights_only": not self.trust_checkpoint})
            self.progress.load_state_dict(state["progress"])
            if self.ema is not None:
                load_model(self.ema, str(folder / EMA_FILE), device=str(acc.device))
        if (folder / HISTORY_FILE).is_file():
            self.history[:] = json.loads((folder / HISTORY_FILE).read_text())
            self.last_terms = self.history[-1] if self.history else {}

    def log_images(self, step: int) -> None:
        if not self.is_main or self.preview is None:
            return
        grid = reconstruction_grid(self.export_model, self.preview)
        save_grid(grid, self.output_dir / "images" / f"reconstructions-{step:08d}.png")
        if self.recipe.output.tracker == "tensorboard":
            self.accelerator.get_tracker("tensorboard", unwrap=True).add_image("reconstructions", grid, step)

    # ------------------------------------------------------------------------------------------- loop
    def run(self) -> TrainResult:
        from tqdm.auto import tqdm

        acc, cfg_t, cfg_o = self.accelerator, self.recipe.train, self.recipe.output
        history = self.history
        window: dict[str, torch.Tensor] = defaultdict(float)
        window_steps, last_saved = 0, self.progress.step if self.resumed_from is not None else -1
        bar = tqdm(total=cfg_t.max_steps, initial=self.progress.step, dynamic_ncols=True,
                   disable=not (self.is_main and cfg_o.progress_bar), desc="train")
        started, start_step = time.perf_counter(), self.progress.step
        try:
            while self.progress.step < cfg_t.max_steps:
                terms = self.train_step()
                step = self.progress.step
                for name, value in terms.items():
                    window[name] = window[name] + value
                window_steps += 1
                bar.update(1)
                if self.is_main and cfg_o.progress_bar:
                    bar.set_postfix(loss=f"{float(terms['loss']):.4f}",
                                    usage=f"{float(terms.get('batch_usage', float('nan'))):.2f}", refresh=False)
                if step % cfg_o.log_every == 0 or step == cfg_t.max_steps:
                    names = sorted(window)
                    means = torch.stack([torch.as_tensor(window[n], device=acc.device).float() for n in names])
                    means = acc.reduce(means, reduction="mean") / window_steps
                    record = {name: float(v) for name, v in zip(names, means.tolist(), strict=True)}
                    elapsed = time.perf_counter() - started
                    record["steps_per_second"] = (step - start_step) / elapsed if elapsed > 0 else float("nan")
                    record["step"] = step
                    record["samples_skipped"] = self.progress.samples_skipped
                    history.append(record)
                    self.last_terms = record
                    if cfg_o.tracker != "none":
                        acc.log({k: v for k, v in record.items() if k != "step"}, step=step)
                    window, window_steps = defaultdict(float), 0
                if step % cfg_o.image_every == 0:
                    self.log_images(step)
                if step % cfg_o.checkpoint_every == 0:
                    self.save_checkpoint()
                    last_saved = step
            elapsed = time.perf_counter() - started
            if self.progress.step != last_saved:
                self.save_checkpoint()
            if self.progress.step % cfg_o.image_every:
                self.log_images(self.progress.step)
            self.finish()
        finally:
            bar.close()
            acc.end_training()
        done = self.progress.step - start_step
        return TrainResult(
            tokenizer=self.export_model, output_dir=self.output_dir, step=self.progress.step, history=history,
            steps_per_second=done / elapsed if done and elapsed > 0 else float("nan"),
        )

    def finish(self) -> None:
        """Export the (EMA) tokenizer to the output folder and push it to the Hub if asked."""
        acc = self.accelerator
        acc.wait_for_everyone()
        if self.is_main:
            metadata = training_metadata(self.recipe, self.progress.step, self.global_batch_size, self.last_terms)
            # exported beside the folder's other files, then moved in: every name is on record before it lands
            staging = self.output_dir / EXPORT_TMP
            shutil.rmtree(staging, ignore_errors=True)
            export_tokenizer(self.export_model, staging, metadata)
            names = sorted(p.name for p in staging.iterdir())
            record_run_files(self.output_dir, *names)
            for name in names:
                target = self.output_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                os.replace(staging / name, target)
            staging.rmdir()
            (self.output_dir / HISTORY_FILE).write_text(json.dumps(self.history, indent=1))
        failure = None
        if self.is_main and self.recipe.output.push_to_hub:
            try:
                push_to_hub(self.output_dir, self.recipe.output.push_to_hub, self.recipe.output.hub_private)
            except HubUnreachableError as err:
                failure = err  # raised once every process is past the barrier
        acc.wait_for_everyone()
        if failure is not None:
            raise failure


EXPORT_TMP = ".tmp-export"
# What --push_to_hub leaves out: the training state beside the exported tokenizer (hf upload --exclude patterns).
TRAINING_ONLY = ["checkpoints/*", "logs/*", "images/*", "recipe.yaml", HISTORY_FILE, ".*"]


def push_to_hub(folder: Path, repo_id: str, private: bool) -> None:
    """Upload the exported tokenizer (config, weights, processor config, model card) — not the checkpoints.

    Raises :class:`vistok.hub.HubUnreachableError` (from :func:`vistok.hub.upload_to_hub`) when the Hub cannot be
    reached, with the ``hf upload`` command that uploads the same files later; the Hub's own errors (authentication,
    permissions) pass through."""
    from vistok.hub import upload_to_hub

    upload_to_hub(
        folder,
        repo_id,
        private=private,
        commit_message="Upload vistok tokenizer trained with training/train.py",
        later=f"The trained tokenizer is saved in {folder}",
        upload_from=str(folder),
        ignore_patterns=TRAINING_ONLY,
    )
    logger.info("pushed %s to https://huggingface.co/%s", folder, repo_id)


def train(
    recipe: Recipe, resume: str | None = None, overwrite_output_dir: bool = False, trust_checkpoint: bool = False
) -> TrainResult:
    """Train ``recipe`` into ``recipe.output.dir``: a folder that exists and is not empty is refused
    (:class:`~trainkit.output_dir.OutputDirNotEmptyError`) unless it is a vistok run's and ``resume`` or
    ``overwrite_output_dir`` is given; a checkpoint vistok did not write is refused
    (:class:`~trainkit.checkpoints.CheckpointError`) unless ``trust_checkpoint``."""
    return Trainer(recipe, resume=resume, overwrite_output_dir=overwrite_output_dir,
                   trust_checkpoint=trust_checkpoint).run()

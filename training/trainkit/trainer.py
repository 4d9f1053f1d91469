"""The training loop: one accelerate process of tokenizer (+ discriminator) training."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vistok.data import DatasetUnavailableError, build_dataset
from vistok.losses import TokenizerLoss

from .batches import BatchStream
from .checkpoints import CheckpointManager, resolve_resume
from .config import Recipe, dump_recipe
from .images import reconstruction_grid, save_grid
from .model import WeightEMA, build_tokenizer, export_tokenizer, training_metadata
from .optim import WarmupSchedule, build_optimizer
from .output_dir import check_output_dir, clear_previous_run

logger = logging.getLogger("vistok.train")


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the run stops without saving over the last good checkpoint."""


@dataclass
class Progress:
    """Where training is; saved in every checkpoint (accelerate custom state)."""

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
    def __init__(self, recipe: Recipe, resume: str | None = None, overwrite_output_dir: bool = False):
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
        self.progress = Progress()
        self.history: list[dict[str, float]] = []
        self.last_terms: dict[str, float] = {}
        acc.register_for_checkpointing(self.progress)
        if self.ema is not None:
            acc.register_for_checkpointing(self.ema)

        # ---------------------------------------------------------------------------------- output folder
        if self.is_main:
            if overwrite_output_dir:
                for path in clear_previous_run(self.output_dir):
                    logger.warning("--overwrite_output_dir: removed %s of the previous run", path)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.checkpoints.remove_stale_temporaries():
                logger.warning("removed an incomplete checkpoint left by an interrupted run: %s", stale)
            (self.output_dir / "recipe.yaml").write_text(dump_recipe(recipe))
        acc.wait_for_everyone()

        # ----------------------------------------------------------------------------------------- resume
        self.resumed_from = resolve_resume(resume, self.checkpoints)
        if resume == "latest" and self.resumed_from is None:
            logger.warning("--resume latest: no checkpoint in %s yet, starting from scratch", self.checkpoints.root)
        if self.resumed_from is not None:
            acc.load_state(str(self.resumed_from))
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
        acc, step = self.accelerator, self.progress.step
        self.progress.epoch, self.progress.batch_in_epoch = self.batches.epoch, self.batches.batch_in_epoch
        metadata = training_metadata(self.recipe, step, self.global_batch_size, self.last_terms)

        def fill(folder: Path) -> None:
            acc.save_state(str(folder))
            if self.is_main:
                export_tokenizer(self.export_model, folder / "tokenizer", metadata)

        state = {"step": step, "epoch": self.progress.epoch, "batch_in_epoch": self.progress.batch_in_epoch,
                 "num_processes": acc.num_processes, "recipe": self.recipe.to_dict()}
        path = self.checkpoints.write(step, fill, state, self.is_main, acc.wait_for_everyone)
        logger.info("checkpoint written: %s", path)
        return path

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
            export_tokenizer(self.export_model, self.output_dir, metadata)
            (self.output_dir / "training_history.json").write_text(json.dumps(self.history, indent=1))
            if self.recipe.output.push_to_hub:
                push_to_hub(self.output_dir, self.recipe.output.push_to_hub, self.recipe.output.hub_private)
        acc.wait_for_everyone()


TRAINING_ONLY = ["checkpoints/*", "logs/*", "images/*", "recipe.yaml", "training_history.json"]


def push_to_hub(folder: Path, repo_id: str, private: bool) -> None:
    """Upload the exported tokenizer (config, weights, processor config, model card) — not the checkpoints."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), ignore_patterns=TRAINING_ONLY,
                      commit_message="Upload vistok tokenizer trained with training/train.py")
    logger.info("pushed %s to https://huggingface.co/%s", folder, repo_id)


def train(recipe: Recipe, resume: str | None = None, overwrite_output_dir: bool = False) -> TrainResult:
    """Train ``recipe`` into ``recipe.output.dir``: a folder that exists and is not empty is refused
    (:class:`~trainkit.output_dir.OutputDirNotEmptyError`) unless ``resume`` or ``overwrite_output_dir`` is given."""
    return Trainer(recipe, resume=resume, overwrite_output_dir=overwrite_output_dir).run()

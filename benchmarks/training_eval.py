"""Training and evaluation throughput.

Training: steps/s and images/s of real recipes run by ``training/train.py`` on the bundled sample photos
(``--dataset samples``), at a small batch:

- ``celeba64``: training/configs/celeba64/vqvae.yaml (SimpleCNN VQ-VAE, MSE + codebook + commitment, Adam);
- ``imagenet256``: training/configs/imagenet256/vqgan-llamagen.yaml (LlamaGen VQ-16 VQGAN) with the
  PatchGAN discriminator switched on from step 0 (the recipe's steady state after its 20k-step warm-up).
  LPIPS needs torchvision's VGG16 weights, which cannot be downloaded here: without ``--lpips-weights`` the
  perceptual term is off and the result says so.

The trainer's own steps/s (measured from its first step, so it includes the first step's warm-up) is reported
next to the wall time of the whole run (setup included).

Evaluation: images/s of ``vistok.evaluate.evaluate_tokenizer`` with every metric that can be built here
(data loading, PSNR, SSIM, codebook usage; LPIPS / rFID when their weights are given) against encode+decode
alone on the same images already in memory, and the overhead of metrics + data loading over the model (best
of three interleaved runs of each).

    python benchmarks/training_eval.py [--device cpu|cuda] [--steps-celeba 20] [--steps-imagenet 3] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]
from _common import library_versions, machine, synchronize, write_results  # noqa: E402


def load_train_script():
    spec = importlib.util.spec_from_file_location("vistok_train_script", ROOT / "training" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_throughput(name, recipe, steps, batch, device, extra, notes):
    train_script = load_train_script()
    with tempfile.TemporaryDirectory() as out_dir:
        argv = [
            "--config", str(ROOT / recipe), "--dataset", "samples", "--max_steps", str(steps),
            "--batch_size", str(batch), "--output_dir", out_dir, "--output.tracker", "none",
            "--output.progress_bar", "false", "--output.checkpoint_every", "1000000",
            "--output.image_every", "1000000", "--output.log_every", str(steps), "--data.num_workers", "0",
            *extra,
        ]  # fmt: skip
        if device == "cpu":
            argv += ["--mixed_precision", "no"]
        started = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            result = train_script.main(argv)
        wall = time.perf_counter() - started
    return {
        "recipe": name,
        "config": recipe,
        "batch_size": batch,
        "steps": result.step,
        "steps_per_second": result.steps_per_second,
        "images_per_second": result.steps_per_second * batch,
        "wall_seconds_including_setup": wall,
        "overrides": extra,
        "notes": notes,
    }


def evaluation_throughput(preset, device, num_images, batch, repeats=3):
    from vistok import create_tokenizer
    from vistok.data import build_dataset, collate_images
    from vistok.evaluate import evaluate_tokenizer
    from vistok.metrics import METRIC_NAMES, ReconstructionMetrics, load_backbones

    tok = create_tokenizer(preset).eval().to(device)
    size = tok.config.image_size
    dataset = build_dataset("samples", "test", image_size=size, num_samples=num_images)
    networks, skipped = load_backbones(METRIC_NAMES, device=device, allow_download=False)

    def metrics():
        return ReconstructionMetrics(
            codebook_size=tok.codebook_size,
            metrics=METRIC_NAMES,
            lpips_network=networks.get("lpips"),
            inception_extractor=networks.get("rfid"),
            skipped=skipped,
        )

    evaluate_tokenizer(
        tok, torch.utils.data.Subset(dataset, range(batch)), metrics(), batch_size=batch, device=device
    )
    images = collate_images([dataset[i] for i in range(len(dataset))])["pixel_values"].to(device)
    batches = list(images.split(batch))

    def model_only() -> float:
        with torch.no_grad():
            synchronize(device)
            started = time.perf_counter()
            for x in batches:
                tok(x)
            synchronize(device)
        return time.perf_counter() - started

    model_only()
    # Interleaved, best of `repeats` each: both sides see the same moments of a shared machine's load.
    evaluate_seconds = model_seconds = float("inf")
    for _ in range(repeats):
        results = evaluate_tokenizer(tok, dataset, metrics(), batch_size=batch, num_workers=0, device=device)
        evaluate_seconds = min(evaluate_seconds, results["seconds"])
        model_seconds = min(model_seconds, model_only())
    return {
        "preset": preset,
        "image_size": size,
        "num_images": len(dataset),
        "batch_size": batch,
        "metrics_computed": [m for m in METRIC_NAMES if m not in skipped],
        "metrics_skipped": {m: reason.splitlines()[0] for m, reason in skipped.items()},
        "evaluate_images_per_second": len(dataset) / evaluate_seconds,
        "encode_decode_images_per_second": len(dataset) / model_seconds,
        "overhead_over_model": evaluate_seconds / model_seconds - 1,
        "target_overhead": 0.25,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps-celeba", type=int, default=20)
    parser.add_argument("--steps-imagenet", type=int, default=3)
    parser.add_argument("--batch-celeba", type=int, default=16)
    parser.add_argument("--batch-imagenet", type=int, default=2)
    parser.add_argument("--eval-images", type=int, default=256)
    parser.add_argument(
        "--lpips-weights", default=None, help="torchvision vgg16 weights: keeps LPIPS in training"
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps and images (smoke run)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    device = args.device
    if args.quick:
        args.steps_celeba, args.steps_imagenet, args.eval_images = 5, 2, 64
    training = [
        train_throughput(
            "celeba64",
            "training/configs/celeba64/vqvae.yaml",
            args.steps_celeba,
            args.batch_celeba,
            device,
            [],
            "",
        )
    ]
    print(training[-1], flush=True)
    gan = ["--loss.adversarial_start", "0"]
    if args.lpips_weights:
        extra, notes = gan + ["--loss.perceptual_weights", args.lpips_weights], "LPIPS on, discriminator on"
    else:
        extra = gan + ["--loss.perceptual_weight", "0"]
        notes = "LPIPS off (VGG16 weights not available offline); discriminator on from step 0"
    training.append(
        train_throughput(
            "imagenet256-llamagen",
            "training/configs/imagenet256/vqgan-llamagen.yaml",
            args.steps_imagenet,
            args.batch_imagenet,
            device,
            extra,
            notes,
        )
    )
    print(training[-1], flush=True)
    evaluation = [evaluation_throughput("vqvae-celeba64-vq-d4", device, args.eval_images, 32)]
    print(evaluation[-1], flush=True)
    payload = {
        "benchmark": "training and evaluation throughput",
        "machine": machine(device),
        "versions": library_versions("accelerate", "torchmetrics", "torch-fidelity"),
        "training": training,
        "evaluation": evaluation,
    }
    path = write_results(args.out or f"training_eval_{device.split(':')[0]}", payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()

"""Does the tiny recipe learn, and how fast does it train here?

Trains ``training/configs/tiny.yaml`` (or another recipe) for a few hundred steps on the bundled sample photos and
records the reconstruction loss at the first and last logging steps, codebook usage / perplexity, the training
speed, and the held-out reconstruction PSNR of the result (test photos, never seen in training).

    python benchmarks/train_tiny.py [--steps 300] [--out benchmarks/results/train_tiny.json] [-- --train.lr 2e-3 ...]

Arguments after ``--`` are recipe overrides passed to training/train.py. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_train_script():
    sys.path.insert(0, str(ROOT / "training"))
    spec = importlib.util.spec_from_file_location("vistok_train_script", ROOT / "training" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def held_out_psnr(tok, image_size: int, count: int = 64) -> float:
    """Mean PSNR (dB, vistok.metrics': uint8-rounded images on [0, 1]) on ``count`` held-out sample crops."""
    from vistok.data import build_dataset
    from vistok.metrics import psnr_per_image, to_uint8

    data = build_dataset("samples", "test", image_size, num_samples=count)
    x = torch.stack([data[i]["pixel_values"] for i in range(len(data))])
    tok.eval()
    return float(psnr_per_image(to_uint8(x), to_uint8(tok(x).reconstruction)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "training" / "configs" / "tiny.yaml"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_tiny.json"))
    args, overrides = parser.parse_known_args()
    overrides = [o for o in overrides if o != "--"]
    train_script = load_train_script()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train_script.main([
            "--config", args.config, "--output_dir", tmp, "--train.max_steps", str(args.steps),
            "--output.tracker", "none", "--output.progress_bar", "false", "--output.checkpoint_every", "100000",
            *overrides,
        ])
        wall = time.perf_counter() - started
        first, last = result.history[0], result.history[-1]
        report = {
            "recipe": os.path.relpath(args.config, ROOT),
            "overrides": overrides,
            "steps": result.step,
            "first_logged_step": first["step"],
            "reconstruction_loss_first": first["reconstruction_loss"],
            "reconstruction_loss_last": last["reconstruction_loss"],
            "loss_ratio_last_over_first": last["reconstruction_loss"] / first["reconstruction_loss"],
            "batch_usage_last": last.get("batch_usage"),
            "perplexity_last": last.get("perplexity"),
            "held_out_psnr_db": held_out_psnr(result.tokenizer, result.tokenizer.config.image_size),
            "steps_per_second": result.steps_per_second,
            "wall_seconds_including_setup": wall,
            "machine": {
                "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "load_average_at_end": os.getloadavg(),
                "platform": platform.platform(),
                "torch": torch.__version__,
            },
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Short training runs of the seed's CelebA-64 recipes on the bundled sample photos, one per quantizer family.

Not a reproduction of the seed's 500k-step tables (no CelebA offline): a same-budget comparison that checks each
quantizer trains properly — in particular that LFQ reaches the reconstruction quality of VQ / FSQ at the same
512-code budget (the seed's LFQ lagged by ~5 dB PSNR). Held-out photos (``samples`` split ``test``) are measured
with vistok.metrics (PSNR / SSIM on uint8-rounded reconstructions, codebook usage over the split).

    python benchmarks/quantizer_short_runs.py --steps 1500 --output benchmarks/results/quantizer_short_runs.json

The 10-bit group (issue 22) puts ``bsq`` beside ``lfq`` and ``fsq`` at equal bits per token: LFQ at 10 bits (the
seed's LFQ recipe, codebook_dim 10), FSQ [8, 8, 4, 4] (exactly 1,024 codes = 10 bits) and BSQ at 10 bits with
BSQ-ViT's quantizer settings (the ``bsq`` defaults; and with the per-channel codebook entropy of the paper's Eq. 8,
``entropy_group_size`` 1, which BSQ-ViT's best released configs use), all in the same SimpleCNN, data and budget,
each for three seeds (benchmarks/results/bsq_short_runs_cpu.json):

    OMP_NUM_THREADS=1 python benchmarks/quantizer_short_runs.py --steps 600 --batch-size 32 --eval-images 512 \\
        --only "fsq [8,8,4,4] (10 bits)" "lfq (10 bits)" "bsq (10 bits)" "bsq (10 bits, entropy group 1)" \\
        --seeds 8888 1 2 --output benchmarks/results/bsq_short_runs_cpu.json -- --model.net.hidden_channels 64 \\
        --model.image_size 32 --data.num_workers 0 --train.lr 1e-3 --output.progress_bar false --output.tracker none
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import library_versions, machine  # noqa: E402

RECIPES = {
    "vq (d8, 512)": ("training/configs/celeba64/vqvae.yaml", "vqvae-celeba64-vq-d8"),
    "vq l2 (d64, 512)": ("training/configs/celeba64/vqvae.yaml", "vqvae-celeba64-vq-d64-l2"),
    "fsq [8,8,8]": ("training/configs/celeba64/fsqvae.yaml", "fsqvae-celeba64-888"),
    "lfq (9 bits)": ("training/configs/celeba64/lfqvae.yaml", "lfqvae-celeba64-d9"),
    "simvq (d64, 512)": ("training/configs/celeba64/simvqvae.yaml", "simvqvae-celeba64-d64"),
    "vq (d64, 512)": ("training/configs/celeba64/vqvae.yaml", "vqvae-celeba64-vq-d64"),
    # IBQ in the seed's VQ-VAE recipe: only the quantizer differs from "vq (d64, 512)" (IBQ's own loss weights).
    "ibq (d64, 512)": ("training/configs/celeba64/vqvae.yaml", "vqvae-celeba64-vq-d64",
                       ["--model.quantizer", "{type: ibq, codebook_size: 512, codebook_dim: 64}"]),
    # Equal bits (10 per token, 1,024 codes): only the quantizer differs. LFQ keeps the seed recipe's options
    # (commitment 0.25, entropy 0.1 at tau 0.01); BSQ takes the bsq defaults, BSQ-ViT's (entropy 0.1, gamma0 = gamma
    # = 1, tau 1, commitment 0, codebook entropy over groups of <= 9 channels: 5 + 5 here).
    "fsq [8,8,4,4] (10 bits)": ("training/configs/celeba64/fsqvae.yaml", "fsqvae-celeba64-888",
                                ["--model.quantizer.levels", "[8, 8, 4, 4]"]),
    "lfq (10 bits)": ("training/configs/celeba64/lfqvae.yaml", "lfqvae-celeba64-d9",
                      ["--model.quantizer.codebook_dim", "10"]),
    "bsq (10 bits)": ("training/configs/celeba64/lfqvae.yaml", "lfqvae-celeba64-d9",
                      ["--model.quantizer", "{type: bsq, codebook_dim: 10}"]),
    "bsq (10 bits, entropy group 1)": ("training/configs/celeba64/lfqvae.yaml", "lfqvae-celeba64-d9",
                                       ["--model.quantizer", "{type: bsq, codebook_dim: 10, entropy_group_size: 1}"]),
}


def train(recipe: str, preset: str, steps: int, batch: int, out_dir: Path, extra: list[str]) -> float:
    cmd = [
        sys.executable, str(ROOT / "training/train.py"), "--config", str(ROOT / recipe), "--preset", preset,
        "--dataset", "samples", "--max_steps", str(steps), "--batch_size", str(batch), "--output_dir", str(out_dir),
        "--output.checkpoint_every", str(steps), "--output.image_every", str(steps), "--data.eval_split", "test",
        "--overwrite_output_dir", *extra,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


@torch.no_grad()
def measure(folder: Path, num_images: int, device: str) -> dict[str, float]:
    from vistok import VisTokenizer
    from vistok.data import build_dataset, collate_images
    from vistok.metrics import PSNR, SSIM, CodebookUsage, to_uint8

    tok = VisTokenizer.from_pretrained(folder).to(device).eval()
    data = build_dataset("samples", "test", tok.config.image_size, num_samples=num_images)
    loader = torch.utils.data.DataLoader(data, batch_size=128, collate_fn=collate_images)
    psnr, ssim, usage = PSNR(), SSIM(), CodebookUsage(tok.codebook_size)
    for batch in loader:
        x = batch["pixel_values"].to(device)
        out = tok(x)
        original, reconstruction = to_uint8(x.cpu()), to_uint8(out.reconstruction.float().cpu())
        psnr.update(original, reconstruction)
        ssim.update(original, reconstruction)
        usage.update(out.indices.cpu())
    return {**psnr.compute(), **ssim.compute(), **{f"usage_{k}": v for k, v in usage.compute().items()
                                                  if isinstance(v, (int, float))}}


SUMMARY_METRICS = ("psnr", "ssim", "usage_codebook_usage", "usage_perplexity")


def seed_summary(results: dict[str, dict]) -> dict[str, dict]:
    """Per run name without its ", seed N" suffix: the seeds and the mean and sample standard deviation of each of
    :data:`SUMMARY_METRICS` over them (runs with at least two seeds only)."""
    groups: dict[str, list[dict]] = {}
    for name, result in results.items():
        if result.get("seed") is not None:
            groups.setdefault(name.rsplit(", seed ", 1)[0], []).append(result)
    summary = {}
    for base, runs in groups.items():
        if len(runs) < 2:
            continue
        summary[base] = {"seeds": [r["seed"] for r in runs]}
        for metric in SUMMARY_METRICS:
            values = [r[metric] for r in runs]
            summary[base][metric] = {"mean": statistics.mean(values), "std": statistics.stdev(values)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--eval-images", type=int, default=1024)
    parser.add_argument("--runs-dir", default="runs/quantizer_short_runs")
    parser.add_argument("--output", default="benchmarks/results/quantizer_short_runs.json")
    parser.add_argument("--only", nargs="*", help="subset of the run names")
    parser.add_argument("--seeds", nargs="*", type=int,
                        help="run each selected recipe once per seed (--train.seed); default: the recipe's own seed")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="extra train.py overrides after --")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {}
    runs = [(name, spec, seed) for seed in (args.seeds or [None]) for name, spec in RECIPES.items()
            if not args.only or name in args.only]
    for base_name, (recipe, preset, *run_overrides), seed in runs:
        name = base_name if seed is None else f"{base_name}, seed {seed}"
        seed_override = [] if seed is None else ["--train.seed", str(seed)]
        out_dir = Path(args.runs_dir) / "".join(c if c.isalnum() else "-" for c in name)
        overrides = [*(run_overrides[0] if run_overrides else []), *(a for a in args.extra if a != "--"), *seed_override]
        seconds = train(recipe, preset, args.steps, args.batch_size, out_dir, overrides)
        quantizer = json.loads((out_dir / "config.json").read_text())["quantizer"]
        results[name] = {
            "recipe": recipe, "preset": preset, "run_overrides": " ".join(run_overrides[0]) if run_overrides else "",
            "seed": seed, "quantizer": quantizer, "train_seconds": round(seconds, 1),
            **measure(out_dir, args.eval_images, device),
        }
        results[name]["bits_per_token"] = round(math.log2(results[name]["usage_codebook_size"]), 4)
        print(name, results[name], flush=True)
    report = {
        "what": "same-budget short runs of the celeba64 recipes on the bundled sample photos (held-out split)",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "eval_images": args.eval_images,
        "overrides": " ".join(a for a in args.extra if a != "--"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": machine(device),
        "versions": library_versions(),
        "results": results,
    }
    if any(r.get("seed") is not None for r in results.values()):
        report["summary_over_seeds"] = seed_summary(results)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

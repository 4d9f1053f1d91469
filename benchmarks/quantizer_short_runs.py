"""Short training runs of the seed's CelebA-64 recipes on the bundled sample photos, one per quantizer family.

Not a reproduction of the seed's 500k-step tables (no CelebA offline): a same-budget comparison that checks each
quantizer trains properly — in particular that LFQ reaches the reconstruction quality of VQ / FSQ at the same
512-code budget (the seed's LFQ lagged by ~5 dB PSNR). Held-out photos (``samples`` split ``test``) are measured
with vistok.metrics (PSNR / SSIM on uint8-rounded reconstructions, codebook usage over the split).

    python benchmarks/quantizer_short_runs.py --steps 1500 --output benchmarks/results/quantizer_short_runs.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--eval-images", type=int, default=1024)
    parser.add_argument("--runs-dir", default="runs/quantizer_short_runs")
    parser.add_argument("--output", default="benchmarks/results/quantizer_short_runs.json")
    parser.add_argument("--only", nargs="*", help="subset of the run names")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="extra train.py overrides after --")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {}
    for name, (recipe, preset, *run_overrides) in RECIPES.items():
        if args.only and name not in args.only:
            continue
        out_dir = Path(args.runs_dir) / "".join(c if c.isalnum() else "-" for c in name)
        overrides = [*(run_overrides[0] if run_overrides else []), *(a for a in args.extra if a != "--")]
        seconds = train(recipe, preset, args.steps, args.batch_size, out_dir, overrides)
        results[name] = {"preset": preset, "train_seconds": round(seconds, 1), **measure(out_dir, args.eval_images, device)}
        print(name, results[name], flush=True)
    report = {
        "what": "same-budget short runs of the celeba64 recipes on the bundled sample photos (held-out split)",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "results": results,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""LFQ quality, measured (issue 12 part 5): short training runs on the bundled sample photos, LFQ against FSQ / VQ.

Two comparisons, each within one budget:

- ``seed nets``: the runs of ``quantizer_short_runs.py`` (SimpleCNN hidden 64 at 32 px, f4 → 8×8 tokens, 512 codes,
  600 steps of batch 32, Adam 1e-3, L2) with the current LFQ, so that its row can be read against the FSQ and VQ
  rows of ``benchmarks/results/quantizer_short_runs_cpu.json`` (same budget) or against VQ / FSQ rerun here.
- ``magvit2 net``: Open-MAGVIT2's conv net (``magvit2``: base 32, multipliers 1, 2, 2, one res block; f4 → 8×8
  tokens, no quant_conv) with LFQ at 2^14 codes (Open-MAGVIT2's LFQ options) against FSQ [8, 8, 8, 6, 5]
  (15,360 codes, the FSQ paper's 2^14-class levels) in the same net, at a smaller budget that fits a 2-core CPU.

Every result records its own steps, batch size and overrides; ``--merge`` adds runs to an existing results file, so
that the two groups can be run separately. Quality is measured as in ``quantizer_short_runs.py``.

benchmarks/results/lfq_short_runs_cpu.json holds "lfq (9 bits)", "lfq (9 bits), seed 1", "fsq [8,8,8]",
"lfq 2^14 (magvit2)" and "fsq 15360 (magvit2)", each run on its own (one thread each on the 2-core machine):

    OMP_NUM_THREADS=1 python benchmarks/lfq_short_runs.py --only "lfq (9 bits)" --merge \
        --output benchmarks/results/lfq_short_runs_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import library_versions, machine  # noqa: E402
from quantizer_short_runs import measure, train  # noqa: E402

SEED_RECIPE = "training/configs/celeba64/lfqvae.yaml"  # L2 reconstruction, Adam; the model is set per run
SIMPLE_CNN_32PX = ["--model.net.hidden_channels", "64", "--model.image_size", "32", "--data.num_workers", "0",
                   "--train.lr", "1e-3"]
MAGVIT2_NET = "type: magvit2, base_channels: 32, channel_multiplier: [1, 2, 2], num_res_blocks: 1, norm_groups: 8"
OPEN_MAGVIT2_LFQ = ("commitment_weight: 0.25, entropy_weight: 0.1, diversity_weight: 1.0, entropy_temperature: 0.01, "
                    "bit_order: lsb_first")


def _magvit2(latent_channels: int, quantizer: str) -> list[str]:
    model = f"{{image_size: 32, net: {{{MAGVIT2_NET}, latent_channels: {latent_channels}}}, quantizer: {{{quantizer}}}}}"
    return ["--model", model, "--data.num_workers", "0", "--train.lr", "1e-3"]


# name: (recipe, preset, steps, batch size, overrides)
RUNS = {
    "vq (d8, 512)": ("training/configs/celeba64/vqvae.yaml", "vqvae-celeba64-vq-d8", 600, 32, SIMPLE_CNN_32PX),
    "fsq [8,8,8]": ("training/configs/celeba64/fsqvae.yaml", "fsqvae-celeba64-888", 600, 32, SIMPLE_CNN_32PX),
    "lfq (9 bits)": (SEED_RECIPE, "lfqvae-celeba64-d9", 600, 32, SIMPLE_CNN_32PX),
    "lfq (9 bits), seed 1": (SEED_RECIPE, "lfqvae-celeba64-d9", 600, 32, [*SIMPLE_CNN_32PX, "--train.seed", "1"]),
    "lfq 2^14 (magvit2)": (SEED_RECIPE, "lfqvae-celeba64-d9", 200, 16,
                           _magvit2(14, f"type: lfq, codebook_dim: 14, {OPEN_MAGVIT2_LFQ}")),
    "fsq 15360 (magvit2)": (SEED_RECIPE, "lfqvae-celeba64-d9", 200, 16,
                            _magvit2(5, "type: fsq, levels: [8, 8, 8, 6, 5]")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-images", type=int, default=512)
    parser.add_argument("--runs-dir", default="runs/lfq_short_runs")
    parser.add_argument("--output", default="benchmarks/results/lfq_short_runs.json")
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), help="subset of the run names")
    parser.add_argument("--merge", action="store_true", help="keep the runs already in --output")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    output = Path(args.output)
    results = json.loads(output.read_text())["results"] if args.merge and output.is_file() else {}
    for name, (recipe, preset, steps, batch, overrides) in RUNS.items():
        if args.only and name not in args.only:
            continue
        out_dir = Path(args.runs_dir) / "".join(c if c.isalnum() else "-" for c in name)
        seconds = train(recipe, preset, steps, batch, out_dir, list(overrides))
        results[name] = {
            "recipe": recipe, "steps": steps, "batch_size": batch, "overrides": " ".join(overrides),
            "train_seconds": round(seconds, 1), **measure(out_dir, args.eval_images, device),
        }
        print(name, results[name], flush=True)
    report = {
        "what": "LFQ against FSQ / VQ in same-budget short runs on the bundled sample photos (held-out split, "
                f"{args.eval_images} crops); runs compare only within one budget (steps, batch_size)",
        "machine": machine(device),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "versions": library_versions(),
        "note": "train_seconds are wall times on a shared machine; compare quality, not time",
        "results": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

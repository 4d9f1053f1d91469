"""Peak memory of LFQ's entropy loss at 2^18 codes (Open-MAGVIT2's codebook), forward + backward.

Each measurement runs in a fresh process and reads the kernel's high-water mark of resident memory (VmHWM) before
and after one ``entropy_terms`` forward + backward on N latents of 18 channels. The reference is the size of the
N × 2^18 float32 logit matrix a direct computation would hold (never allocated here: it would not fit).
Results: ``benchmarks/results/lfq_entropy_memory_cpu.json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "lfq_entropy_memory_cpu.json"
CODEBOOK_DIM = 18
TOKEN_COUNTS = (4_096, 65_536)  # 16 images and 256 images of 16x16 tokens


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _measure(tokens: int, queue) -> None:
    import torch

    import vistok

    quantizer = vistok.QUANTIZERS.get("lfq")(codebook_dim=CODEBOOK_DIM)
    flat = torch.randn(tokens, CODEBOOK_DIM, requires_grad=True)
    before = _vm_hwm_mib()
    start = time.perf_counter()
    sample, codebook = quantizer.entropy_terms(flat)
    (sample - codebook).backward()
    seconds = time.perf_counter() - start
    queue.put(
        {
            "tokens": tokens,
            "peak_rss_mib_before": round(before, 1),
            "peak_rss_mib_after": round(_vm_hwm_mib(), 1),
            "peak_increase_mib": round(_vm_hwm_mib() - before, 1),
            "direct_logit_matrix_mib": tokens * 2**CODEBOOK_DIM * 4 / 2**20,
            "seconds": round(seconds, 3),
            "codebook_entropy_nats": float(codebook.detach()),
        }
    )


def main() -> int:
    import torch

    context = mp.get_context("spawn")
    rows = []
    for tokens in TOKEN_COUNTS:
        queue = context.Queue()
        process = context.Process(target=_measure, args=(tokens, queue))
        process.start()
        rows.append(queue.get())
        process.join()
        print(rows[-1])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "lfq_entropy_memory",
                "codebook_dim": CODEBOOK_DIM,
                "machine": {"cpu": platform.processor() or platform.machine(), "python": sys.version.split()[0],
                            "torch": torch.__version__},
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def render_lfq_entropy_memory(payload: dict) -> list[str]:
    """Markdown lines for docs/benchmarks.md (called by benchmarks/run.py)."""
    lines = [
        f"LFQ codebook entropy at 2^{payload['codebook_dim']} codes (9 + 9 bit groups), one forward + backward in a "
        "fresh process; peak RSS increase over the process before the call (VmHWM).",
        "",
        "| tokens | peak RSS increase | direct N × 2^18 float32 logits would need | time |",
        "|---|---|---|---|",
    ]
    for row in payload["rows"]:
        lines.append(
            f"| {row['tokens']:,} | {row['peak_increase_mib']:,.0f} MiB | {row['direct_logit_matrix_mib']:,.0f} MiB "
            f"| {row['seconds']:.1f} s |"
        )
    return lines

"""Nearest-code search (the VQ hot path): vistok against vector-quantize-pytorch and the textbook search.

For each case (N vectors, K codes, dim D) it times, in one process on one machine:

- ``vistok``: ``nearest_code`` then the gather of the chosen codes (indices + quantized vectors);
- ``vector_quantize_pytorch``: ``VectorQuantize(dim, codebook_size, use_cosine_sim=...)`` in eval mode under
  ``no_grad`` with the same codebook, which returns the same two things;
- ``textbook``: ``argmin(sum z² + sum c² − 2 z·c)`` over the materialised N × K matrix (the seed project's
  and LlamaGen's formulation), skipped when the matrix would not fit comfortably in free memory;
- on CUDA only, ``vistok_blocked`` and ``vistok_triton``: each of the two paths ``nearest_code`` chooses between
  by dimension (``TRITON_MAX_DIM``), timed on every case so that a run shows whether the threshold still holds.

It checks that vistok's indices equal the textbook's (and reports agreement with vector-quantize-pytorch, whose
Euclidean search adds a clamp and a square root), and measures vistok's peak extra memory: from the CUDA
allocator, or on CPU from the resident-set high-water mark of a fresh child process.

    python benchmarks/search.py [--device cpu|cuda] [--threads N] [--quick] [--out NAME]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import resource
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from _common import (  # noqa: E402
    best_time,
    interleaved_best_times,
    library_versions,
    machine,
    matmul_peak_gflops,
    write_results,
)

from vistok.quantizers import search  # noqa: E402
from vistok.quantizers.search import DEFAULT_MAX_CHUNK_BYTES, TRITON_MAX_DIM, nearest_code  # noqa: E402

CASES = [
    # name, N, K, D, cosine
    ("llamagen_vq16", 65536, 16384, 8, True),  # LlamaGen VQ-16: sixteen 256² images, l2-normalised codes
    ("taming_f16_1024", 65536, 1024, 256, False),  # Taming VQGAN f16, K=1024, D=256
    ("seed_celeba", 65536, 512, 64, False),  # the seed project's CelebA VQ-VAE
    ("taming_f16_16384", 65536, 16384, 256, False),  # Taming VQGAN f16, K=16384 (no target in the issue)
]
TARGET_RATIO = {"llamagen_vq16": 20.0, "taming_f16_1024": 10.0, "seed_celeba": 10.0}


def make_inputs(n: int, k: int, d: int, cosine: bool, device: str, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=generator)
    codebook = torch.randn(k, d, generator=generator)
    if cosine:
        z, codebook = F.normalize(z, dim=1), F.normalize(codebook, dim=1)
    return z.to(device), codebook.to(device)


def textbook_search(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    dist = torch.sum(z**2, dim=1, keepdim=True) + torch.sum(codebook**2, dim=1) - 2 * z @ codebook.t()
    return dist.argmin(dim=1)


def vistok_lookup(z, codebook):
    indices = nearest_code(z, codebook)
    return indices, codebook[indices]


def make_vqp(d: int, k: int, cosine: bool, codebook: torch.Tensor):
    from vector_quantize_pytorch import VectorQuantize

    vq = VectorQuantize(dim=d, codebook_size=k, use_cosine_sim=cosine).to(codebook.device).eval()
    with torch.no_grad():
        vq._codebook.embed.copy_(codebook[None])
        if hasattr(vq._codebook, "initted"):
            vq._codebook.initted.fill_(True)
    return vq


def vqp_lookup(vq, z, batches: int = 16):
    with torch.no_grad():
        quantized, indices, _ = vq(z.view(batches, -1, z.shape[1]))
    return indices.reshape(-1), quantized.reshape(-1, z.shape[1])


def available_memory_bytes(device: str) -> int:
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info()
        return free
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        return 8 * 2**30


def _resident_high_water_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child_peak_rss(n, k, d, cosine, threads, queue):
    torch.set_num_threads(threads)
    z, codebook = make_inputs(n, k, d, cosine, "cpu")
    nearest_code(z[:4096], codebook)  # warm the allocator first
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the resident-set high-water mark (VmHWM)
    before = _resident_high_water_bytes()
    nearest_code(z, codebook)
    queue.put(max(0, _resident_high_water_bytes() - before))


def cpu_peak_extra_bytes(n, k, d, cosine) -> int | None:
    """Growth of a fresh process's resident-set high-water mark during one search (the N int64 output
    included), or None where the mark cannot be reset (not Linux)."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_peak_rss, args=(n, k, d, cosine, torch.get_num_threads(), queue))
    child.start()
    child.join()
    return queue.get(timeout=5)


def cuda_peak_extra_bytes(fn) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def run_case(name, n, k, d, cosine, device, repeats, with_textbook=True, peak_gflops=None):
    z, codebook = make_inputs(n, k, d, cosine, device)
    cuda = device.startswith("cuda")
    result = {"case": name, "N": n, "K": k, "D": d, "cosine": cosine, "flops": 2 * n * k * d}
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # every contender computes in full float32

    vq = make_vqp(d, k, cosine, codebook)
    contenders = {
        "vistok": lambda: vistok_lookup(z, codebook),
        "vector_quantize_pytorch": lambda: vqp_lookup(vq, z),
    }
    paths = {}
    if cuda:
        paths["vistok_blocked"] = lambda: search._nearest_code_blocked(z, codebook, DEFAULT_MAX_CHUNK_BYTES)
        if search._triton_search() is not None:
            paths["vistok_triton"] = lambda: search._triton_search()(z, codebook)
        contenders.update(paths)
    # On CPU the two largest cases take tens of seconds per vector-quantize-pytorch call: time those once
    # (after the warm-up call), the others as often as vistok.
    vqp_repeats = repeats if cuda or n * k <= 2**27 else 1
    times = interleaved_best_times(
        contenders, device, {name: vqp_repeats if name.startswith("vector") else repeats for name in contenders}
    )
    ours = times["vistok"]
    indices = nearest_code(z, codebook)
    result["vistok_s"] = ours
    result["vistok_gflops"] = 2 * n * k * d / ours / 1e9
    if cuda:
        result["vistok_path"] = "triton" if "vistok_triton" in paths and d <= TRITON_MAX_DIM else "blocked"
        for path, fn in paths.items():
            result[f"{path}_s"] = times[path]
            result[f"{path}_identical"] = bool(torch.equal(fn(), indices))
            result[f"{path}_peak_extra_mib"] = cuda_peak_extra_bytes(fn) / 2**20
        result["vistok_peak_extra_mib"] = cuda_peak_extra_bytes(lambda: nearest_code(z, codebook)) / 2**20
    else:
        result["vistok_plan"] = dataclasses.asdict(search._plan(n, k, d, DEFAULT_MAX_CHUNK_BYTES, 4, cpu=True))
        peak = cpu_peak_extra_bytes(n, k, d, cosine)
        result["vistok_peak_extra_mib"] = None if peak is None else peak / 2**20
        result["output_mib"] = n * 8 / 2**20

    result["vector_quantize_pytorch_s"] = times["vector_quantize_pytorch"]
    vqp_indices, _ = vqp_lookup(vq, z)
    result["agreement_with_vector_quantize_pytorch"] = (vqp_indices == indices).float().mean().item()
    result["speedup_vs_vector_quantize_pytorch"] = result["vector_quantize_pytorch_s"] / ours
    if peak_gflops:  # no exact float32 search can beat the arithmetic 2·N·K·D at the measured matmul rate
        result["float32_compute_bound_s"] = 2 * n * k * d / peak_gflops / 1e9
        result["speedup_at_compute_bound"] = (
            result["vector_quantize_pytorch_s"] / result["float32_compute_bound_s"]
        )
    result["target_speedup"] = TARGET_RATIO.get(name)

    textbook_bytes = 3 * n * k * 4
    if with_textbook and textbook_bytes < available_memory_bytes(device) // 2:
        result["textbook_s"] = best_time(lambda: textbook_search(z, codebook), device, repeats=vqp_repeats)
        expected = textbook_search(z, codebook)
        result["identical_to_textbook"] = bool(torch.equal(expected, indices))
        result["mismatches_vs_textbook"] = int((expected != indices).sum())
        result["speedup_vs_textbook"] = result["textbook_s"] / ours
    else:
        result["textbook_s"] = None
        result["textbook_skipped"] = f"needs ~{textbook_bytes / 2**30:.1f} GiB free"
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="N = 8192 instead of 65536 (smoke run)")
    parser.add_argument("--no-textbook", action="store_true")
    parser.add_argument("--out", default=None, help="results/<out>.json (default search_<device>)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    repeats = args.repeats or (10 if device.startswith("cuda") else 3)
    peak = matmul_peak_gflops(device, torch.float32)
    cases = []
    for name, n, k, d, cosine in CASES:
        n = 8192 if args.quick else n
        case = run_case(name, n, k, d, cosine, device, repeats, not args.no_textbook, peak)
        cases.append(case)
        print(
            f"{name:16s} N={n} K={k} D={d}: vistok {case['vistok_s'] * 1e3:8.1f} ms, "
            f"vector-quantize-pytorch {case['vector_quantize_pytorch_s'] * 1e3:9.1f} ms "
            f"(x{case['speedup_vs_vector_quantize_pytorch']:.1f}), textbook "
            + (f"{case['textbook_s'] * 1e3:9.1f} ms" if case["textbook_s"] else "skipped")
            + f", identical={case.get('identical_to_textbook')}, peak extra {case['vistok_peak_extra_mib']} MiB",
            flush=True,
        )
    payload = {
        "benchmark": "nearest-code search",
        "machine": machine(device),
        "matmul_peak_gflops_float32": peak,
        "versions": library_versions("vector-quantize-pytorch", "triton"),
        "cases": cases,
    }
    path = write_results(args.out or f"search_{device.split(':')[0]}", payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()

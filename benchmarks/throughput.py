"""Tokenizer throughput: encode, decode and encode+decode images/s and peak memory for every preset.

Each preset runs at its native resolution (``tok.config.image_size``) with random pixels, at batch 1 and at a
bigger batch, in eval mode under ``inference_mode``. Per preset it also counts the model FLOPs per image
(``torch.utils.flop_counter``: convolutions and matrix products) and reports the achieved fraction of this
device's measured dense matmul rate, and the ratio of the measured time to that compute bound.

- CPU: float32. Peak memory is the growth of the process's resident-set high-water mark over the model's
  loaded size (each preset runs in a fresh child process, so the figure is per preset).
- CUDA: float32 (PyTorch's default TF32 settings, recorded), bfloat16, and bfloat16 + channels-last
  (optionally ``torch.compile``); peak memory from the CUDA allocator. For bfloat16 it also reports how far the reconstruction moves from the float32 one and the share
  of identical token indices.

    python benchmarks/throughput.py [--device cpu|cuda] [--presets a,b] [--compile preset,...] [--quick] [--out NAME]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from _common import best_time, count_flops, library_versions, machine, matmul_peak_gflops, write_results  # noqa: E402

import vistok  # noqa: E402


def default_batches(image_size: int, device: str, quick: bool) -> list[int]:
    if device.startswith("cuda"):
        return [1, 64 if image_size >= 256 else 512]
    if quick:
        return [1, 2 if image_size >= 256 else 8]
    return [1, 4 if image_size >= 256 else 32]


def rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_preset(name: str, device: str, batches: list[int], configs: list[str], repeats: int, peaks: dict):
    """All figures for one preset: per config (fp32 / bf16 / bf16+compile) and batch, the three modes."""
    cuda = device.startswith("cuda")
    # The matmul rate right before this preset: on a shared machine the rate available changes over a run, so
    # the compute bound uses the best rate seen (the sweep's or this one), never a momentary low.
    local = matmul_peak_gflops(device, torch.float32)
    peaks = {**peaks, "fp32": max(peaks["fp32"], local)}
    tok = vistok.create_tokenizer(name).eval().to(device)
    size = tok.config.image_size
    generator = torch.Generator().manual_seed(0)
    result = {
        "preset": name,
        "image_size": size,
        "parameters_m": sum(p.numel() for p in tok.parameters()) / 1e6,
        "matmul_peak_gflops_used": peaks,
    }
    with torch.inference_mode():
        x1 = (torch.rand(1, 3, size, size, generator=generator) * 2 - 1).to(device)
        encoded = tok.encode(x1)
        result["tokens_per_image"] = int(encoded.indices[0].numel())
        result["encode_gflop_per_image"] = count_flops(lambda: tok.encode(x1)) / 1e9
        result["decode_gflop_per_image"] = count_flops(lambda: tok.decode(encoded.indices)) / 1e9
    result["encode_decode_gflop_per_image"] = (
        result["encode_gflop_per_image"] + result["decode_gflop_per_image"]
    )
    inputs = {b: (torch.rand(b, 3, size, size, generator=generator) * 2 - 1).to(device) for b in batches}
    reference_reconstruction = {}
    result["runs"] = []
    for config in configs:
        model, dtype = tok, torch.float32
        if config.startswith("bf16"):
            dtype = torch.bfloat16
            model = vistok.create_tokenizer(name).eval()
            model.load_state_dict(tok.state_dict())
            layout = torch.channels_last if "channels_last" in config else torch.contiguous_format
            model = model.to(device=device, dtype=dtype, memory_format=layout)
        encode, decode = model.encode, model.decode
        if config.endswith("compile"):
            encode, decode = torch.compile(model.encode), torch.compile(model.decode)
        peak = peaks["bf16" if dtype == torch.bfloat16 else "fp32"]
        base_rss = rss_bytes()
        for batch in batches:
            x = inputs[batch]
            if cuda and "channels_last" in config:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                indices = encode(x).indices
                modes = {
                    "encode": lambda x=x, encode=encode: encode(x),
                    "decode": lambda indices=indices, decode=decode: decode(indices),
                    "encode_decode": lambda x=x, encode=encode, decode=decode: decode(encode(x).indices),
                }
                for mode, fn in modes.items():
                    if cuda:
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                        before = torch.cuda.memory_allocated()
                    seconds = best_time(
                        fn, device, repeats=repeats, warmup=1 if (cuda or batch == batches[0]) else 0
                    )
                    flops = result[f"{mode}_gflop_per_image"] * 1e9 * batch
                    run = {
                        "config": config,
                        "batch": batch,
                        "mode": mode,
                        "seconds": seconds,
                        "images_per_s": batch / seconds,
                        "achieved_gflops": flops / seconds / 1e9,
                        "fraction_of_matmul_peak": flops / seconds / 1e9 / peak,
                        "time_over_compute_bound": seconds / (flops / 1e9 / peak),
                    }
                    if cuda:
                        run["peak_memory_mib"] = (torch.cuda.max_memory_allocated() - before) / 2**20
                    result["runs"].append(run)
                if not cuda:
                    result["runs"][-1]["peak_rss_growth_mib"] = (rss_bytes() - base_rss) / 2**20
                if batch == batches[-1]:
                    reconstruction = decode(encode(x).indices).float()
                    if config == "fp32":
                        reference_reconstruction[batch] = (x.float(), reconstruction, encode(x).indices)
                    elif batch in reference_reconstruction:
                        _, fp32_rec, fp32_indices = reference_reconstruction[batch]
                        err = (reconstruction - fp32_rec).float()
                        result.setdefault("bf16_vs_fp32", {})[config] = {
                            "max_abs_diff": float(err.abs().max()),
                            "psnr_db_vs_fp32": float(
                                10 * torch.log10(4.0 / err.pow(2).mean().clamp_min(1e-20))
                            ),
                            "identical_indices": float((encode(x).indices == fp32_indices).float().mean()),
                        }
    return result


def _child(name, device, batches, configs, repeats, peaks, threads, queue):
    torch.set_num_threads(threads)
    try:
        queue.put(measure_preset(name, device, batches, configs, repeats, peaks))
    except Exception as error:  # reported in the results rather than aborting the whole sweep
        queue.put({"preset": name, "error": f"{type(error).__name__}: {error}"})


def run_preset(name, device, batches, configs, repeats, peaks, isolate):
    if not isolate:
        return measure_preset(name, device, batches, configs, repeats, peaks)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(
        target=_child, args=(name, device, batches, configs, repeats, peaks, torch.get_num_threads(), queue)
    )
    child.start()
    result = queue.get()
    child.join()
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", default=None, help="comma-separated preset names (default: all)")
    parser.add_argument(
        "--batches", default=None, help="comma-separated batch sizes (default: 1 and a big one)"
    )
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--compile", default="", help="comma-separated presets also run as bf16 + torch.compile (CUDA)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller big batch, one repeat")
    # default repeats: 5 on CUDA; on CPU 2 for 64-pixel presets and 1 for 256-pixel ones (seconds per image)
    parser.add_argument("--out", default=None, help="results/<out>.json (default throughput_<device>)")
    args = parser.parse_args(argv)
    device = args.device
    cuda = device.startswith("cuda")
    names = args.presets.split(",") if args.presets else list(vistok.list_tokenizers())
    compiled = set(filter(None, args.compile.split(",")))
    peaks = {"fp32": matmul_peak_gflops(device, torch.float32)}
    if cuda:
        peaks["bf16"] = matmul_peak_gflops(device, torch.bfloat16)
    print(f"measured matmul peak: {peaks}", flush=True)
    results = []
    for name in names:
        size = vistok.create_tokenizer(name).config.image_size
        batches = (
            [int(b) for b in args.batches.split(",")]
            if args.batches
            else default_batches(size, device, args.quick)
        )
        repeats = args.repeats or (5 if cuda else (1 if args.quick or size >= 256 else 2))
        configs = ["fp32"]
        if cuda:
            configs += ["bf16", "bf16_channels_last"] + (
                ["bf16_channels_last_compile"] if name in compiled else []
            )
        result = run_preset(name, device, batches, configs, repeats, peaks, isolate=not cuda)
        results.append(result)
        if "error" in result:
            print(f"{name}: {result['error']}", flush=True)
            continue
        summary = ", ".join(
            f"{r['config']} b{r['batch']} {r['mode']} {r['images_per_s']:.1f} img/s ({r['time_over_compute_bound']:.2f}x bound)"
            for r in result["runs"]
            if r["mode"] == "encode_decode"
        )
        print(f"{name} ({result['encode_decode_gflop_per_image']:.1f} GFLOP/img): {summary}", flush=True)
    payload = {
        "benchmark": "tokenizer throughput",
        "machine": machine(device),
        "versions": library_versions("triton"),
        "matmul_peak_gflops": peaks,
        "float32_settings": {  # PyTorch defaults unless changed: TF32 convolutions on, TF32 matmuls off
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        },
        "presets": results,
    }
    path = write_results(args.out or f"throughput_{device.split(':')[0]}", payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()

"""Pre-tokenizing a dataset (issue 15 §4–5): ``vistok tokenize`` end to end against the tokenizer alone, and
against a LlamaGen-style loop that saves one ``.npy`` per image; bf16 / torch.compile inference speed and the
bf16-vs-float32 index agreement.

In one process, on the same images (``--dataset``, default the bundled sample photos, at the model's resolution):

- ``encode_only``: ``fast_inference(tok).encode`` on the images already in memory on the device, in batches of
  ``--batch-size`` — the model's own rate, the floor for everything else;
- ``data_only``: the DataLoader alone (decoding, cropping, collating with the same workers);
- ``load_and_encode``: the DataLoader feeding the encoder, nothing written — on a machine whose cores the model
  already fills (a small CPU), loading cannot overlap with encoding, and this is the floor of any loop;
- ``vistok_tokenize``: ``vistok.tokenize.tokenize_dataset`` into a fresh folder (DataLoader workers decoding and
  cropping, encoding, Arrow shards, manifest): images/s of its loop and of the whole call (model load, dataset
  open and the final merge included); the overhead over ``encode_only`` is the cost of data loading and writing
  (target ≤ 10 %), the overhead over ``load_and_encode`` the cost of what vistok adds (rows, shards, checks);
- ``llamagen_style``: what LlamaGen's ``extract_codes_c2i.py`` does — a DataLoader at batch size 1 (its
  "important!" setting), ``tok.encode`` per image and ``np.save`` of the codes and of the label as one ``.npy``
  file each — and the same loop at ``--batch-size`` (``npy_batched``) to separate batching from the file writes;
- ``inference``: encode+decode images/s of ``--inference-model`` (default: the model; on a GPU pass
  ``--inference-model vqgan-llamagen-vq16 --inference-size 256`` for the issue's LlamaGen VQ-16 figures) at
  ``--batch-size`` in float32 eager, bf16 eager and — on CUDA, or with ``--compile-on-cpu`` — bf16 +
  ``torch.compile``, each against the compute bound: the model's FLOPs per image (torch's FLOP counter: convolutions
  and matrix products) at the matrix-product rate of the mode's dtype measured in the same run (float32 without
  TF32, which CUDA convolutions use by default, so a float32 GPU run can exceed it); plus the fraction of indices
  bf16 leaves unchanged on the dataset's images with the (trained) ``--model``.

Each contender runs ``--repeats`` times in turns (a, b, c, a, b, c) and the best run counts, so all see the same
moments of a shared machine's load. Results: ``benchmarks/results/pretokenize_<device>.json``.

    python benchmarks/pretokenize.py                                   # CPU: vistok/default on 256 sample crops
    python benchmarks/pretokenize.py --device cuda --model <trained zoo entry> --dataset imagenet256 --split validation \\
        --num-samples 10000 --batch-size 128 --num-workers 16 \\
        --inference-model vqgan-llamagen-vq16 --inference-size 256 --inference-batch-size 32

Named pretokenize.py, not tokenize.py: the script's folder is on sys.path, so a tokenize.py there would shadow the
standard library's ``tokenize`` module (which ``inspect`` and ``linecache`` import) for every benchmark script.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]
from _common import count_flops, library_versions, machine, matmul_peak_gflops, synchronize, write_results  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="vistok/default", help="a trained tokenizer (folder, repo, zoo name)")
    p.add_argument("--dataset", default="samples")
    p.add_argument("--split", default="test")
    p.add_argument("--num-samples", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=0,
                   help="DataLoader workers (default 0: on a small CPU the model already uses every core)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bf16"), help="for the tokenize comparison")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--inference-model", default=None, help="model or preset for the speed table (default: --model)")
    p.add_argument("--inference-size", type=int, default=None)
    p.add_argument("--inference-batch-size", type=int, default=32)
    p.add_argument("--compile-on-cpu", action="store_true", help="also time torch.compile on CPU (slow to compile)")
    p.add_argument("--workdir", default=None, help="where the outputs are written (default: a temporary folder)")
    p.add_argument("--quick", action="store_true", help="smoke run: 64 images, one repeat")
    p.add_argument("--out", default=None, help="results name (default: pretokenize_<device>)")
    return p.parse_args(argv)


def load_pixels(dataset: str, split: str, size: int, num_samples: int) -> tuple[torch.Tensor, list[int]]:
    from vistok.data import build_dataset

    data = build_dataset(dataset, split, image_size=size, num_samples=num_samples)
    samples = [data[i] for i in range(len(data))]
    kept = [s for s in samples if s is not None]
    return torch.stack([s["pixel_values"] for s in kept]), [s["index"] for s in kept]


def encode_only(fast, pixels: torch.Tensor, batch_size: int, device: str) -> float:
    """Seconds to encode every image already on the device."""
    synchronize(device)
    start = time.perf_counter()
    for i in range(0, len(pixels), batch_size):
        fast.encode(pixels[i : i + batch_size])
    synchronize(device)
    return time.perf_counter() - start


def load_and_encode(args, fast, size: int) -> dict:
    """The DataLoader feeding ``fast.encode`` with nothing written: what any pre-tokenizing loop must spend on this
    machine, the floor under ``vistok_tokenize`` when loading shares the model's cores."""
    from vistok.data import build_dataloader, build_dataset

    data = build_dataset(args.dataset, args.split, image_size=size, num_samples=args.num_samples)
    synchronize(args.device)
    start = time.perf_counter()
    count = 0
    for batch in build_dataloader(data, args.batch_size, num_workers=args.num_workers):
        if len(batch["pixel_values"]):
            fast.encode(batch["pixel_values"].to(args.device, non_blocking=True))
            count += len(batch["pixel_values"])
    synchronize(args.device)
    return {"loop_s": time.perf_counter() - start, "images": count}


def vistok_tokenize(args, tok, out: Path) -> dict:
    from vistok.tokenize import tokenize_dataset

    start = time.perf_counter()
    result = tokenize_dataset(
        tok, args.dataset, out, split=args.split, num_samples=args.num_samples, batch_size=args.batch_size,
        num_workers=args.num_workers, dtype=args.dtype, overwrite=True, device=args.device,
    )  # fmt: skip
    total = time.perf_counter() - start
    files = [p for p in out.rglob("*") if p.is_file()]
    return {"loop_s": result["seconds"], "call_s": total, "images": result["counts"]["num_images"],
            "bytes": sum(p.stat().st_size for p in files), "files": len(files)}


def data_only(args, size: int) -> dict:
    """The DataLoader alone (decode, crop, collate) with the same workers: what data loading can deliver."""
    from vistok.data import build_dataloader, build_dataset

    data = build_dataset(args.dataset, args.split, image_size=size, num_samples=args.num_samples)
    start = time.perf_counter()
    count = sum(len(batch["pixel_values"]) for batch in build_dataloader(data, args.batch_size,
                                                                         num_workers=args.num_workers))
    return {"loop_s": time.perf_counter() - start, "images": count}


def npy_loop(tok, args, out: Path, batch_size: int) -> dict:
    """LlamaGen's extract_codes_c2i.py loop: DataLoader → encode → one codes .npy and one label .npy per image."""
    from vistok.data import build_dataloader, build_dataset

    shutil.rmtree(out, ignore_errors=True)
    (out / "codes").mkdir(parents=True)
    (out / "labels").mkdir()
    data = build_dataset(args.dataset, args.split, image_size=tok.config.image_size, num_samples=args.num_samples)
    loader = build_dataloader(data, batch_size=batch_size, num_workers=args.num_workers)
    start = time.perf_counter()
    count = 0
    for batch in loader:
        x = batch["pixel_values"].to(args.device, non_blocking=True)
        if not len(x):
            continue
        with torch.no_grad():
            codes = tok.encode(x).indices.reshape(len(x), 1, -1).cpu().numpy()
        for code, index in zip(codes, batch["index"].tolist(), strict=True):
            np.save(out / "codes" / f"{index}.npy", code)
            np.save(out / "labels" / f"{index}.npy", np.array([0]))
            count += 1
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"loop_s": seconds, "images": count, "bytes": size, "files": 2 * count}


def bf16_agreement(tok, pixels: torch.Tensor, batch_size: int) -> dict:
    """How bf16 changes the indices of ``tok`` on ``pixels``: the fraction identical to float32; the bf16 latents'
    distance from the float32 ones relative to the latents' norm (per token); and, as the control that says whether
    the changes are near-ties, the fraction identical when each float32 latent is moved instead by a random
    direction of the same length as its bf16 error (seeded)."""
    from vistok.inference import fast_inference

    fp32, bf16 = fast_inference(tok, "float32"), fast_inference(tok, "bf16")
    g = torch.Generator().manual_seed(0)
    same = noise_same = tokens = 0
    error_norm = latent_norm = 0.0
    with torch.no_grad():
        for i in range(0, len(pixels), batch_size):
            x = pixels[i : i + batch_size]
            z, z_bf16 = fp32._latent(x), bf16._latent(x)
            error = (z_bf16 - z).norm(dim=1, keepdim=True)
            direction = torch.randn(z.shape, generator=g).to(z.device)
            noisy = z + direction / direction.norm(dim=1, keepdim=True) * error
            reference = tok.token_layout.flatten(tok.token_layout.to_user(tok.quantizer(z).indices))
            for latent, kind in ((z_bf16, "bf16"), (noisy, "noise")):
                flat = tok.token_layout.flatten(tok.token_layout.to_user(tok.quantizer(latent).indices))
                count = int((flat == reference).sum())
                same, noise_same = (same + count, noise_same) if kind == "bf16" else (same, noise_same + count)
            tokens += reference.numel()
            error_norm += float(error.sum())
            latent_norm += float(z.norm(dim=1).sum())
    return {"fraction_identical": same / tokens, "tokens": tokens,
            "latent_relative_error": error_norm / latent_norm,
            "fraction_identical_same_size_random_perturbation": noise_same / tokens}


def best(runs: list[dict], key: str) -> dict:
    return min(runs, key=lambda r: r[key])


def inference_speeds(args, model: str, size: int | None) -> dict:
    from vistok.inference import fast_inference
    from vistok.tokenize import load_tokenizer

    tok = load_tokenizer(model, random_init=True).to(args.device)
    size = size or tok.config.image_size
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(args.inference_batch_size, 3, size, size, generator=g) * 2 - 1).to(args.device)
    configs = {"float32": ("float32", False), "bf16": ("bf16", False)}
    if args.device.startswith("cuda") or args.compile_on_cpu:
        configs["bf16_compile"] = ("bf16", True)
    with torch.no_grad():
        one = x[:1]
        indices = tok.encode(one).indices
        gflop = (count_flops(lambda: tok.encode(one)) + count_flops(lambda: tok.decode(indices))) / 1e9
    # A CPU without native bfloat16 multiplies 2048² bf16 matrices in seconds each: one 1024² size is enough there.
    bf16_size = None if args.device.startswith("cuda") else 1024
    peaks = {"float32": matmul_peak_gflops(args.device, torch.float32),
             "bf16": matmul_peak_gflops(args.device, torch.bfloat16, size=bf16_size)}  # fmt: skip
    out = {"model": model, "image_size": size, "batch_size": args.inference_batch_size, "gflop_per_image": gflop,
           "matmul_peak_gflops": peaks, "runs": {}}
    for name, (dtype, compiled) in configs.items():
        fast = fast_inference(tok, dtype, compile=compiled)
        compile_start = time.perf_counter()
        fast.decode(fast.encode(x))  # warm-up (compiles)
        synchronize(args.device)
        warmup_s = time.perf_counter() - compile_start
        times = []
        for _ in range(max(args.repeats, 3)):
            synchronize(args.device)
            start = time.perf_counter()
            fast.decode(fast.encode(x))
            synchronize(args.device)
            times.append(time.perf_counter() - start)
        rate = args.inference_batch_size / min(times)
        out["runs"][name] = {"images_per_s": rate, "warmup_s": warmup_s,
                             "compute_bound_images_per_s": peaks[dtype] / gflop,
                             "fraction_of_compute_bound": rate * gflop / peaks[dtype]}
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.quick:
        args.num_samples, args.repeats = 64, 1
    from vistok.inference import fast_inference
    from vistok.tokenize import load_tokenizer

    tok = load_tokenizer(args.model).to(args.device)
    pixels, _ = load_pixels(args.dataset, args.split, tok.config.image_size, args.num_samples)
    on_device = pixels.to(args.device)
    fast = fast_inference(tok, args.dtype)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="vistok-tokenize-bench-"))
    runs: dict[str, list[dict]] = {"encode_only": [], "data_only": [], "load_and_encode": [], "vistok_tokenize": [],
                                   "llamagen_style": [], "npy_batched": []}
    encode_only(fast, on_device[: args.batch_size], args.batch_size, args.device)  # warm-up
    for _ in range(args.repeats):
        runs["encode_only"].append({"loop_s": encode_only(fast, on_device, args.batch_size, args.device),
                                    "images": len(pixels)})  # fmt: skip
        runs["data_only"].append(data_only(args, tok.config.image_size))
        runs["load_and_encode"].append(load_and_encode(args, fast, tok.config.image_size))
        runs["vistok_tokenize"].append(vistok_tokenize(args, tok, workdir / "tokens"))
        runs["llamagen_style"].append(npy_loop(tok, args, workdir / "npy1", batch_size=1))
        runs["npy_batched"].append(npy_loop(tok, args, workdir / "npyB", batch_size=args.batch_size))
    results = {name: best(r, "loop_s") for name, r in runs.items()}
    for r in results.values():
        r["images_per_s"] = r["images"] / r["loop_s"]
    results["vistok_tokenize"]["call_images_per_s"] = results["vistok_tokenize"]["images"] / best(
        runs["vistok_tokenize"], "call_s")["call_s"]
    encode_rate = results["encode_only"]["images_per_s"]
    overhead = encode_rate / results["vistok_tokenize"]["images_per_s"] - 1
    writing_overhead = results["load_and_encode"]["images_per_s"] / results["vistok_tokenize"]["images_per_s"] - 1

    agreement_report = bf16_agreement(tok, on_device, args.batch_size)
    agreement = agreement_report["fraction_identical"]
    inference = inference_speeds(args, args.inference_model or args.model, args.inference_size)
    shutil.rmtree(workdir, ignore_errors=True) if args.workdir is None else None

    payload = {
        "machine": machine(args.device),
        "versions": library_versions("datasets", "pyarrow"),
        "settings": {k: getattr(args, k) for k in ("model", "dataset", "split", "num_samples", "batch_size",
                                                    "num_workers", "dtype", "repeats", "quick")},  # fmt: skip
        "image_size": tok.config.image_size,
        "tokens_per_image": tok.config.tokens_per_image(),
        "results": results,
        "tokenize_overhead_over_encode": overhead,
        "tokenize_overhead_over_load_and_encode": writing_overhead,
        "speedup_over_llamagen_style": results["vistok_tokenize"]["images_per_s"]
        / results["llamagen_style"]["images_per_s"],
        "bf16_index_agreement": {"model": args.model, "images": len(pixels), **agreement_report},
        "inference": inference,
    }
    path = write_results(args.out or f"pretokenize_{args.device.split(':')[0]}", payload)
    print(f"encode only {encode_rate:.1f} img/s; vistok tokenize {results['vistok_tokenize']['images_per_s']:.1f} "
          f"img/s (overhead {overhead:+.1%}); LlamaGen-style {results['llamagen_style']['images_per_s']:.1f} img/s; "
          f"bf16 agreement {agreement:.4f}; wrote {path}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Run every benchmark that fits this machine (about 15 minutes on a 2-core CPU) and write the report.

Each benchmark runs in its own process and writes ``benchmarks/results/<name>_<device>.json``; the tables in
``docs/benchmarks.md`` are then rendered from every results file present, so figures measured elsewhere (the
``*_cuda.json`` files from a GPU run of the same scripts) appear next to this machine's.

    python benchmarks/run.py                    # CPU (or CUDA when present) benchmarks, then docs/benchmarks.md
    python benchmarks/run.py --skip throughput  # leave one out
    python benchmarks/run.py --render-only      # only rebuild docs/benchmarks.md from the results files
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from lfq_entropy_memory import render_lfq_entropy_memory
from zoo_load import render_zoo_load

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "benchmarks.md"
BENCHMARKS = ("search", "throughput", "training_eval")


def run_benchmarks(names, device_args, quick) -> dict[str, float]:
    seconds = {}
    for name in names:
        cmd = [sys.executable, str(HERE / f"{name}.py"), *device_args] + (["--quick"] if quick else [])
        print(f"== {' '.join(cmd[1:])}", flush=True)
        started = time.perf_counter()
        subprocess.run(cmd, check=True)
        seconds[name] = time.perf_counter() - started
        print(f"== {name}: {seconds[name]:.0f} s", flush=True)
    return seconds


# ------------------------------------------------------------------------------------------------ rendering
def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ms(seconds) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:,.1f} ms"


def _machine_line(payload: dict) -> str:
    m, v = payload["machine"], payload["versions"]
    where = f"{m.get('gpu', m['cpu'])}" + (
        f" (host CPU {m['cpu']})" if "gpu" in m else f", {m['cpu_cores']} cores"
    )
    load = f", 1-min load average {m['load_average_1min']}" if "load_average_1min" in m else ""
    libs = ", ".join(f"{k} {val}" for k, val in v.items())
    return f"*Measured on {where}, {m['torch_threads']} torch threads{load}; {libs}.*"


def render_search(payload: dict) -> list[str]:
    peak = payload.get("matmul_peak_gflops_float32")
    lines = [
        _machine_line(payload)
        + (f" Measured float32 matmul rate in the same run: {peak:,.0f} GFLOP/s." if peak else ""),
        "",
        "| case | N × K × D | vistok | vector-quantize-pytorch | speed-up (target) | textbook | speed-up "
        "| identical to textbook | vistok peak extra memory | float32 compute bound (speed-up there) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in payload["cases"]:
        target = (
            f" (≥ {c['target_speedup']:.0f}×)"
            if c.get("target_speedup") and payload["machine"]["device"] == "cpu"
            else ""
        )
        textbook_ratio = f"{c['speedup_vs_textbook']:.1f}×" if c.get("textbook_s") else "—"
        bound = (
            f"{_ms(c['float32_compute_bound_s'])} ({c['speedup_at_compute_bound']:.0f}×)"
            if c.get("float32_compute_bound_s")
            else "—"
        )
        memory = "—" if c.get("vistok_peak_extra_mib") is None else f"{c['vistok_peak_extra_mib']:.1f} MiB"
        lines.append(
            f"| {c['case']}{' (cosine)' if c['cosine'] else ''} | {c['N']:,} × {c['K']:,} × {c['D']} "
            f"| {_ms(c['vistok_s'])} | {_ms(c['vector_quantize_pytorch_s'])} "
            f"| **{c['speedup_vs_vector_quantize_pytorch']:.1f}×**{target} | {_ms(c.get('textbook_s'))} "
            f"| {textbook_ratio} | {c.get('identical_to_textbook', '—')} | {memory} | {bound} |"
        )
    paths = [c for c in payload["cases"] if "vistok_triton_s" in c]
    if paths:
        lines += [
            "",
            "The two CUDA paths on every case (vistok picks Triton for D ≤ its `TRITON_MAX_DIM`): "
            + ", ".join(
                f"{c['case']} (D = {c['D']}) Triton {_ms(c['vistok_triton_s'])}, cuBLAS blocked "
                f"{_ms(c['vistok_blocked_s'])}"
                for c in paths
            )
            + ".",
        ]
    elif any("vistok_blocked_s" in c for c in payload["cases"]) and payload["machine"]["device"] != "cpu":
        lines += [  # results written before the search picked its CUDA path by dimension
            "",
            "Matrix-product fallback (no Triton) on the same device: "
            + ", ".join(f"{c['case']} {_ms(c['vistok_blocked_s'])}" for c in payload["cases"] if "vistok_blocked_s" in c)
            + ".",
        ]
    return lines


def _run(preset: dict, config: str, batch: int, mode: str) -> dict | None:
    for r in preset.get("runs", []):
        if r["config"] == config and r["batch"] == batch and r["mode"] == mode:
            return r
    return None


def render_throughput(payload: dict) -> list[str]:
    cuda = payload["machine"]["device"].startswith("cuda")
    peaks = payload["matmul_peak_gflops"]
    peak_text = ", ".join(
        f"{k} {v / 1e3:.1f} TFLOP/s" if v > 1e4 else f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()
    )
    lines = [_machine_line(payload), "", f"Measured dense matmul peak: {peak_text}."]
    if cuda:
        settings = payload.get("float32_settings", {})
        lines[-1] += (
            f" float32 runs use PyTorch's defaults (TF32 convolutions {settings.get('cudnn_allow_tf32')}, TF32 "
            "matmuls " + str(settings.get("cuda_matmul_allow_tf32")) + "), so their 'fraction of peak' is "
            "against the full-float32 matmul rate and can exceed 1."
        )
    lines.append("")
    if not cuda:
        lines += [
            "| preset | px | GFLOP/img (enc+dec) | batch 1: encode / decode / enc+dec img/s | big batch: enc+dec img/s "
            "| enc+dec time ÷ compute bound | peak RSS growth |",
            "|---|---|---|---|---|---|---|",
        ]
    else:
        lines += [
            "| preset | px | GFLOP/img | fp32 b1 enc+dec img/s | fp32 big batch | bf16 big batch "
            "| bf16+CL big batch | best bf16 ÷ fp32 | bf16+CL+compile big batch | peak memory fp32 / bf16+CL "
            "| bf16+CL vs fp32: PSNR, same indices |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for p in payload["presets"]:
        if "error" in p:
            lines.append(f"| {p['preset']} | error: {p['error']} |")
            continue
        batches = sorted({r["batch"] for r in p["runs"]})
        big = batches[-1]
        if not cuda:
            b1 = [_run(p, "fp32", 1, m) for m in ("encode", "decode", "encode_decode")]
            bb = _run(p, "fp32", big, "encode_decode")
            growth = [
                r.get("peak_rss_growth_mib") for r in p["runs"] if r.get("peak_rss_growth_mib") is not None
            ]
            batch1 = " / ".join(f"{r['images_per_s']:.1f}" for r in b1 if r)
            lines.append(
                f"| {p['preset']} | {p['image_size']} | {p['encode_decode_gflop_per_image']:.1f} "
                f"| {batch1} | {bb['images_per_s']:.1f} (b{big}) "
                f"| {bb['time_over_compute_bound']:.2f}× | {max(growth):.0f} MiB |"
            )
            continue
        fp32_1 = _run(p, "fp32", 1, "encode_decode")
        fp32_b = _run(p, "fp32", big, "encode_decode")
        bf16_b = _run(p, "bf16_channels_last", big, "encode_decode")
        plain = _run(p, "bf16", big, "encode_decode")
        compiled = _run(p, "bf16_channels_last_compile", big, "encode_decode")
        quality = p.get("bf16_vs_fp32", {}).get("bf16_channels_last", {})
        compiled_text = f"{compiled['images_per_s']:,.0f}" if compiled else "—"
        plain_text = f"{plain['images_per_s']:,.0f}" if plain else "—"
        best_bf16 = max(r["images_per_s"] for r in (bf16_b, plain) if r)
        lines.append(
            f"| {p['preset']} | {p['image_size']} | {p['encode_decode_gflop_per_image']:.1f} "
            f"| {fp32_1['images_per_s']:.0f} | {fp32_b['images_per_s']:,.0f} (b{big}) "
            f"| {plain_text} | {bf16_b['images_per_s']:,.0f} | {best_bf16 / fp32_b['images_per_s']:.2f}× "
            f"| {compiled_text} "
            f"| {fp32_b['peak_memory_mib']:,.0f} / {bf16_b['peak_memory_mib']:,.0f} MiB "
            f"| {quality.get('psnr_db_vs_fp32', float('nan')):.1f} dB, {quality.get('identical_indices', float('nan')):.3f} |"
        )
    return lines


def render_training_eval(payload: dict) -> list[str]:
    lines = [
        _machine_line(payload),
        "",
        "| recipe | batch | steps/s | images/s | notes |",
        "|---|---|---|---|---|",
    ]
    for t in payload["training"]:
        lines.append(
            f"| {t['recipe']} ({t['config']}) | {t['batch_size']} | {t['steps_per_second']:.3f} "
            f"| {t['images_per_second']:.2f} | {t['notes'] or 'recipe as written, sample photos'} |"
        )
    lines += [
        "",
        "| evaluation | images | evaluate img/s (metrics + data) | encode+decode alone img/s | overhead (target ≤ 25%) "
        "| metrics computed | skipped |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in payload["evaluation"]:
        lines.append(
            f"| {e['preset']} at {e['image_size']} px, batch {e['batch_size']} | {e['num_images']} "
            f"| {e['evaluate_images_per_second']:.1f} | {e['encode_decode_images_per_second']:.1f} "
            f"| {e['overhead_over_model'] * 100:+.0f}% | {', '.join(e['metrics_computed'])} "
            f"| {', '.join(e['metrics_skipped']) or '—'} |"
        )
    return lines


def render_pretokenize(payload: dict) -> list[str]:
    r, s = payload["results"], payload["settings"]
    encode = r["encode_only"]["images_per_s"]

    def row(name: str, rate: float, result: dict | None) -> str:
        files = f"{result['files']:,}" if result and "files" in result else "—"
        size = f"{result['bytes'] / 1024:,.0f} KiB" if result and "bytes" in result else "—"
        return f"| {name} | {rate:,.1f} | {rate / encode:.2f}× | {files} | {size} |"

    tok = r["vistok_tokenize"]
    lines = [
        _machine_line(payload),
        "",
        f"`{s['model']}` ({payload['image_size']} px, {payload['tokens_per_image']} tokens per image) on "
        f"{tok['images']:,} images of `{s['dataset']}` [{s['split']}], batch {s['batch_size']}, {s['num_workers']} "
        f"DataLoader worker(s), {s['dtype']}; best of {s['repeats']} interleaved runs.",
        "",
        "| pipeline | images/s | ÷ encode only | files written | on disk |",
        "|---|---|---|---|---|",
        row("encode only (images already in memory)", encode, None),
        *([row("data loading alone (DataLoader, same workers)", r["data_only"]["images_per_s"], None)]
          if "data_only" in r else []),
        *([row("DataLoader feeding the encoder, nothing written", r["load_and_encode"]["images_per_s"], None)]
          if "load_and_encode" in r else []),
        row("`vistok tokenize` loop (load, encode, write shards)", tok["images_per_s"], tok),
        row("`vistok tokenize` whole call (+ dataset open, folder checks, merge)", tok["call_images_per_s"], tok),
        row("LlamaGen-style: batch 1, one codes + one label `.npy` per image", r["llamagen_style"]["images_per_s"],
            r["llamagen_style"]),
        row(f"the same `.npy` loop at batch {s['batch_size']}", r["npy_batched"]["images_per_s"], r["npy_batched"]),
        "",
        f"Data loading and writing cost {payload['tokenize_overhead_over_encode'] * 100:+.0f}% over encode only "
        "(target ≤ 10%)"
        + (f", of which writing (what `vistok tokenize` adds to a loader feeding the encoder) "
           f"{payload['tokenize_overhead_over_load_and_encode'] * 100:+.0f}%"
           if "tokenize_overhead_over_load_and_encode" in payload else "")
        + f"; `vistok tokenize` runs at {payload['speedup_over_llamagen_style']:.1f}× the LlamaGen-style loop.",
    ]
    agreement = payload.get("bf16_index_agreement")
    if agreement:
        lines += ["", f"bf16 vs float32 indices of `{agreement['model']}` on the same {agreement['images']:,} images: "
                  f"{agreement['fraction_identical'] * 100:.2f}% identical."]
        if "latent_relative_error" in agreement:
            lines[-1] += (
                " bf16 moves the latent vectors by "
                f"{agreement['latent_relative_error'] * 100:.2f}% of their length (sum of errors ÷ sum of lengths); "
                "moving each float32 latent vector by its own bf16 error's length in a random direction instead leaves "
                f"{agreement['fraction_identical_same_size_random_perturbation'] * 100:.2f}% identical."
            )
    inference = payload.get("inference")
    if inference:
        lines += [
            "",
            f"Encode + decode of `{inference['model']}` at {inference['image_size']} px, batch "
            f"{inference['batch_size']} (`vistok.inference.fast_inference`):",
            "",
            "| mode | images/s | first batch (s, compile included) | compute bound (images/s) | ÷ compute bound |",
            "|---|---|---|---|---|",
            *(f"| {name} | {run['images_per_s']:,.1f} | {run['warmup_s']:.1f} | "
              + (f"{run['compute_bound_images_per_s']:,.1f} | {run['fraction_of_compute_bound']:.1%} |"
                 if "compute_bound_images_per_s" in run else "— | — |")
              for name, run in inference["runs"].items()),
        ]
        if "gflop_per_image" in inference:
            peaks = inference["matmul_peak_gflops"]
            lines += ["", f"Compute bound: {inference['gflop_per_image']:,.2f} GFLOP per image (torch's FLOP counter) "
                      "at the matrix-product rate of the mode's dtype measured in the same run (float32 "
                      f"{peaks['float32']:,.1f} GFLOP/s, bfloat16 {peaks['bf16']:,.1f} GFLOP/s)."]
    return lines


PEER_ROWS = (  # (key in the measurement, label): rows of the peer's table, in order
    ("upstream_fp32", "LlamaGen's code, float32"),
    ("upstream_autocast_bf16", "LlamaGen's code, bf16 autocast"),
    ("upstream_bf16_weights", "LlamaGen's code, bf16 weights"),
    ("upstream_bf16_compiled", "LlamaGen's code, bf16 weights + torch.compile"),
    ("vistok_fp32", "vistok, float32"),
    ("vistok_autocast_bf16", "vistok, bf16 autocast"),
    ("vistok_bf16_weights", "vistok, bf16 weights"),
    ("vistok_bf16_channels_last", "vistok, bf16 + channels-last"),
    ("vistok_bf16_compiled", "vistok, bf16 + torch.compile"),
)
SAME_COMPUTE = ("H100", "H200")  # one GH100 die: the same tensor-core rate, different memory


def render_fast_inference_peer(payload: dict) -> list[str]:
    """The peer's H200 table against LlamaGen's own code, with the compute bound: the architecture's FLOPs per image
    and the bfloat16 matrix-product rate measured by ``throughput.py`` on a GPU of the same compute (H100 / H200)."""
    m, s = payload["measurement"], payload["settings"]
    rates = m["img_per_s_batch32"]
    upstream = rates["upstream_fp32"]
    upstream_best = max(v for k, v in rates.items() if k.startswith("upstream"))
    throughput = _load("throughput_cuda") or _load("throughput_cpu")
    preset = next((p for p in (throughput or {}).get("presets", []) if p["preset"] == s["architecture"]), None)
    gflop = preset["encode_decode_gflop_per_image"] if preset else None
    peak = (throughput or {}).get("matmul_peak_gflops", {}).get("bf16") if throughput else None
    rate_gpu = (throughput or {}).get("machine", {}).get("gpu", "")
    same = [g for g in SAME_COMPUTE if g in rate_gpu] and [g for g in SAME_COMPUTE if g in payload["machine"]["gpu"]]
    bound = peak / gflop if gflop and peak and same else None
    header = "| code and mode | images/s | ÷ LlamaGen float32 | ÷ LlamaGen's fastest |" + (
        " ÷ bf16 compute bound |" if bound else "")
    lines = [
        f"*Measured by a peer on one {payload['machine']['gpu']}, torch {payload['versions']['torch']}; "
        f"`{s['architecture']}`, batch {s['batch_size']}, {s['image_size']} px, encode + decode, vistok "
        f"{payload['vistok_commit']} against LlamaGen's own tokenizer code on the same weights "
        f"(`benchmarks/results/fast_inference_peer_cuda.json`).*",
        "",
        header,
        "|---|---|---|---|" + ("---|" if bound else ""),
    ]
    for key, label in PEER_ROWS:
        if key in rates:
            lines.append(f"| {label} | {rates[key]:,.1f} | {rates[key] / upstream:.2f}× | "
                         f"{rates[key] / upstream_best:.2f}× |" + (f" {rates[key] / bound:.0%} |" if bound else ""))
    lines += ["", "At that commit `fast_inference(tok, \"bf16\")` ran under autocast (the autocast row). The "
              "measurement does not record how the peer set up the bf16-weights and compiled rows (its README calls "
              "them \"bf16 weights\" and \"bf16 + `torch.compile`\"); "
              "`fast_inference(tok, \"bf16\", compile=True)` now runs bfloat16 weights under `torch.compile` for the "
              "encoder and decoder, with the quantizer in float32 outside the compiled graphs. `benchmarks/pretokenize.py "
              "--device cuda` measures that mode itself. LlamaGen's code gained nothing from `torch.compile` "
              f"({rates.get('upstream_bf16_compiled', 0):,.1f} vs {rates.get('upstream_bf16_weights', 0):,.1f}), which "
              "suggests compile did not take effect there."]
    if "bf16_index_agreement" in m:
        lines += ["", f"bf16 against float32 in that run: {m['bf16_index_agreement']:.1%} of indices identical, "
                  f"largest reconstruction difference {m['bf16_vs_fp32_max_err']:.2f}. Which weights is not recorded; "
                  "a machine without network has only random ones, and random weights put many latents near a tie "
                  "between codes. The agreement of a trained tokenizer is in the CPU table above."]
    lines += ["", f"Float32 parity on the same weights (TF32 off): {m['parity_fp32_index_mismatch']} index mismatches "
              f"over {m['parity_fp32_distinct_codes']:,} distinct codes, largest reconstruction difference "
              f"{m['parity_fp32_recon_max_err']:.1e}; `torch.compile` took {m['compile_s']:.0f} s."]
    if bound:
        lines += ["", f"Compute bound: {gflop:,.1f} GFLOP per image (convolutions and matrix products, torch's FLOP "
                  f"counter) at the {peak / 1e3:,.0f} TFLOP/s bf16 matrix-product rate that `throughput.py` measured "
                  f"on the {rate_gpu} (H100 and H200 share the GH100 die and its tensor-core rate; the H200's memory "
                  f"is larger and faster; this applies the H100's measured rate to the H200) = {bound:,.0f} images/s."]
    return lines


SECTIONS = [
    ("search", "Nearest-code search", render_search),
    ("throughput", "Tokenizer throughput", render_throughput),
    ("training_eval", "Training and evaluation throughput", render_training_eval),
    ("zoo_load", "Zoo loading: first and second load", render_zoo_load),
    ("lfq_entropy_memory", "LFQ entropy loss memory at 2^18 codes", render_lfq_entropy_memory),
    ("pretokenize", "Pre-tokenizing a dataset", render_pretokenize),
    ("fast_inference_peer", "Fast inference against LlamaGen's own code", render_fast_inference_peer),
]


def render(notes: str = "") -> str:
    out = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/run.py` from `benchmarks/results/*.json` (do not edit by hand; the "
        "commentary lives in `benchmarks/notes.md`). Every ratio is against a reference measured in the same "
        "process on the same machine; times are the best of several runs.",
        "",
    ]
    if notes:
        out += [notes.strip(), ""]
    for key, title, renderer in SECTIONS:
        for device in ("cpu", "cuda"):
            payload = _load(f"{key}_{device}")
            if payload is None:
                continue
            out += [f"## {title} — {device.upper()}", "", *renderer(payload), ""]
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--skip", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)} to skip"
    )
    parser.add_argument("--device", default=None, help="passed to every benchmark (default: theirs)")
    parser.add_argument("--quick", action="store_true", help="smoke run (results are still written)")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.render_only:
        skip = set(filter(None, args.skip.split(",")))
        names = [n for n in BENCHMARKS if n not in skip]
        seconds = run_benchmarks(names, ["--device", args.device] if args.device else [], args.quick)
        print(f"total {sum(seconds.values()):.0f} s", flush=True)
    notes_path = HERE / "notes.md"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render(notes_path.read_text() if notes_path.exists() else "") + "\n")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()

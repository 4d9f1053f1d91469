"""Shared helpers of the benchmarks: machine and library description, timing, results files.

Not part of the library. Every figure a benchmark writes carries the machine and versions it was measured on.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions(*names: str) -> dict[str, str]:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("vistok", *names):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    if versions["vistok"] == "not installed":  # run from a source checkout
        import vistok

        versions["vistok"] = f"{vistok.__version__} (source)"
    return versions


def machine(device: str) -> dict:
    """Where the figures were measured: CPU model, cores, torch threads, load, GPU name when used."""
    info = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "device": device,
    }
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return info


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_time(fn: Callable[[], object], device: str, *, repeats: int = 3, warmup: int = 1) -> float:
    """Fastest of ``repeats`` timed calls after ``warmup`` untimed ones, in seconds.

    The minimum is the figure least disturbed by other work on a shared machine.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def interleaved_best_times(
    fns: dict[str, Callable[[], object]], device: str, repeats: dict[str, int], warmup: int = 1
) -> dict[str, float]:
    """Fastest call of each of ``fns`` (seconds), the calls taken in turns (a, b, c, a, b, c, …) so that every
    contender sees the same moments of a shared machine's load; ``repeats[name]`` timed calls each, after
    ``warmup`` untimed ones."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    best = dict.fromkeys(fns, float("inf"))
    for round_ in range(max(repeats.values())):
        for name, fn in fns.items():
            if round_ >= repeats[name]:
                continue
            start = time.perf_counter()
            fn()
            synchronize(device)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def matmul_peak_gflops(device: str, dtype: torch.dtype = torch.float32, size: int | None = None) -> float:
    """Measured dense matrix-product rate (GFLOP/s) of this device for ``dtype``: the compute-bound reference.

    The best of several products (and sizes on CPU), so that other work on a shared machine lowers it least.
    """
    cuda = device.startswith("cuda")
    best = 0.0
    for n in [size] if size else ([8192] if cuda else [1024, 2048]):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        seconds = best_time(lambda a=a, b=b: a @ b, device, repeats=5)
        best = max(best, 2 * n**3 / seconds / 1e9)
    return best


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations ``fn()`` performs, as torch's FlopCounterMode counts them (matrix products and
    convolutions: 2 per multiply-add; element-wise ops are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def write_results(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path

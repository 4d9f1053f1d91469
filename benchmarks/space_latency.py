"""How long the Space takes to answer a 256 × 256 image on this machine's CPU.

Two figures, both after warm-up requests:

- ``server``: the work one request costs the server — decode the upload, run the tokenizer, measure, draw the
  token map / error map / histogram and encode every picture as PNG the way Gradio sends them;
- ``http``: a gradio_client round trip against the running app (``python spaces/vistok-demo/app.py``), upload
  and download included.

    python benchmarks/space_latency.py [--tokenizer vistok/default] [--repeats 20] [--out benchmarks/results/space_latency.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = ROOT / "spaces" / "vistok-demo"
sys.path.insert(0, str(SPACE_DIR))

from vistok_space.pipeline import run_request  # noqa: E402
from vistok_space.tokenizers import TokenizerCache, default_tokenizer_name  # noqa: E402

IMAGE_SIZE = 256
WARMUP = 3


def test_image(path: Path) -> str:
    """A 256 × 256 centre crop of the held-out example photo, saved as PNG."""
    photo = Image.open(SPACE_DIR / "examples" / "chelsea.jpg").convert("RGB")
    left, top = (photo.width - IMAGE_SIZE) // 2, (photo.height - IMAGE_SIZE) // 2
    photo.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE)).save(path)
    return str(path)


def summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {
        "median_s": statistics.median(ordered),
        "p90_s": ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))],
        "min_s": ordered[0],
        "max_s": ordered[-1],
        "repeats": len(ordered),
    }


def server_side(image: str, tokenizer: str, repeats: int) -> dict:
    cache = TokenizerCache()
    cache.get(tokenizer)
    times, model_times = [], []
    for i in range(WARMUP + repeats):
        start = time.perf_counter()
        result = run_request(image, tokenizer, str(IMAGE_SIZE), cache)
        if not result.ok:
            raise SystemExit(f"request failed: {result.status}")
        for picture in (result.original, result.reconstruction, result.token_map, result.error_map):
            picture.save(io.BytesIO(), format="PNG")
        result.histogram.savefig(io.BytesIO(), format="png")
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
            model_times.append(result.metrics["seconds"])
    return {**summary(times), "tokenizer_encode_decode_median_s": statistics.median(model_times)}


def http_round_trip(image: str, tokenizer: str, repeats: int) -> dict:
    from gradio_client import Client, handle_file

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    if tokenizer != default_tokenizer_name():
        env["VISTOK_SPACE_TOKENIZER"] = tokenizer
    server = subprocess.Popen(
        [sys.executable, str(SPACE_DIR / "app.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the Space did not start") from None
                time.sleep(0.5)
        client = Client(url, verbose=False)
        times = []
        for i in range(WARMUP + repeats):
            start = time.perf_counter()
            outputs = client.predict(handle_file(image), tokenizer, str(IMAGE_SIZE), api_name="/reconstruct")
            if outputs[1] is None:
                raise SystemExit(f"request failed: {outputs[6]}")
            if i >= WARMUP:
                times.append(time.perf_counter() - start)
        return summary(times)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokenizer", default=default_tokenizer_name())
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-http", action="store_true", help="only the in-process (server-side) figure")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "space_latency.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        image = test_image(Path(tmp) / "chelsea-256.png")
        report = {
            "what": f"Space answer time for one {IMAGE_SIZE}x{IMAGE_SIZE} PNG upload at resolution {IMAGE_SIZE}",
            "tokenizer": args.tokenizer,
            "server": server_side(image, args.tokenizer, args.repeats),
        }
        if not args.skip_http:
            report["http"] = http_round_trip(image, args.tokenizer, args.repeats)
    report["machine"] = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1min_at_end": os.getloadavg()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

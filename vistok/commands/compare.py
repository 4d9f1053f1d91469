"""Compare tokenizers on the same images under one protocol: a table, an image grid and a rate-distortion plot.

    vistok compare --model vistok/default --model vqgan-llamagen-vq16 --dataset samples --output-dir compare/
    vistok compare --zoo all --dataset imagenet256 --split validation --num-samples 5000 --output-dir compare-in1k/
    vistok compare --model a/ --model b/ --dataset photos/ --protocol llamagen --image-size 256 --output-dir out/

Every tokenizer (any name: a folder, vistok/<name>, a zoo name or upstream repo id, a Hub repo) reconstructs the
same images at one resolution (--image-size, default the first model's) under one protocol (--protocol, default
`vistok`: vistok's generic preprocessing, identical pixels for all; docs/evaluation.md lists the others). `--zoo
all` adds every zoo entry already in the local cache (`vistok zoo list` shows which). Writes to --output-dir:

    comparison.md / comparison.json   the table: tokens and bits per image, codebook size, PSNR, SSIM, LPIPS, rFID
                                      (where the Inception weights are available), codebook usage, encode / decode
                                      images per second, parameters; the JSON holds every number and convention
    grid.png                          originals (--grid-images, spread over the split), each tokenizer's
                                      reconstruction and its error map
    rate_distortion.png               bits per image against PSNR and LPIPS
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

GRID_IMAGES = 4
ERROR_GAIN = 4  # error maps show |reconstruction − original| × 4 (mean over channels)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..metrics import METRIC_NAMES, PROTOCOLS

    parser.add_argument("--model", action="append", default=[], metavar="NAME",
                        help="a tokenizer to compare (repeat); any name vistok resolves")  # fmt: skip
    parser.add_argument("--zoo", choices=("all",), default=None,
                        help="also compare every zoo entry already in the local cache")  # fmt: skip
    parser.add_argument("--dataset", default="samples", help="celeba64, imagenet256, samples, a Hub id or a folder")
    parser.add_argument("--split", default=None, help="dataset split (default: the protocol's, else test)")
    parser.add_argument("--image-column", default=None, help="image column of a Hub / local dataset")
    parser.add_argument("--image-size", type=int, default=None,
                        help="one resolution for every tokenizer (default: the first model's)")  # fmt: skip
    parser.add_argument("--num-samples", type=int, default=None, help="compare on the first N images only")
    parser.add_argument("--streaming", action="store_true", help="stream the dataset instead of downloading it")
    parser.add_argument("--protocol", default="vistok", choices=list(PROTOCOLS),
                        help="evaluation conventions (default: vistok — identical pixels for every tokenizer)")
    parser.add_argument("--preprocessing", choices=("upstream", "generic"), default=None,
                        help="frame images with each tokenizer's upstream pipeline, or vistok's generic one, instead "
                        "of the protocol's framing")  # fmt: skip
    parser.add_argument("--metrics", default=",".join(METRIC_NAMES),
                        help=f"comma-separated subset of {','.join(METRIC_NAMES)} (default: all)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch (default: 16)")
    parser.add_argument("--num-workers", type=int, default=min(2, os.cpu_count() or 1), help="DataLoader workers")
    parser.add_argument("--grid-images", type=int, default=GRID_IMAGES, help="images in the grid (default: 4)")
    parser.add_argument("--lpips-weights", default=None, help="torchvision vgg16 (alexnet) state dict for LPIPS")
    parser.add_argument("--inception-weights", default=None, help="pt_inception-2015-12-05 file for rFID")
    parser.add_argument("--no-download", action="store_true", help="never download backbone weights")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda when available)")
    parser.add_argument("--random-init", action="store_true",
                        help="allow preset names (random weights; for smoke tests and speed measurements only)")
    parser.add_argument("--output-dir", "--output", dest="output", metavar="DIR", default="compare",
                        help="folder to write the comparison to (default: compare/; --output is the older spelling)")


def cached_zoo_names() -> list[str]:
    """Zoo entries whose files are in the local caches (converted, or downloaded and convertible offline)."""
    from ..families import all_entries
    from ..zoo.loader import cache_state

    return [entry.name for entry in all_entries() if cache_state(entry) in ("converted", "downloaded")]


def run(args: argparse.Namespace) -> int:
    from ..evaluate import (
        NoImagesError,
        build_protocol_dataset,
        check_compatible,
        config_summary,
        evaluate_tokenizer,
        image_framing,
        no_images_message,
        protocol_split,
        resolve_model,
    )
    from ..metrics import (
        METRIC_NAMES,
        ReconstructionMetrics,
        get_protocol,
        load_backbones,
        metric_conventions,
    )
    from ..metrics.report import write_json
    from ..version import __version__

    names = list(dict.fromkeys(args.model))
    if args.zoo == "all":
        cached = cached_zoo_names()
        if not cached:
            raise SystemExit("vistok compare: --zoo all found no zoo entry in the local cache; fetch some first "
                             "(`vistok zoo download NAME`, `vistok zoo list` shows them)")  # fmt: skip
        names += [name for name in cached if name not in names]
    if not names:
        raise SystemExit("vistok compare: name at least one tokenizer (--model NAME, repeatable) or --zoo all")
    requested = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    unknown = sorted(set(requested) - set(METRIC_NAMES))
    if unknown:
        raise SystemExit(f"vistok compare: unknown metric(s) {unknown}; valid names: {', '.join(METRIC_NAMES)}")
    for option in ("batch_size", "num_samples", "image_size", "grid_images"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            raise SystemExit(f"vistok compare: --{option.replace('_', '-')} must be positive, got {value}")
    protocol = get_protocol(args.protocol)
    split = protocol_split(protocol, args.split)

    # Every name is resolved and checked before any image is processed.
    try:
        specs = [resolve_model(name, args.random_init) for name in names]
        image_size = args.image_size or specs[0].config.image_size
        framings = [image_framing(protocol, spec, args.dataset, args.preprocessing) for spec in specs]
        for spec, framing in zip(specs, framings, strict=True):
            check_compatible(spec, None if framing.source == "original" else image_size)
    except (OSError, ValueError) as error:
        raise SystemExit(f"vistok compare: {error}") from error
    fixed = [f"{s.name} ({s.config.image_size} px)" for s in specs
             if s.config.token_layout.kind != "grid" and s.config.image_size != image_size]  # fmt: skip
    if fixed:
        raise SystemExit(f"vistok compare: {', '.join(fixed)} make a sequence or multi-scale set of tokens for one "
                         f"image size only, not {image_size} px: compare them at that --image-size")  # fmt: skip
    if any(f.source == "original" for f in framings):
        raise SystemExit("vistok compare: the original-resolution protocol measures full-size images of varying "
                         "sizes, which a comparison grid cannot show side by side; use vistok evaluate for it")
    for note in sorted({f.note for f in framings if f.note}):
        print(f"note: {note}", file=sys.stderr)
    if len({f.key() for f in framings}) > 1:
        print(f"note: under --protocol {protocol.name} the tokenizers frame the photos differently: each is "
              "measured on its own pixels (use --protocol vistok for identical pixels)", file=sys.stderr)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    networks, skipped = load_backbones(requested, args.lpips_weights, args.inception_weights, device,
                                       not args.no_download, lpips_net=protocol.lpips_net)  # fmt: skip
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    datasets: dict[tuple, Any] = {}
    entries: list[dict[str, Any]] = []
    grid: list[dict[str, Any]] = []
    from tqdm.auto import tqdm

    progress = tqdm(list(zip(specs, framings, strict=True)), desc="comparing", unit="model", file=sys.stderr)
    for spec, framing in progress:
        progress.set_postfix_str(spec.name)
        if framing.key() not in datasets:
            try:
                datasets[framing.key()] = build_protocol_dataset(_dataset_args(args), split, image_size, framing)
            except (OSError, RuntimeError, ValueError) as error:
                raise SystemExit(f"vistok compare: {error}") from error
        dataset = datasets[framing.key()]
        tok = spec.load()
        metrics = ReconstructionMetrics(
            codebook_size=tok.codebook_size, metrics=requested, lpips_network=networks.get("lpips"),
            inception_extractor=networks.get("rfid"), skipped=skipped, protocol=protocol,
        )  # fmt: skip
        try:
            results = evaluate_tokenizer(tok, dataset, metrics, batch_size=args.batch_size,
                                         num_workers=args.num_workers, device=device,
                                         show_progress=sys.stderr.isatty())  # fmt: skip
        except NoImagesError as error:
            raise SystemExit(f"vistok compare: {no_images_message(error, args.dataset, split)}") from None
        summary = config_summary(spec, tok, image_size)
        results["bits_per_image"] = results["tokens_per_image"] * math.log2(tok.codebook_size)
        results.pop("skipped_images", None)
        results.pop("codebook_histogram", None)  # K ints per model: `vistok evaluate`'s report keeps it
        entries.append({
            "model": spec.name, "config": summary, "images": framing.to_dict(image_size), "results": results,
        })  # fmt: skip
        grid.append(_grid_row(spec.name, tok, dataset, args.grid_images, device, protocol))
        del tok

    rows = [comparison_row(entry) for entry in entries]
    report = {
        "vistok_version": __version__,
        "dataset": {"name": args.dataset, "split": split, "image_size": image_size,
                    "num_samples_requested": args.num_samples},  # fmt: skip
        "protocol": protocol.name,
        "preprocessing_override": args.preprocessing,
        "conventions": metric_conventions(65_536, protocol),
        "models": entries,
        "table": rows,
    }
    files = {
        "json": write_json(report, output / "comparison.json"),
        "grid": save_grid(grid, output / "grid.png"),
        "plot": save_rate_distortion(rows, output / "rate_distortion.png"),
    }
    table = format_comparison_table(rows)
    markdown = [
        f"# Tokenizers compared on {args.dataset} [{split}] at {image_size}px",
        "",
        f"Protocol `{protocol.name}`: {protocol.summary}. {entries[0]['results']['num_images']} images; every "
        "convention is in comparison.json.",
        "",
        table,
        "",
        "![reconstructions](grid.png)",
        "",
        "![rate-distortion](rate_distortion.png)",
        "",
    ]
    notes = sorted({f"{metric}: {reason.splitlines()[0]}" for entry in entries
                    for metric, reason in (entry["results"].get("skipped") or {}).items()})  # fmt: skip
    if notes:
        markdown += ["Not measured:", "", *(f"- {note}" for note in notes), ""]
    files["markdown"] = output / "comparison.md"
    files["markdown"].write_text("\n".join(markdown))
    print(table)
    for note in notes:
        print(f"not measured: {note}")
    print(f"\nWrote {', '.join(str(p) for p in files.values())}", file=sys.stderr)
    return 0


def _dataset_args(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(dataset=args.dataset, streaming=args.streaming, image_column=args.image_column,
                              num_samples=args.num_samples)  # fmt: skip


# ------------------------------------------------------------------------------------------------ table
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("tokens_per_image", "Tokens", "{:,.0f}"),
    ("bits_per_image", "Bits", "{:,.0f}"),
    ("codebook_size", "Codebook", "{:,}"),
    ("psnr", "PSNR↑", "{:.2f}"),
    ("ssim", "SSIM↑", "{:.4f}"),
    ("lpips", "LPIPS↓", "{:.4f}"),
    ("rfid", "rFID↓", "{:.2f}"),
    ("codebook_usage", "Usage↑", "{:.1%}"),
    ("encode_images_per_second", "Enc img/s", "{:,.1f}"),
    ("decode_images_per_second", "Dec img/s", "{:,.1f}"),
    ("num_parameters", "Params", "{}"),
)


def comparison_row(entry: dict[str, Any]) -> dict[str, Any]:
    """One tokenizer's numbers, flat (what the table, the JSON ``table`` and the plot read)."""
    results, config = entry["results"], entry["config"]
    row = {"model": entry["model"], "codebook_size": config["codebook_size"],
           "num_parameters": config["num_parameters"]}  # fmt: skip
    for key in ("tokens_per_image", "bits_per_image", "psnr", "ssim", "lpips", "rfid", "codebook_usage",
                "codebook_usage_split", "encode_images_per_second", "decode_images_per_second", "num_images"):
        row[key] = results.get(key)
    return row


def _parameters(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def format_comparison_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, one row per tokenizer; a number that was not measured shows as ``—``."""
    header = ["Model", *(title for _, title, _ in COLUMNS)]
    body = []
    for row in rows:
        cells = [row["model"]]
        for key, _, fmt in COLUMNS:
            value = row.get(key)
            if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
                cells.append("—" if value is None else str(value))
            elif key == "num_parameters":
                cells.append(_parameters(int(value)))
            else:
                cells.append(fmt.format(value))
        body.append(cells)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


# ------------------------------------------------------------------------------------------------ figures
@torch.no_grad()
def _grid_row(name: str, tok: Any, dataset: Any, count: int, device: torch.device, protocol: Any) -> dict[str, Any]:
    """``count`` images of ``dataset`` (evenly spaced over it; a stream's first ones) and their reconstructions, as
    the protocol's uint8 images."""
    from ..metrics.protocols import originals_to_uint8, reconstructions_to_uint8

    pixels = []
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):  # spread over the split, not its first few
        length = len(dataset)
        positions = sorted({round(i * (length - 1) / max(count - 1, 1)) for i in range(min(count, length))})
        items = (dataset[p] for p in positions)
    else:
        items = iter(dataset)
    for item in items:
        if isinstance(item, dict):
            pixels.append(item["pixel_values"])
        if len(pixels) == count:
            break
    batch = torch.stack(pixels).to(device)
    reconstruction = tok(batch).reconstruction
    return {"name": name, "originals": originals_to_uint8(batch, protocol).cpu(),
            "reconstructions": reconstructions_to_uint8(reconstruction, protocol).cpu()}  # fmt: skip


def save_grid(rows: list[dict[str, Any]], path: Path) -> Path:
    """A PNG: the originals (once when every tokenizer saw the same pixels), then per tokenizer its reconstructions
    and their error maps (|reconstruction − original|, mean over channels, ×4, 'magma')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shared = all(torch.equal(r["originals"], rows[0]["originals"]) for r in rows)
    panels: list[tuple[str, torch.Tensor, bool]] = []
    if shared:
        panels.append(("original", rows[0]["originals"], False))
    for row in rows:
        if not shared:
            panels.append((f"original ({row['name']})", row["originals"], False))
        error = (row["reconstructions"].float() - row["originals"].float()).abs().mean(dim=1) * ERROR_GAIN / 255
        panels.append((row["name"], row["reconstructions"], False))
        panels.append((f"error ×{ERROR_GAIN}", error.clamp(0, 1), True))
    columns = rows[0]["originals"].shape[0]
    figure, axes = plt.subplots(len(panels), columns, figsize=(1.9 * columns + 1.6, 1.9 * len(panels)),
                                squeeze=False)  # fmt: skip
    for r, (label, images, is_error) in enumerate(panels):
        for c in range(columns):
            axis = axes[r][c]
            if is_error:
                axis.imshow(images[c].numpy(), cmap="magma", vmin=0, vmax=1)
            else:
                axis.imshow(images[c].permute(1, 2, 0).numpy())
            axis.set_xticks([])
            axis.set_yticks([])
            if c == 0:
                axis.set_ylabel(_short(label), fontsize=8, rotation=0, ha="right", va="center")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1) :]


def save_rate_distortion(rows: list[dict[str, Any]], path: Path) -> Path:
    """A PNG: bits per image (log scale) against PSNR and against LPIPS, one labelled point per tokenizer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("psnr", "PSNR (dB) ↑"), ("lpips", "LPIPS ↓")]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for axis, (key, title) in zip(axes, panels, strict=True):
        points = [(r["bits_per_image"], r[key], r["model"]) for r in rows
                  if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]  # fmt: skip
        for bits, value, name in points:
            axis.scatter([bits], [value], s=36)
            axis.annotate(_short(name, 32), (bits, value), textcoords="offset points", xytext=(5, 4), fontsize=8)
        if points:
            axis.set_xscale("log")
        else:
            axis.text(0.5, 0.5, f"{key.upper()} not measured", ha="center", va="center", transform=axis.transAxes)
        axis.set(xlabel="bits per image (tokens × log2 codebook size)", ylabel=title)
        axis.grid(True, which="both", alpha=0.3)
    figure.suptitle("Rate–distortion")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

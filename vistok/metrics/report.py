"""Human- and machine-readable reports of evaluation results: the seed-style table and strict JSON."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

# (result key, column header, format) — the seed's column order
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("codebook_usage", "Codebook usage↑", "{:.2%}"),
    ("psnr", "PSNR↑", "{:.4f}"),
    ("ssim", "SSIM↑", "{:.4f}"),
    ("lpips", "LPIPS↓", "{:.4f}"),
    ("rfid", "rFID↓", "{:.4f}"),
)


def format_results_table(rows: list[tuple]) -> str:
    """A Markdown table, one row per ``(model name, results)`` or ``(model name, results, info)``; a metric that was
    not computed shows as ``—``. ``info`` (``image_size``, ``tokens_per_image``, ``bits_per_image``, ``usage_key``)
    adds the resolution, tokens and bits per image beside the metrics, and picks which codebook usage is shown (the
    one the protocol's origin reports)."""
    with_info = any(len(row) > 2 for row in rows)
    header = ["Model", *(["Res", "Tokens", "Bits"] if with_info else []), *(title for _, title, _ in TABLE_COLUMNS)]
    body = []
    for row in rows:
        name, results = row[0], row[1]
        info = row[2] if len(row) > 2 else {}
        cells = [name]
        if with_info:
            size = info.get("image_size")
            cells += [
                "orig." if size == "original" else (f"{size}²" if size else "—"),
                _number(info.get("tokens_per_image")),
                f"{info['bits_per_image']:,.0f}" if isinstance(info.get("bits_per_image"), (int, float)) else "—",
            ]
        for key, _, fmt in TABLE_COLUMNS:
            value = results.get(info.get("usage_key", key) if key == "codebook_usage" else key)
            cells.append(fmt.format(value) if isinstance(value, (int, float)) else "—")
        body.append(cells)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def _number(value: Any) -> str:
    """A count as an integer when it is one (256), else with one decimal (mean tokens of full-size images)."""
    if not isinstance(value, (int, float)):
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def format_skipped(rows: list[tuple]) -> str:
    """The skipped metrics of every row with their reasons (each reason once), or an empty string."""
    reasons: dict[str, list[str]] = {}
    for name, results, *_ in rows:
        for metric, reason in (results.get("skipped") or {}).items():
            reasons.setdefault(f"{metric}: {reason}", []).append(name)
    return "\n".join(
        f"Skipped {text.splitlines()[0]}\n"
        + "".join(f"    {extra}\n" for extra in text.splitlines()[1:])
        + f"    (models: {', '.join(names)})"
        for text, names in reasons.items()
    )


def json_safe(value: Any) -> Any:
    """Recursively replace non-finite floats by the strings ``"inf"``, ``"-inf"``, ``"nan"`` (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(data: Any, path: str | os.PathLike) -> Path:
    """Write ``data`` as strict, indented JSON (non-finite floats as strings), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")
    return path

"""The zoo's reported numbers grouped by the protocol that produced them: only numbers measured the same way (same
protocol, same dataset and resolution) share a table (``vistok zoo list --metrics``).

Each family module tags its ``reported_metric(...)`` dicts with ``protocol`` — a name in
:data:`vistok.metrics.protocols.PROTOCOLS`, or ``"unknown"`` with ``protocol_note`` quoting or summarising what the
source says. A number without a tag counts as unknown.
"""

from __future__ import annotations

from typing import Any

from .protocols import PROTOCOLS

UNKNOWN = "unknown"
# (metric key, column title, format)
REPORTED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rfid", "rFID↓", "{:g}"),
    ("psnr", "PSNR↑", "{:g}"),
    ("ssim", "SSIM↑", "{:g}"),
    ("lpips", "LPIPS↓", "{:g}"),
    ("codebook_usage", "usage↑", "{:.0%}"),
)


def reported_protocol(metric: dict[str, Any]) -> str:
    """The protocol a reported number was measured under (``unknown`` when the source does not say)."""
    protocol = metric.get("protocol") or UNKNOWN
    return protocol if protocol in PROTOCOLS else UNKNOWN


def reported_groups(entries: list[Any], protocol: str | None = None) -> list[dict[str, Any]]:
    """Every entry's reported numbers, one group per (protocol, dataset) — the numbers that can be compared — in
    :data:`PROTOCOLS` order, then the unknown ones (each comparable with nothing). ``protocol`` keeps one group's
    protocol only. A group: ``{"protocol", "summary", "dataset", "rows": [{"name", "metrics": {metric: value}}]}``;
    the unknown group's rows also carry each number's ``source`` and ``note``."""
    if protocol is not None and protocol != UNKNOWN and protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join([*PROTOCOLS, UNKNOWN])}")
    known: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    unknown: list[dict[str, Any]] = []
    for entry in entries:
        for metric in entry.reported_metrics:
            name = reported_protocol(metric)
            if protocol is not None and name != protocol:
                continue
            if name == UNKNOWN:
                unknown.append({
                    "name": entry.name, "metric": metric["metric"], "value": metric["value"],
                    "dataset": metric.get("dataset"), "source": metric.get("source"),
                    "note": metric.get("protocol_note") or "the source does not say how it was measured",
                })  # fmt: skip
                continue
            rows = known.setdefault((name, metric.get("dataset", "")), {})
            rows.setdefault(entry.name, {})[metric["metric"]] = metric["value"]
    order = {name: index for index, name in enumerate(PROTOCOLS)}
    groups = [
        {
            "protocol": name,
            "summary": PROTOCOLS[name].summary,
            "dataset": dataset,
            "rows": [{"name": entry, "metrics": metrics} for entry, metrics in sorted(rows.items())],
        }
        for (name, dataset), rows in sorted(known.items(), key=lambda item: (order[item[0][0]], item[0][1]))
    ]
    if unknown:
        groups.append({"protocol": UNKNOWN, "summary": "the source does not name its conventions: comparable with "
                       "nothing", "dataset": None, "rows": unknown})  # fmt: skip
    return groups


def format_reported_groups(groups: list[dict[str, Any]]) -> str:
    """Plain-text tables: one per protocol and dataset, then the unknown numbers one per line with their sources."""
    blocks = []
    for group in groups:
        if group["protocol"] == UNKNOWN:
            lines = [f"Protocol unknown — {group['summary']}:"]
            lines += [f"  {row['name']}: {row['metric']} {row['value']:g} on {row['dataset']} ({row['source']}: "
                      f"{row['note']})" for row in group["rows"]]  # fmt: skip
            blocks.append("\n".join(lines))
            continue
        columns = [c for c in REPORTED_COLUMNS if any(c[0] in row["metrics"] for row in group["rows"])]
        table = [("name", *(title for _, title, _ in columns))]
        for row in group["rows"]:
            table.append((row["name"], *(fmt.format(row["metrics"][key]) if key in row["metrics"] else "—"
                                         for key, _, fmt in columns)))  # fmt: skip
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        lines = [f"Protocol {group['protocol']} on {group['dataset']} — {group['summary']}:"]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                  for line in table]  # fmt: skip
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)

"""The model zoo: list its entries, show one, or download and convert one ahead of time (for offline machines)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", allow_abbrev=False, help="every zoo entry: tokens, codebook, licence, reported rFID, cached?")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--metrics",
        action="store_true",
        help="the authors' reported numbers, one table per evaluation protocol and dataset: only numbers measured "
        "the same way share a table (docs/evaluation.md)",
    )
    listing.add_argument("--protocol", default=None, help="with --metrics: only this protocol's numbers ('unknown' too)")
    info = sub.add_parser("info", allow_abbrev=False, help="everything the catalogue knows about one entry")
    info.add_argument("name", help="a zoo entry name or catalogued upstream repo id (`vistok zoo list`)")
    download = sub.add_parser(
        "download",
        allow_abbrev=False,
        help="fetch an entry's upstream files into the Hugging Face cache and convert them into vistok's cache",
    )
    download.add_argument("name", help="a zoo entry name or catalogued upstream repo id (`vistok zoo list`)")
    download.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    download.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    download.add_argument("--token", default=None, help="Hub token (default: the logged-in one)")
    download.add_argument("--force", action="store_true", help="download and convert again")
    cache = sub.add_parser(
        "cache", allow_abbrev=False, help="the converted cache: list its folders with their sizes, or clear them (--clear)"
    )
    cache.add_argument("names", nargs="*", help="only these zoo entries (default: all)")
    cache.add_argument("--clear", action="store_true", help="delete the listed folders")
    cache.add_argument(
        "--stale", action="store_true", help="only folders no current converter would produce (older converter code)"
    )


def run(args: argparse.Namespace) -> int:
    from ..resolver import ZOO, UnknownNameError, resolve

    if args.action == "list":
        if args.metrics or args.protocol:
            return _list_metrics(args.json, args.protocol)
        return _list(args.json)
    if args.action == "cache":
        return _cache(args)
    try:
        resolved = resolve(args.name)
    except UnknownNameError as err:
        raise SystemExit(f"vistok zoo {args.action}: {err}") from err
    if resolved.kind != ZOO:
        raise SystemExit(f"vistok zoo {args.action}: {args.name!r} is a {resolved.kind}, not a zoo entry (`vistok zoo list`)")
    entry = resolved.entry
    if args.action == "info":
        return _info(entry)
    return _download(entry, args)


def _list(as_json: bool) -> int:
    import json

    from ..zoo.loader import list_pretrained

    rows = list_pretrained()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "tokens", "codebook", "licence", "rFID*", "cached", "source")
    table = [header] + [
        (
            r["name"],
            str(r.get("tokens_per_image", "?")),
            f"{r['codebook_size']:,}" if "codebook_size" in r else "?",
            r["license"] + ("" if r["permissive_license"] else " (restrictive)"),
            "" if r["reported_rfid"] is None else f"{r['reported_rfid']:g}",
            r["cached"],
            r["source"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print("\n* rFID as reported by the authors (ImageNet val), not measured by vistok, under each origin's own protocol: "
          "`vistok zoo list --metrics` groups the numbers that can be compared.")
    return 0


def _list_metrics(as_json: bool, protocol: str | None) -> int:
    import json

    from ..families import all_entries
    from ..metrics.reported import format_reported_groups, reported_groups

    try:
        groups = reported_groups(list(all_entries()), protocol)
    except ValueError as err:
        raise SystemExit(f"vistok zoo list: {err}") from err
    if as_json:
        print(json.dumps(groups, indent=2))
        return 0
    print(format_reported_groups(groups) or "no reported numbers")
    print("\nAs reported by the authors, not measured by vistok; `vistok evaluate --protocol NAME` measures any "
          "tokenizer the same way.")
    return 0


def _info(entry) -> int:
    from ..zoo.loader import cache_state

    print(f"{entry.name}: {entry.description}")
    print(f"  origin: {entry.origin.name} ({entry.origin.url})")
    print(f"  paper: {entry.origin.paper_title}, {entry.origin.paper_venue} ({entry.origin.paper_url})")
    flag = "" if entry.license.permissive else " — NOT permissive: read it before use"
    gated = " (gated: accept it on the Hub first)" if entry.license.gated else ""
    print(f"  weights licence: {entry.license.name} ({entry.license.url}){flag}{gated}")
    if entry.on_hub:
        print(f"  files: {entry.repo_id}: {' or '.join(entry.filenames)}"
              + (f" + {', '.join(entry.companion_files)}" if entry.companion_files else "")
              + (f" @ {entry.revision}" if entry.revision else ""))
        print(f"  load: vistok.create_tokenizer({entry.name!r}, pretrained=True)")
        print(f"  cached: {cache_state(entry)}")
    else:
        print(f"  files: {entry.manual_download}")
    print(f"  converter: vistok convert {entry.converter}" + (
        f" (options {entry.converter_options})" if entry.converter_options else ""))
    print(f"  native resolution: {entry.image_size}px" + (f"; expected architecture: preset {entry.preset}"
                                                          if entry.preset else ""))
    from ..families.catalogue import describe_preprocessing, entry_preprocessing, entry_preprocessing_note

    print(f"  preprocessing: {describe_preprocessing(entry_preprocessing(entry), entry_preprocessing_note(entry))}")
    for metric in entry.reported_metrics:
        note = f", {metric['note']}" if metric.get("note") else ""
        protocol = metric.get("protocol") or "unknown"
        print(f"  reported by origin: {metric['metric']} {metric['value']} on {metric['dataset']} "
              f"({metric['source']}{note}; protocol {protocol})")
    if entry.model_ids:
        print(f"  model vocabulary ids: {entry.model_ids}")
    for note in entry.notes:
        print(f"  note: {note}")
    return 0


def _download(entry, args: argparse.Namespace) -> int:
    from ..zoo.fetch import ZooDownloadError
    from ..zoo.loader import download

    try:
        fetched, folder, seconds = download(
            entry.name, revision=args.revision, cache_dir=args.cache_dir, token=args.token,
            force_download=args.force,
        )
    except (ZooDownloadError, ValueError) as err:  # CheckpointError is a ValueError
        raise SystemExit(f"vistok zoo download {entry.name}: {err}") from err
    for name, path in fetched.files.items():
        print(f"fetched {entry.repo_id}/{name} → {path}")
    print(f"converted → {folder} ({seconds:.1f} s)")
    print("For an offline machine, copy the Hugging Face cache (HF_HUB_CACHE) and vistok's cache (VISTOK_CACHE).")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from ..families.catalogue import has_entry
    from ..zoo.cache import cache_root, cached_entries, remove_entries

    rows = cached_entries()
    if args.names:
        rows = [r for r in rows if r["entry"] in args.names]
    for row in rows:
        row["stale"] = _is_stale(row, has_entry)
    if args.stale:
        rows = [r for r in rows if r["stale"]]
    for row in rows:
        state = "damaged: " + row["problem"] if row["problem"] else ("stale" if row["stale"] else "current")
        print(f"{row['entry']}/{row['key']}  {_size(row['bytes'])}  {state}")
    total = sum(r["bytes"] for r in rows)
    print(f"{len(rows)} folder(s), {_size(total)} in {cache_root() / 'converted'}")
    if args.clear:
        print(f"cleared {_size(remove_entries(rows))}")
    return 0


def _is_stale(row: dict, has_entry) -> bool:
    """A folder no current converter would write: its entry is gone or its converter's code has changed."""
    from ..families import get_family

    identity = row["identity"]
    if not has_entry(row["entry"]) or "converter" not in identity:
        return True
    try:
        return identity.get("converter_code") != get_family(identity["converter"]).code_hash()
    except KeyError:
        return True


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"

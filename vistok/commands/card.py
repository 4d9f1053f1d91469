"""Render model cards from the metadata stored with the weights (a model folder, or every registered preset)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

INDEX_NAME = "README.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="a save_pretrained folder, its config.json, or a Hub repo id")
    what.add_argument("--preset", help="a registered preset name")
    what.add_argument("--all-presets", action="store_true", help="render the card of every registered preset")
    parser.add_argument(
        "--output", help="card file to write (default: MODEL/README.md for a folder, else stdout)"
    )
    parser.add_argument("--output-dir", help="with --all-presets: folder for <preset>.md files and an index")
    parser.add_argument(
        "--metrics", help="JSON file with `vistok evaluate` results to show as measured metrics"
    )
    parser.add_argument("--repo-id", help="Hub repo id to use in the usage snippet")
    parser.add_argument("--template", help="Jinja template (default: the packaged vistok/templates/model_card.md)")


def run(args: argparse.Namespace) -> int:
    from ..cards import render_model_card
    from ..preset_cards import preset_card_config

    metrics = _read_metrics(args.metrics)
    options = {"repo_id": args.repo_id, "template_path": args.template}
    if args.all_presets:
        if not args.output_dir:
            raise SystemExit("--all-presets needs --output-dir")
        return _render_all_presets(Path(args.output_dir), options)
    if args.preset:
        card = render_model_card(preset_card_config(args.preset), metrics, **options)
        return _emit(str(card), args.output)
    config, folder = _load_config(args.model)
    card = render_model_card(config, metrics, **options)
    output = args.output or (str(folder / "README.md") if folder is not None else None)
    return _emit(str(card), output)


def _read_metrics(path: str | None):
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"--metrics {path}: cannot read a JSON metrics file ({err})") from err


def _load_config(model: str):
    from ..configuration import VisTokenizerConfig
    from ..resolver import hub_load_message

    path = Path(model)
    if path.is_file():
        if path.name != "config.json":
            raise SystemExit(
                f"--model {model}: expected a folder or its config.json, got the file {path.name!r}"
            )
        path = path.parent
    try:
        config = VisTokenizerConfig.from_pretrained(str(path) if path.exists() else model)
    except OSError as err:
        raise SystemExit(hub_load_message(model, err)) from err
    except ValueError as err:
        raise SystemExit(f"--model {model}: not a vistok tokenizer config ({err})") from err
    return config, path if path.is_dir() else None


def _emit(text: str, output: str | None) -> int:
    if output is None:
        print(text)
        return 0
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


def _render_all_presets(out_dir: Path, options: dict) -> int:
    from ..cards import render_model_card
    from ..factory import list_tokenizers
    from ..preset_cards import preset_card_config

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, description in list_tokenizers().items():
        config = preset_card_config(name)
        (out_dir / f"{name}.md").write_text(str(render_model_card(config, **options)), encoding="utf-8")
        rows.append(f"| [{name}]({name}.md) | {description} | {config.token_layout.describe(config.latent_hw)} |")
    index = [
        "# vistok model cards",
        "",
        "Rendered by `vistok card --all-presets --output-dir model_cards/` from the preset registry and the metadata",
        "of the upstream releases; `template.md` is the template every card (presets, conversions, trained models)",
        "is rendered from. Do not edit the cards by hand.",
        "",
        "| Preset | Description | Tokens |",
        "|---|---|---|",
        *rows,
        "",
    ]
    zoo_rows = _render_zoo_cards(out_dir / "zoo", options)
    index += [
        "## Zoo (published upstream weights: `vistok.create_tokenizer(NAME, pretrained=True)`)",
        "",
        "| Entry | Description | Tokens | Licence |",
        "|---|---|---|---|",
        *zoo_rows,
        "",
    ]
    index += _family_rows()
    (out_dir / INDEX_NAME).write_text("\n".join(index), encoding="utf-8")
    print(f"wrote {len(rows)} preset cards, {len(zoo_rows)} zoo cards and {out_dir / INDEX_NAME}")
    return 0


def _family_rows() -> list[str]:
    """The "Upstream projects" section: one row per registered family (vistok/families/)."""
    from ..families import all_families

    rows = [
        "## Upstream projects (`vistok/families/`, one module each; `vistok convert NAME`)",
        "",
        "| Converter | Project | Paper | Presets | Zoo entries |",
        "|---|---|---|---|---|",
    ]
    for family in sorted(all_families(), key=lambda f: f.name):
        origin = family.origin
        presets = ", ".join(f"[{p.name}]({p.name}.md)" for p in family.presets) or "—"
        entries = ", ".join(
            f"[{e.name}](zoo/{e.name}.md)" if e.preset else e.name for e in family.entries
        ) or "—"
        rows.append(
            f"| `{family.name}` | [{origin.name}]({origin.url}) | [{origin.paper_venue}]({origin.paper_url}) "
            f"| {presets} | {entries} |"
        )
    return [*rows, ""]


def _render_zoo_cards(out_dir: Path, options: dict) -> list[str]:
    """Write ``<entry>.md`` for every zoo entry into ``out_dir``; returns the index rows."""
    from ..cards import render_model_card
    from ..families.catalogue import get_entry, zoo_names
    from ..zoo.cards import zoo_card_config

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in zoo_names():
        entry = get_entry(name)
        if entry.preset is None:  # the architecture is only known from the file: its card is written on conversion
            rows.append(
                f"| {name} | {entry.description} | from the file | {entry.license.name} |"
            )
            continue
        config = zoo_card_config(entry)
        (out_dir / f"{name}.md").write_text(str(render_model_card(config, **options)), encoding="utf-8")
        licence = entry.license.name + ("" if entry.license.permissive else " (restrictive)")
        tokens = config.token_layout.describe(config.latent_hw)
        rows.append(f"| [{name}](zoo/{name}.md) | {entry.description} | {tokens} | {licence} |")
    return rows

"""Convert an upstream checkpoint into a vistok tokenizer folder with its model card.

The formats are the registered families (vistok/families/): `vistok convert --help` lists them with what each
reads and the options only it takes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..families import all_families

    families = all_families()
    parser.add_argument(
        "origin",
        choices=[f.name for f in families],
        metavar="ORIGIN",
        help="which upstream project wrote the file: "
        + "; ".join(f"{f.name}: {f.summary}" for f in families),
    )
    parser.add_argument("checkpoint", help="the upstream file (.pt / .ckpt / .pth / .bin / .safetensors, or a sharded index) or a release "
        "folder (Janus, a mixin repo)")
    parser.add_argument("output_dir", help="folder to write (save_pretrained layout + README.md model card)")
    parser.add_argument(
        "--weights",
        default="auto",
        help="which weights inside the checkpoint: " + "; ".join(f"{f.name}: {f.weights_help}" for f in families),
    )
    parser.add_argument(
        "--image-size", type=int, default=None, help="native resolution to record in the config"
    )
    seen: dict[str, str] = {}
    for family in families:
        for option in family.options:
            if option.flag in seen:
                raise ValueError(
                    f"families {seen[option.flag]!r} and {family.name!r} both declare {option.flag}; rename one"
                )
            seen[option.flag] = family.name
            parser.add_argument(
                option.flag,
                dest=_dest(option.flag),
                default=None,
                metavar=option.metavar or (None if option.choices else option.keyword.upper()),
                choices=option.choices,
                help=f"{family.name} only: {option.help}",
            )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle without restrictions (can run code from the file: only for files from a trusted source)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing tokenizer in output_dir"
    )
    parser.add_argument("--push-to-hub", metavar="REPO", default=None, help="also upload to this Hub repo id")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")


def _dest(flag: str) -> str:
    return "family_option_" + flag.lstrip("-").replace("-", "_")


def converter_options(args: argparse.Namespace) -> dict:
    """The family options given on the command line, parsed; ``SystemExit`` for an option of another family or
    a value its parser refuses."""
    from ..families import all_families, get_family

    chosen = get_family(args.origin)
    options = {}
    for family in all_families():
        for option in family.options:
            text = getattr(args, _dest(option.flag), None)
            if text is None:
                continue
            if family is not chosen:
                raise SystemExit(
                    f"vistok convert {args.origin}: {option.flag} applies to {family.name} checkpoints only"
                )
            try:
                options[option.keyword] = option.parse(text)
            except ValueError as err:
                raise SystemExit(f"vistok convert {args.origin}: {err}") from err
    return options


def run(args: argparse.Namespace) -> int:
    from ..cards import render_model_card
    from ..families import get_family

    out = Path(args.output_dir)
    if (out / "config.json").exists() and not args.overwrite:
        raise SystemExit(f"{out} already holds a tokenizer (config.json); pass --overwrite to replace it")
    options = converter_options(args)
    try:
        tok = get_family(args.origin).convert(
            args.checkpoint,
            weights=args.weights,
            image_size=args.image_size,
            trust_checkpoint=args.trust_checkpoint,
            **options,
        )
    except (ValueError, FileNotFoundError) as err:  # CheckpointError is a ValueError
        raise SystemExit(f"vistok convert {args.origin}: {err}") from err
    family = get_family(args.origin)
    if family.preprocessing is not None:  # the folder's processor runs the upstream pipeline
        tok.config.metadata = {**(tok.config.metadata or {}),
                               "preprocessing": family.preprocessing(tok.config.image_size).to_dict()}
    tok.save_pretrained(out)
    card = render_model_card(tok)
    card.save(out / "README.md")
    _print_summary(tok, out)
    if args.push_to_hub:
        _push(tok, args.push_to_hub, args.private, out)
    return 0


def _print_summary(tok, out: Path) -> None:
    config, meta = tok.config, tok.config.metadata
    origin = meta.get("origin", {})
    print(
        f"converted {origin.get('checkpoint_file')} ({origin.get('name')} {origin.get('release', '')}".rstrip()
        + f", weights: {origin.get('weights')}) → {out}"
    )
    print(f"  net: {json.dumps(config.net)}")
    print(f"  quantizer: {json.dumps(config.quantizer)}")
    layout, h = config.token_layout, config.latent_size
    tokens = f"{h}x{h} tokens" if layout.kind == "grid" else layout.describe(config.latent_hw)
    print(f"  {config.image_size}px → {tokens}, {tok.num_parameters():,} parameters")
    for note in meta.get("converter", {}).get("notes", []):
        print(f"  note: {note}")
    for dropped in origin.get("dropped_entries", []):
        print(f"  dropped: {dropped}")


def _push(tok, repo_id: str, private: bool, out: Path) -> None:
    try:
        tok.push_to_hub(repo_id, private=private)  # uploads the save_pretrained folder, model card included
    except Exception as err:  # network, auth and offline-mode errors come from several libraries
        raise SystemExit(
            f"the tokenizer was converted and saved in {out}, but uploading it to {repo_id!r} failed: "
            f"{type(err).__name__}: {err}. Log in (`hf auth login`) on a machine with network access and upload the "
            f"folder with `hf upload {repo_id} {out}` (HF_HUB_OFFLINE must not be set)."
        ) from err
    print(f"uploaded to https://huggingface.co/{repo_id}")

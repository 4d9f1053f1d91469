"""Convert an upstream checkpoint into a vistok tokenizer folder with its model card.

The formats are the registered families (vistok/families/): `vistok convert --help` lists them with what each
reads and the options only it takes.
"""

from __future__ import annotations

import argparse
import json
import re
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
    parser.add_argument(
        "output_dir",
        help="new or empty folder to write (save_pretrained layout + README.md model card); it appears complete or "
        "not at all",
    )
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
        "--overwrite",
        action="store_true",
        help="replace the tokenizer in output_dir, when it is a folder vistok wrote (a vistok config.json and the "
        "files saved with it, nothing else)",
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
    from ..atomic import publish_folder, temporary_folder
    from ..families import get_family
    from ..modeling import non_finite_tensors

    out = Path(args.output_dir)
    if out.is_symlink():  # write where the link points, beside the real folder
        out = out.resolve()
    check_output_folder(out, args.overwrite)
    options = converter_options(args)
    try:
        tok = get_family(args.origin).convert(
            args.checkpoint,
            weights=args.weights,
            image_size=args.image_size,
            trust_checkpoint=args.trust_checkpoint,
            **options,
        )
    except (ValueError, OSError) as err:  # CheckpointError is a ValueError; missing / unreadable files OSErrors
        raise SystemExit(f"vistok convert {args.origin}: {err}") from err
    bad = non_finite_tensors(tok)
    if bad:
        shown = ", ".join(bad[:3]) + (", …" if len(bad) > 3 else "")
        raise SystemExit(
            f"vistok convert {args.origin}: the weights in {args.checkpoint} hold NaN or infinite values ({shown}); "
            "a tokenizer's weights must be finite numbers (a damaged file, or a diverged training run?), so nothing "
            "was written"
        )
    family = get_family(args.origin)
    if family.preprocessing is not None:  # the folder's processor runs the upstream pipeline
        tok.config.metadata = {**(tok.config.metadata or {}),
                               "preprocessing": family.preprocessing(tok.config.image_size).to_dict()}
    # Written whole beside the output (weights, config, processor config, card), flushed, then renamed into place:
    # an interrupted run leaves the output folder as it was.
    with temporary_folder(out.parent, out.name) as work:
        staged = work / "tokenizer"
        tok.save_pretrained(staged)
        check_output_folder(out, args.overwrite)  # again: the folder may have changed during the conversion
        publish_folder(staged, out, replace=args.overwrite)
    _print_summary(tok, out)
    if args.push_to_hub:
        _push(tok, args.push_to_hub, args.private, out)
    return 0


# What a folder written by save_pretrained holds besides config.json (weights, index, processor config, card) and
# what an interrupted save leaves in it.
VISTOK_WEIGHT_FILE = re.compile(r"model[\w.-]*\.safetensors|model\.safetensors\.index[\w.-]*\.json")
VISTOK_SAVE_LEFTOVER = re.compile(r"\.save\.vistok-tmp-.*|\.vistok-incomplete\.json")


def check_output_folder(out: Path, overwrite: bool) -> None:
    """Return when ``vistok convert`` may write ``out``: a missing or empty folder, or with ``overwrite`` a folder
    vistok wrote (a vistok config.json and the files saved with it, nothing else). Otherwise ``SystemExit`` saying
    what the folder holds."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"vistok convert: {out} is a file; OUTPUT_DIR must be a new or empty folder")
    if not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    vistok_config = _vistok_config(out / "config.json")
    foreign = [name for name in entries if not vistok_config or not _saved_by_vistok(out, name)]
    if vistok_config and not foreign:
        held = f"a vistok tokenizer ({_listing(entries)}){_incomplete(out, entries)}"
    elif vistok_config:
        held = (
            f"a vistok tokenizer and files vistok did not write: {_listing(foreign)} (README.md counts as yours "
            "unless it is a card vistok rendered)"
        )
    else:
        why = "no config.json" if "config.json" not in entries else "a config.json that is not a vistok tokenizer's"
        held = f"files vistok did not write ({why}): {_listing(entries)}"
    if not overwrite:
        hint = " or pass --overwrite to replace that tokenizer" if vistok_config and not foreign else ""
        raise SystemExit(
            f"vistok convert: {out} is not empty: it holds {held}. vistok convert writes only into a new or empty "
            f"folder: choose another output folder{hint}"
        )
    if foreign:
        raise SystemExit(
            f"vistok convert: --overwrite replaces only a tokenizer folder vistok wrote, and {out} holds {held}. "
            "Nothing was changed: move those files away or choose another output folder"
        )


def _vistok_config(path: Path) -> bool:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "vistok"


def _saved_by_vistok(folder: Path, name: str) -> bool:
    """Whether the entry ``name`` of a folder with a vistok config.json is one save_pretrained writes there."""
    from ..cards import is_vistok_card

    if name in ("config.json", "preprocessor_config.json") or VISTOK_SAVE_LEFTOVER.fullmatch(name):
        return True
    if name == "README.md":
        return is_vistok_card(folder / name)
    return VISTOK_WEIGHT_FILE.fullmatch(name) is not None and (folder / name).is_file()


def _incomplete(folder: Path, entries: list[str]) -> str:
    if ".vistok-incomplete.json" in entries:
        return ", half replaced by an interrupted save"
    if not any(VISTOK_WEIGHT_FILE.fullmatch(name) for name in entries):
        return ", incomplete: it has no weights"
    return ""


def _listing(names: list[str], count: int = 6) -> str:
    return ", ".join(names[:count]) + (f", … ({len(names)} entries)" if len(names) > count else "")


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

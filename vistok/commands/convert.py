"""Convert an upstream checkpoint (LlamaGen, Taming, IBQ, Open-MAGVIT2, SimVQ, Janus, MaskGIT, TiTok, VAR) into a vistok tokenizer folder with its model card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# The converters `vistok convert` offers: the keys of vistok.convert.CONVERTERS (listed here so that `vistok --help`
# needs no torch import; tests/test_convert.py checks that both agree).
ORIGINS = ("llamagen", "taming", "janus", "ibq", "open-magvit2", "simvq", "maskgit", "titok", "var")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "origin", choices=ORIGINS, help="which upstream project wrote the file"
    )
    parser.add_argument("checkpoint", help="the upstream file (.pt / .ckpt / .pth / .bin / .safetensors, or a sharded index) or a release "
        "folder (Janus, a mixin repo)")
    parser.add_argument("output_dir", help="folder to write (save_pretrained layout + README.md model card)")
    parser.add_argument(
        "--weights",
        default="auto",
        help="which weights inside the checkpoint: auto (LlamaGen: ema, else model; Taming, MaskGIT, VAR: "
        "state_dict; IBQ, Open-MAGVIT2, SimVQ: the EMA shadows when the file has them, else raw); LlamaGen / Taming: "
        "ema, model or state_dict; IBQ / Open-MAGVIT2 / SimVQ: ema or raw",
    )
    parser.add_argument(
        "--image-size", type=int, default=None, help="native resolution to record in the config"
    )
    parser.add_argument(
        "--patch-nums",
        metavar="P1,P2,...",
        default=None,
        help="var only, required: the scale schedule (the file carries none), e.g. 1,2,3,4,5,6,8,10,13,16 for "
        "VAR's vae_ch160v4096z32.pth",
    )
    parser.add_argument(
        "--codebook-l2-norm",
        choices=["true", "false"],
        default=None,
        help="llamagen only: whether the codes are l2-normalised (default: the checkpoint's training args, else "
        "true as in every released LlamaGen VQ model)",
    )
    parser.add_argument(
        "--num-heads",
        metavar="ENC[,DEC]",
        default=None,
        help="titok only: attention heads of the encoder (and decoder) ViT; needed when config.json names a ViT size "
        "upstream does not define (small / base / large have 8 / 12 / 16)",
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


def run(args: argparse.Namespace) -> int:
    from ..cards import render_model_card
    from ..convert import CONVERTERS

    out = Path(args.output_dir)
    if (out / "config.json").exists() and not args.overwrite:
        raise SystemExit(f"{out} already holds a tokenizer (config.json); pass --overwrite to replace it")
    options = {}
    if args.codebook_l2_norm is not None:
        if args.origin != "llamagen":
            raise SystemExit(
                f"vistok convert {args.origin}: --codebook-l2-norm applies to llamagen checkpoints only "
                "(the other formats' quantizers are fixed by their release: nothing to choose)"
            )
        options["codebook_l2_norm"] = args.codebook_l2_norm == "true"
    if args.num_heads is not None:
        if args.origin != "titok":
            raise SystemExit(
                f"vistok convert {args.origin}: --num-heads applies to titok checkpoints only (the other formats "
                "have no attention heads to choose)"
            )
        options["num_heads"] = _parse_num_heads(args.num_heads)
    if args.patch_nums is not None:
        if args.origin != "var":
            raise SystemExit(
                f"vistok convert {args.origin}: --patch-nums applies to var checkpoints only (the other formats have "
                "one token grid, no scale schedule)"
            )
        options["patch_nums"] = _parse_patch_nums(args.patch_nums)
    try:
        tok = CONVERTERS[args.origin](
            args.checkpoint,
            weights=args.weights,
            image_size=args.image_size,
            trust_checkpoint=args.trust_checkpoint,
            **options,
        )
    except (ValueError, FileNotFoundError) as err:  # CheckpointError is a ValueError
        raise SystemExit(f"vistok convert {args.origin}: {err}") from err
    tok.save_pretrained(out)
    card = render_model_card(tok)
    card.save(out / "README.md")
    _print_summary(tok, out)
    if args.push_to_hub:
        _push(tok, args.push_to_hub, args.private, out)
    return 0


def _parse_num_heads(text: str) -> int | tuple[int, int]:
    """``"12"`` → 12, ``"12,16"`` → (12, 16); ``SystemExit`` naming the expected form otherwise."""
    parts = text.split(",")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise SystemExit(f"vistok convert titok: --num-heads must be ENC or ENC,DEC (positive integers), got {text!r}")
    heads = tuple(int(p) for p in parts)
    return heads[0] if len(heads) == 1 else (heads[0], heads[1])


def _parse_patch_nums(text: str) -> list[int]:
    """``"1,2,3,4"`` → [1, 2, 3, 4]; ``SystemExit`` naming the expected form otherwise."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SystemExit(
            f"vistok convert var: --patch-nums must be comma-separated positive integers such as 1,2,3,4, got {text!r}"
        )
    return [int(p) for p in parts]


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

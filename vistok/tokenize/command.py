"""The ``vistok tokenize`` command line: options, clear messages for bad input, the run summary."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from .runner import DEFAULT_SHARD_SIZE
from .variants import FLIP_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # --model, --dataset and --output-dir are required unless --verify is given (checked in run)
    parser.add_argument("--model", metavar="NAME_OR_PATH",
                        help="trained tokenizer: save_pretrained folder, Hub repo id, vistok/default or a zoo name")
    parser.add_argument("--dataset",
                        help="samples, celeba64, imagenet256, a Hub dataset id, an image folder or a saved dataset")
    parser.add_argument("--split", default="train", help="dataset split (default: train)")
    parser.add_argument("--output-dir", "--output", dest="output", metavar="DIR",
                        help="folder to write the token dataset to (--output is the older spelling)")
    parser.add_argument("--image-column", default=None, help="image column of a Hub / local dataset")
    parser.add_argument("--columns", default=None,
                        help="comma-separated source columns to store (default: labels, ids and image file names)")
    parser.add_argument("--image-size", type=int, default=None, help="resolution (default: the tokenizer's)")
    parser.add_argument("--num-samples", type=int, default=None, help="tokenize the first N images only")
    parser.add_argument("--streaming", action="store_true", help="stream the dataset instead of downloading it")
    parser.add_argument("--flip", choices=FLIP_CHOICES, default="none",
                        help="none, or both: each image and its mirror image, as LlamaGen does (default: none)")
    parser.add_argument("--preprocessing", choices=("upstream", "generic"), default="upstream",
                        help="upstream (default): frame each image as the tokenizer's upstream project does, when it "
                        "records that pipeline (zoo entries, conversions); generic: the dataset's evaluation crop, "
                        "the same pixels for every tokenizer")
    parser.add_argument("--model-ids", action="store_true",
                        help="store the multimodal model's vocabulary ids (Chameleon, Emu3 -hf, Show-o, Janus: what "
                        "tok.to_model_ids gives) instead of codebook indices; refused for a tokenizer without that "
                        "record")
    parser.add_argument("--ten-crop", action="store_true",
                        help="five crops of the image enlarged 1.1x (ten with --flip both), as LlamaGen's ten-crop")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="images per batch and process (default: 32); the encoder gets each image's variants, "
                             "up to 10× as many with --ten-crop --flip both")
    parser.add_argument("--num-workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="DataLoader worker processes decoding images (a stream uses at most 1)")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE,
                        help=f"images per shard: the unit of resuming and of work between processes "
                             f"(default: {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--dtype", choices=("float32", "bf16"), default="float32",
                        help="encoder precision: bf16 weights (a GPU option; the nearest-code search stays float32)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:1 … (default: cuda when available; under accelerate: its)")
    parser.add_argument("--resume", action="store_true", help="finish an interrupted run (finished shards are kept)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing token dataset in --output-dir")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO",
                        help="upload the finished dataset to this Hub dataset repo")
    parser.add_argument("--random-init", action="store_true",
                        help="allow preset names (random weights; for speed tests only)")
    parser.add_argument("--verify", metavar="FOLDER", default=None,
                        help="check a finished token dataset instead of writing one: every shard against the sha256 "
                             "its manifest records, and that it loads (takes no other option)")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show a progress bar with images/s (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")


def run(args: argparse.Namespace) -> int:
    from datasets.exceptions import DatasetNotFoundError

    from ..data import DatasetUnavailableError
    from ..hub import HubUnreachableError
    from .api import tokenize_dataset
    from .store import OutputError

    if args.verify is not None:
        return verify(args)
    missing = [flag for flag, name in (("--model", "model"), ("--dataset", "dataset"), ("--output-dir", "output"))
               if getattr(args, name) is None]  # fmt: skip
    if missing:
        raise SystemExit(f"vistok tokenize: the following arguments are required: {', '.join(missing)} (or --verify "
                         "FOLDER to check a finished token dataset)")  # fmt: skip
    if args.resume and args.overwrite:
        raise SystemExit("vistok tokenize: --resume and --overwrite contradict each other; choose one")
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns is not None else None
    try:
        result = tokenize_dataset(
            args.model, args.dataset, args.output, split=args.split, image_size=args.image_size, flip=args.flip,
            ten_crop=args.ten_crop, batch_size=args.batch_size, num_workers=args.num_workers,
            shard_size=args.shard_size, num_samples=args.num_samples, streaming=args.streaming,
            image_column=args.image_column, columns=columns, dtype=args.dtype, compile=args.compile,
            resume=args.resume, overwrite=args.overwrite, device=args.device,
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
            random_init=args.random_init, push_to_hub=args.push_to_hub, preprocessing=args.preprocessing,
            model_ids=args.model_ids,
        )  # fmt: skip
    except KeyboardInterrupt:  # Ctrl-C: what was kept and how to go on, not a traceback
        if int(os.environ.get("RANK", "0")) == 0:  # one line for a multi-process run, from its main process
            print(interrupted_message(args), file=sys.stderr)
        return 130
    except HubUnreachableError as error:
        raise SystemExit(f"vistok tokenize: {error}") from error
    except (OutputError, DatasetUnavailableError, DatasetNotFoundError, OSError, ValueError) as error:
        raise SystemExit(f"vistok tokenize: {error}") from error
    if result is not None and result.get("already_complete"):
        if args.push_to_hub:
            print(f"Uploaded to https://huggingface.co/datasets/{args.push_to_hub}", file=sys.stderr)
    elif result is not None:
        counts = result["counts"]
        rate = result["images_per_second"]
        print(
            f"Wrote {counts['num_rows']:,} rows ({counts['num_images']:,} images × "
            f"{len(result['preprocessing']['variants'])} variant(s), {result['tokens_per_image']} "
            f"{result['token_dtype']} tokens each; {counts['num_skipped']:,} unreadable image(s) skipped) to "
            f"{args.output} in {result['seconds']:.1f} s"
            + (f" ({rate:.1f} images/s)" if rate else "")
            + f". Load it with datasets.load_from_disk({str(args.output)!r}).",
            file=sys.stderr,
        )
        if args.push_to_hub:
            print(f"Uploaded to https://huggingface.co/datasets/{args.push_to_hub}", file=sys.stderr)
    return 0


def verify(args: argparse.Namespace) -> int:
    """``--verify FOLDER``: 0 and one line when every shard matches the manifest and the folder loads; 1 and the
    damaged shards, each named, then what to run about them."""
    from .verify import verify_token_dataset

    given = [flag for flag, name in (("--model", "model"), ("--dataset", "dataset"), ("--output-dir", "output"))
             if getattr(args, name) is not None]  # fmt: skip
    if given:
        raise SystemExit(f"vistok tokenize: --verify checks the folder it names and takes no {', '.join(given)}; "
                         "drop them")  # fmt: skip
    try:
        result = verify_token_dataset(args.verify)
    except FileNotFoundError as error:
        raise SystemExit(f"vistok tokenize --verify: {error}") from error
    if result.ok:
        print(f"{result.folder}: intact — {result.num_shards} shard(s) match the sha256 recorded in the manifest, and "
              f"datasets.load_from_disk reads its {result.num_rows:,} rows.")  # fmt: skip
        return 0
    for problem in result.problems:
        print(f"vistok tokenize --verify: {problem}", file=sys.stderr)
    print(f"vistok tokenize --verify: {result.remedy}", file=sys.stderr)
    return 1


def command_line(args: argparse.Namespace, **changes: object) -> str:
    """``vistok tokenize`` with the options of ``args`` that differ from their defaults, ``changes`` applied
    (``resume=True`` adds ``--resume``; ``overwrite=False`` drops ``--overwrite``), quoted for a POSIX shell."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    values = {**vars(args), **changes}
    words = ["vistok", "tokenize"]
    for action in parser._actions:  # every option, in the order --help lists them
        if not action.option_strings or action.dest not in values:
            continue
        value = values[action.dest]
        if value == action.default:
            continue
        if action.nargs == 0:  # a flag: written when it gives the value
            if value == action.const:
                words.append(action.option_strings[0])
        elif value is not None:
            words += [action.option_strings[0], str(value)]
    return shlex.join(words)


def interrupted_message(args: argparse.Namespace) -> str:
    """One line after Ctrl-C: the shards kept in ``--output-dir`` and the command that finishes the run."""
    from .store import TokenStore

    store = TokenStore(args.output)
    state = store.state()
    if state == "complete":
        upload = f"; upload it with `{command_line(args, resume=True, overwrite=False)}`" if args.push_to_hub else ""
        return f"vistok tokenize: interrupted; {store.path} is complete{upload}"
    if state == "incomplete":
        kept = len(store.finished())
        return (
            f"vistok tokenize: interrupted; {kept} finished shard(s) are kept in {store.path}: finish the run with "
            f"`{command_line(args, resume=True, overwrite=False)}`"
        )
    return (
        f"vistok tokenize: interrupted before any shard was written to {store.path}; run "
        f"`{command_line(args, resume=False)}` again"
    )


def main(argv: list[str] | None = None) -> int:
    # The package's docstring is the command's help. Python has imported the package before this submodule, so
    # it is read from sys.modules rather than imported back (the package imports this module).
    description = sys.modules[__package__].__doc__

    parser = argparse.ArgumentParser(
        prog="python -m vistok.tokenize",
        allow_abbrev=False,
        description=(description or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))

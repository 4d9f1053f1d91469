"""Train a vistok tokenizer with 🤗 accelerate.

    accelerate launch training/train.py --config training/configs/celeba64/vqvae.yaml
    accelerate launch training/train.py --config training/configs/imagenet256/vqgan-llamagen.yaml \\
        --output_dir runs/llamagen --mixed_precision bf16
    python training/train.py --config training/configs/celeba64/fsqvae.yaml --dataset samples --max_steps 200

Every recipe field can be overridden as ``--section.field VALUE`` (``--train.lr 1e-4``,
``--model.quantizer.codebook_size 1024``, ``--loss.perceptual_weights /path/vgg16.pth``); ``--resume latest`` (or
a checkpoint folder) continues a run exactly; a checkpoint vistok did not write is refused unless
``--trust_checkpoint`` is given. An output folder that exists and is not empty is refused unless it is a vistok run's
(``.vistok_run.json``) and the run resumes it (``--resume``) or replaces it (``--overwrite_output_dir``: only what
the run wrote is deleted). Ctrl-C stops with the command that resumes. The output folder is a ``save_pretrained``
folder: ``VisTokenizer.from_pretrained(output_dir)``. See docs/training.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # trainkit/ lives next to this script

from trainkit.checkpoints import CheckpointError, CheckpointManager  # noqa: E402
from trainkit.config import ALIASES, SECTIONS, load_recipe  # noqa: E402
from trainkit.output_dir import OutputDirNotEmptyError  # noqa: E402
from trainkit.trainer import TrainingDiverged, TrainResult, train  # noqa: E402

from vistok.data import check_local_dataset  # noqa: E402
from vistok.hub import HubUnreachableError  # noqa: E402

INTERRUPTED = 130  # the exit status of a shell command stopped by Ctrl-C (128 + SIGINT)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # spelled out: --overwrite would match both spellings of --overwrite_output_dir
        description="Train a vistok tokenizer (any --section.field VALUE overrides the recipe).",
        epilog=f"sections: model, {', '.join(SECTIONS)}; aliases: "
        + ", ".join(f"--{a} (= --{t})" for a, t in ALIASES.items())
        + "; each also spelled with dashes (--output-dir, --max-steps …), as the vistok commands spell options",
    )
    parser.add_argument("--config", help="YAML recipe, e.g. training/configs/tiny.yaml")
    parser.add_argument("--resume", help="'latest' or a checkpoint folder (output_dir/checkpoints/checkpoint-N)")
    parser.add_argument(
        "--overwrite_output_dir",
        "--overwrite-output-dir",
        dest="overwrite_output_dir",
        action="store_true",
        help="replace the vistok run in a non-empty output folder (the files it recorded in .vistok_run.json are "
        "deleted; a folder without that record is refused)",
    )
    parser.add_argument(
        "--trust_checkpoint",
        "--trust-checkpoint",
        dest="trust_checkpoint",
        action="store_true",
        help="resume from a checkpoint vistok did not write (e.g. an older vistok's): its pickle files are loaded in "
        "full, which can run code — only for checkpoints whose origin you trust",
    )
    return parser


def _command(argv: list[str]) -> list[str]:
    """How this script was started, for a command to print: ``python training/train.py`` (or ``accelerate launch``
    for several processes) with ``argv``."""
    script = Path(__file__).resolve()
    try:
        shown = str(script.relative_to(Path.cwd()))
    except ValueError:
        shown = str(script)
    processes = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if processes > 1:
        return ["accelerate", "launch", "--multi_gpu", "--num_processes", str(processes), shown, *argv]
    python = shutil.which("python")
    same = python is not None and os.path.realpath(python) == os.path.realpath(sys.executable)
    return ["python" if same else sys.executable, shown, *argv]


def resume_command(argv: list[str], output_dir: str | Path) -> tuple[Path | None, str]:
    """The last complete checkpoint in ``output_dir`` and the command that continues this run from it: ``argv``
    without ``--overwrite_output_dir`` and ``--resume``, plus ``--resume latest`` (or the ``--resume`` given, while
    the output folder has no checkpoint yet)."""
    kept, given, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--resume" and i + 1 < len(argv):
            given, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--resume="):
            given = arg.partition("=")[2]
        elif arg not in ("--overwrite_output_dir", "--overwrite-output-dir"):
            kept.append(arg)
        i += 1
    latest = CheckpointManager(output_dir).latest()
    target = "latest" if latest is not None or given is None else given
    return latest, shlex.join(_command([*kept, "--resume", target]))


def interrupted_message(argv: list[str], output_dir: str | Path) -> str:
    latest, command = resume_command(argv, output_dir)
    if latest is None:
        return f"train.py: interrupted before the first checkpoint of this run; start it again with: {command}"
    return f"train.py: interrupted; the last checkpoint, {latest}, is kept; continue with: {command}"


def main(argv: list[str] | None = None) -> TrainResult:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    flags = [o for a in parser._actions for o in a.option_strings]
    for word in overrides:  # a recipe override has a section (--train.lr) or is a shorthand (--max_steps)
        key = word[2:].partition("=")[0]
        known = key.replace("-", "_") in ALIASES or key in ("model", *SECTIONS)  # --model '{...}': a whole section
        if word.startswith("--") and "." not in key and not known:
            from vistok.suggest import closest_names

            close = closest_names(word, [*flags, *(f"--{a}" for a in ALIASES)])
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise SystemExit(f"train.py: unknown option {word}; {hint}(recipe fields are --section.field VALUE)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per file of every checkpoint otherwise
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # "Writing model shards" bars at every export
    try:
        recipe = load_recipe(args.config, overrides)
        check_local_dataset(recipe.data.dataset)  # before the accelerator, the models and the output folder
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"train.py: {err}") from None
    try:
        return train(recipe, resume=args.resume, overwrite_output_dir=args.overwrite_output_dir,
                     trust_checkpoint=args.trust_checkpoint)
    except (OutputDirNotEmptyError, CheckpointError, HubUnreachableError) as err:
        raise SystemExit(f"train.py: {err}") from None
    except KeyboardInterrupt:  # Ctrl-C: what is kept and how to go on, instead of a traceback
        if os.environ.get("RANK", "0") == "0":  # every process gets the signal; one says it
            print(interrupted_message(argv, recipe.output.dir), file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED) from None


def cli() -> None:
    from vistok.data import DatasetUnavailableError
    from vistok.losses import PerceptualWeightsNotFoundError

    try:
        main()
    except (TrainingDiverged, DatasetUnavailableError, PerceptualWeightsNotFoundError) as err:
        logging.getLogger("vistok.train").error("%s", err)
        raise SystemExit(1) from None
    except KeyboardInterrupt:  # while the recipe was read: nothing was written
        print("train.py: interrupted before training started; nothing was written", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None


if __name__ == "__main__":
    cli()

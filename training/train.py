"""Train a vistok tokenizer with 🤗 accelerate.

    accelerate launch training/train.py --config training/configs/celeba64/vqvae.yaml
    accelerate launch training/train.py --config training/configs/imagenet256/vqgan-llamagen.yaml \\
        --output_dir runs/llamagen --mixed_precision bf16
    python training/train.py --config training/configs/celeba64/fsqvae.yaml --dataset samples --max_steps 200

Every recipe field can be overridden as ``--section.field VALUE`` (``--train.lr 1e-4``,
``--model.quantizer.codebook_size 1024``, ``--loss.perceptual_weights /path/vgg16.pth``); ``--resume latest`` (or
a checkpoint folder) continues a run exactly. An output folder that exists and is not empty is refused unless the
run resumes it (``--resume``) or replaces it (``--overwrite_output_dir``). The output folder is a
``save_pretrained`` folder: ``VisTokenizer.from_pretrained(output_dir)``. See docs/training.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # trainkit/ lives next to this script

from trainkit.config import ALIASES, SECTIONS, load_recipe  # noqa: E402
from trainkit.output_dir import OutputDirNotEmptyError  # noqa: E402
from trainkit.trainer import TrainingDiverged, TrainResult, train  # noqa: E402

from vistok.data import check_local_dataset  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train a vistok tokenizer (any --section.field VALUE overrides the recipe).",
        epilog=f"sections: model, {', '.join(SECTIONS)}; aliases: "
        + ", ".join(f"--{a} (= --{t})" for a, t in ALIASES.items()),
    )
    parser.add_argument("--config", help="YAML recipe, e.g. training/configs/tiny.yaml")
    parser.add_argument("--resume", help="'latest' or a checkpoint folder (output_dir/checkpoints/checkpoint-N)")
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace the run in a non-empty output folder (its checkpoints, logs, images and model are deleted)",
    )
    return parser


def main(argv: list[str] | None = None) -> TrainResult:
    args, overrides = build_parser().parse_known_args(argv)
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
        return train(recipe, resume=args.resume, overwrite_output_dir=args.overwrite_output_dir)
    except OutputDirNotEmptyError as err:
        raise SystemExit(f"train.py: {err}") from None


def cli() -> None:
    from vistok.data import DatasetUnavailableError
    from vistok.losses import PerceptualWeightsNotFoundError

    try:
        main()
    except (TrainingDiverged, DatasetUnavailableError, PerceptualWeightsNotFoundError) as err:
        logging.getLogger("vistok.train").error("%s", err)
        raise SystemExit(1) from None


if __name__ == "__main__":
    cli()

"""SimVQ's ImageNet 128x128 image tokenizers (MIT), in the Hub repo ``youngsheen/SimVQ`` (the SimVQ README links
it as ``zyx123/SimVQ``, the account's earlier name): folders ``vq_log/simvq_{1k,8k,65k,262k}``, each a Lightning
``.ckpt`` plus LightningCLI's ``size128/config.yaml``, converted by ``vistok convert simvq`` (EMA weights, the
frozen codebook as stored, decode through the projected codebook).

Only the 262k checkpoint's file name is known (the README's evaluation command:
``vq_log/simvq_262k/epoch=49-step=250250.ckpt``); the other three folders' file names could not be confirmed, so
their entries say where the files are instead of guessing a name."""

from __future__ import annotations

from ...convert.origins import SIMVQ
from ...convert.simvq import REPORTED, reported_metrics
from ..entry import MIT, ZooEntry

REPO = "youngsheen/SimVQ"
NOTES = (
    "Converted from the EMA weights (model_ema.*), which upstream's evaluation uses; the frozen random codebook "
    "has no EMA copy and is taken as stored.",
    "decode(indices) uses the projected codebook E·Wᵀ + b; SimVQ's own get_codebook_entry returns the unprojected "
    "rows, which the decoder was never trained on.",
    "The preset's architecture is configs/imagenet_simvq_128_B.yaml (the 1k run); the README changes only the "
    "codebook size for the others. A file that differs still loads, with a warning.",
)
KNOWN_FILES = {"simvq_262k": "epoch=49-step=250250.ckpt"}  # the README's evaluation command


def _entry(folder: str) -> ZooEntry:
    size = REPORTED[folder][0]
    common = dict(
        name=f"simvq-imagenet128-{size}",
        description=f"SimVQ 128_B, 128px → 16x16 tokens, codebook {size} x 128, ImageNet",
        origin=SIMVQ,
        license=MIT,
        converter="simvq",
        image_size=128,
        preset=f"simvq-imagenet128-{size}",
        reported_metrics=reported_metrics(folder),
    )
    if folder in KNOWN_FILES:
        return ZooEntry(
            **common,
            repo_id=REPO,
            filenames=(f"vq_log/{folder}/{KNOWN_FILES[folder]}",),
            companion_files=(f"vq_log/{folder}/size128/config.yaml",),
            notes=NOTES,
        )
    return ZooEntry(
        **common,
        manual_download=(
            f"The checkpoint's file name in https://huggingface.co/{REPO}/tree/main/vq_log/{folder} could not be "
            "confirmed, so the zoo does not fetch it. Download that folder's .ckpt and its size128/config.yaml "
            f"(keeping the layout), then run `vistok convert simvq <file>.ckpt simvq-imagenet128-{size}` and load "
            f"the folder with VisTokenizer.from_pretrained('simvq-imagenet128-{size}')."
        ),
        notes=(*NOTES, "Not fetched automatically: the checkpoint's file name in the Hub folder is unconfirmed."),
    )


ENTRIES = tuple(_entry(folder) for folder in REPORTED)

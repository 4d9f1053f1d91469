"""Open-MAGVIT2's tokenizers (SEED-Voken, Apache 2.0): the ImageNet 256 / 128 "L" models and the two pretrained
(LAION-COCO, CC12M, … 100M images) text-to-image tokenizers. Repo ids and file names are those of the checkpoint
links in SEED-Voken's docs/Open-MAGVIT2.md. Each file is a Lightning ``.ckpt`` converted by
``vistok convert open-magvit2`` (EMA weights, architecture from the shapes, LFQ ``bit_order="lsb_first"``)."""

from __future__ import annotations

from ...convert.open_magvit2 import RELEASE_FILES
from ...convert.origins import OPEN_MAGVIT2
from ..entry import APACHE_2, ZooEntry

BIT_ORDER_NOTE = (
    "Token ids are upstream's: index = sum_c bit_c * 2^c over the 18 latent channels (channel 0 is the least "
    "significant bit; the quantizer says bit_order='lsb_first')."
)
EMA_NOTE = "Converted from the EMA weights (model_ema.*), which upstream's evaluation uses."


def _imagenet(resolution: int) -> ZooEntry:
    filename = f"imagenet_{resolution}_L.ckpt"
    return ZooEntry(
        name=f"lfqgan-magvit2-imagenet{resolution}-L",
        description=f"Open-MAGVIT2 {resolution}_L (LFQ 2^18), {resolution}px → 16x16 tokens, ImageNet",
        origin=OPEN_MAGVIT2,
        license=APACHE_2,
        converter="open-magvit2",
        image_size=resolution,
        repo_id=f"TencentARC/Open-MAGVIT2-Tokenizer-{resolution}-resolution",
        filenames=(filename,),
        preset=f"lfqgan-magvit2-imagenet{resolution}-L",
        reported_metrics=RELEASE_FILES[filename]["reported_metrics"],
        notes=(BIT_ORDER_NOTE, EMA_NOTE),
    )


def _pretrain(size: int, bits: int) -> ZooEntry:
    return ZooEntry(
        name=f"lfqgan-magvit2-pretrain256-{size}",
        description=f"Open-MAGVIT2 pretrained text-to-image tokenizer (LFQ 2^{bits}), 256px → 16x16 tokens",
        origin=OPEN_MAGVIT2,
        license=APACHE_2,
        converter="open-magvit2",
        image_size=256,
        repo_id=f"TencentARC/Open-MAGVIT2-Tokenizer-{size}-Pretrain",
        filenames=(f"pretrain256_{size}.ckpt",),
        notes=(
            BIT_ORDER_NOTE.replace("18", str(bits)),
            EMA_NOTE,
            "Trained on about 100M web images (LAION-COCO, CC12M, CC3M, LAION-HD, LAION-Aesthetic, JourneyDB), "
            "not ImageNet. No preset: its architecture is read from the file. Its LFQ loss options are those of "
            "the ImageNet configs (the pretraining config was not checked).",
        ),
    )


ENTRIES = (_imagenet(256), _imagenet(128), _pretrain(16384, 14), _pretrain(262144, 18))

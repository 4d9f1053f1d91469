"""IBQ's ImageNet-256 tokenizers (Apache 2.0): ``TencentARC/IBQ-Tokenizer-{1024, 8192, 16384, 262144}``, one
Lightning ``.ckpt`` each (``imagenet256_{size}.ckpt``, the links of SEED-Voken's docs/IBQ.md), converted with the
EMA weights (upstream evaluates under ``ema_scope()``). The reported numbers are docs/IBQ.md's table (ImageNet 256
validation, 16x16 tokens)."""

from __future__ import annotations

from ...convert.origins import IBQ, reported_metric
from ..entry import APACHE_2, ZooEntry

DOCS_URL = "https://github.com/TencentARC/SEED-Voken/blob/main/docs/IBQ.md"
SOURCE = "SEED-Voken docs/IBQ.md"
# codebook size → (rFID, LPIPS, codebook utilisation) as docs/IBQ.md reports them.
REPORTED = {
    1024: (2.24, 0.2580, 0.99),
    8192: (1.87, 0.2437, 0.98),
    16384: (1.37, 0.2235, 0.96),
    262144: (1.00, 0.2030, 0.84),
}


def _entry(size: int) -> ZooEntry:
    rfid, lpips, usage = REPORTED[size]
    return ZooEntry(
        name=f"ibq-imagenet256-{size}",
        description=f"IBQ (index backpropagation) ImageNet, 256px → 16x16 tokens, codebook {size} x 256",
        origin=IBQ,
        license=APACHE_2,
        converter="ibq",
        image_size=256,
        repo_id=f"TencentARC/IBQ-Tokenizer-{size}",
        filenames=(f"imagenet256_{size}.ckpt",),
        converter_options={"weights": "ema"},  # the released model is the EMA one: a file without it is refused
        preset=f"ibqgan-imagenet256-{size}",
        reported_metrics=(
            reported_metric("rfid", rfid, SOURCE, DOCS_URL),
            reported_metric("lpips", lpips, SOURCE, DOCS_URL),
            reported_metric("codebook_usage", usage, SOURCE, DOCS_URL),
        ),
        notes=(
            "A Lightning training checkpoint (encoder/decoder, loss networks, optimiser state and LitEma shadows); "
            "the converter keeps the EMA weights, which upstream's evaluation uses.",
            "Codes are the argmax of the dot product with the raw codebook (quantizer 'ibq'), not the nearest code.",
        ),
    )


ENTRIES = tuple(_entry(size) for size in REPORTED)

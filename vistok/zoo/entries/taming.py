"""Taming Transformers' ImageNet VQGANs (MIT). The original PyTorch files are not on the Hub: the Hub copies are
Flax ports or models fine-tuned on other data, i.e. not these weights. The entries say where the originals are
(the links of Taming's README) and how to convert them."""

from __future__ import annotations

from ...convert.origins import TAMING, release_named
from ..entry import MIT, ZooEntry


def _entry(size: int, url: str) -> ZooEntry:
    name = f"vqgan-taming-f16-{size}"
    return ZooEntry(
        name=name,
        description=f"Taming VQGAN ImageNet f16, 256px → 16x16 tokens, codebook {size} x 256",
        origin=TAMING,
        license=MIT,
        converter="taming",
        image_size=256,
        manual_download=(
            f"The original checkpoint is not on the Hugging Face Hub. Download ckpts/last.ckpt from {url} (Taming "
            f"Transformers' README, 'VQGAN ImageNet (f=16), {size}'), then run "
            f"`vistok convert taming last.ckpt {name}` and load the folder with "
            f"VisTokenizer.from_pretrained('{name}')."
        ),
        preset=name,
        reported_metrics=release_named(TAMING, f"VQGAN ImageNet f16-{size}").reported_metrics,
    )


ENTRIES = (
    _entry(1024, "https://heibox.uni-heidelberg.de/d/8088892a516d4e3baf92/"),
    _entry(16384, "https://heibox.uni-heidelberg.de/d/a7530b09fed84f80a887/"),
)

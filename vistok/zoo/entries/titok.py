"""TiTok's single-stage VQ tokenizers (Yu et al., NeurIPS 2024), as bytedance/1d-tokenizer's README_TiTok.md lists
them in its model zoo: the Hub repos ``yucornetto/tokenizer_titok_{bl64,bl128,sl256}_vq8k_imagenet``, each a
``PyTorchModelHubMixin`` folder (``model.safetensors`` + ``config.json``) that the README loads with
``TiTok.from_pretrained(<repo>)``. Converted by :mod:`vistok.convert.titok`; the head counts come from the ViT size
names in config.json (base / small encoder, large decoder).

Licence: Apache 2.0 (1d-tokenizer's file headers; the mixin writes ``license: apache-2.0`` into each repo's model
card). The README adds that the models were trained on ImageNet only and are for research purposes. The two-stage
TiTok-L-32 / B-64 / S-128 and the VAE variants are not converted, so they have no entries.
"""

from __future__ import annotations

from ...convert.origins import TITOK, reported_metric
from ..entry import APACHE_2, ZooEntry

README = "https://github.com/bytedance/1d-tokenizer/blob/main/README_TiTok.md"
NOTES = (
    "A 1-D tokenizer: indices are (B, N) — a sequence of N latent tokens, not a grid — and it takes 256x256 images "
    "only (its position embeddings are fixed).",
    "Upstream works on [0, 1] pixels; the converted tokenizer takes and returns [-1, 1] like every vistok tokenizer "
    "(net option pixel_range 'unit') and does not clamp its output (upstream's demo clamps to [0, 1]).",
    "bytedance/1d-tokenizer's README: the models were trained on ImageNet only and are for research purposes.",
)
# README_TiTok.md, "Model Zoo": FID (reconstruction) on ImageNet 256x256.
RELEASES = (("bl64", "B", 64, 2.06), ("bl128", "B", 128, 1.49), ("sl256", "S", 256, 1.03))


def _entry(variant: str, encoder: str, tokens: int, rfid: float) -> ZooEntry:
    return ZooEntry(
        name=f"titok-{variant}-vq8k-imagenet256",
        description=f"TiTok-{encoder}L-{tokens} VQ, 256px → 1-D sequence of {tokens} tokens, codebook 8192 x 64",
        origin=TITOK,
        license=APACHE_2,
        converter="titok",
        image_size=256,
        repo_id=f"yucornetto/tokenizer_titok_{variant}_vq8k_imagenet",
        filenames=("model.safetensors",),
        companion_files=("config.json",),
        preset=f"titok-{variant}-vq8k-imagenet256",
        reported_metrics=(
            reported_metric("rfid", rfid, "TiTok README (README_TiTok.md, Model Zoo)", README),
        ),
        notes=NOTES,
    )


ENTRIES = tuple(_entry(*release) for release in RELEASES)

"""MaskGIT's VQGAN (Chang et al., CVPR 2022) in the PyTorch port the TiTok authors published:
``maskgit-vqgan-imagenet-f16-256.bin`` in the Hub repo ``fun-research/TiTok`` (the link and ``hf_hub_download`` call
of bytedance/1d-tokenizer's README_TiTok.md and README_RAR.md). A plain state dict, converted by
:mod:`vistok.convert.maskgit`.

Licence: the Hub repo's model card says apache-2.0 and 1d-tokenizer's code files carry Apache 2.0 headers; its
README adds that the models were trained on ImageNet only and are for research purposes. The reported rFID is
MaskGIT's own, for the JAX tokenizer this file was converted from.
"""

from __future__ import annotations

from ...convert.maskgit import RELEASE_FILE, RELEASE_REPORTED
from ...convert.origins import MASKGIT
from ..entry import APACHE_2, ZooEntry

ENTRIES = (
    ZooEntry(
        name="maskgit-vqgan-imagenet256-f16",
        description="MaskGIT VQGAN (TiTok's PyTorch port), 256px → 16x16 tokens, codebook 1024 x 256",
        origin=MASKGIT,
        license=APACHE_2,
        converter="maskgit",
        image_size=256,
        repo_id="fun-research/TiTok",
        filenames=(RELEASE_FILE,),
        preset="maskgit-vqgan-imagenet256-f16",
        reported_metrics=RELEASE_REPORTED,
        notes=(
            "Upstream works on [0, 1] pixels; the converted tokenizer takes and returns [-1, 1] like every vistok "
            "tokenizer (net option pixel_range 'unit'), and does not clamp its output (upstream's decode clamps).",
            "A PyTorch conversion, by the TiTok authors, of MaskGIT's JAX tokenizer; TiTok uses it for its proxy codes "
            "and as its two-stage pixel decoder. The reported rFID is MaskGIT's, for the JAX original.",
            "bytedance/1d-tokenizer's README: the models were trained on ImageNet only and are for research purposes.",
        ),
    ),
)

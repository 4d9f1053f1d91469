"""VAR's multi-scale VQVAE (Tian et al., NeurIPS 2024): ``vae_ch160v4096z32.pth`` in the Hub repo
``FoundationVision/var`` (the file VAR's README says to download first, next to the transformers ``var_d*.pth``). A
plain state dict without a config, converted by :mod:`vistok.convert.var`; the scale schedule, which the file does
not carry, is the one VAR's models use (``patch_nums`` 1, 2, 3, 4, 5, 6, 8, 10, 13, 16: 680 tokens).

Licence: MIT (the repository's LICENSE; its README: "This project is licensed under the MIT License"). VAR's README
reports FIDs of its generators only, no reconstruction numbers for this tokenizer, so the entry carries none.
"""

from __future__ import annotations

from ...convert.origins import VAR
from ...convert.var import HUB_REPO, RELEASE_FILE
from ...presets import VAR_PATCH_NUMS
from ..entry import MIT, ZooEntry

ENTRIES = (
    ZooEntry(
        name="var-vqvae-imagenet256-f16",
        description="VAR multi-scale VQVAE, 256px → 10 token maps 1x1 … 16x16 (680 tokens), codebook 4096 x 32",
        origin=VAR,
        license=MIT,
        converter="var",
        image_size=256,
        repo_id=HUB_REPO,
        filenames=(RELEASE_FILE,),
        converter_options={"patch_nums": list(VAR_PATCH_NUMS)},
        preset="var-vqvae-imagenet256-f16",
        notes=(
            "Indices are a list of 10 token maps, (B, 1, 1) … (B, 16, 16), coarse to fine; the image is decoded from "
            "all of them together (decode_progressive gives the image after each scale).",
            "The file carries no config: the scale schedule is VAR's (1, 2, 3, 4, 5, 6, 8, 10, 13, 16).",
            "Images in [-1, 1] as upstream; upstream clamps decoded images to [-1, 1], vistok does not.",
        ),
    ),
)

"""Taming-Transformers VQGAN checkpoints (Lightning ``.ckpt``: f16-1024, f16-16384, f8, …) → vistok.

The family record (origin, presets, the ImageNet f16 releases, zoo entries) and the converter. The state-dict
renaming is :mod:`vistok.convert.taming_layout`, shared with the other families built on Taming's networks.

Taming's quantizer is a plain nearest-neighbour VQ (vistok ``vq`` with ``l2_norm=False``). Its loss puts β on the
codebook term — ``||sg(z_q) − z||² + β·||z_q − sg(z)||²``, β = 0.25, the "legacy" form diffusers also keeps — so the
converted quantizer uses ``commitment_weight=1.0, codebook_weight=0.25`` and its loss equals Taming's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..convert.containers import select_state_dict
from ..convert.origins import Origin, Release, reported_metric
from ..convert.safe_load import load_checkpoint
from ..convert.taming_layout import convert_state_dict
from ..convert.vqgan_layout import build_tokenizer, infer_vqgan_config
from ..preprocessing import Preprocessing
from .base import conversion_metadata, register_family
from .records import MIT, ZooEntry, albumentations_smallest_max_size, imagenet_vqgan_preset

TAMING = Origin(
    name="Taming Transformers",
    url="https://github.com/CompVis/taming-transformers",
    license="mit",
    paper_title="Taming Transformers for High-Resolution Image Synthesis",
    paper_authors="Patrick Esser, Robin Rombach, Björn Ommer",
    paper_venue="CVPR 2021",
    paper_url="https://arxiv.org/abs/2012.09841",
    citation="""@inproceedings{esser2021taming,
  title={Taming Transformers for High-Resolution Image Synthesis},
  author={Esser, Patrick and Rombach, Robin and Ommer, Bj{\\"o}rn},
  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages={12873--12883},
  year={2021}
}""",
)
PAPER = "Esser et al., Taming Transformers for High-Resolution Image Synthesis (CVPR 2021)"

# Taming's VectorQuantizer2 (legacy=True, the form its released VQGANs were trained with) computes
# ||sg(z_q) − z||² + β·||z_q − sg(z)||² with β = 0.25: β weighs the codebook term, the commitment term has weight 1.
# The presets, their training recipe and the converter all read these weights from here.
TAMING_BETA = 0.25
TAMING_QUANTIZER_LOSS = {"commitment_weight": 1.0, "codebook_weight": TAMING_BETA}

WEIGHT_ENTRIES = ("state_dict", "model")
DEFAULT_IMAGE_SIZE = 256
TAMING_QUANTIZER = {"l2_norm": False, **TAMING_QUANTIZER_LOSS}
# EMAVQ builds EMAVectorQuantizer(beta=0.25) with the default decay and ε; its loss is β·||sg(z_q) − z||² only (the
# codebook follows the EMA), which is vistok's EMA vq with commitment_weight β.
TAMING_EMA_BETA = 0.25
TAMING_EMA_DECAY = 0.99
TAMING_EMA_EPSILON = 1e-5
TAMING_EMA_QUANTIZER = {
    "l2_norm": False,
    "commitment_weight": TAMING_EMA_BETA,
    "ema_decay": TAMING_EMA_DECAY,
    "ema_epsilon": TAMING_EMA_EPSILON,
}

# The ImageNet f16 VQGANs of Taming's README: (codebook size, reported rFID and where, download page).
IMAGENET_F16 = {
    1024: (7.94, "Taming paper", TAMING.paper_url, "https://heibox.uni-heidelberg.de/d/8088892a516d4e3baf92/"),
    16384: (4.98, "Taming README", TAMING.url, "https://heibox.uni-heidelberg.de/d/a7530b09fed84f80a887/"),
}

PRESETS = tuple(
    imagenet_vqgan_preset(
        f"vqgan-taming-f16-{size}",
        f"Taming VQGAN f16, 256px → 16x16 tokens, codebook {size} x 256",
        [1, 1, 2, 2, 4],
        {"type": "vq", "codebook_size": size, "codebook_dim": 256, "l2_norm": False, **TAMING_QUANTIZER_LOSS},
        PAPER,
        "vqgan-taming.yaml",
    )
    for size in IMAGENET_F16
)
RELEASES = tuple(
    Release(
        TAMING,
        f"VQGAN ImageNet f16-{size}",
        (f"vqgan_imagenet_f16_{size} last.ckpt",),
        (1, 1, 2, 2, 4),
        (size, 256),
        (reported_metric("rfid", rfid, source, url, protocol="unknown",
                        protocol_note="the source gives the number without its evaluation code or conventions"),),
    )
    for size, (rfid, source, url, _) in IMAGENET_F16.items()
)


def _entry(size: int, release: Release) -> ZooEntry:
    # The original PyTorch files are not on the Hub (the Hub copies are Flax ports or models fine-tuned on other
    # data): the entries say where the originals are and how to convert them.
    name = f"vqgan-taming-f16-{size}"
    return ZooEntry(
        name=name,
        description=f"Taming VQGAN ImageNet f16, 256px → 16x16 tokens, codebook {size} x 256",
        origin=TAMING,
        license=MIT,
        converter="taming",
        image_size=256,
        manual_download=(
            f"The original checkpoint is not on the Hugging Face Hub. Download ckpts/last.ckpt from "
            f"{IMAGENET_F16[size][3]} (Taming Transformers' README, 'VQGAN ImageNet (f=16), {size}'), then run "
            f"`vistok convert taming last.ckpt {name}` and load the folder with "
            f"VisTokenizer.from_pretrained('{name}')."
        ),
        preset=name,
        reported_metrics=release.reported_metrics,
    )


ENTRIES = tuple(_entry(size, release) for size, release in zip(IMAGENET_F16, RELEASES, strict=True))


def _preprocessing(size: int) -> Preprocessing:
    return albumentations_smallest_max_size(
        size, follows="taming-transformers taming/data/base.py ImagePaths (albumentations SmallestMaxSize + "
        "CenterCrop; ImageNetValidation)"
    )


@register_family(
    "taming",
    origin=TAMING,
    summary="Taming Transformers VQGAN: Lightning .ckpt (f16-1024, f16-16384, f8, EMAVQ) or a bare state dict",
    weights_help="auto (= state_dict), state_dict or model",
    presets=PRESETS,
    releases=RELEASES,
    entries=ENTRIES,
    preprocessing=_preprocessing,
)
def convert_taming(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert a Taming VQGAN checkpoint (Lightning ``.ckpt`` or a bare state dict) into a
    :class:`~vistok.VisTokenizer` (eval mode).

    Args:
        checkpoint: path to the ``.ckpt`` / ``.pt`` file (or a ``.safetensors`` state dict).
        weights: ``"auto"`` (``state_dict``) or the name of the entry holding the weights.
        image_size: native resolution recorded in the config (default 256, Taming's ImageNet models).
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).
    """
    loaded = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    state_dict, which = select_state_dict(loaded, WEIGHT_ENTRIES, weights)
    state_dict, dropped, notes = convert_state_dict(state_dict)
    inferred = infer_vqgan_config(state_dict)
    quantizer = dict(TAMING_QUANTIZER)
    if "quantizer.ema_cluster_size" in state_dict:
        quantizer = dict(TAMING_EMA_QUANTIZER)
        notes.append(
            f"Taming EMA quantizer (EMAVQ): its EMA statistics were kept, with ema_decay={TAMING_EMA_DECAY} and "
            f"ema_epsilon={TAMING_EMA_EPSILON} assumed (EMAVectorQuantizer's defaults; the checkpoint does not "
            "store them); in eval mode it is a plain nearest-code VQ"
        )
    extra: dict[str, Any] = (
        {"dropped_entries": sorted({k.split(".")[0] + ".*" for k in dropped})} if dropped else {}
    )
    if isinstance(loaded, dict):
        for name in ("global_step", "epoch"):
            if isinstance(loaded.get(name), int):
                extra[f"training_{name}"] = loaded[name]
    metadata = conversion_metadata(TAMING, "taming", inferred, checkpoint, which, extra, notes)
    source = (
        f"converted from {TAMING.name} {metadata['origin'].get('release', 'VQGAN')} ({Path(checkpoint).name})"
    )
    return build_tokenizer(state_dict, quantizer, image_size or DEFAULT_IMAGE_SIZE, metadata, source)

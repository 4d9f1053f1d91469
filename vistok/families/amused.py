"""aMUSEd's VQ-GAN (``amused/amused-256``, ``amused/amused-512``, subfolder ``vqvae``) → vistok.

The release is a diffusers ``VQModel`` folder: ``vqvae/config.json`` + ``vqvae/diffusion_pytorch_model.safetensors``
(fp16 variants beside them). Its config is the one diffusers' ``scripts/convert_amused.py`` wrote: five levels of
128·[1, 2, 2, 4, 6] channels (f16), two residual blocks per level, no attention anywhere — not even between the
mid residual blocks (``mid_block_add_attention=False``) — z 64 quantized by a plain Euclidean 8192 × 64 codebook
(``lookup_from_codebook=True``: the pipelines decode token ids directly).

The file is read without diffusers: ``config.json`` is parsed as data and the weights are read tensor by tensor;
the key mapping and the config translation are :mod:`vistok.diffusers_interop`'s
(:func:`~vistok.diffusers_interop.vq_model_config_and_weights`), the same ones ``VisTokenizer.from_diffusers``
uses, so both give the same tokenizer.

Pixel range: the aMUSEd pipelines feed the VQ-GAN [0, 1] images (``VaeImageProcessor(do_normalize=False)``) and
clip its output to [0, 1]. The converted net has ``pixel_range="unit"``, so the tokenizer takes and returns
[−1, 1] like every vistok tokenizer: ``encode(2x − 1)`` gives upstream's indices for the [0, 1] image ``x`` and
``(decode(indices) + 1) / 2`` is upstream's unclipped ``decode(...).sample``.
"""

from __future__ import annotations

import os

from ..convert.diffusers_layout import (
    WEIGHT_FILES,
    diffusers_vq_loss,
    read_vq_model_folder,
    vq_model_config_and_weights,
)
from ..convert.origins import Origin
from ..convert.safe_load import CheckpointError
from ..preprocessing import Preprocessing
from ..registry import Preset
from ._diffusers_vq import vq_model_tokenizer
from .base import register_family
from .records import License, ZooEntry

AMUSED = Origin(
    name="aMUSEd",
    url="https://github.com/huggingface/diffusers/tree/main/examples/amused",
    license="apache-2.0",
    paper_title="aMUSEd: An Open MUSE Reproduction",
    paper_authors="Suraj Patil, William Berman, Robin Rombach, Patrick von Platen",
    paper_venue="arXiv:2401.01808 (2024)",
    paper_url="https://arxiv.org/abs/2401.01808",
    citation="""@article{patil2024amused,
  title={aMUSEd: An Open MUSE Reproduction},
  author={Patil, Suraj and Berman, William and Rombach, Robin and von Platen, Patrick},
  journal={arXiv preprint arXiv:2401.01808},
  year={2024}
}""",
)
# The Hub repos' model cards carry the licence tag openrail++ (CreativeML Open RAIL++-M): open weights with
# use-based restrictions, so not permissive in vistok's sense.
OPENRAIL_PP = License(
    "openrail++",
    "CreativeML Open RAIL++-M",
    "https://huggingface.co/amused/amused-256",
    permissive=False,
)

SUBFOLDER = "vqvae"
CONFIG_FILE = "config.json"
DEFAULT_IMAGE_SIZE = 256
PIXEL_RANGE = "unit"

# make_vqvae() of diffusers' scripts/convert_amused.py, the script that wrote both Hub folders.
RELEASE_NET = {
    "type": "vqgan",
    "base_channels": 128,
    "channel_multiplier": [1, 2, 2, 4, 6],
    "num_res_blocks": 2,
    "latent_channels": 64,
    "attention_levels": [],
    "norm_groups": 32,
    "norm_eps": 1e-6,
    "mid_attention": False,
    "pixel_range": PIXEL_RANGE,
}
RELEASE_CODEBOOK = (8192, 64)
PRESET = Preset(
    name="vqgan-amused-f16",
    description="aMUSEd VQ-GAN (no attention, [0, 1] pixels), 256px → 16x16 tokens, codebook 8192 x 64",
    config={
        "image_size": 256,
        "net": RELEASE_NET,
        "quantizer": {
            "type": "vq",
            "codebook_size": RELEASE_CODEBOOK[0],
            "codebook_dim": RELEASE_CODEBOOK[1],
            **diffusers_vq_loss(),  # diffusers' VectorQuantizer(beta=0.25, legacy=True)
        },
    },
    source="Patil et al., aMUSEd: An Open MUSE Reproduction (arXiv:2401.01808); the VQModel of diffusers' "
    "scripts/convert_amused.py",
)


def _entry(size: int) -> ZooEntry:
    tokens = size // 16
    return ZooEntry(
        name=f"vqgan-amused-{size}",
        description=f"aMUSEd-{size}'s VQ-GAN, {size}px → {tokens}x{tokens} tokens, codebook 8192 x 64",
        origin=AMUSED,
        license=OPENRAIL_PP,
        converter="amused",
        image_size=size,
        repo_id=f"amused/amused-{size}",
        filenames=tuple(f"{SUBFOLDER}/{name}" for name in WEIGHT_FILES),
        companion_files=(f"{SUBFOLDER}/{CONFIG_FILE}",),
        preset=PRESET.name,
        notes=(
            f"The image tokenizer of aMUSEd-{size} (its U-ViT predicts these codebook indices; there is no "
            "language-model vocabulary to map them into). Only the pipeline's vqvae/ subfolder is downloaded.",
            "Upstream works on [0, 1] pixels (the aMUSEd pipelines never map images to [-1, 1]); the converted "
            "tokenizer takes and returns [-1, 1] like every vistok tokenizer (net option pixel_range 'unit') and "
            "does not clip its output (the pipelines clip to [0, 1]).",
            "Weights licence: the Hub repo's openrail++ tag (CreativeML Open RAIL++-M, use-based restrictions).",
        ),
    )


ENTRIES = (_entry(256), _entry(512))


def _preprocessing(size: int) -> Preprocessing:
    # train_amused.py takes a RandomCrop of the resized image: its deterministic counterpart is torchvision's centre crop
    return Preprocessing(
        size,
        filter="bilinear",
        size_rule="truncate",
        crop_offset="round",
        follows="diffusers examples/amused/train_amused.py process_image (torchvision Resize, bilinear; its random "
        "crop taken at the centre; ToTensor's [0, 1])",
    )


@register_family(
    "amused",
    origin=AMUSED,
    summary="aMUSEd VQ-GAN: a diffusers VQModel folder (vqvae/config.json + diffusion_pytorch_model.safetensors), "
    "read without diffusers, [0, 1] pixels",
    weights_help="auto only (the folder holds one set of weights)",
    presets=(PRESET,),
    entries=ENTRIES,
    preprocessing=_preprocessing,
)
def convert_amused(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert aMUSEd's VQ-GAN (a diffusers ``VQModel`` folder) into a :class:`~vistok.VisTokenizer` (eval mode,
    float32) that takes and returns [−1, 1] images.

    Args:
        checkpoint: the ``vqvae`` folder, the pipeline folder holding it, or its
            ``diffusion_pytorch_model[.fp16].safetensors`` (``config.json`` beside it).
        weights: ``"auto"`` only.
        image_size: native resolution recorded in the config (default 256; aMUSEd-512 uses the same VQ-GAN at 512).
        trust_checkpoint: allow arbitrary unpickling of a ``.bin`` (only for files from a trusted source).

    Raises :class:`CheckpointError` for a folder that is not a diffusers VQModel or one vistok's ``vqgan`` cannot
    express (naming why), and ``ValueError`` for another ``weights`` value.
    """
    if weights != "auto":
        raise ValueError(f"weights={weights!r}: an aMUSEd VQ-GAN folder holds one set of weights; use 'auto'")
    config_file, weight_file, diffusers_config, state_dict = read_vq_model_folder(checkpoint, SUBFOLDER, trust_checkpoint)
    if diffusers_config.get("norm_type") == "spatial":
        raise CheckpointError(
            f"{config_file} describes a MoVQ (norm_type='spatial', Kandinsky's VQModel), not aMUSEd's VQ-GAN: convert "
            "it with `vistok convert kandinsky`"
        )
    size = image_size or DEFAULT_IMAGE_SIZE
    try:
        config, converted = vq_model_config_and_weights(
            diffusers_config, state_dict, image_size=size, pixel_range=PIXEL_RANGE
        )
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    notes = [
        "pixel range: upstream works on [0, 1] images; the net's pixel_range='unit' maps vistok's [-1, 1] input to "
        "[0, 1] and the decoder's output back, so (reconstruction + 1) / 2 is upstream's decoder output",
        "the aMUSEd pipelines clip the decoder output to [0, 1]; vistok returns it unclipped",
    ]
    return vq_model_tokenizer(AMUSED, "amused", "VQ-GAN", config_file, weight_file, config, converted, notes)

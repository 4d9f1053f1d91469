"""Kandinsky 2.2's MoVQ (``kandinsky-community/kandinsky-2-2-decoder``, subfolder ``movq``) → vistok.

The release is a diffusers ``VQModel`` folder with ``norm_type="spatial"``: a Taming-style VQGAN (f8: 128·[1, 2, 2, 4],
two residual blocks per level, attention in the deepest level and the mid) quantizing a 4-channel latent with a
plain Euclidean 16384 × 4 codebook, whose decoder normalisation is conditioned on the codes (MoVQ's spatial norm).
It becomes vistok's ``movq`` net (:mod:`vistok.nets.movq`). The folder is read as data (no diffusers import), through
the same mapping as ``VisTokenizer.from_diffusers`` (:mod:`vistok.convert.diffusers_layout`).

Tokens vs. the pipelines: the Kandinsky 2.2 pipelines never quantize — they decode the diffusion model's continuous
latents (``decode(latents, force_not_quantize=True)``), which is vistok's ``decode_quantized(latents)``. As a
tokenizer, ``encode`` gives the nearest codes (diffusers' ``quantize``) and ``decode(indices)`` decodes the codebook
rows, the spatial norms conditioned on them.
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
from .records import APACHE_2, ZooEntry

KANDINSKY = Origin(
    name="Kandinsky",
    url="https://github.com/ai-forever/Kandinsky-2",
    license="apache-2.0",
    paper_title="Kandinsky: an Improved Text-to-Image Synthesis with Image Prior and Latent Diffusion",
    paper_authors="Anton Razzhigaev, Arseniy Shakhmatov, Anastasia Maltseva, Vladimir Arkhipkin, Igor Pavlov, "
    "Ilya Ryabov, Angelina Kuts, Alexander Panchenko, Andrey Kuznetsov, Denis Dimitrov",
    paper_venue="EMNLP 2023 (System Demonstrations)",
    paper_url="https://arxiv.org/abs/2310.03502",
    citation="""@article{razzhigaev2023kandinsky,
  title={Kandinsky: an Improved Text-to-Image Synthesis with Image Prior and Latent Diffusion},
  author={Razzhigaev, Anton and Shakhmatov, Arseniy and Maltseva, Anastasia and Arkhipkin, Vladimir and Pavlov, Igor and Ryabov, Ilya and Kuts, Angelina and Panchenko, Alexander and Kuznetsov, Andrey and Dimitrov, Denis},
  journal={arXiv preprint arXiv:2310.03502},
  year={2023}
}""",
)
MOVQ_PAPER = "Zheng et al., MoVQ: Modulating Quantized Vectors for High-Fidelity Image Generation (NeurIPS 2022)"

REPO = "kandinsky-community/kandinsky-2-2-decoder"
SUBFOLDER = "movq"
DEFAULT_IMAGE_SIZE = 512

# The movq/config.json of the Hub folder (as diffusers' examples/vqgan README and convert_kandinsky_to_diffusers.py's
# MOVQ_CONFIG give it): block_out_channels [128, 256, 256, 512], attention in the last down / first up block,
# latent 4 = vq_embed_dim, 16384 codes, norm_num_groups 32, norm_type "spatial".
RELEASE_NET = {
    "type": "movq",
    "base_channels": 128,
    "channel_multiplier": [1, 2, 2, 4],
    "num_res_blocks": 2,
    "latent_channels": 4,
    "attention_levels": [3],
    "norm_groups": 32,
    "norm_eps": 1e-6,
    "spatial_norm_groups": 32,
}
RELEASE_CODEBOOK = (16384, 4)
PRESET = Preset(
    name="movq-kandinsky22-f8",
    description="Kandinsky 2.2 MoVQ (spatially conditioned decoder), 512px → 64x64 tokens, codebook 16384 x 4",
    config={
        "image_size": 512,
        "net": RELEASE_NET,
        "quantizer": {
            "type": "vq",
            "codebook_size": RELEASE_CODEBOOK[0],
            "codebook_dim": RELEASE_CODEBOOK[1],
            **diffusers_vq_loss(),  # diffusers' VectorQuantizer(beta=0.25, legacy=True)
        },
    },
    source=f"Razzhigaev et al., Kandinsky (arXiv:2310.03502); {MOVQ_PAPER}; the diffusers VQModel of {REPO}/movq",
)
ENTRY = ZooEntry(
    name="movq-kandinsky22",
    description="Kandinsky 2.2's MoVQ, 512px → 64x64 tokens, codebook 16384 x 4",
    origin=KANDINSKY,
    license=APACHE_2,
    converter="kandinsky",
    image_size=DEFAULT_IMAGE_SIZE,
    repo_id=REPO,
    filenames=tuple(f"{SUBFOLDER}/{name}" for name in WEIGHT_FILES),
    companion_files=(f"{SUBFOLDER}/config.json",),
    preset=PRESET.name,
    notes=(
        "The image autoencoder of Kandinsky 2.2 (its movq/ subfolder; only that is downloaded). MoVQ: every decoder "
        "norm is conditioned on the quantized codes.",
        "The Kandinsky pipelines decode continuous latents without quantizing them: that is "
        "decode_quantized(latents); encode / decode(indices) are the tokenizer's path (diffusers' quantize and "
        "decode of codebook rows).",
    ),
)


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(
        size,
        filter="bicubic",
        framing="resize",
        reducing_gap=1.0,
        follows="diffusers' Kandinsky 2.2 img2img pipelines: VaeImageProcessor(resample='bicubic', reducing_gap=1)"
        ".preprocess(image, height=size, width=size)",
    )


@register_family(
    "kandinsky",
    origin=KANDINSKY,
    summary="Kandinsky 2.x MoVQ: a diffusers VQModel folder with norm_type 'spatial' (movq/config.json + "
    "diffusion_pytorch_model.safetensors), read without diffusers",
    weights_help="auto only (the folder holds one set of weights)",
    presets=(PRESET,),
    entries=(ENTRY,),
    preprocessing=_preprocessing,
)
def convert_kandinsky(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert Kandinsky's MoVQ (a diffusers ``VQModel`` folder, ``norm_type="spatial"``) into a
    :class:`~vistok.VisTokenizer` (eval mode, float32) with the ``movq`` net.

    Args:
        checkpoint: the ``movq`` folder, the pipeline folder holding it, or its
            ``diffusion_pytorch_model[.fp16].safetensors`` (``config.json`` beside it).
        weights: ``"auto"`` only.
        image_size: native resolution recorded in the config (default 512, Kandinsky 2.2's).
        trust_checkpoint: allow arbitrary unpickling of a ``.bin`` (only for files from a trusted source).

    Raises :class:`CheckpointError` for a folder that is not a spatial-norm VQModel or one vistok cannot express.
    """
    if weights != "auto":
        raise ValueError(f"weights={weights!r}: a MoVQ folder holds one set of weights; use 'auto'")
    config_file, weight_file, diffusers_config, state_dict = read_vq_model_folder(
        checkpoint, SUBFOLDER, trust_checkpoint
    )
    if diffusers_config.get("norm_type", "group") != "spatial":
        raise CheckpointError(
            f"{config_file} describes a VQModel with norm_type {diffusers_config.get('norm_type', 'group')!r}, not "
            "MoVQ's 'spatial': load it with VisTokenizer.from_diffusers (or `vistok convert amused` for aMUSEd's)"
        )
    try:
        config, converted = vq_model_config_and_weights(
            diffusers_config, state_dict, image_size=image_size or DEFAULT_IMAGE_SIZE
        )
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    notes = [
        "MoVQ: every decoder norm is GroupNorm(32, eps 1e-6) modulated by 1x1 convs of the codes (diffusers' "
        "SpatialNorm hard-codes the 32 groups); the codes condition the decoder before post_quant_conv",
        "the Kandinsky pipelines decode unquantised latents: decode_quantized(latents)",
    ]
    return vq_model_tokenizer(KANDINSKY, "kandinsky", "MoVQ", config_file, weight_file, config, converted, notes)

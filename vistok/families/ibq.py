"""IBQ tokenizers (SEED-Voken ``ibqgan.IBQ`` Lightning ``.ckpt`` files, e.g. ``imagenet256_16384.ckpt``) → vistok.

The files are Lightning training checkpoints without hyper-parameters (see ``shared/reference/README.md``): the raw
``encoder.*`` / ``decoder.*`` / ``quantize.embedding.weight`` / ``quant_conv.*`` / ``post_quant_conv.*`` weights,
``loss.*`` (LPIPS, discriminator) and ``model_ema.*`` LitEma shadows. Upstream evaluates inside ``ema_scope()``, so
the EMA weights are the released model and the default here (:mod:`.lightning_ema`).

IBQ's encoder and decoder are Taming's, so the keys are renamed with the Taming converter's map
(:func:`vistok.convert.taming_layout.convert_state_dict`) into vistok's ``vqgan`` layout and the architecture is read from
the shapes (:func:`.vqgan_layout.infer_vqgan_config`; the ImageNet configs have 4 residual blocks and attention at
resolution 16, the last level). The quantizer is vistok's ``ibq``: the code is the argmax of the dot product with
the raw codebook (not the nearest code), with IBQ's ImageNet loss options (:data:`IBQ_QUANTIZER_LOSS`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..convert.lightning_ema import lightning_state_dict, select_lightning_weights
from ..convert.origins import SEED_VOKEN_URL, Origin, reported_metric
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..convert.taming_layout import convert_state_dict
from ..convert.vqgan_layout import build_tokenizer, infer_vqgan_config
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import conversion_metadata, register_family
from .records import APACHE_2, ZooEntry, albumentations_smallest_max_size

WHAT = "an IBQ"
DEFAULT_IMAGE_SIZE = 256
TOKENIZER_PREFIXES = ("encoder.", "decoder.", "quantize.", "quant_conv.", "post_quant_conv.")
CODEBOOK = "quantize.embedding.weight"


def is_tokenizer_key(key: str) -> bool:
    return key.startswith(TOKENIZER_PREFIXES)


def refuse_other_layouts(state_dict: dict[str, Any]) -> None:
    """:class:`CheckpointError` saying what the checkpoint is instead, unless it has IBQ's layout (Taming-style
    ``encoder.down.*`` / ``encoder.mid.*`` / ``decoder.up.*`` and a learned ``quantize.embedding.weight``)."""
    keys = list(state_dict)
    if any(k.startswith("quantize.embedding_proj.") for k in keys):
        raise CheckpointError(
            "this looks like a SimVQ checkpoint (quantize.embedding_proj.*), not IBQ: convert it with "
            "`vistok convert simvq`"
        )
    if not any(k.startswith("encoder.down.") for k in keys) or not any(k.startswith("decoder.up.") for k in keys):
        shown = ", ".join(keys[:5])
        raise CheckpointError(
            f"this is not an IBQ checkpoint: its state_dict has no encoder.down.* / decoder.up.* tensors (it starts "
            f"with {shown})"
        )
    if CODEBOOK not in state_dict:
        raise CheckpointError(
            "this is not an IBQ checkpoint: it has no codebook (quantize.embedding.weight). An encoder/decoder "
            "without quantizer tensors and with mid_block.* is Open-MAGVIT2 (LFQ): convert it with "
            "`vistok convert open-magvit2`"
        )


def ibq_to_vistok(state_dict: dict[str, Any], weights: str = "auto") -> tuple[dict[str, Any], str, list[str]]:
    """An IBQ Lightning ``state_dict`` → ``(vistok vqgan-layout state dict, "ema" | "raw", notes)``.

    Keeps the tokenizer tensors (EMA shadows or raw weights, see :func:`.lightning_ema.select_lightning_weights`),
    drops ``loss.*`` and ``model_ema.*``, and renames Taming's module names into vistok's (shapes only: works on
    meta tensors). Raises :class:`CheckpointError` for other layouts and missing EMA shadows.
    """
    refuse_other_layouts(state_dict)
    selected, which = select_lightning_weights(state_dict, is_tokenizer_key, weights, what=WHAT)
    renamed, _, notes = convert_state_dict(selected)
    return renamed, which, notes


IBQ = Origin(
    name="IBQ",
    url=SEED_VOKEN_URL,
    license="apache-2.0",
    paper_title="Taming Scalable Visual Tokenizer for Autoregressive Image Generation",
    paper_authors="Fengyuan Shi, Zhuoyan Luo, Yixiao Ge, Yujiu Yang, Ying Shan, Limin Wang",
    paper_venue="arXiv:2412.02692 (2024)",
    paper_url="https://arxiv.org/abs/2412.02692",
    citation="""@article{shi2024taming,
  title={Taming Scalable Visual Tokenizer for Autoregressive Image Generation},
  author={Shi, Fengyuan and Luo, Zhuoyan and Ge, Yixiao and Yang, Yujiu and Shan, Ying and Wang, Limin},
  journal={arXiv preprint arXiv:2412.02692},
  year={2024}
}""",
)
IBQ_PAPER = "Shi et al., Taming Scalable Visual Tokenizer for Autoregressive Image Generation (IBQ, 2024)"

# SEED-Voken configs/IBQ/gpu/imagenet_ibqgan_*.yaml: IndexPropagationQuantize's quant_loss
# ||q_ib − z||² + ||sg(q) − z||² + β·||q − sg(z)||² with β = 0.25 (weighed by quant_loss_weight 1.0), plus
# entropy_loss_weight (0.05) × (H[softmax(⟨z, e⟩/0.01)] per sample − H[batch mean]), both entropy weights 1.0.
# The presets, their training recipe and the converter all read them from here.
IBQ_QUANTIZER_LOSS = {
    "commitment_weight": 1.0,
    "codebook_weight": 0.25,
    "index_backprop_weight": 1.0,
    "entropy_weight": 0.05,
    "entropy_temperature": 0.01,
    "sample_entropy_weight": 1.0,
    "codebook_entropy_weight": 1.0,
}
IBQ_CODEBOOK_SIZES = (1024, 8192, 16384, 262144)


def _net_and_quantizer(size: int) -> dict[str, Any]:
    """The 256-px IBQ tokenizer of configs/IBQ/gpu/imagenet_ibqgan_{size}.yaml (ch 128, ch_mult 1,1,2,2,4, 4 res
    blocks, attention at 16, z 256, codebook size x 256)."""
    return {
        "image_size": 256,
        "net": {
            "type": "vqgan",
            "base_channels": 128,
            "channel_multiplier": [1, 1, 2, 2, 4],
            "num_res_blocks": 4,
            "latent_channels": 256,
            "attention_levels": [4],  # attn_resolutions [16] at 256 px: the last level
        },
        "quantizer": {"type": "ibq", "codebook_size": size, "codebook_dim": 256, **IBQ_QUANTIZER_LOSS},
    }


def _preset(size: int) -> Preset:
    return Preset(
        name=f"ibqgan-imagenet256-{size}",
        description=f"IBQ f16 (Taming-style VQGAN, index backpropagation), 256px → 16x16 tokens, codebook {size} x 256",
        config=_net_and_quantizer(size),
        source=IBQ_PAPER,
        training="training/configs/imagenet256/ibqgan.yaml",
        tags=("imagenet256",),
    )


# The ImageNet-256 releases: TencentARC/IBQ-Tokenizer-{size}, one Lightning .ckpt each (the links of SEED-Voken's
# docs/IBQ.md), converted with the EMA weights (upstream evaluates under ema_scope()). Codebook size → (rFID, LPIPS,
# codebook utilisation) as docs/IBQ.md's table reports them (ImageNet 256 validation, 16x16 tokens).
DOCS_URL = "https://github.com/TencentARC/SEED-Voken/blob/main/docs/IBQ.md"
DOCS = "SEED-Voken docs/IBQ.md"
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
            reported_metric("rfid", rfid, DOCS, DOCS_URL, protocol="seed-voken"),
            reported_metric("lpips", lpips, DOCS, DOCS_URL, protocol="seed-voken"),
            reported_metric("codebook_usage", usage, DOCS, DOCS_URL, protocol="seed-voken"),
        ),
        notes=(
            "A Lightning training checkpoint (encoder/decoder, loss networks, optimiser state and LitEma shadows); "
            "the converter keeps the EMA weights, which upstream's evaluation uses.",
            "Codes are the argmax of the dot product with the raw codebook (quantizer 'ibq'), not the nearest code.",
        ),
    )


# The text-to-image pretrained releases (docs/IBQ.md, "Text-conditional Image Generation"): TencentARC/IBQ-Tokenizer-
# {size}-Pretrain, file IBQ_pretrain_{size}.ckpt (the table's checkpoint links), trained on about 200M images. Codebook
# size → (rFID, PSNR, SSIM) on ImageNet 256 ("In1k" columns) and on COCO, as that table reports them.
# Architecture: SEED-Voken's configs/IBQ/gpu/pretrain_ibqgan_{size}.yaml (not in the SEED-Voken snapshot available
# here; as third-party code quotes it: ch 128, ch_mult [1, 1, 2, 2, 4], 4 res blocks, attn_resolutions [16], z 256,
# codebook size x 256, beta 0.25) is the ImageNet configs' network, so the presets below are the ImageNet presets'
# architecture under their own names. Not yet checked against the released files' state-dict shapes (no spec of them
# here): the converter still reads the architecture from the file, and loading the entry warns
# (ZooArchitectureWarning) and keeps the file's architecture if it differs from the preset.
PRETRAIN_REPORTED = {16384: (2.06, 22.01, 0.61), 262144: (1.53, 22.69, 0.64)}
PRETRAIN_COCO = {16384: (7.67, 21.58, 0.62), 262144: (6.79, 22.28, 0.65)}


PRETRAIN_CONFIG_NOTE = (
    "SEED-Voken configs/IBQ/gpu/pretrain_ibqgan_{size}.yaml as third-party code quotes it (ch 128, ch_mult "
    "[1, 1, 2, 2, 4], 4 res blocks, attention at 16, z 256, codebook {size} x 256): the ImageNet network; not yet "
    "checked against the released file's state-dict shapes"
)


def _pretrain_preset(size: int) -> Preset:
    return Preset(
        name=f"ibqgan-pretrain256-{size}",
        description=(
            f"IBQ f16 pretrained text-to-image tokenizer architecture (the ImageNet IBQ network), 256px → 16x16 "
            f"tokens, codebook {size} x 256"
        ),
        config=_net_and_quantizer(size),
        source=f"{IBQ_PAPER}; {PRETRAIN_CONFIG_NOTE.format(size=size)}",
        training=None,  # trained on ~200M web images; neither the data mix nor the pretraining recipe is published
        tags=("pretrain256",),
    )


def _pretrain_entry(size: int) -> ZooEntry:
    rfid, psnr, ssim = PRETRAIN_REPORTED[size]
    coco = PRETRAIN_COCO[size]
    return ZooEntry(
        name=f"ibq-pretrain256-{size}",
        description=f"IBQ pretrained text-to-image tokenizer, 256px → 16x16 tokens, codebook {size}",
        origin=IBQ,
        license=APACHE_2,
        converter="ibq",
        image_size=256,
        repo_id=f"TencentARC/IBQ-Tokenizer-{size}-Pretrain",
        filenames=(f"IBQ_pretrain_{size}.ckpt",),
        preset=f"ibqgan-pretrain256-{size}",
        reported_metrics=(
            reported_metric("rfid", rfid, DOCS, DOCS_URL, protocol="seed-voken"),
            reported_metric("psnr", psnr, DOCS, DOCS_URL, protocol="seed-voken"),
            reported_metric("ssim", ssim, DOCS, DOCS_URL, protocol="seed-voken"),
        ),
        notes=(
            "Trained on about 200M web images (CapFusion, LAION-COCO, CC12M, CC3M, LAION-HD, LAION-Aesthetic, "
            "JourneyDB), not ImageNet.",
            f"docs/IBQ.md also reports on COCO: rFID {coco[0]}, PSNR {coco[1]}, SSIM {coco[2]}.",
            f"Preset ibqgan-pretrain256-{size}: the ImageNet IBQ network ({PRETRAIN_CONFIG_NOTE.format(size=size)}). "
            "The converter reads the architecture from the file; loading warns if it differs from the preset. The "
            "quantizer's loss options are those of the ImageNet configs (beta 0.25 as the pretraining config's).",
            "Codes are the argmax of the dot product with the raw codebook (quantizer 'ibq'), not the nearest code.",
            "Converted from the EMA weights (model_ema.*) when the file has them (upstream evaluates under "
            "ema_scope()), else from the raw weights; the converted config records which.",
        ),
    )


def _preprocessing(size: int) -> Preprocessing:
    return albumentations_smallest_max_size(
        size, follows="SEED-Voken src/IBQ/data/base.py ImagePaths (albumentations SmallestMaxSize + CenterCrop)"
    )


@register_family(
    "ibq",
    origin=IBQ,
    summary="IBQ (SEED-Voken ibqgan): Lightning .ckpt",
    weights_help="auto (= the EMA shadows when the file has them, else raw), ema or raw",
    presets=(*(_preset(size) for size in IBQ_CODEBOOK_SIZES), *(_pretrain_preset(size) for size in PRETRAIN_REPORTED)),
    entries=(*(_entry(size) for size in REPORTED), *(_pretrain_entry(size) for size in PRETRAIN_REPORTED)),
    preprocessing=_preprocessing,
)
def convert_ibq(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert an IBQ Lightning checkpoint into a :class:`~vistok.VisTokenizer` (eval mode).

    Args:
        checkpoint: the ``.ckpt`` file (e.g. ``imagenet256_16384.ckpt``).
        weights: ``"auto"`` (the EMA shadows when the file has them, as upstream evaluates; else the raw weights),
            ``"ema"`` or ``"raw"``.
        image_size: native resolution recorded in the config (default 256, the ImageNet releases').
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).

    Raises :class:`CheckpointError` for a file that is not a Lightning checkpoint, a state dict that is not IBQ's
    (naming what it looks like), and ``weights="ema"`` on a file without ``model_ema.*`` shadows.
    """
    loaded = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    state_dict = lightning_state_dict(loaded, WHAT)
    renamed, which, taming_notes = ibq_to_vistok(state_dict, weights)
    inferred = infer_vqgan_config(renamed)

    notes = [
        *taming_notes,
        "IBQ picks each code as the argmax of the dot product with the raw codebook (IndexPropagationQuantize), "
        "not the nearest code: quantizer type 'ibq'",
        "weights: "
        + (
            "the EMA shadows (model_ema.*), which upstream evaluates under ema_scope()"
            if which == "ema"
            else "the raw training weights (no EMA)"
        ),
        "GroupNorm groups: 32 assumed (upstream's; shapes do not tell)",
        "quantizer loss options from configs/IBQ/gpu/imagenet_ibqgan_16384.yaml (beta 0.25 on the codebook term, "
        "entropy_loss_weight 0.05, entropy temperature 0.01, sample/batch entropy weights 1.0)",
    ]
    size = image_size or DEFAULT_IMAGE_SIZE
    if image_size is None:
        notes.append(f"image_size {size} assumed (IBQ's ImageNet releases; pass image_size to change)")
    extra: dict[str, Any] = {
        "dropped_entries": sorted({key.split(".")[0] + ".*" for key in state_dict if not is_tokenizer_key(key)})
    }
    for key in ("global_step", "epoch"):
        if isinstance(loaded.get(key), int):
            extra[f"training_{key}"] = loaded[key]
    metadata = conversion_metadata(IBQ, "ibq", inferred, checkpoint, which, extra, notes)
    quantizer = {"type": "ibq", **IBQ_QUANTIZER_LOSS}
    source = f"converted from IBQ ({Path(checkpoint).name})"
    return build_tokenizer(renamed, quantizer, size, metadata, source)

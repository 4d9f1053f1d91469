"""Open-MAGVIT2 tokenizers (SEED-Voken ``lfqgan.VQModel`` Lightning ``.ckpt`` files) → vistok.

The files are Lightning training checkpoints without hyper-parameters (see ``shared/reference/README.md``): the
raw ``encoder.*`` / ``decoder.*`` weights, ``loss.*`` (LPIPS, discriminator) and ``model_ema.*`` LitEma shadows.
Upstream evaluates inside ``ema_scope()``, so the EMA weights are the released model and the default here
(:mod:`.lightning_ema`). LFQ has no tensors, so the whole tokenizer is the improved-model encoder / decoder,
whose module names are vistok's ``magvit2`` net's: the keys map unchanged and the architecture is inferred from
the shapes (:mod:`.magvit2_layout`), the codebook being 2^(latent channels).

Open-MAGVIT2's LFQ numbers bits from channel 0 = least significant (index = Σ_c bit_c·2^c), vistok's default is
channel 0 = most significant; the converted quantizer says ``bit_order: "lsb_first"``, so a converted model
gives upstream's indices with upstream's weights and latent channel order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..convert.lightning_ema import lightning_state_dict, select_lightning_weights
from ..convert.magvit2_layout import infer_magvit2_net, load_converted
from ..convert.origins import IMAGENET_128, SEED_VOKEN_URL, Origin, reported_metric
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import conversion_metadata, register_family
from .records import APACHE_2, ZooEntry

WHAT = "an Open-MAGVIT2"
DEFAULT_IMAGE_SIZE = 256
TOKENIZER_PREFIXES = ("encoder.", "decoder.")
DOCS_URL = "https://github.com/TencentARC/SEED-Voken/blob/main/docs/Open-MAGVIT2.md"


def _reported(metric: str, value: float, **extra: Any) -> dict[str, Any]:
    return reported_metric(metric, value, "SEED-Voken docs/Open-MAGVIT2.md", DOCS_URL, protocol="seed-voken", **extra)


# Released files: native resolution and the numbers their authors report (ImageNet val, 16x16 tokens).
RELEASE_FILES: dict[str, dict[str, Any]] = {
    "imagenet_256_L.ckpt": {
        "image_size": 256,
        "reported_metrics": (
            _reported("rfid", 1.17),
            _reported("psnr", 21.90),
            _reported("codebook_usage", 1.0),
        ),
    },
    "imagenet_128_L.ckpt": {
        "image_size": 128,
        "reported_metrics": (
            _reported("rfid", 1.18, dataset=IMAGENET_128),
            _reported("psnr", 25.08, dataset=IMAGENET_128),
            _reported("codebook_usage", 1.0, dataset=IMAGENET_128),
        ),
    },
    "pretrain256_16384.ckpt": {"image_size": 256, "reported_metrics": ()},
    "pretrain256_262144.ckpt": {"image_size": 256, "reported_metrics": ()},
}


def refuse_other_layouts(state_dict: dict[str, Any]) -> None:
    """:class:`CheckpointError` saying what the checkpoint is instead, unless it has the Open-MAGVIT2 layout
    (improved-model ``encoder.*`` / ``decoder.*`` and no quantizer tensors: LFQ has none)."""
    keys = list(state_dict)
    if any(k.startswith("quantize.embedding_proj.") for k in keys):
        raise CheckpointError(
            "this looks like a SimVQ checkpoint (quantize.embedding_proj.*), not Open-MAGVIT2: convert it with "
            "`vistok convert simvq`"
        )
    quantizer = [k for k in keys if k.startswith(("quantize.", "quant_conv.", "post_quant_conv."))]
    if quantizer:
        raise CheckpointError(
            f"this is not an Open-MAGVIT2 checkpoint: it holds quantizer tensors ({', '.join(quantizer[:3])}), "
            "while Open-MAGVIT2's LFQ has none and no quant_conv. A learned codebook with quant_conv and a "
            "Taming-style encoder (encoder.mid.block_1) is an IBQ or Taming VQGAN checkpoint; convert it with "
            "their converter"
        )
    if not any(k.startswith("encoder.down.") for k in keys) or not any(
        k.startswith("decoder.up.") for k in keys
    ):
        shown = ", ".join(k for k in keys[:5])
        raise CheckpointError(
            f"this is not an Open-MAGVIT2 checkpoint: its state_dict has no encoder.down.* / decoder.up.* tensors "
            f"(it starts with {shown})"
        )
    if any(k.startswith(("encoder.mid.", "decoder.mid.")) for k in keys):
        raise CheckpointError(
            "this is not an Open-MAGVIT2 checkpoint: it has Taming-style encoder.mid.* / decoder.mid.* blocks "
            "(an IBQ or Taming VQGAN), while the improved model has mid_block.*"
        )


def is_tokenizer_key(key: str) -> bool:
    return key.startswith(TOKENIZER_PREFIXES)


OPEN_MAGVIT2 = Origin(
    name="Open-MAGVIT2",
    url=SEED_VOKEN_URL,
    license="apache-2.0",
    paper_title="Open-MAGVIT2: An Open-Source Project Toward Democratizing Auto-regressive Visual Generation",
    paper_authors="Zhuoyan Luo, Fengyuan Shi, Yixiao Ge, Yujiu Yang, Limin Wang, Ying Shan",
    paper_venue="arXiv:2409.04410 (2024)",
    paper_url="https://arxiv.org/abs/2409.04410",
    citation="""@article{luo2024open,
  title={Open-MAGVIT2: An Open-Source Project Toward Democratizing Auto-regressive Visual Generation},
  author={Luo, Zhuoyan and Shi, Fengyuan and Ge, Yixiao and Yang, Yujiu and Wang, Limin and Shan, Ying},
  journal={arXiv preprint arXiv:2409.04410},
  year={2024}
}""",
)
OPEN_MAGVIT2_PAPER = "Luo et al., Open-MAGVIT2: An Open-Source Project Toward Democratizing Auto-regressive Visual Generation (2024)"
# SEED-Voken configs/Open-MAGVIT2/gpu/imagenet_lfqgan_{256,128}_L.yaml: the improved conv net (magvit2) and LFQ 2^18.
# Its loss adds codebook_weight 0.1 × (sample_minimization_weight 1.0 · H[p(c|z)] − batch_maximization_weight 1.0 ·
# H[E p(c|z)]) with p(c|z) = softmax(2⟨z, c⟩ / 0.01), and commit_weight 0.25 · ||z − sg(q)||² (codebook_enlarge_ratio
# 0: no annealing). Its index is Σ_c bit_c · 2^c (channel 0 least significant), which bit_order states. The presets,
# the training recipe and the converter all read these options from here.
OPEN_MAGVIT2_LFQ_OPTIONS = {
    "commitment_weight": 0.25,
    "entropy_weight": 0.1,
    "diversity_weight": 1.0,
    "entropy_temperature": 0.01,
    "bit_order": "lsb_first",
}


def _net_and_quantizer(resolution: int, mult: list[int], bits: int = 18) -> dict[str, Any]:
    """The "L" tokenizer of SEED-Voken's configs (ch 128, 4 res blocks, z = bits, LFQ 2^bits)."""
    return {
        "image_size": resolution,
        "net": {
            "type": "magvit2",
            "base_channels": 128,
            "channel_multiplier": mult,
            "num_res_blocks": 4,
            "latent_channels": bits,
        },
        "quantizer": {"type": "lfq", "codebook_dim": bits, **OPEN_MAGVIT2_LFQ_OPTIONS},
    }


def _preset(resolution: int, mult: list[int]) -> Preset:
    return Preset(
        name=f"lfqgan-magvit2-imagenet{resolution}-L",
        description=f"Open-MAGVIT2 {resolution}_L (MAGVIT-v2 conv net, LFQ 2^18), {resolution}px → 16x16 tokens",
        config=_net_and_quantizer(resolution, mult),
        source=f"{OPEN_MAGVIT2_PAPER}; SEED-Voken configs/Open-MAGVIT2/gpu/imagenet_lfqgan_{resolution}_L.yaml",
        training="training/configs/imagenet256/lfqgan-magvit2.yaml" if resolution == 256 else None,
        tags=(f"imagenet{resolution}",),
    )


# The zoo: the ImageNet 256 / 128 "L" models and the two pretrained (LAION-COCO, CC12M, … 100M images) text-to-image
# tokenizers; repo ids and file names are those of the checkpoint links in SEED-Voken's docs/Open-MAGVIT2.md.
BIT_ORDER_NOTE = (
    "Token ids are upstream's: index = sum_c bit_c * 2^c over the 18 latent channels (channel 0 is the least "
    "significant bit; the quantizer says bit_order='lsb_first')."
)
EMA_NOTE = "Converted from the EMA weights (model_ema.*), which upstream's evaluation uses."


def _imagenet_entry(resolution: int) -> ZooEntry:
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


# The pretrained (text-to-image) tokenizers' architecture: SEED-Voken's configs/Open-MAGVIT2/gpu/pretrain_lfqgan_256_
# {16384,262144}.yaml are not in the SEED-Voken snapshot available here. Third-party code quotes pretrain_lfqgan_256_
# 262144.yaml as the 256_L network (ch 128, ch_mult [1, 1, 2, 2, 4], 4 res blocks, z 18) and pretrain_lfqgan_256_16384
# .yaml's commit_weight 0.25; docs/Open-MAGVIT2.md says both are f16 with 2^14 and 2^18 codes. So the presets are the
# 256_L network with z = 14 / 18 bits. Not yet checked against the released files' state-dict shapes (no spec of them
# here): the converter reads the architecture from the file, and loading the entry warns (ZooArchitectureWarning)
# and keeps the file's architecture if it differs from the preset.
PRETRAIN_BITS = {16384: 14, 262144: 18}


def _pretrain_preset(size: int) -> Preset:
    bits = PRETRAIN_BITS[size]
    quoted = ("as third-party code quotes it (ch 128, ch_mult [1, 1, 2, 2, 4], 4 res blocks, z 18)" if bits == 18
              else "the 256_L network with z 14 for its 2^14 codes (f16, docs/Open-MAGVIT2.md; its layout not quoted)")
    return Preset(
        name=f"lfqgan-magvit2-pretrain256-{size}",
        description=(
            f"Open-MAGVIT2 pretrained text-to-image tokenizer architecture (the 256_L conv net, LFQ 2^{bits}), "
            "256px → 16x16 tokens"
        ),
        config=_net_and_quantizer(256, [1, 1, 2, 2, 4], bits),
        source=(
            f"{OPEN_MAGVIT2_PAPER}; SEED-Voken configs/Open-MAGVIT2/gpu/pretrain_lfqgan_256_{size}.yaml {quoted}; not "
            "yet checked against the released file's state-dict shapes"
        ),
        training=None,  # trained on ~100M web images; the data mix is not published
        tags=("pretrain256",),
    )


def _pretrain_entry(size: int, bits: int) -> ZooEntry:
    return ZooEntry(
        name=f"lfqgan-magvit2-pretrain256-{size}",
        description=f"Open-MAGVIT2 pretrained text-to-image tokenizer (LFQ 2^{bits}), 256px → 16x16 tokens",
        origin=OPEN_MAGVIT2,
        license=APACHE_2,
        converter="open-magvit2",
        image_size=256,
        repo_id=f"TencentARC/Open-MAGVIT2-Tokenizer-{size}-Pretrain",
        filenames=(f"pretrain256_{size}.ckpt",),
        preset=f"lfqgan-magvit2-pretrain256-{size}",
        notes=(
            BIT_ORDER_NOTE.replace("18", str(bits)),
            EMA_NOTE,
            "Trained on about 100M web images (LAION-COCO, CC12M, CC3M, LAION-HD, LAION-Aesthetic, JourneyDB), "
            f"not ImageNet. Preset lfqgan-magvit2-pretrain256-{size}: the 256_L network with {bits}-bit LFQ, from the "
            "pretraining config as quoted by third-party code, not yet checked against this file's shapes; the "
            "converter reads the architecture from the file and loading warns if it differs. Its LFQ loss options "
            "are those of the ImageNet configs (commitment 0.25 as the pretraining config's).",
        ),
    )


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(size, filter="bilinear", size_rule="truncate", crop_offset="round",
                         follows="SEED-Voken ImagePaths (torchvision Resize + CenterCrop)")

@register_family(
    "open-magvit2",
    origin=OPEN_MAGVIT2,
    summary="Open-MAGVIT2 (SEED-Voken lfqgan): Lightning .ckpt",
    weights_help="auto (= the EMA shadows when the file has them, else raw), ema or raw",
    presets=(_preset(256, [1, 1, 2, 2, 4]), _preset(128, [1, 2, 2, 4]),
             *(_pretrain_preset(size) for size in PRETRAIN_BITS)),
    entries=(_imagenet_entry(256), _imagenet_entry(128),
             *(_pretrain_entry(size, bits) for size, bits in PRETRAIN_BITS.items())),
    preprocessing=_preprocessing,
)
def convert_open_magvit2(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert an Open-MAGVIT2 Lightning checkpoint into a :class:`~vistok.VisTokenizer` (eval mode).

    Args:
        checkpoint: the ``.ckpt`` file (e.g. ``imagenet_256_L.ckpt``).
        weights: ``"auto"`` (the EMA shadows when the file has them, as upstream evaluates; else the raw
            weights), ``"ema"`` or ``"raw"``.
        image_size: native resolution recorded in the config; default the release's (128 for
            ``imagenet_128_L.ckpt``), else 256.
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).

    The net is ``magvit2`` with the shapes' architecture, the quantizer ``lfq`` with ``codebook_dim`` = latent
    channels, ``bit_order="lsb_first"`` (upstream's index convention) and Open-MAGVIT2's LFQ loss options
    (:data:`OPEN_MAGVIT2_LFQ_OPTIONS`, from ``imagenet_lfqgan_256_L.yaml``).
    Raises :class:`CheckpointError` for files that are not Open-MAGVIT2 Lightning checkpoints (naming what they
    look like) and when EMA weights are asked for but missing.
    """
    loaded = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    state_dict = lightning_state_dict(loaded, WHAT)
    refuse_other_layouts(state_dict)
    selected, which = select_lightning_weights(state_dict, is_tokenizer_key, weights, what=WHAT)
    inferred = infer_magvit2_net(selected)
    net = inferred["net"]
    if not net["adaptive_norm"]:
        raise CheckpointError(
            "this checkpoint's decoder has no adaptive group norms (decoder.adaptive.*), which every Open-MAGVIT2 "
            "decoder has; without quantizer tensors it is neither Open-MAGVIT2 nor SimVQ"
        )
    del net["adaptive_norm"]  # the magvit2 default
    bits = net["latent_channels"]
    quantizer = {"type": "lfq", "codebook_dim": bits, **OPEN_MAGVIT2_LFQ_OPTIONS}

    name = Path(checkpoint).name
    release = RELEASE_FILES.get(name)
    notes = [
        "LFQ bit order: upstream's index is sum_c bit_c * 2^c (channel 0 = least significant bit); the quantizer "
        "uses bit_order='lsb_first', so indices equal upstream's and the weights are unchanged",
        f"weights: {'the EMA shadows (model_ema.*), which upstream evaluates under ema_scope()' if which == 'ema' else 'the raw training weights (no EMA)'}",
        f"GroupNorm groups: {net['norm_groups']} assumed (upstream's; shapes do not tell)",
        "LFQ loss options from imagenet_lfqgan_256_L.yaml (codebook_weight 0.1 -> entropy_weight, commit_weight "
        "0.25, sample/batch entropy weights 1.0, temperature 0.01)",
    ]
    size = image_size or (release["image_size"] if release else None)
    if size is None:
        size = DEFAULT_IMAGE_SIZE
        notes.append(
            f"image_size {size} assumed (the file name is not a known release; pass image_size to change)"
        )
    extra: dict[str, Any] = {
        "dropped_entries": sorted(
            {key.split(".")[0] + ".*" for key in state_dict} - {"encoder.*", "decoder.*"}
        )
    }
    for key in ("global_step", "epoch"):
        if isinstance(loaded.get(key), int):
            extra[f"training_{key}"] = loaded[key]
    summary = {"net": net, "codebook_size": 2**bits, "codebook_dim": bits}
    metadata = conversion_metadata(OPEN_MAGVIT2, "open-magvit2", summary, checkpoint, which, extra, notes)
    if release and release["reported_metrics"] and net["latent_channels"] == 18:
        metadata["origin"]["release"] = name.removesuffix(".ckpt")
        metadata["reported_metrics"] = [
            {**m, "applies_to": f"Open-MAGVIT2 {name} as released by its authors"}
            for m in release["reported_metrics"]
        ]
    config = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from Open-MAGVIT2 ({name})",
        "metadata": metadata,
    }
    return load_converted(selected, config, "Open-MAGVIT2")

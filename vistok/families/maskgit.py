"""MaskGIT's VQGAN as TiTok's PyTorch port (``maskgit-vqgan-imagenet-f16-256.bin``, Hub repo ``fun-research/TiTok``)
→ vistok.

The file is a plain torch state dict: ``encoder.*``, ``decoder.*`` and ``quantize.embedding.weight``, no config.
The net is vistok's ``maskgit``, whose module names are upstream's, so the encoder / decoder keys are unchanged and
only the codebook is renamed (``quantize.embedding.weight`` → ``quantizer.codebook``). The architecture
(``hidden_channels``, ``channel_mult``, ``num_res_blocks``, ``z_channels``, codebook) is read from the shapes, the
encoder and decoder cross-checked. The quantizer is vistok's ``vq`` with plain Euclidean codes (no l2
normalisation) and upstream's β 0.25.

Pixel range: upstream encodes [0, 1] images and its decoder returns [0, 1] (its ``decode`` then clamps). The
converted net has ``pixel_range="unit"``, so the tokenizer takes and returns [−1, 1] like every vistok tokenizer:
``encode(2x − 1)`` gives upstream's ``encode(x)`` indices and ``(decode(indices) + 1) / 2`` is upstream's unclamped
decoder output; vistok does not clamp.

Upstream's indices are (B, h·w), row-major over the latent grid; vistok's are that grid, (B, h, w):
``indices.reshape(B, -1)`` is upstream's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..convert.containers import describe_layout, is_state_dict
from ..convert.magvit2_layout import load_converted
from ..convert.origins import Origin, reported_metric
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..convert.shapes import check_latent_convs, count_numbered, encoder_levels, tensor_shape
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import conversion_metadata, register_family
from .records import APACHE_2, ZooEntry

# MaskGIT's VQGAN (google-research/maskgit, JAX) as the PyTorch port the TiTok authors released in
# bytedance/1d-tokenizer (modeling/modules/maskgit_vqgan.py, Apache 2.0 file headers) and on the Hub in
# fun-research/TiTok (model card: license apache-2.0). The 1d-tokenizer README adds that its models were trained on
# ImageNet only and are for research purposes.
MASKGIT = Origin(
    name="MaskGIT-VQGAN",
    url="https://github.com/bytedance/1d-tokenizer",
    license="apache-2.0",
    paper_title="MaskGIT: Masked Generative Image Transformer",
    paper_authors="Huiwen Chang, Han Zhang, Lu Jiang, Ce Liu, William T. Freeman",
    paper_venue="CVPR 2022",
    paper_url="https://arxiv.org/abs/2202.04200",
    citation="""@inproceedings{chang2022maskgit,
  title={MaskGIT: Masked Generative Image Transformer},
  author={Chang, Huiwen and Zhang, Han and Jiang, Lu and Liu, Ce and Freeman, William T.},
  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2022}
}""",
)

CODEBOOK = "quantize.embedding.weight"
DEFAULT_IMAGE_SIZE = 256
UPSTREAM_NORM_GROUPS = 32
COMMITMENT_WEIGHT = 0.25  # PretrainedTokenizer's commitment_cost
RELEASE_FILE = "maskgit-vqgan-imagenet-f16-256.bin"
RELEASE_NET = {"base_channels": 128, "channel_multiplier": [1, 1, 2, 2, 4], "num_res_blocks": 2, "latent_channels": 256}
RELEASE_CODEBOOK = (1024, 256)
RELEASE_NAME = "VQGAN ImageNet 256 f16 (TiTok's PyTorch port)"
MASKGIT_README = "https://github.com/google-research/maskgit"
# google-research/maskgit README, "Running pretrained models": the ImageNet 256x256 tokenizer, 2.28 (reconstruction).
RELEASE_REPORTED = (
    reported_metric(
        "rfid",
        2.28,
        "google-research/maskgit README",
        MASKGIT_README,
        note="measured by MaskGIT's authors on their JAX tokenizer (tokenizer_imagenet256_checkpoint); "
        "this file is the TiTok authors' PyTorch conversion of it",
        protocol="unknown",
        protocol_note="measured with MaskGIT's JAX evaluation, which the README does not describe",
    ),
)

_BLOCK_KEY = re.compile(r"^(encoder\.down|decoder\.up)\.(\d+)\.block\.(\d+)\.")
_MID_KEY = re.compile(r"^(encoder|decoder)\.mid\.(\d+)\.")


def _shape(state_dict: Mapping[str, torch.Tensor], key: str, what: str) -> tuple[int, ...]:
    return tensor_shape(state_dict, key, what, "the MaskGIT-VQGAN layout")


def refuse_other_layouts(state_dict: Mapping[str, Any]) -> None:
    """:class:`CheckpointError` saying what the state dict is instead, unless it holds only MaskGIT-VQGAN keys
    (``encoder.down.*`` / ``encoder.mid.*`` / ``decoder.up.*`` … and the codebook ``quantize.embedding.weight``)."""
    keys = list(state_dict)
    if not any(k.startswith("encoder.down.") for k in keys) or not any(k.startswith("decoder.up.") for k in keys):
        raise CheckpointError(
            f"this is not a MaskGIT-VQGAN state dict (no encoder.down.* / decoder.up.* tensors): it looks like "
            f"{describe_layout(state_dict)}"
        )
    if any(".attn." in k or ".mid.block_" in k for k in keys):
        raise CheckpointError(
            "this is not a MaskGIT-VQGAN state dict: it has attention / Taming-style mid blocks (encoder.mid.block_1, "
            "*.attn.*), which MaskGIT's VQGAN does not have; a Taming VQGAN converts with `vistok convert taming`"
        )
    if any(k.startswith(("quant_conv.", "post_quant_conv.")) for k in keys):
        raise CheckpointError(
            "this is not a MaskGIT-VQGAN state dict: it has quant_conv / post_quant_conv, which MaskGIT's VQGAN does "
            "not have (Taming and IBQ VQGANs do: `vistok convert taming` / `vistok convert ibq`)"
        )
    if CODEBOOK not in state_dict:
        raise CheckpointError(
            f"this is not a MaskGIT-VQGAN state dict: it has no codebook ({CODEBOOK}); an encoder/decoder with "
            "mid_block.* and no codebook is Open-MAGVIT2 (`vistok convert open-magvit2`)"
        )
    other = sorted(k for k in keys if not k.startswith(("encoder.", "decoder.")) and k != CODEBOOK)
    if other:
        raise CheckpointError(
            f"this is not a plain MaskGIT-VQGAN state dict: besides encoder.*, decoder.* and {CODEBOOK} it holds "
            f"{len(other)} other tensors ({', '.join(other[:5])})"
        )


def infer_maskgit_net(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``{"num_channels", "codebook_size", "codebook_dim", "net": {type "maskgit", base_channels,
    channel_multiplier, num_res_blocks, latent_channels, norm_groups}}`` from the shapes of a MaskGIT-VQGAN state
    dict (works on meta tensors). Raises :class:`CheckpointError` naming the first inconsistency."""
    base, num_channels = _shape(state_dict, "encoder.conv_in.weight", "encoder input conv")[:2]
    blocks: dict[tuple[str, int], set[int]] = {}
    mids: dict[str, set[int]] = {"encoder": set(), "decoder": set()}
    for key in state_dict:
        if m := _BLOCK_KEY.match(key):
            blocks.setdefault((m.group(1), int(m.group(2))), set()).add(int(m.group(3)))
        elif m := _MID_KEY.match(key):
            mids[m.group(1)].add(int(m.group(2)))
    levels_blocks = {lvl: found for (side, lvl), found in blocks.items() if side == "encoder.down"}
    num_res_blocks, widths = encoder_levels(state_dict, levels_blocks, base, "hidden_channels", "the MaskGIT-VQGAN layout")
    levels = len(widths)
    for side in ("encoder", "decoder"):
        mid = count_numbered(mids[side], f"{side}.mid blocks")
        if mid != num_res_blocks:
            raise CheckpointError(f"{side} has {mid} mid blocks; expected num_res_blocks = {num_res_blocks}")
    decoder_levels = count_numbered({lvl for side, lvl in blocks if side == "decoder.up"}, "decoder levels (decoder.up.*)")
    if decoder_levels != levels:
        raise CheckpointError(f"the decoder has {decoder_levels} levels, the encoder {levels}")
    for i in range(levels):
        count = count_numbered(blocks[("decoder.up", i)], f"decoder.up.{i} blocks")
        if count != num_res_blocks:
            raise CheckpointError(f"decoder level {i} has {count} residual blocks; the encoder has {num_res_blocks}")
        width = _shape(state_dict, f"decoder.up.{i}.block.{count - 1}.conv2.weight", "decoder width")[0]
        if width != widths[i]:
            raise CheckpointError(f"decoder width {width} at level {i} differs from the encoder's {widths[i]}")
        has_up = f"decoder.up.{i}.upsample_conv.weight" in state_dict
        if has_up != (i > 0):
            raise CheckpointError(
                f"decoder level {i} {'has' if has_up else 'lacks'} an upsample_conv; expected one at every level but 0"
            )
    latent_channels = check_latent_convs(state_dict, widths[-1], num_channels, "the MaskGIT-VQGAN layout")
    codebook = _shape(state_dict, CODEBOOK, "codebook")
    if len(codebook) != 2 or codebook[1] != latent_channels:
        raise CheckpointError(
            f"the codebook {CODEBOOK} has shape {codebook}; expected (codebook_size, {latent_channels}): MaskGIT quantizes "
            "the z_channels latent directly"
        )
    return {
        "num_channels": num_channels,
        "codebook_size": codebook[0],
        "codebook_dim": codebook[1],
        "net": {
            "type": "maskgit",
            "base_channels": base,
            "channel_multiplier": [w // base for w in widths],
            "num_res_blocks": num_res_blocks,
            "latent_channels": latent_channels,
            "norm_groups": UPSTREAM_NORM_GROUPS,
            "pixel_range": "unit",
        },
    }


def check_output_shortcuts(state_dict: Mapping[str, torch.Tensor]) -> None:
    """:class:`CheckpointError` unless every ``nin_shortcut`` is a 1×1 out → out conv: MaskGIT's shortcut acts on
    the block's output. An in → out one is a textbook VQGAN (shortcut on the input), which this net cannot load."""
    for key, value in state_dict.items():
        if key.endswith(".nin_shortcut.weight"):
            conv2 = state_dict.get(key.replace("nin_shortcut", "conv2"))
            out = tuple(conv2.shape)[0] if conv2 is not None else None
            if tuple(value.shape) != (out, out, 1, 1):
                raise CheckpointError(
                    f"{key} has shape {tuple(value.shape)}; MaskGIT's 1x1 nin_shortcut maps the block's output "
                    f"({out} channels) to itself, shape ({out}, {out}, 1, 1). A shortcut from the block's input is "
                    "a textbook (Taming-style) VQGAN, not MaskGIT's"
                )


def is_release(file_name: str, inferred: Mapping[str, Any]) -> bool:
    """Whether a file is the released ``maskgit-vqgan-imagenet-f16-256.bin``: its name and the architecture
    :func:`infer_maskgit_net` read (f16, hidden 128, 2 blocks, z 256, codebook 1024 x 256). Only then do MaskGIT's
    reported numbers apply."""
    net = inferred["net"]
    return (
        file_name == RELEASE_FILE
        and {key: net[key] for key in RELEASE_NET} == RELEASE_NET
        and (inferred["codebook_size"], inferred["codebook_dim"]) == RELEASE_CODEBOOK
    )


def maskgit_to_vistok(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream keys → vistok keys: encoder / decoder unchanged, the codebook renamed."""
    return {("quantizer.codebook" if key == CODEBOOK else key): value for key, value in state_dict.items()}


# hidden 128, channel_mult (1,1,2,2,4), 2 res blocks, z 256 quantized directly by a plain Euclidean 1024 x 256 codebook
# (commitment 0.25); the network works on [0, 1] pixels (pixel_range "unit").
PRESET = Preset(
    name="maskgit-vqgan-imagenet256-f16",
    description="MaskGIT VQGAN (no attention, TF same padding, avg-pool), 256px → 16x16 tokens, codebook 1024 x 256",
    config={
        "image_size": 256,
        "net": {"type": "maskgit", **RELEASE_NET, "pixel_range": "unit"},
        "quantizer": {
            "type": "vq",
            "codebook_size": RELEASE_CODEBOOK[0],
            "codebook_dim": RELEASE_CODEBOOK[1],
            "commitment_weight": COMMITMENT_WEIGHT,
        },
    },
    source="Chang et al., MaskGIT: Masked Generative Image Transformer (CVPR 2022); TiTok's PyTorch port "
    "(bytedance/1d-tokenizer modeling/modules/maskgit_vqgan.py)",
    tags=("imagenet256",),
)
# The file in fun-research/TiTok (the link and hf_hub_download call of 1d-tokenizer's README_TiTok.md / README_RAR.md).
ENTRY = ZooEntry(
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
)


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(size, filter="bicubic", size_rule="truncate", crop_offset="round",
                         follows="1d-tokenizer's eval transform (torchvision Resize BICUBIC + CenterCrop)")

@register_family(
    "maskgit",
    origin=MASKGIT,
    summary="MaskGIT VQGAN in TiTok's PyTorch port: a plain state dict (maskgit-vqgan-imagenet-f16-256.bin)",
    weights_help="auto (= state_dict) or state_dict",
    presets=(PRESET,),
    entries=(ENTRY,),
    preprocessing=_preprocessing,
)
def convert_maskgit(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert MaskGIT's VQGAN (TiTok's PyTorch port, a plain state dict) into a :class:`~vistok.VisTokenizer`
    (eval mode) that takes and returns [−1, 1] images.

    Args:
        checkpoint: the ``.bin`` file (``maskgit-vqgan-imagenet-f16-256.bin``).
        weights: ``"auto"`` or ``"state_dict"``: the file holds one set of weights.
        image_size: native resolution recorded in the config (default 256, the release's).
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).

    Raises :class:`CheckpointError` for a file that is not a plain MaskGIT-VQGAN state dict, naming what it looks
    like instead, and ``ValueError`` for another ``weights`` value or an ``image_size`` that is not a multiple of
    the downsample factor.
    """
    if weights not in ("auto", "state_dict"):
        raise ValueError(
            f"weights={weights!r}: a MaskGIT-VQGAN file is a plain state dict with one set of weights; use 'auto'"
        )
    loaded = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    if not is_state_dict(loaded):
        found = sorted(map(str, loaded))[:8] if isinstance(loaded, Mapping) else type(loaded).__name__
        hint = (
            " (a training checkpoint with a nested state_dict, as Taming, IBQ, Open-MAGVIT2 and SimVQ write: convert "
            "it with that project's converter)"
            if isinstance(loaded, Mapping) and "state_dict" in loaded
            else ""
        )
        raise CheckpointError(
            "this is not a MaskGIT-VQGAN file: expected a plain state dict (encoder.*, decoder.*, "
            f"{CODEBOOK}), found {found}{hint}"
        )
    refuse_other_layouts(loaded)
    inferred = infer_maskgit_net(loaded)
    check_output_shortcuts(loaded)
    net = inferred["net"]
    factor = 2 ** (len(net["channel_multiplier"]) - 1)
    notes = [
        "pixel range: upstream works on [0, 1] images; the net's pixel_range='unit' maps vistok's [-1, 1] input to "
        "[0, 1] and the decoder's [0, 1] output back to [-1, 1], so (reconstruction + 1) / 2 is upstream's "
        "decoder output",
        "upstream's decode clamps to [0, 1]; vistok returns the decoder output unclamped",
        "indices: vistok's (B, h, w) grid; upstream's (B, h*w) is its row-major flattening",
        f"GroupNorm groups: {UPSTREAM_NORM_GROUPS} assumed (upstream's; shapes do not tell)",
        "quantizer: plain Euclidean nearest code (no l2 normalisation), commitment beta 0.25 as upstream",
    ]
    size = image_size or DEFAULT_IMAGE_SIZE
    if image_size is None:
        notes.append(f"image_size {size} assumed (the release's; pass image_size to change)")
    if size % factor:
        raise ValueError(f"image_size {size} must be a multiple of the downsample factor {factor}")
    summary = {"net": net, "codebook_size": inferred["codebook_size"], "codebook_dim": inferred["codebook_dim"]}
    extra = {"original_weights": MASKGIT_README, "hub_repo": "fun-research/TiTok"}
    metadata = conversion_metadata(MASKGIT, "maskgit", summary, checkpoint, "state_dict", extra, notes)
    name = Path(checkpoint).name
    if is_release(name, inferred):
        metadata["origin"]["release"] = RELEASE_NAME
        metadata["reported_metrics"] = [
            {**m, "applies_to": "MaskGIT's ImageNet 256 tokenizer as released by its authors"} for m in RELEASE_REPORTED
        ]
    config = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": net,
        "quantizer": {
            "type": "vq",
            "codebook_size": inferred["codebook_size"],
            "codebook_dim": inferred["codebook_dim"],
            "l2_norm": False,
            "commitment_weight": COMMITMENT_WEIGHT,
        },
        "source": f"converted from MaskGIT-VQGAN ({name})",
        "metadata": metadata,
    }
    return load_converted(maskgit_to_vistok(loaded), config, "MaskGIT-VQGAN")

"""VAR's multi-scale VQVAE (``vae_ch160v4096z32.pth``, Hub repo ``FoundationVision/var``) → vistok.

The file is a plain torch state dict: ``encoder.*``, ``decoder.*``, ``quant_conv.*``, ``post_quant_conv.*`` and
``quantize.*`` (codebook ``quantize.embedding.weight``, the shared φ convs ``quantize.quant_resi.qresi_ls.N``, and
``quantize.ema_vocab_hit_SV``, a training-time usage buffer that inference never reads and that is dropped). The net
is vistok's ``var`` and the quantizer ``multiscale_vq``, whose module names are upstream's, so the only renaming is
``quantize.`` → ``quantizer.``.

The architecture is read from the shapes. The scale schedule is not: the file carries no config, and its only trace
of the schedule is the number of rows of ``ema_vocab_hit_SV`` (one per scale), which the given ``patch_nums`` must
match. So ``patch_nums`` is a required option (the zoo entry passes VAR's 10 scales; the CLI's ``--patch-nums``).
φ's ratio (upstream's ``quant_resi``, 0.5) is not in the shapes either: upstream's default, which the release uses,
is assumed.

Images: [−1, 1] in and out, as upstream (``normalize_01_into_pm1``). Upstream's ``idxBl_to_img`` clamps the decoder
output to [−1, 1]; vistok returns it unclamped. Indices: a list of (B, p, p) tensors, one per scale; upstream's
``img_to_idxBl`` gives (B, p·p) per scale, their row-major flattening.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..convert.containers import describe_layout, is_state_dict
from ..convert.magvit2_layout import load_converted
from ..convert.origins import Origin
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..convert.shapes import count_numbered, encoder_levels, tensor_shape
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import ConverterOption, conversion_metadata, register_family
from .records import MIT, ZooEntry

HUB_REPO = "FoundationVision/var"
RELEASE_FILE = "vae_ch160v4096z32.pth"

# VAR (FoundationVision/VAR): MIT (its LICENSE; its README: "This project is licensed under the MIT License").
VAR = Origin(
    name="VAR",
    url="https://github.com/FoundationVision/VAR",
    license="mit",
    paper_title="Visual Autoregressive Modeling: Scalable Image Generation via Next-Scale Prediction",
    paper_authors="Keyu Tian, Yi Jiang, Zehuan Yuan, Bingyue Peng, Liwei Wang",
    paper_venue="NeurIPS 2024",
    paper_url="https://arxiv.org/abs/2404.02905",
    citation="""@inproceedings{tian2024visual,
  title={Visual Autoregressive Modeling: Scalable Image Generation via Next-Scale Prediction},
  author={Tian, Keyu and Jiang, Yi and Yuan, Zehuan and Peng, Bingyue and Wang, Liwei},
  booktitle={Advances in Neural Information Processing Systems (NeurIPS)},
  year={2024}
}""",
)
VAR_PAPER = "Tian et al., Visual Autoregressive Modeling: Scalable Image Generation via Next-Scale Prediction (NeurIPS 2024)"
# The scale schedule VAR's models use (the file does not carry it): 680 tokens.
VAR_PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)

# models/vqvae.py VQVAE with the arguments build_vae_var passes for vae_ch160v4096z32.pth: ch 160, the hard-coded
# ch_mult (1,1,2,2,4) and 2 res blocks, z 32, attention in the deepest level and the middle (one packed qkv conv),
# 3x3 quant convs; VectorQuantizer2 with a 4096 x 32 codebook, 10 scales 1..16, 4 shared φ convs with quant_resi 0.5,
# beta 0.25.
PRESET = Preset(
    name="var-vqvae-imagenet256-f16",
    description="VAR multi-scale VQVAE, 256px → 10 token maps 1x1 … 16x16 (680 tokens), codebook 4096 x 32",
    config={
        "image_size": 256,
        "net": {
            "type": "var",
            "base_channels": 160,
            "channel_multiplier": [1, 1, 2, 2, 4],
            "num_res_blocks": 2,
            "latent_channels": 32,
            "attention": True,
            "mid_attention": True,
            "quant_conv_kernel_size": 3,
        },
        "quantizer": {
            "type": "multiscale_vq",
            "codebook_size": 4096,
            "codebook_dim": 32,
            "patch_nums": VAR_PATCH_NUMS,
            "num_phi_convs": 4,
            "phi_ratio": 0.5,
            "commitment_weight": 0.25,
        },
    },
    source=f"{VAR_PAPER}; FoundationVision/VAR models/vqvae.py (vae_ch160v4096z32.pth)",
    tags=("imagenet256",),
)
# The zoo: vae_ch160v4096z32.pth in FoundationVision/var (the file VAR's README says to download first). VAR's
# README reports FIDs of its generators only, no reconstruction numbers for this tokenizer, so the entry has none.
ENTRY = ZooEntry(
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
)


CODEBOOK = "quantize.embedding.weight"
USAGE_BUFFER = "quantize.ema_vocab_hit_SV"
PHI_PREFIX = "quantize.quant_resi.qresi_ls."
UPSTREAM_NORM_GROUPS = 32
UPSTREAM_PHI_RATIO = 0.5  # VQVAE's quant_resi default, which build_vae_var keeps
UPSTREAM_BETA = 0.25
PATCH_NUMS_OPTION = "patch_nums (Python) / --patch-nums (vistok convert var), e.g. 1,2,3,4,5,6,8,10,13,16 for VAR's release"

_INDEXED = re.compile(r"^(encoder\.down|decoder\.up)\.(\d+)\.(block|attn)\.(\d+)\.")
_PHI = re.compile(r"^quantize\.quant_resi\.qresi_ls\.(\d+)\.weight$")


def _shape(state_dict: Mapping[str, torch.Tensor], key: str, what: str) -> tuple[int, ...]:
    return tensor_shape(state_dict, key, what, "VAR's VQVAE layout")


def refuse_other_layouts(state_dict: Mapping[str, Any]) -> None:
    """:class:`CheckpointError` saying what the state dict is instead, unless it looks like VAR's VQVAE."""
    keys = list(state_dict)
    if any(k.startswith(("word_embed.", "class_emb.", "blocks.")) for k in keys):
        raise CheckpointError(
            f"this is VAR's transformer (var_d*.pth: word_embed / class_emb / blocks), not its tokenizer; the "
            f"tokenizer is {RELEASE_FILE} in {HUB_REPO}"
        )
    if not any(k.startswith("encoder.down.") for k in keys) or not any(k.startswith("decoder.up.") for k in keys):
        raise CheckpointError(
            f"this is not VAR's VQVAE (no encoder.down.* / decoder.up.* tensors): it looks like {describe_layout(state_dict)}"
        )
    if not any(k.startswith("quantize.quant_resi.") for k in keys):
        raise CheckpointError(
            "this is not VAR's VQVAE: it has no φ convs (quantize.quant_resi.*), which VAR's multi-scale quantizer "
            f"has; it looks like {describe_layout(state_dict)}"
        )
    if not any(k.startswith(PHI_PREFIX) for k in keys):
        found = sorted({k.rsplit(".", 1)[0] for k in keys if k.startswith("quantize.quant_resi.")})
        raise CheckpointError(
            f"this VAR VQVAE's φ convs are {', '.join(found[:4])}: a fully shared (share_quant_resi=1) or unshared "
            "(share_quant_resi=0) φ, which vistok does not convert; it converts the partially shared φ "
            f"({PHI_PREFIX}N) of VAR's release"
        )
    if any(re.search(r"\.attn(_1|\.\d+)\.q\.weight$", k) for k in keys):
        raise CheckpointError(
            "this state dict has separate q / k / v attention convs (Taming's); VAR's attention is one packed qkv "
            "conv. A Taming VQGAN converts with `vistok convert taming`"
        )


def infer_var_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``{"num_channels", "num_scales", "net": {...var net options...}, "quantizer": {...}}`` read from the shapes
    of a VAR VQVAE state dict (upstream keys; works on meta tensors). ``quantizer`` lacks ``patch_nums``, which the
    shapes do not tell; ``num_scales`` is the row count of ``ema_vocab_hit_SV`` (``None`` without it). Raises
    :class:`CheckpointError` naming the first inconsistency."""
    base, num_channels = _shape(state_dict, "encoder.conv_in.weight", "encoder input conv")[:2]
    numbered: dict[tuple[str, int, str], set[int]] = {}
    for key in state_dict:
        if m := _INDEXED.match(key):
            numbered.setdefault((m.group(1), int(m.group(2)), m.group(3)), set()).add(int(m.group(4)))
    levels_blocks = {lvl: numbered.get(("encoder.down", lvl, "block"), set())
                     for side, lvl, _ in numbered if side == "encoder.down"}  # fmt: skip
    num_res_blocks, widths = encoder_levels(state_dict, levels_blocks, base, "ch", "VAR's VQVAE layout")
    levels = len(widths)
    attention = bool(numbered.get(("encoder.down", levels - 1, "attn")))
    for side, lvl, kind in numbered:
        if kind == "attn" and lvl != levels - 1:
            raise CheckpointError(f"{side}.{lvl} has attention; VAR has it only at the deepest level ({levels - 1})")
    if attention and len(numbered[("encoder.down", levels - 1, "attn")]) != num_res_blocks:
        raise CheckpointError("the deepest encoder level must have one attention block after each residual block")
    decoder_levels = count_numbered({lvl for side, lvl, _ in numbered if side == "decoder.up"}, "decoder levels (decoder.up.*)")
    if decoder_levels != levels:
        raise CheckpointError(f"the decoder has {decoder_levels} levels, the encoder {levels}")
    for i in range(levels):
        count = len(numbered.get(("decoder.up", i, "block"), set()))
        if count != num_res_blocks + 1:
            raise CheckpointError(
                f"decoder level {i} has {count} residual blocks; VAR's decoder has num_res_blocks + 1 = "
                f"{num_res_blocks + 1}"
            )
    latent = _shape(state_dict, "encoder.conv_out.weight", "encoder output conv")[0]
    quant_conv = _shape(state_dict, "quant_conv.weight", "quant_conv")
    codebook = _shape(state_dict, CODEBOOK, "codebook")
    if len(codebook) != 2 or quant_conv[:2] != (codebook[1], latent) or quant_conv[2] != quant_conv[3]:
        raise CheckpointError(
            f"quant_conv has shape {quant_conv} and the codebook {codebook}; expected quant_conv (Cvae, {latent}, k, k) "
            "with Cvae the codebook's width"
        )
    phis = count_numbered({int(m.group(1)) for k in state_dict if (m := _PHI.match(k))}, f"φ convs ({PHI_PREFIX}N)")
    for n in range(phis):
        shape = _shape(state_dict, f"{PHI_PREFIX}{n}.weight", "φ conv")
        if shape != (codebook[1], codebook[1], 3, 3):
            raise CheckpointError(f"{PHI_PREFIX}{n}.weight has shape {shape}; expected ({codebook[1]}, {codebook[1]}, 3, 3)")
    num_scales = None
    if USAGE_BUFFER in state_dict:
        usage = tuple(state_dict[USAGE_BUFFER].shape)
        if len(usage) != 2 or usage[1] != codebook[0]:
            raise CheckpointError(f"{USAGE_BUFFER} has shape {usage}; expected (number of scales, {codebook[0]})")
        num_scales = usage[0]
    return {
        "num_channels": num_channels,
        "num_scales": num_scales,
        "net": {
            "type": "var",
            "base_channels": base,
            "channel_multiplier": [w // base for w in widths],
            "num_res_blocks": num_res_blocks,
            "latent_channels": latent,
            "attention": attention,
            "mid_attention": "encoder.mid.attn_1.qkv.weight" in state_dict,
            "quant_conv_kernel_size": quant_conv[2],
            "norm_groups": UPSTREAM_NORM_GROUPS,
        },
        "quantizer": {
            "type": "multiscale_vq",
            "codebook_size": codebook[0],
            "codebook_dim": codebook[1],
            "num_phi_convs": phis,
            "phi_ratio": UPSTREAM_PHI_RATIO,
            "commitment_weight": UPSTREAM_BETA,
        },
    }


def check_patch_nums(patch_nums: Any, num_scales: int | None) -> list[int]:
    """The schedule as a list of ints; ``ValueError`` naming the option when it is missing, not a sequence of
    ints, or of another length than the file's ``ema_vocab_hit_SV`` says (its values are the quantizer's to check)."""
    if patch_nums is None:
        raise ValueError(
            "a VAR VQVAE file carries no config and its shapes do not tell the scale schedule: give it with "
            f"{PATCH_NUMS_OPTION}"
            + (f" ({num_scales} scales, as the file's {USAGE_BUFFER} has {num_scales} rows)" if num_scales else "")
        )
    if isinstance(patch_nums, (str, bytes)) or not isinstance(patch_nums, Sequence) or not all(
        isinstance(p, int) and not isinstance(p, bool) for p in patch_nums
    ):
        raise ValueError(f"patch_nums must be a sequence of ints such as [1, 2, 3, 4], got {patch_nums!r}")
    if num_scales is not None and len(patch_nums) != num_scales:
        raise ValueError(
            f"patch_nums has {len(patch_nums)} scales but this file was trained with {num_scales} (its {USAGE_BUFFER} "
            f"has one row per scale); give {num_scales} patch numbers"
        )
    return list(patch_nums)


def var_to_vistok(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream keys → vistok keys: ``quantize.`` → ``quantizer.``, the usage buffer dropped, the rest unchanged."""
    return {
        ("quantizer." + key[len("quantize.") :] if key.startswith("quantize.") else key): value
        for key, value in state_dict.items()
        if key != USAGE_BUFFER
    }


def var_tokenizer_config(
    state_dict: Mapping[str, torch.Tensor], patch_nums: Any, image_size: int | None
) -> tuple[dict[str, Any], list[str]]:
    """``VisTokenizerConfig`` keyword arguments (without metadata) for a VAR state dict and a schedule, and the
    notes on what was assumed. ``ValueError`` for a missing or inconsistent schedule or image size."""
    refuse_other_layouts(state_dict)
    inferred = infer_var_config(state_dict)
    patch_nums = check_patch_nums(patch_nums, inferred["num_scales"])
    factor = 2 ** (len(inferred["net"]["channel_multiplier"]) - 1)
    native = patch_nums[-1] * factor if patch_nums and patch_nums[-1] > 0 else None
    size = image_size or native
    if native is not None and size != native:
        raise ValueError(
            f"image_size {size} does not fit patch_nums ending in {patch_nums[-1]}: the last scale is the whole "
            f"latent, so images must be {patch_nums[-1]} x the downsample factor {factor} = {native} px"
        )
    notes = [
        f"scale schedule patch_nums {patch_nums}: given to the converter (the file carries no config)",
        f"phi ratio (upstream quant_resi) {UPSTREAM_PHI_RATIO} and beta {UPSTREAM_BETA} assumed (upstream's "
        "defaults; shapes do not tell)",
        f"GroupNorm groups: {UPSTREAM_NORM_GROUPS} assumed (upstream's; shapes do not tell)",
        "upstream's idxBl_to_img clamps the decoder output to [-1, 1]; vistok returns it unclamped",
        "indices: a list of (B, p, p) tensors, one per scale; upstream's img_to_idxBl gives their row-major "
        "flattening (B, p*p)",
        f"{USAGE_BUFFER} (a training-time usage buffer) dropped",
    ]
    config = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": inferred["net"],
        "quantizer": {**inferred["quantizer"], "patch_nums": patch_nums},
    }
    return config, notes


def _parse_patch_nums(text: str) -> list[int]:
    """``"1,2,3,4"`` → [1, 2, 3, 4]; ``ValueError`` naming the expected form otherwise."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--patch-nums must be comma-separated positive integers such as 1,2,3,4, got {text!r}")
    return [int(p) for p in parts]


def _preprocessing(size: int) -> Preprocessing:
    # val_aug resizes the shorter side to round(mid_reso * size), mid_reso = 1.125 (288 at 256), then crops
    return Preprocessing(size, resize_to=round(1.125 * size), filter="lanczos", size_rule="truncate",
                         crop_offset="round", follows="VAR utils/data.py val_aug (Resize LANCZOS + CenterCrop)")

@register_family(
    "var",
    origin=VAR,
    summary="VAR's multi-scale VQVAE: a plain state dict such as vae_ch160v4096z32.pth (needs --patch-nums)",
    weights_help="auto (= state_dict) or state_dict",
    options=(
        ConverterOption(
            "--patch-nums",
            "patch_nums",
            "required: the scale schedule (the file carries none), e.g. 1,2,3,4,5,6,8,10,13,16 for VAR's "
            "vae_ch160v4096z32.pth",
            metavar="P1,P2,...",
            parse=_parse_patch_nums,
        ),
    ),
    presets=(PRESET,),
    entries=(ENTRY,),
    preprocessing=_preprocessing,
)
def convert_var(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
    patch_nums: Sequence[int] | None = None,
):
    """Convert VAR's VQVAE (a plain state dict such as ``vae_ch160v4096z32.pth``) into a
    :class:`~vistok.VisTokenizer` (eval mode) with multi-scale indices.

    Args:
        checkpoint: the ``.pth`` file.
        weights: ``"auto"`` or ``"state_dict"``: the file holds one set of weights.
        image_size: native resolution; default (and the only one that fits) ``patch_nums[-1]`` x the downsample
            factor (256 for the release).
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).
        patch_nums: the scale schedule, required (the file carries no config): VAR's release uses
            ``(1, 2, 3, 4, 5, 6, 8, 10, 13, 16)``.

    Raises ``ValueError`` naming ``patch_nums`` when it is missing or does not fit the file, and
    :class:`CheckpointError` for a file that is not VAR's VQVAE, naming what it looks like instead.
    """
    if weights not in ("auto", "state_dict"):
        raise ValueError(f"weights={weights!r}: a VAR VQVAE file is a plain state dict with one set of weights; use 'auto'")
    loaded = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    if not is_state_dict(loaded):
        found = sorted(map(str, loaded))[:8] if isinstance(loaded, Mapping) else type(loaded).__name__
        raise CheckpointError(
            f"this is not VAR's VQVAE file: expected a plain state dict (encoder.*, decoder.*, quantize.*), found {found}"
        )
    config, notes = var_tokenizer_config(loaded, patch_nums, image_size)
    if image_size is None:
        notes.append(f"image_size {config['image_size']}: the last scale times the downsample factor")
    summary = {
        "net": config["net"],
        "codebook_size": config["quantizer"]["codebook_size"],
        "codebook_dim": config["quantizer"]["codebook_dim"],
    }
    extra = {"hub_repo": HUB_REPO, "dropped_entries": [USAGE_BUFFER] if USAGE_BUFFER in loaded else []}
    config["metadata"] = conversion_metadata(VAR, "var", summary, checkpoint, "state_dict", extra, notes)
    config["source"] = f"converted from VAR's VQVAE ({Path(checkpoint).name})"
    return load_converted(var_to_vistok(loaded), config, "VAR VQVAE")

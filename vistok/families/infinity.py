"""Infinity's bitwise multi-scale BSQ VAE (``infinity_vae_d*.pth``, Hub repo ``FoundationVision/Infinity``) → vistok.

What the files are: ``torch.save`` pickles of plain tensors (OrderedDicts; the Hub's pickle scan lists only
OrderedDict, ``_rebuild_tensor_v2``, FloatStorage and LongStorage), read with vistok's safe loader. Upstream's
``vae_model`` takes ``ckpt["vae"]`` (``ckpt["ema"]`` only if its hard-coded ``ema`` were on) and copies in every tensor
whose name its model has, ignoring the rest (``load_cnn``). Two key layouts are accepted, as ``load_cnn`` accepts
them: upstream's module names with a wrapper level (``encoder.conv_in.conv.weight``, ``…norm1.norm.weight``,
``…downsample.conv.conv.weight``) and the plain ``nn.Conv2d`` / ``nn.GroupNorm`` names without it.

The net is vistok's ``var`` net (the LDM-style encoder/decoder of ``flux_vqgan.py``: GroupNorm(32, eps 1e-6) + SiLU
residual blocks with a biased 1×1 ``nin_shortcut``, stride-2 3×3 downsampling after zero-padding (0, 1, 0, 1),
nearest ×2 + 3×3 upsampling, ``num_res_blocks + 1`` decoder blocks per level, module names ``down[i].block[j]`` /
``mid.block_1`` / ``mid.block_2`` / ``up[i]``) with ``attention=False`` and ``mid_attention=False`` (``vae_model``
hard-codes ``cnn_attention='no'``) and ``quant_conv=False`` (there is no quant_conv: the 3×3 ``encoder.conv_out``
gives d channels, the decoder's 3×3 ``conv_in`` reads them). The quantizer is ``multiscale_bsq``
(:mod:`vistok.quantizers.multiscale_bsq`): area-resized residual per scale, l2-normalised, bit = value > 0, code
(2·bit − 1)/√d, trilinear upsampling, channel 0 = the most significant bit (the file's ``quantizer.lfq.mask`` =
2^(d−1) … 1 is checked, then dropped; for d = 64 its first entry is −2^63, the int64 wrap of 2^63).

The architecture is read from the shapes (upstream hard-codes base 128 and 2 res blocks; the files carry no config):
d from ``encoder.conv_out``, the base width from ``encoder.conv_in``, the multipliers from the block widths, the
block count per level and the patch size (2^downsamplers). The scale schedule is not in the file: it comes from the
caller, as upstream's does (``infinity/utils/dynamic_resolution.py``); see :func:`scale_schedule`.

Pixels: [−1, 1] in and out (``tools/run_infinity.py``'s ``transform``: ``to_tensor`` then ``x + x − 1``). Upstream's
``vae.decode`` clamps to [−1, 1]; vistok returns the decoder output unclamped. Upstream never forms integer indices
(it hands bits to its transformer); vistok's indices are the bit patterns, MSB first, and ``tok.quantizer.bits`` /
``bit_labels`` / ``bits_to_indices`` give and take Infinity's bit labels.
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
from ..convert.shapes import check_latent_convs, count_numbered, encoder_levels, tensor_shape
from ..preprocessing import Preprocessing
from ..quantizers.multiscale_bsq import INFINITY_SQUARE_SCALES, MAX_BITS
from ..registry import Preset
from .base import ConverterOption, conversion_metadata, register_family
from .records import MIT, ZooEntry

HUB_REPO = "FoundationVision/Infinity"

# FoundationVision/Infinity: MIT (its LICENSE); the Hub repo's model card states "license: mit".
INFINITY = Origin(
    name="Infinity",
    url="https://github.com/FoundationVision/Infinity",
    license="mit",
    paper_title="Infinity: Scaling Bitwise AutoRegressive Modeling for High-Resolution Image Synthesis",
    paper_authors="Jian Han, Jinlai Liu, Yi Jiang, Bin Yan, Yuqi Zhang, Zehuan Yuan, Bingyue Peng, Xiaobing Liu",
    paper_venue="CVPR 2025",
    paper_url="https://arxiv.org/abs/2412.04431",
    citation="""@inproceedings{han2025infinity,
  title={Infinity: Scaling Bitwise AutoRegressive Modeling for High-Resolution Image Synthesis},
  author={Han, Jian and Liu, Jinlai and Jiang, Yi and Yan, Bin and Zhang, Yuqi and Yuan, Zehuan and Peng, Bingyue and Liu, Xiaobing},
  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2025}
}""",
)
PAPER = "Han et al., Infinity: Scaling Bitwise AutoRegressive Modeling for High-Resolution Image Synthesis (CVPR 2025)"

# ------------------------------------------------------------------------------------------- scale schedules
#: infinity/utils/dynamic_resolution.py: ``ratio2hws`` (scales (h, w) in tokens of 16 px, per aspect ratio h/w;
#: ratio r < 1 is the transpose of 1/r) and the four total-pixel sizes, the first n scales of each list.
RATIO_SCALES: dict[float, tuple[tuple[int, int], ...]] = {
    1.000: tuple((s, s) for s in INFINITY_SQUARE_SCALES),
    1.250: ((1, 1), (2, 2), (3, 3), (5, 4), (10, 8), (15, 12), (20, 16), (25, 20), (30, 24), (35, 28), (45, 36), (55, 44), (70, 56)),
    1.333: ((1, 1), (2, 2), (4, 3), (8, 6), (12, 9), (16, 12), (20, 15), (24, 18), (28, 21), (36, 27), (48, 36), (60, 45), (72, 54)),
    1.500: ((1, 1), (2, 2), (3, 2), (6, 4), (9, 6), (15, 10), (21, 14), (27, 18), (33, 22), (39, 26), (48, 32), (63, 42), (78, 52)),
    1.750: ((1, 1), (2, 2), (3, 3), (7, 4), (11, 6), (14, 8), (21, 12), (28, 16), (35, 20), (42, 24), (56, 32), (70, 40), (84, 48)),
    2.000: ((1, 1), (2, 2), (4, 2), (6, 3), (10, 5), (16, 8), (22, 11), (30, 15), (38, 19), (46, 23), (60, 30), (74, 37), (90, 45)),
    2.500: ((1, 1), (2, 2), (5, 2), (10, 4), (15, 6), (20, 8), (25, 10), (30, 12), (40, 16), (50, 20), (65, 26), (80, 32), (100, 40)),
    3.000: ((1, 1), (2, 2), (6, 2), (9, 3), (15, 5), (21, 7), (27, 9), (36, 12), (45, 15), (54, 18), (72, 24), (90, 30), (111, 37)),
}
#: total-pixel name → number of scales (7 → 256 px at 1:1, 10 → 512, 12 → 768, 13 → 1024).
PIXEL_BUDGETS = {"0.06M": 7, "0.25M": 10, "0.60M": 12, "1M": 13}
UPSTREAM_STRIDE = 16  # dynamic_resolution.py's vae_stride: the tables count tokens of 16 px


def dynamic_resolution_scales(h_div_w: float, pixels: str) -> list[tuple[int, int]]:
    """Upstream's ``dynamic_resolution_h_w[h_div_w][pixels]["scales"]`` as (h, w) pairs (the frame count t, 1 for
    images, left out): ``h_div_w`` one of the table's ratios (r or its transpose, e.g. 0.8 = 1/1.25, taken to 3
    decimals as upstream), ``pixels`` one of :data:`PIXEL_BUDGETS`. ``KeyError`` naming the valid values."""
    if pixels not in PIXEL_BUDGETS:
        raise KeyError(f"unknown pixel budget {pixels!r}; Infinity's are {', '.join(PIXEL_BUDGETS)}")
    table = {ratio: scales for ratio, scales in RATIO_SCALES.items()}
    table.update({int(1 / r * 1000) / 1000: tuple((w, h) for h, w in s) for r, s in RATIO_SCALES.items() if r != 1})
    if h_div_w not in table:
        raise KeyError(f"no Infinity schedule for h/w = {h_div_w}; its ratios are {sorted(table)}")
    return list(table[h_div_w][: PIXEL_BUDGETS[pixels]])


def scale_schedule(schedule: Any, downsample_factor: int, image_size: int | None) -> list[int]:
    """The square scale schedule (latent sides, coarse to fine) for a VAE of ``downsample_factor``:

    - a list of ints: used as given;
    - a pixel budget (``"0.06M"``, ``"0.25M"``, ``"0.60M"``, ``"1M"``): upstream's 1:1 schedule of that size, in the
      VAE's latent units — as is for f16, doubled for the f8 VAE (upstream's ``apply_spatial_patchify`` doubles
      the transformer's schedule for the VAE);
    - ``None``: the budget whose size is ``image_size`` (default 256) for f16 / f8, otherwise the prefix of the 1:1
      ladder (1, 2, 4, 6, 8, 12, 16, …) ending at ``image_size / f``.

    ``ValueError`` naming the accepted forms otherwise (the quantizer checks that the list increases)."""
    if isinstance(schedule, str):
        if schedule not in PIXEL_BUDGETS:
            raise ValueError(
                f"scale_schedule {schedule!r} is not one of Infinity's pixel budgets {', '.join(PIXEL_BUDGETS)} "
                "(or give the scales as a list of ints, e.g. 1,2,4,6,8,12,16)"
            )
        if UPSTREAM_STRIDE % downsample_factor or UPSTREAM_STRIDE // downsample_factor > 2:
            raise ValueError(
                f"Infinity's named schedules are for its f16 VAEs and (doubled) its f8 patchify VAE; this one is "
                f"f{downsample_factor}: give the scales as a list of ints"
            )
        step = UPSTREAM_STRIDE // downsample_factor
        return [step * s for s in INFINITY_SQUARE_SCALES[: PIXEL_BUDGETS[schedule]]]
    if schedule is None:
        size = image_size or 256
        if downsample_factor in (8, 16):
            for name, count in PIXEL_BUDGETS.items():
                if INFINITY_SQUARE_SCALES[count - 1] * UPSTREAM_STRIDE == size:
                    return scale_schedule(name, downsample_factor, None)
        side = size // downsample_factor
        if size % downsample_factor == 0 and side in INFINITY_SQUARE_SCALES:
            return list(INFINITY_SQUARE_SCALES[: INFINITY_SQUARE_SCALES.index(side) + 1])
        raise ValueError(
            f"no Infinity schedule ends at {size} px for this f{downsample_factor} VAE: give scale_schedule "
            f"(Python) / --scale-schedule (vistok convert infinity) as a list of latent sides ending at "
            f"image_size / {downsample_factor}, or one of {', '.join(PIXEL_BUDGETS)}"
        )
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence) or not all(
        isinstance(p, int) and not isinstance(p, bool) for p in schedule
    ):
        raise ValueError(f"scale_schedule must be a list of ints such as [1, 2, 4, 6, 8] or a pixel budget, got {schedule!r}")
    return list(schedule)


# ------------------------------------------------------------------------------------------- presets / zoo
RELEASE_BITS = (16, 24, 32, 64)
PATCHIFY_FILE = "infinity_vae_d56_f8_14_patchify.pth"
PATCHIFY_BITS = 14


def _preset(name: str, bits: int, mult: list[int], description: str, source: str) -> Preset:
    factor = 2 ** (len(mult) - 1)
    return Preset(
        name=name,
        description=description,
        config={
            "image_size": 256,
            "net": {
                "type": "var",
                "base_channels": 128,
                "channel_multiplier": mult,
                "num_res_blocks": 2,
                "latent_channels": bits,
                "attention": False,
                "mid_attention": False,
                "quant_conv": False,
            },
            "quantizer": {"type": "multiscale_bsq", "codebook_dim": bits,
                          "patch_nums": scale_schedule("0.06M", factor, None)},
        },
        source=source,
        tags=("infinity",),
    )


F16_MULT = [1, 2, 4, 4, 4]
F8_MULT = [1, 2, 4, 4]
PRESETS = tuple(
    _preset(
        f"infinity-vae-d{bits}",
        bits,
        F16_MULT,
        f"Infinity bitwise multi-scale BSQ VAE, d={bits} bits per token, f16, 256px → 7 scales 1x1 … 16x16 (521 tokens)",
        f"{PAPER}; FoundationVision/Infinity tools/run_infinity.py load_visual_tokenizer (vae_type {bits})",
    )
    for bits in RELEASE_BITS
) + (
    _preset(
        "infinity-vae-d56-f8-14-patchify",
        PATCHIFY_BITS,
        F8_MULT,
        "Infinity-8B's bitwise multi-scale BSQ VAE, d=14 bits per token, f8, 256px → 7 scales 2x2 … 32x32 (2084 tokens)",
        f"{PAPER}; FoundationVision/Infinity tools/run_infinity.py load_visual_tokenizer (apply_spatial_patchify: "
        "patch 8, ch_mult [1, 2, 4, 4])",
    ),
)

COMMON_NOTES = (
    "Indices are a list of token maps, coarse to fine (Infinity's 1:1 '0.06M' schedule at 256 px); each token is "
    "its d bits, channel 0 the most significant bit. tok.quantizer.bit_labels(indices) gives Infinity's per-scale "
    "(B, h*w, d) bit labels and tok.quantizer.bits_to_indices(bits) takes them back.",
    "Other sizes: `vistok convert infinity FILE OUT --scale-schedule 1M` (1024 px; 0.25M = 512, 0.60M = 768) or an "
    "explicit list; the file carries no schedule.",
    "Images in [-1, 1] as upstream; upstream's vae.decode clamps to [-1, 1], vistok does not.",
    "The authors report tokenizer numbers only per vocabulary size in the paper, without the protocol: none are "
    "catalogued.",
)


def _entry(file: str, preset: str, description: str, notes: tuple[str, ...] = ()) -> ZooEntry:
    return ZooEntry(
        name=file.removesuffix(".pth").replace("_", "-"),
        description=description,
        origin=INFINITY,
        license=MIT,
        converter="infinity",
        image_size=256,
        repo_id=HUB_REPO,
        filenames=(file,),
        preset=preset,
        notes=notes + COMMON_NOTES,
    )


ENTRIES = (
    *(
        _entry(f"infinity_vae_d{bits}.pth", f"infinity-vae-d{bits}",
               f"Infinity bitwise multi-scale BSQ VAE, {bits} bits per token (2^{bits} codes), f16, 256px → 521 tokens",
               ("d = 64: an index is the 64-bit pattern in an int64 (two's complement; the MSB is the sign bit), as "
                "upstream's own mask buffer.",) if bits == 64 else ())
        for bits in RELEASE_BITS
    ),
    _entry("infinity_vae_d32reg.pth", "infinity-vae-d32",
           "Infinity bitwise multi-scale BSQ VAE, 32 bits per token, the 'reg' tokenizer of Infinity-2B, f16, 256px",
           ("The tokenizer Infinity-2B's main recipe uses (tools/run_infinity.py: vae_type 32, "
            "infinity_vae_d32reg.pth).",)),
    _entry(PATCHIFY_FILE, "infinity-vae-d56-f8-14-patchify",
           "Infinity-8B's bitwise multi-scale BSQ VAE, 14 bits per token, f8, 256px → 7 scales 2x2 … 32x32",
           ("Infinity-8B patchifies this f8 latent 2x2 for its transformer; the VAE's own schedule is the 1:1 one "
            "doubled (2, 4, 8, …), as upstream's apply_spatial_patchify.",)),
)


# ------------------------------------------------------------------------------------------- the converter
UPSTREAM_NORM_GROUPS = 32
MASK_KEYS = ("quantizer.lfq.mask", "quantize.lfq.mask")
LAYOUT = "Infinity's bitwise VAE layout"
_WRAPPED = re.compile(r"^(.*)\.(conv|norm)\.(weight|bias)$")
_INDEXED = re.compile(r"^(encoder\.down|decoder\.up)\.(\d+)\.(block|attn)\.(\d+)\.")
_ATTENTION = re.compile(r"^(encoder|decoder)\.(mid\.attn_\d+|(down|up)\.\d+\.attn\.\d+)\.")


def refuse_other_layouts(state_dict: Mapping[str, Any]) -> None:
    """:class:`CheckpointError` saying what the state dict is instead, unless it looks like Infinity's VAE."""
    keys = list(state_dict)
    if any(k.startswith(("word_embed.", "blocks.", "unregistered_blocks.", "text_proj_for_sos.")) for k in keys):
        raise CheckpointError(
            "this is Infinity's transformer (word_embed / blocks), not its tokenizer; the tokenizers are "
            f"infinity_vae_d*.pth in {HUB_REPO}"
        )
    if not any(k.startswith("encoder.down.") for k in keys) or not any(k.startswith("decoder.up.") for k in keys):
        raise CheckpointError(
            "this is not Infinity's bitwise VAE (no encoder.down.* / decoder.up.* tensors): it looks like "
            f"{describe_layout(state_dict)}"
        )
    if any(k.startswith(("quant_conv.", "post_quant_conv.", "quantize.embedding.", "quantize.quant_resi.")) for k in keys):
        raise CheckpointError(
            "this VAE has quant_conv / a codebook (quantize.embedding) / φ convs: it is VAR's VQVAE (`vistok convert "
            "var`) or a VQGAN, not Infinity's bitwise VAE, which has none of them"
        )


def _plain_key(key: str, wrapped: bool) -> str:
    if not wrapped:
        return key
    m = _WRAPPED.match(key)
    if m is None:
        raise CheckpointError(
            f"{key!r} does not follow upstream's wrapped layout (…conv.weight / …norm.weight) that the rest of the "
            "file uses: mixed key layouts"
        )
    return f"{m.group(1)}.{m.group(3)}"


def is_wrapped(state_dict: Mapping[str, Any]) -> bool:
    """Whether the keys have upstream's wrapper level (``…conv1.conv.weight``, ``…norm1.norm.weight``)."""
    return any(k.endswith(("conv_in.conv.weight", ".conv1.conv.weight", ".norm1.norm.weight")) for k in state_dict)


def split_state_dict(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """The encoder / decoder tensors under vistok's plain names, the mask keys found, and the keys upstream's
    ``load_cnn`` would ignore (attention and anything outside encoder / decoder / the masks), which are dropped."""
    wrapped = is_wrapped(state_dict)
    net: dict[str, torch.Tensor] = {}
    masks, ignored = [], []
    for key, value in state_dict.items():
        if key in MASK_KEYS:
            masks.append(key)
        elif not key.startswith(("encoder.", "decoder.")) or _ATTENTION.match(key):
            ignored.append(key)
        else:
            net[_plain_key(key, wrapped)] = value
    return net, masks, ignored


def _shape(state_dict: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    return tensor_shape(state_dict, key, what, LAYOUT)


def infer_infinity_net(net: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``{"num_channels", "bits", "net": {...var net options...}}`` from the shapes of the encoder / decoder
    tensors (plain names; works on meta tensors). :class:`CheckpointError` naming what vistok cannot express."""
    base, num_channels = _shape(net, "encoder.conv_in.weight", "encoder input conv")[:2]
    numbered: dict[tuple[str, int], set[int]] = {}
    for key in net:
        if (m := _INDEXED.match(key)) and m.group(3) == "block":
            numbered.setdefault((m.group(1), int(m.group(2))), set()).add(int(m.group(4)))
    levels_blocks = {lvl: found for (side, lvl), found in numbered.items() if side == "encoder.down"}
    num_res_blocks, widths = encoder_levels(net, levels_blocks, base, "the base width", LAYOUT)
    levels = len(widths)
    down = sorted(int(k.split(".")[2]) for k in net if re.match(r"^encoder\.down\.\d+\.downsample\.conv\.weight$", k))
    if down != list(range(levels - 1)):
        raise CheckpointError(
            f"the encoder downsamples after levels {down}; vistok's net downsamples after every level but the last "
            f"({list(range(levels - 1))}): upstream's patch_size must be 2^(len(ch_mult) - 1)"
        )
    decoder_levels = count_numbered({lvl for side, lvl in numbered if side == "decoder.up"}, "decoder levels (decoder.up.*)")
    if decoder_levels != levels:
        raise CheckpointError(f"the decoder has {decoder_levels} levels, the encoder {levels}")
    for i in range(levels):
        count = len(numbered[("decoder.up", i)])
        if count != num_res_blocks + 1:
            raise CheckpointError(
                f"decoder level {i} has {count} residual blocks; Infinity's decoder has num_res_blocks + 1 = "
                f"{num_res_blocks + 1}"
            )
        width = _shape(net, f"decoder.up.{i}.block.{count - 1}.conv2.weight", "decoder width")[0]
        if width != widths[i]:
            raise CheckpointError(
                f"decoder level {i} is {width} channels wide, encoder level {i} {widths[i]}: a decoder_ch_mult other "
                "than the encoder's, which vistok's net does not express"
            )
    up = sorted(int(k.split(".")[2]) for k in net if re.match(r"^decoder\.up\.\d+\.upsample\.conv\.weight$", k))
    if up != list(range(1, levels)):
        raise CheckpointError(f"the decoder upsamples at levels {up}; expected {list(range(1, levels))}")
    for width in widths:
        if width % UPSTREAM_NORM_GROUPS:
            raise CheckpointError(
                f"a level is {width} channels wide, not divisible by {UPSTREAM_NORM_GROUPS}: upstream's Normalize "
                "then uses another group count, which this converter does not reproduce"
            )
    # the decoder reads the d-channel codes directly (no quant_conv / post_quant_conv)
    bits = check_latent_convs(net, widths[-1], num_channels, LAYOUT, kernel=3)
    if not 1 <= bits <= MAX_BITS:
        raise CheckpointError(f"the latent has {bits} channels (bits per token); vistok handles 1 … {MAX_BITS}")
    return {
        "num_channels": num_channels,
        "bits": bits,
        "net": {
            "type": "var",
            "base_channels": base,
            "channel_multiplier": [w // base for w in widths],
            "num_res_blocks": num_res_blocks,
            "latent_channels": bits,
            "attention": False,
            "mid_attention": False,
            "quant_conv": False,
            "norm_groups": UPSTREAM_NORM_GROUPS,
        },
    }


def check_masks(state_dict: Mapping[str, torch.Tensor], keys: list[str], bits: int) -> None:
    """Each ``*.lfq.mask`` must be 2^(d−1) … 1 (int64, wrapping to −2^63 for d = 64): channel 0 the MSB."""
    expected = 2 ** torch.arange(bits - 1, -1, -1, dtype=torch.int64)
    for key in keys:
        mask = state_dict[key]
        if mask.device.type == "meta":
            if tuple(mask.shape) != (bits,):
                raise CheckpointError(f"{key} has shape {tuple(mask.shape)}; expected ({bits},)")
            continue
        if mask.dtype.is_floating_point or tuple(mask.shape) != (bits,) or not torch.equal(mask.long(), expected):
            raise CheckpointError(
                f"{key} is not 2^(d-1) … 1 (channel 0 the most significant bit, Infinity's bit order) for d = {bits}: "
                "this file's bits mean something else"
            )


def _parse_schedule(text: str) -> str | list[int]:
    """``"1M"`` stays a name; ``"1,2,4,6,8"`` → [1, 2, 4, 6, 8]; ``ValueError`` naming the forms otherwise."""
    if text in PIXEL_BUDGETS:
        return text
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(
            f"--scale-schedule must be one of {', '.join(PIXEL_BUDGETS)} or comma-separated positive integers such "
            f"as 1,2,4,6,8, got {text!r}"
        )
    return [int(p) for p in parts]


def _select_weights(loaded: Any, weights: str) -> tuple[Mapping[str, torch.Tensor], str]:
    """The state dict of ``loaded`` that ``weights`` names: ``auto`` / ``vae`` = ``ckpt["vae"]`` (upstream's
    choice) or the file itself when it is a plain state dict; ``ema`` = ``ckpt["ema"]``."""
    if weights not in ("auto", "vae", "ema"):
        raise ValueError(f"weights={weights!r}: an Infinity VAE file holds 'vae' (default, upstream's) or 'ema' weights")
    if is_state_dict(loaded) and weights in ("auto", "vae") and "vae" not in loaded:
        return loaded, "state_dict"
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"this is not an Infinity VAE file: expected a dict with 'vae', found {type(loaded).__name__}")
    key = "ema" if weights == "ema" else "vae"
    if key not in loaded:
        found = sorted(map(str, loaded))[:8]
        raise CheckpointError(
            f"this file has no {key!r} entry (Infinity's vae_model reads ckpt['vae']); its top-level keys are {found}"
        )
    if not is_state_dict(loaded[key]):
        raise CheckpointError(f"ckpt[{key!r}] is not a state dict of tensors")
    return loaded[key], key


def infinity_tokenizer_config(
    state_dict: Mapping[str, torch.Tensor], schedule: Any = None, image_size: int | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor], list[str]]:
    """``VisTokenizerConfig`` keyword arguments (without metadata), the vistok state dict and the notes for an
    Infinity VAE state dict (either key layout) and a schedule (see :func:`scale_schedule`)."""
    refuse_other_layouts(state_dict)
    net, masks, ignored = split_state_dict(state_dict)
    inferred = infer_infinity_net(net)
    bits = inferred["bits"]
    check_masks(state_dict, masks, bits)
    factor = 2 ** (len(inferred["net"]["channel_multiplier"]) - 1)
    patch_nums = scale_schedule(schedule, factor, image_size)
    native = patch_nums[-1] * factor if patch_nums and patch_nums[-1] > 0 else None
    size = image_size or native
    if native is not None and size != native:
        raise ValueError(
            f"image_size {size} does not fit the scale schedule ending in {patch_nums[-1]}: the last scale is the "
            f"whole latent, so images must be {patch_nums[-1]} x the downsample factor {factor} = {native} px"
        )
    notes = [
        f"scale schedule {patch_nums} (latent sides; the file carries none)"
        + (f": Infinity's 1:1 '{schedule}'" if isinstance(schedule, str) else ""),
        f"GroupNorm groups: {UPSTREAM_NORM_GROUPS} (upstream's for these widths; shapes do not tell)",
        "bits MSB-first: the file's lfq.mask is 2^(d-1) … 1" + (" (checked)" if masks else " (absent: assumed)"),
        "upstream's vae.decode clamps to [-1, 1]; vistok returns the decoder output unclamped",
        "training options of the BSQ quantizer (commitment / entropy weights) are vistok's defaults: the file does "
        "not carry Infinity's",
    ]
    if ignored:
        shown = ", ".join(ignored[:4]) + (f" and {len(ignored) - 4} more" if len(ignored) > 4 else "")
        notes.append(f"{len(ignored)} tensors upstream's load_cnn ignores were dropped ({shown})")
    config = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": inferred["net"],
        "quantizer": {"type": "multiscale_bsq", "codebook_dim": bits, "patch_nums": patch_nums},
    }
    return config, net, notes


def _preprocessing(size: int) -> Preprocessing:
    # tools/run_infinity.py transform: the shorter side to the target with LANCZOS (the other side int(r * t) for a
    # wider image, int(t / r) for a taller one, r = width / height),
    # centre crop with floor offsets, to_tensor, x + x - 1
    return Preprocessing(size, filter="lanczos", size_rule="aspect_truncate", crop_offset="floor",
                         follows="Infinity tools/run_infinity.py transform (shorter side LANCZOS + centre crop)")


@register_family(
    "infinity",
    origin=INFINITY,
    summary="Infinity's bitwise multi-scale BSQ VAE: infinity_vae_d*.pth (ckpt['vae']), either key layout",
    weights_help="auto (= vae, upstream's), vae or ema",
    options=(
        ConverterOption(
            "--scale-schedule",
            "scale_schedule",
            "the square scale schedule (the file carries none): one of Infinity's 1:1 pixel budgets "
            f"{', '.join(PIXEL_BUDGETS)} or latent sides such as 1,2,4,6,8,12,16; default: the one ending at "
            "--image-size (256 px: 0.06M)",
            metavar="BUDGET|P1,P2,...",
            parse=_parse_schedule,
        ),
    ),
    presets=PRESETS,
    entries=ENTRIES,
    preprocessing=_preprocessing,
)
def convert_infinity(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
    scale_schedule: str | Sequence[int] | None = None,
):
    """Convert an Infinity bitwise VAE file (``infinity_vae_d*.pth``) into a :class:`~vistok.VisTokenizer` (eval mode)
    with multi-scale bit-pattern indices.

    Args:
        checkpoint: the ``.pth`` file.
        weights: ``"auto"`` / ``"vae"`` (``ckpt["vae"]``, what upstream loads) or ``"ema"``.
        image_size: native resolution; default the schedule's last scale × the downsample factor (256 px with the
            default schedule).
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).
        scale_schedule: a pixel budget (``"0.06M"``, ``"0.25M"``, ``"0.60M"``, ``"1M"``) or a list of latent sides;
            see :func:`scale_schedule`.

    Raises :class:`CheckpointError` for a file that is not Infinity's VAE or that vistok's net cannot express,
    naming why, and ``ValueError`` for a schedule or image size that do not fit.
    """
    loaded = load_checkpoint(checkpoint, trust_checkpoint=trust_checkpoint)
    state_dict, used = _select_weights(loaded, weights)
    config, net, notes = infinity_tokenizer_config(state_dict, scale_schedule, image_size)
    if image_size is None:
        notes.append(f"image_size {config['image_size']}: the last scale times the downsample factor")
    summary = {"net": config["net"], "codebook_size": 2 ** config["quantizer"]["codebook_dim"],
               "codebook_dim": config["quantizer"]["codebook_dim"]}
    _, masks, ignored = split_state_dict(state_dict)
    extra = {"hub_repo": HUB_REPO, "key_layout": "wrapped" if is_wrapped(state_dict) else "plain",
             "dropped_entries": masks + ignored}
    config["metadata"] = conversion_metadata(INFINITY, "infinity", summary, checkpoint, used, extra, notes)
    config["source"] = f"converted from Infinity's bitwise VAE ({Path(checkpoint).name})"
    return load_converted(net, config, "Infinity bitwise VAE")

"""MaskBit's tokenizers (markweberdev/maskbit, ``ConvVQModel``): the LFQ bit tokenizers
``maskbit_tokenizer_{10,12,14,16,18}bit.bin`` and VQGAN+ (``vqgan_plus_12bit.bin``, a learned VQ codebook) → vistok.

The files are plain ``torch.save`` state dicts (no wrapper, no EMA copy, no config): ``encoder.*``, ``decoder.*`` and
either LFQ's two buffers (``quantize.bits_to_indices`` int32 [K], ``quantize.codebook`` [2^K, K], both derived from K)
or VQ's ``quantize.embedding.weight``. The architecture lives in the project's YAML (``configs/tokenizer/<name>.yaml``,
``model.vq_model``), which is on GitHub, not in the Hub repos: it is read from the tensor shapes here, and a YAML
found beside the file (``<stem>.yaml``, or ``config_file``) is cross-checked (the tensors win) and supplies the loss
options and the resolution.

The net is vistok's ``maskgit`` with ``downsample="conv"`` (``sample_with_conv: true``: a 3×3 stride-2 conv with
TensorFlow "same" padding between levels instead of MaskGIT's average pool). Its keys are renamed: ``res_blocks.j`` →
``block.j``, ``mid.res_blocks.j`` → ``mid.j``, and the decoder's ``up.k`` — numbered from the DEEPEST level in
MaskBit's (``legacy=False``) decoder — becomes ``up.(n − 1 − k)``, vistok's level number.

Conventions handled here (each checked against the reference vectors made by running upstream):

- Pixels: upstream encodes [0, 1] images and its decoder returns [0, 1] (raw, unclamped; evaluation clamps). The net
  has ``pixel_range="unit"``, so the tokenizer takes and returns [−1, 1]: ``encode(2x − 1)`` gives upstream's indices
  and ``(decode(indices) + 1) / 2`` is upstream's ``decode_tokens`` output.
- LFQ bits: bit_c = (z_c > 0) (z = 0 gives bit 0 and code −1), index = Σ_c bit_c · 2^c — latent channel 0 is the
  LEAST significant bit. The quantizer is ``lfq`` with ``bit_order="lsb_first"``, so indices are upstream's with the
  weights unchanged. MaskBit's generator splits each K-bit index into 2 groups of K/2 bits: group 0 is
  ``index & (2^(K/2) − 1)`` (channels 0..K/2−1), group 1 is ``index >> K/2``.
- VQGAN+: plain Euclidean nearest code over the raw codebook (no l2 normalisation): ``vq`` with ``l2_norm=False``.
- Indices: vistok's (B, h, w) grid; upstream's ``decode_tokens`` takes its row-major (B, h·w) flattening.

The older ``legacy=True`` decoder layout (MaskBit's copy of the MaskGIT tokenizer, ``maskgit_tokenizer.bin``) numbers
``up.i`` by level instead; it is recognised and refused (no reference vectors were made for it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from ..convert.containers import describe_layout, is_state_dict
from ..convert.magvit2_layout import load_converted
from ..convert.origins import Origin, reported_metric
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..convert.shapes import check_latent_convs, count_numbered, encoder_levels, tensor_shape
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import ConverterOption, conversion_metadata, register_family
from .maskgit import check_output_shortcuts
from .records import APACHE_2, ZooEntry

# markweberdev/maskbit (GitHub) and the markweber/* Hub repos; the Hub model cards state license apache-2.0.
MASKBIT = Origin(
    name="MaskBit",
    url="https://github.com/markweberdev/maskbit",
    license="apache-2.0",
    paper_title="MaskBit: Embedding-free Image Generation via Bit Tokens",
    paper_authors="Mark Weber, Lijun Yu, Qihang Yu, Xueqing Deng, Xiaohui Shen, Daniel Cremers, Liang-Chieh Chen",
    paper_venue="TMLR 2024 (arXiv:2409.16211)",
    paper_url="https://arxiv.org/abs/2409.16211",
    citation="""@article{weber2024maskbit,
  author    = {Mark Weber and Lijun Yu and Qihang Yu and Xueqing Deng and Xiaohui Shen and Daniel Cremers and Liang-Chieh Chen},
  title     = {MaskBit: Embedding-free Image Generation via Bit Tokens},
  journal   = {arXiv:2409.16211},
  year      = {2024}
}""",
)
MASKBIT_PAPER = "Weber et al., MaskBit: Embedding-free Image Generation via Bit Tokens (TMLR 2024)"
README_URL = "https://github.com/markweberdev/maskbit"
README = "markweberdev/maskbit README (Model Zoo, Detailed Results)"

LAYOUT = "MaskBit's ConvVQModel layout"
DEFAULT_IMAGE_SIZE = 256
UPSTREAM_NORM_GROUPS = 32
BITS_TO_INDICES = "quantize.bits_to_indices"
LFQ_CODEBOOK = "quantize.codebook"
VQ_CODEBOOK = "quantize.embedding.weight"
QUANTIZER_KEYS = (BITS_TO_INDICES, LFQ_CODEBOOK, VQ_CODEBOOK)

# configs/tokenizer/*.yaml (model.vq_model): hidden_channels 128, channel_mult [1,1,2,2,4], num_res_blocks 2,
# sample_with_conv true; f16, 256 px → 16x16 tokens.
RELEASE_NET = {"base_channels": 128, "channel_multiplier": [1, 1, 2, 2, 4], "num_res_blocks": 2}
# Loss options of the released YAMLs: commitment_cost 0.25, entropy_loss_weight 0.02 (LFQ; 0.0 for VQGAN+),
# entropy_loss_temperature 0.01, entropy_gamma 1.0. Upstream's LFQ entropy is per-sample minus gamma-weighted batch
# entropy of softmax(2<z, c>/T) over the ±1 codes: vistok's lfq entropy objective with diversity_weight = gamma. Its
# VQ loss is beta·||sg(e) − z||² + ||e − sg(z)||²: vistok's vq with commitment_weight beta, codebook_weight 1.
DEFAULT_LOSS = {"commitment_cost": 0.25, "entropy_loss_weight": 0.02, "entropy_loss_temperature": 0.01,
                "entropy_gamma": 1.0}
VQ_DEFAULT_ENTROPY_WEIGHT = 0.0
LFQ_BITS = (10, 12, 14, 16, 18)
# VQGAN+ releases: name → (codebook size, code dim) of configs/tokenizer/vqgan_plus_{10,12}bit.yaml.
VQGAN_PLUS = {"12bit": (4096, 64), "10bit": (1024, 256)}


def _reported(rfid: float, psnr: float, ssim: float, usage: float) -> tuple[dict[str, Any], ...]:
    return (
        reported_metric("rfid", rfid, README, README_URL, protocol="torch-fidelity"),
        reported_metric("psnr", psnr, README, README_URL, protocol="torch-fidelity"),
        reported_metric("ssim", ssim, README, README_URL, note="SSIM as MaskBit's evaluation computes it",
                        protocol="torch-fidelity"),
        reported_metric("codebook_usage", usage, README, README_URL, protocol="torch-fidelity"),
    )


# The README's "Detailed Results" table (ImageNet 256 validation, 16x16 tokens): rFID, PSNR, SSIM, codebook usage.
REPORTED_LFQ = {
    10: _reported(1.76, 20.8, 0.53, 1.0),
    12: _reported(1.52, 21.2, 0.55, 1.0),
    14: _reported(1.37, 21.5, 0.56, 1.0),
    16: _reported(1.29, 21.8, 0.58, 1.0),
    18: _reported(1.16, 22.0, 0.59, 0.5),
}
REPORTED_VQGAN_PLUS = {"12bit": _reported(1.39, 21.0, 0.55, 1.0), "10bit": _reported(1.67, 20.9, 0.53, 1.0)}


def lfq_release_file(bits: int) -> str:
    return f"maskbit_tokenizer_{bits}bit.bin"


def vqgan_plus_release_file(name: str) -> str:
    return f"vqgan_plus_{name}.bin"


# File name → (quantizer spec the release has, its reported numbers, its release name).
RELEASES: dict[str, tuple[dict[str, Any], tuple[dict[str, Any], ...], str]] = {
    **{
        lfq_release_file(bits): (
            {"type": "lfq", "codebook_dim": bits},
            REPORTED_LFQ[bits],
            f"MaskBit-Tokenizer ({bits} bits)",
        )
        for bits in LFQ_BITS
    },
    **{
        vqgan_plus_release_file(name): (
            {"type": "vq", "codebook_size": size, "codebook_dim": dim},
            REPORTED_VQGAN_PLUS[name],
            f"VQGAN+ ({name[:-3]} bits{', from the paper' if name == '10bit' else ''})",
        )
        for name, (size, dim) in VQGAN_PLUS.items()
    },
}

_DOWN_BLOCK = re.compile(r"^encoder\.down\.(\d+)\.res_blocks\.(\d+)\.(.+)$")
_DOWN_CONV = re.compile(r"^encoder\.down\.(\d+)\.down_conv\.(.+)$")
_MID_BLOCK = re.compile(r"^(encoder|decoder)\.mid\.res_blocks\.(\d+)\.(.+)$")
_UP_BLOCK = re.compile(r"^decoder\.up\.(\d+)\.res_blocks\.(\d+)\.(.+)$")
_UP_CONV = re.compile(r"^decoder\.up\.(\d+)\.upsample_conv\.(.+)$")


def _shape(state_dict: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    return tensor_shape(state_dict, key, what, LAYOUT)


def refuse_other_layouts(state_dict: Mapping[str, Any]) -> None:
    """:class:`CheckpointError` saying what the state dict is instead, unless it holds only MaskBit keys
    (``encoder.down.*.res_blocks.*`` / ``*.mid.res_blocks.*`` / ``decoder.up.*.res_blocks.*`` … and either LFQ's
    ``quantize.bits_to_indices`` + ``quantize.codebook`` or VQ's ``quantize.embedding.weight``)."""
    keys = list(state_dict)
    if not any(_DOWN_BLOCK.match(k) for k in keys) or not any(_UP_BLOCK.match(k) for k in keys):
        if any(re.match(r"^encoder\.down\.\d+\.block\.", k) for k in keys) and VQ_CODEBOOK in state_dict:
            raise CheckpointError(
                "this is not a MaskBit state dict: its blocks are named down.*.block.* (TiTok's port of MaskGIT's "
                "VQGAN, maskgit-vqgan-imagenet-f16-256.bin): convert it with `vistok convert maskgit`"
            )
        raise CheckpointError(
            f"this is not a MaskBit state dict (no encoder.down.*.res_blocks.* / decoder.up.*.res_blocks.* tensors): "
            f"it looks like {describe_layout(state_dict)}"
        )
    if any(".attn." in k or ".attention." in k for k in keys):
        raise CheckpointError("this is not a MaskBit state dict: it has attention layers, which MaskBit's VQGAN+ lacks")
    if any(k.startswith(("quant_conv.", "post_quant_conv.")) for k in keys):
        raise CheckpointError(
            "this is not a MaskBit state dict: it has quant_conv / post_quant_conv, which MaskBit's VQGAN+ does not "
            "have (Taming and IBQ VQGANs do: `vistok convert taming` / `vistok convert ibq`)"
        )
    lfq = BITS_TO_INDICES in state_dict or LFQ_CODEBOOK in state_dict
    vq = VQ_CODEBOOK in state_dict
    if lfq == vq:
        raise CheckpointError(
            "this MaskBit-style state dict has "
            + ("both LFQ buffers and a VQ codebook" if lfq else "no quantizer tensors")
            + f": expected either {BITS_TO_INDICES} + {LFQ_CODEBOOK} (lookup-free) or {VQ_CODEBOOK} (VQGAN+)"
        )
    other = sorted(k for k in keys if not k.startswith(("encoder.", "decoder.")) and k not in QUANTIZER_KEYS)
    if other:
        raise CheckpointError(
            f"this is not a plain MaskBit state dict: besides encoder.*, decoder.* and quantize.* it holds "
            f"{len(other)} other tensors ({', '.join(other[:5])})"
        )


def infer_maskbit_net(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """``{"num_channels", "quantizer": {type "lfq" | "vq", codebook_dim[, codebook_size]}, "net": {type "maskgit",
    base_channels, channel_multiplier, num_res_blocks, latent_channels, norm_groups, pixel_range "unit",
    downsample}}`` from the shapes of a MaskBit state dict (works on meta tensors). Raises :class:`CheckpointError`
    naming the first inconsistency, in upstream's key names."""
    base, num_channels = _shape(state_dict, "encoder.conv_in.weight", "encoder input conv")[:2]
    if "encoder.conv_in.bias" in state_dict:
        raise CheckpointError("encoder.conv_in has a bias; MaskBit's encoder input conv has none")
    down: dict[int, set[int]] = {}
    up: dict[int, set[int]] = {}
    mids: dict[str, set[int]] = {"encoder": set(), "decoder": set()}
    down_convs: set[int] = set()
    up_convs: set[int] = set()
    for key in state_dict:
        if m := _DOWN_BLOCK.match(key):
            down.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        elif m := _UP_BLOCK.match(key):
            up.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        elif m := _MID_BLOCK.match(key):
            mids[m.group(1)].add(int(m.group(2)))
        elif m := _DOWN_CONV.match(key):
            down_convs.add(int(m.group(1)))
        elif m := _UP_CONV.match(key):
            up_convs.add(int(m.group(1)))
    num_res_blocks, widths = encoder_levels(state_dict, down, base, "hidden_channels", LAYOUT, block="res_blocks")
    levels = len(widths)
    if down_convs and down_convs != set(range(levels - 1)):
        raise CheckpointError(
            f"encoder down_conv at levels {sorted(down_convs)}; expected one at every level but the last "
            f"(0..{levels - 2}) with sample_with_conv, or none (average pooling)"
        )
    for i in sorted(down_convs):
        shape = _shape(state_dict, f"encoder.down.{i}.down_conv.weight", "encoder downsampling conv")
        if shape != (widths[i], widths[i], 3, 3) or f"encoder.down.{i}.down_conv.bias" not in state_dict:
            raise CheckpointError(
                f"encoder.down.{i}.down_conv has weight {shape}; expected a 3x3 conv with bias keeping the level's "
                f"{widths[i]} channels"
            )
    for side in ("encoder", "decoder"):
        mid = count_numbered(mids[side], f"{side}.mid.res_blocks")
        if mid != num_res_blocks:
            raise CheckpointError(f"{side} has {mid} mid blocks; expected num_res_blocks = {num_res_blocks}")
    if count_numbered(set(up), "decoder stages (decoder.up.*)") != levels:
        raise CheckpointError(f"the decoder has {len(up)} stages, the encoder {levels} levels")
    if up_convs == set(range(1, levels)) and levels > 1:
        raise CheckpointError(
            "decoder.up.0 has no upsample_conv and decoder.up.1.. have one: this is MaskBit's legacy decoder layout "
            "(legacy=True, used for its copy of the MaskGIT tokenizer), where up.i is level i; vistok converts "
            "MaskBit's legacy=False layout (up.0 = the deepest level) only"
        )
    if up_convs != set(range(levels - 1)):
        raise CheckpointError(
            f"decoder upsample_conv at stages {sorted(up_convs)}; expected one at every stage but the last "
            f"(0..{levels - 2}): decoder.up.0 is the deepest level in MaskBit's layout"
        )
    for k in range(levels):
        level = levels - 1 - k
        count = count_numbered(up[k], f"decoder.up.{k}.res_blocks")
        if count != num_res_blocks:
            raise CheckpointError(f"decoder.up.{k} has {count} residual blocks; the encoder levels have {num_res_blocks}")
        width = _shape(state_dict, f"decoder.up.{k}.res_blocks.{count - 1}.conv2.weight", "decoder width")[0]
        if width != widths[level]:
            raise CheckpointError(
                f"decoder.up.{k} (level {level}: up.0 is the deepest) is {width} wide; the encoder's level {level} "
                f"is {widths[level]}"
            )
    latent = check_latent_convs(state_dict, widths[-1], num_channels, LAYOUT)
    if VQ_CODEBOOK in state_dict:
        codebook = _shape(state_dict, VQ_CODEBOOK, "VQ codebook")
        if len(codebook) != 2 or codebook[1] != latent:
            raise CheckpointError(
                f"the codebook {VQ_CODEBOOK} has shape {codebook}; expected (codebook_size, {latent}): VQGAN+ "
                "quantizes the encoder's token_size output directly"
            )
        quantizer = {"type": "vq", "codebook_size": codebook[0], "codebook_dim": latent}
    else:
        bits = _shape(state_dict, BITS_TO_INDICES, "LFQ bit weights")
        table = _shape(state_dict, LFQ_CODEBOOK, "LFQ code table")
        if bits != (latent,) or table != (2**latent, latent):
            raise CheckpointError(
                f"LFQ buffers {BITS_TO_INDICES} {bits} and {LFQ_CODEBOOK} {table} do not fit the encoder's {latent} "
                f"bit channels (expected ({latent},) and ({2**latent}, {latent}))"
            )
        quantizer = {"type": "lfq", "codebook_dim": latent}
    return {
        "num_channels": num_channels,
        "quantizer": quantizer,
        "net": {
            "type": "maskgit",
            "base_channels": base,
            "channel_multiplier": [w // base for w in widths],
            "num_res_blocks": num_res_blocks,
            "latent_channels": latent,
            "norm_groups": UPSTREAM_NORM_GROUPS,
            "pixel_range": "unit",
            "downsample": "conv" if down_convs else "avg_pool",
        },
    }


def check_lfq_buffers(state_dict: Mapping[str, torch.Tensor]) -> None:
    """:class:`CheckpointError` unless the LFQ buffers are upstream's, i.e. LSB first: ``bits_to_indices`` =
    2^[0..K−1] and ``codebook`` row i = the ±1 bits of i, channel 0 least significant. Both are derived from K, and
    vistok's ``lfq`` (``bit_order="lsb_first"``) rebuilds them; other values would mean another index convention.
    Meta tensors are not checked."""
    bits, table = state_dict[BITS_TO_INDICES], state_dict[LFQ_CODEBOOK]
    if bits.is_meta or table.is_meta:
        return
    k = bits.shape[0]
    powers = 2 ** torch.arange(k, dtype=torch.int64)
    if not torch.equal(bits.long(), powers):
        raise CheckpointError(
            f"{BITS_TO_INDICES} is {bits.tolist()}; MaskBit's LFQ has 2^c for channel c ({powers.tolist()}): "
            "channel 0 is the least significant bit"
        )
    expected = ((torch.arange(2**k).unsqueeze(-1) & powers) != 0).float() * 2 - 1
    if not torch.equal(table.float(), expected):
        raise CheckpointError(
            f"{LFQ_CODEBOOK} is not MaskBit's code table (row i = the +/-1 bits of i, channel 0 least significant)"
        )


def maskbit_to_vistok(state_dict: Mapping[str, Any], levels: int) -> dict[str, Any]:
    """Upstream keys → vistok ``maskgit`` keys: ``res_blocks.j`` → ``block.j``, ``mid.res_blocks.j`` → ``mid.j``,
    the decoder's ``up.k`` → ``up.(levels − 1 − k)`` (MaskBit numbers decoder stages from the deepest), the VQ
    codebook → ``quantizer.codebook``; LFQ's derived buffers are dropped (the quantizer rebuilds them)."""
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        if key in (BITS_TO_INDICES, LFQ_CODEBOOK):
            continue
        if key == VQ_CODEBOOK:
            out["quantizer.codebook"] = value
        elif m := _DOWN_BLOCK.match(key):
            out[f"encoder.down.{m.group(1)}.block.{m.group(2)}.{m.group(3)}"] = value
        elif m := _MID_BLOCK.match(key):
            out[f"{m.group(1)}.mid.{m.group(2)}.{m.group(3)}"] = value
        elif m := _UP_BLOCK.match(key):
            out[f"decoder.up.{levels - 1 - int(m.group(1))}.block.{m.group(2)}.{m.group(3)}"] = value
        elif m := _UP_CONV.match(key):
            out[f"decoder.up.{levels - 1 - int(m.group(1))}.upsample_conv.{m.group(2)}"] = value
        else:  # conv_in, norm_out, conv_out and encoder.down.i.down_conv keep their names
            out[key] = value
    return out


# ------------------------------------------------------------------------------------------------ the YAML
def find_config_file(checkpoint: Path) -> Path | None:
    """The project's YAML beside the checkpoint, named like it (``maskbit_tokenizer_12bit.yaml`` beside
    ``maskbit_tokenizer_12bit.bin``), or ``None``."""
    candidate = checkpoint.with_suffix(".yaml")
    return candidate if candidate.is_file() else None


def read_config(path: Path) -> dict[str, Any]:
    """``{"vq_model": {...}, "resolution": int?}`` from a MaskBit YAML (``configs/tokenizer/*.yaml``:
    ``model.vq_model`` and ``dataset.preprocessing.resolution``); :class:`CheckpointError` when it is not one."""
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(f"cannot read the MaskBit config {str(path)!r}: {err}") from err
    model = loaded.get("model") if isinstance(loaded, dict) else None
    vq_model = model.get("vq_model") if isinstance(model, dict) else None
    if not isinstance(vq_model, dict):
        raise CheckpointError(f"{str(path)!r} is not a MaskBit tokenizer config: expected model.vq_model")
    out: dict[str, Any] = {"vq_model": vq_model}
    dataset = loaded.get("dataset")
    preprocessing = dataset.get("preprocessing") if isinstance(dataset, dict) else None
    resolution = preprocessing.get("resolution") if isinstance(preprocessing, dict) else None
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        out["resolution"] = resolution
    return out


def check_config(vq_model: Mapping[str, Any], inferred: Mapping[str, Any]) -> list[str]:
    """Notes for every architecture value of the YAML's ``model.vq_model`` that the tensors contradict (the tensors
    win); :class:`CheckpointError` when it configures a decoder vistok would build differently."""
    net, quantizer = inferred["net"], inferred["quantizer"]
    expected: dict[str, Any] = {
        "hidden_channels": net["base_channels"],
        "channel_mult": net["channel_multiplier"],
        "num_resolutions": len(net["channel_multiplier"]),
        "num_res_blocks": net["num_res_blocks"],
        "token_size": net["latent_channels"],
        "num_channels": inferred["num_channels"],
        "sample_with_conv": net["downsample"] == "conv",
        "quantizer_type": "lookup-free" if quantizer["type"] == "lfq" else "lookup",
        "codebook_size": quantizer.get("codebook_size", 2 ** net["latent_channels"]),
    }
    blocks_decoder = vq_model.get("num_res_blocks_decoder")
    if blocks_decoder is not None and blocks_decoder != net["num_res_blocks"]:
        raise CheckpointError(
            f"the config sets num_res_blocks_decoder={blocks_decoder!r} but the decoder's tensors have "
            f"{net['num_res_blocks']} blocks per stage"
        )
    if vq_model.get("use_l2_normalisation"):
        raise CheckpointError(
            "the config sets use_l2_normalisation: true (cosine code lookup); no MaskBit release does, and this "
            "converter builds the Euclidean lookup the releases use"
        )
    notes = []
    for name, actual in expected.items():
        if name in vq_model:
            value = list(vq_model[name]) if name == "channel_mult" else vq_model[name]
            if value != actual:
                notes.append(f"the config says {name}={vq_model[name]!r} but the tensors give {actual!r}; the tensors win")
    return notes


def quantizer_spec(inferred: Mapping[str, Any], vq_model: Mapping[str, Any]) -> dict[str, Any]:
    """vistok's quantizer for the inferred one, with the YAML's loss options (else the released YAMLs')."""
    quantizer = dict(inferred["quantizer"])
    loss = {**DEFAULT_LOSS, **{k: vq_model[k] for k in DEFAULT_LOSS if k in vq_model}}
    if quantizer["type"] == "lfq":
        quantizer.update(
            commitment_weight=float(loss["commitment_cost"]),
            entropy_weight=float(loss["entropy_loss_weight"]),
            diversity_weight=float(loss["entropy_gamma"]),
            entropy_temperature=float(loss["entropy_loss_temperature"]),
            bit_order="lsb_first",
        )
    else:
        quantizer.update(
            l2_norm=False,
            commitment_weight=float(loss["commitment_cost"]),
            codebook_weight=1.0,
            entropy_weight=float(vq_model.get("entropy_loss_weight", VQ_DEFAULT_ENTROPY_WEIGHT)),
            entropy_temperature=float(loss["entropy_loss_temperature"]),
        )
    return quantizer


# --------------------------------------------------------------------------------------- presets and zoo entries
LFQ_NOTE = (
    "Token ids are upstream's: index = sum_c bit_c * 2^c, latent channel 0 the least significant bit (quantizer lfq, "
    "bit_order 'lsb_first'); bit_c = (z_c > 0), so z = 0 gives bit 0. MaskBit's generator splits each id into 2 "
    "groups of K/2 bits: id & (2^(K/2) - 1) (channels 0..K/2-1) and id >> K/2."
)
PIXEL_NOTE = (
    "Upstream works on [0, 1] pixels; the converted tokenizer takes and returns [-1, 1] like every vistok tokenizer "
    "(net option pixel_range 'unit') and does not clamp (upstream's evaluation clamps to [0, 1])."
)
FILE_NOTE = (
    "A plain state dict without a config; the architecture (configs/tokenizer/*.yaml on GitHub) is read from the "
    "tensor shapes. No EMA copy: the file's weights are the released model."
)
RESEARCH_NOTE = "markweberdev/maskbit's README: trained on ImageNet only, for research purposes."


def _preset(name: str, quantizer: dict[str, Any], description: str, yaml_name: str) -> Preset:
    return Preset(
        name=name,
        description=description,
        config={
            "image_size": 256,
            "net": {
                "type": "maskgit",
                **RELEASE_NET,
                "latent_channels": quantizer["codebook_dim"],
                "pixel_range": "unit",
                "downsample": "conv",
            },
            "quantizer": quantizer_spec({"quantizer": quantizer}, {}),
        },
        source=f"{MASKBIT_PAPER}; markweberdev/maskbit configs/tokenizer/{yaml_name}.yaml",
        tags=("imagenet256",),
    )


def _lfq_preset(bits: int) -> Preset:
    return _preset(
        f"maskbit-imagenet256-{bits}bit",
        {"type": "lfq", "codebook_dim": bits},
        f"MaskBit tokenizer (VQGAN+ conv net, LFQ {bits} bits, LSB first), 256px → 16x16 tokens of {bits} bits",
        f"maskbit_tokenizer_{bits}bit",
    )


def _vqgan_plus_preset(name: str) -> Preset:
    size, dim = VQGAN_PLUS[name]
    return _preset(
        f"vqgan-plus-imagenet256-{name}",
        {"type": "vq", "codebook_size": size, "codebook_dim": dim},
        f"MaskBit's VQGAN+ (conv net, plain VQ), 256px → 16x16 tokens, codebook {size} x {dim}",
        f"vqgan_plus_{name}",
    )


def _lfq_entry(bits: int) -> ZooEntry:
    notes = [LFQ_NOTE, PIXEL_NOTE, FILE_NOTE, RESEARCH_NOTE]
    if bits == 18:
        notes.append("MaskBit's README: in practice only 17 of the 18 bits are used, one bit never changes "
                     "(hence the reported codebook usage of 0.5).")
    return ZooEntry(
        name=f"maskbit-imagenet256-{bits}bit",
        description=f"MaskBit tokenizer, LFQ {bits} bits, 256px → 16x16 tokens, ImageNet",
        origin=MASKBIT,
        license=APACHE_2,
        converter="maskbit",
        image_size=256,
        repo_id=f"markweber/maskbit_tokenizer_{bits}bit",
        filenames=(lfq_release_file(bits),),
        preset=f"maskbit-imagenet256-{bits}bit",
        reported_metrics=REPORTED_LFQ[bits],
        notes=tuple(notes),
    )


VQ_NOTE = "Codes are the Euclidean nearest neighbours in the raw codebook (quantizer vq, no l2 normalisation)."


def _vqgan_plus_12bit_entry() -> ZooEntry:
    return ZooEntry(
        name="vqgan-plus-imagenet256-12bit",
        description="MaskBit's VQGAN+ (12 bits: codebook 4096 x 64), 256px → 16x16 tokens, ImageNet",
        origin=MASKBIT,
        license=APACHE_2,
        converter="maskbit",
        image_size=256,
        repo_id="markweber/vqgan_plus_12bit",
        filenames=(vqgan_plus_release_file("12bit"),),
        preset="vqgan-plus-imagenet256-12bit",
        reported_metrics=REPORTED_VQGAN_PLUS["12bit"],
        notes=(VQ_NOTE, PIXEL_NOTE, FILE_NOTE, RESEARCH_NOTE),
    )


def _vqgan_plus_paper_entry() -> ZooEntry:
    return ZooEntry(
        name="vqgan-plus-imagenet256-10bit",
        description="MaskBit's VQGAN+ from the paper (10 bits: codebook 1024 x 256), 256px → 16x16 tokens, ImageNet",
        origin=MASKBIT,
        license=APACHE_2,
        converter="maskbit",
        image_size=256,
        preset="vqgan-plus-imagenet256-10bit",
        reported_metrics=REPORTED_VQGAN_PLUS["10bit"],
        manual_download=(
            "MaskBit's README links this model to https://huggingface.co/markweber/vqgan_plus_paper, whose weight "
            "file could not be confirmed (the snapshot seen held only a README), so the zoo does not fetch it. "
            "Download its .bin (configs/tokenizer/vqgan_plus_10bit.yaml describes it), then run `vistok convert "
            "maskbit <file>.bin vqgan-plus-imagenet256-10bit` and load the folder with "
            "VisTokenizer.from_pretrained('vqgan-plus-imagenet256-10bit')."
        ),
        notes=(VQ_NOTE, PIXEL_NOTE, FILE_NOTE, RESEARCH_NOTE,
               "Not fetched automatically: the weight file of markweber/vqgan_plus_paper is unconfirmed."),
    )


def _preprocessing(size: int) -> Preprocessing:
    # data/webdataset_reader.py eval_transform: torchvision Resize(shorter side, the config's interpolation) +
    # CenterCrop + ToTensor; every configs/tokenizer/*.yaml (what scripts/eval_tokenizer.py reads) says bilinear.
    return Preprocessing(
        size,
        filter="bilinear",
        size_rule="truncate",
        crop_offset="round",
        follows="MaskBit's eval_transform with the tokenizer configs' interpolation (torchvision Resize BILINEAR "
        "+ CenterCrop)",
    )


@register_family(
    "maskbit",
    origin=MASKBIT,
    summary="MaskBit tokenizers (LFQ bit tokens) and VQGAN+ (markweber/*): plain .bin state dict, with its YAML "
    "config when found beside it",
    weights_help="auto (= state_dict) or state_dict",
    options=(
        ConverterOption(
            "--config-file",
            "config_file",
            "the project's YAML config (configs/tokenizer/<name>.yaml); default <checkpoint stem>.yaml beside the "
            "file, if any. It supplies the loss options and resolution; the architecture follows the tensors",
            metavar="YAML",
        ),
    ),
    presets=(*(_lfq_preset(bits) for bits in LFQ_BITS), *(_vqgan_plus_preset(name) for name in VQGAN_PLUS)),
    entries=(*(_lfq_entry(bits) for bits in LFQ_BITS), _vqgan_plus_12bit_entry(), _vqgan_plus_paper_entry()),
    preprocessing=_preprocessing,
)
def convert_maskbit(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
    config_file: str | os.PathLike | None = None,
):
    """Convert a MaskBit tokenizer (LFQ) or VQGAN+ state dict into a :class:`~vistok.VisTokenizer` (eval mode) that
    takes and returns [−1, 1] images.

    Args:
        checkpoint: the ``.bin`` file (``maskbit_tokenizer_12bit.bin``, ``vqgan_plus_12bit.bin``, …).
        weights: ``"auto"`` or ``"state_dict"``: the file holds one set of weights.
        image_size: native resolution recorded in the config; default the YAML's resolution, else 256.
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).
        config_file: the project's YAML; default ``<stem>.yaml`` beside the checkpoint, if any.

    Raises :class:`CheckpointError` for a file that is not a plain MaskBit state dict (naming what it looks like),
    and ``ValueError`` for another ``weights`` value or an ``image_size`` that is not a multiple of the downsample
    factor.
    """
    if weights not in ("auto", "state_dict"):
        raise ValueError(f"weights={weights!r}: a MaskBit file is a plain state dict with one set of weights; use 'auto'")
    path = Path(checkpoint)
    loaded = load_checkpoint(path, trust_checkpoint=trust_checkpoint)
    if not is_state_dict(loaded):
        found = sorted(map(str, loaded))[:8] if isinstance(loaded, Mapping) else type(loaded).__name__
        raise CheckpointError(
            f"this is not a MaskBit file: expected a plain state dict (encoder.*, decoder.*, quantize.*), found {found}"
        )
    refuse_other_layouts(loaded)
    inferred = infer_maskbit_net(loaded)
    check_output_shortcuts(loaded)
    net, quantizer_found = inferred["net"], inferred["quantizer"]
    if quantizer_found["type"] == "lfq":
        check_lfq_buffers(loaded)

    notes = [
        "pixel range: upstream works on [0, 1] images; the net's pixel_range='unit' maps vistok's [-1, 1] input to "
        "[0, 1] and the decoder's [0, 1] output back to [-1, 1], so (reconstruction + 1) / 2 is upstream's raw "
        "decoder output; vistok does not clamp (upstream's evaluation clamps to [0, 1])",
        "keys: res_blocks.j -> block.j, mid.res_blocks.j -> mid.j, decoder up.k (k = 0 the deepest stage) -> "
        "up.(levels - 1 - k); the net is maskgit with downsample='conv' (sample_with_conv)"
        if net["downsample"] == "conv"
        else "keys: res_blocks.j -> block.j, mid.res_blocks.j -> mid.j, decoder up.k (k = 0 the deepest stage) -> "
        "up.(levels - 1 - k); no down_conv tensors: 2x2 average pooling (sample_with_conv false)",
        "indices: vistok's (B, h, w) grid; upstream's decode_tokens takes its row-major (B, h*w) flattening",
        f"GroupNorm groups: {UPSTREAM_NORM_GROUPS} assumed (upstream's; shapes do not tell)",
        "LFQ: index = sum_c bit_c * 2^c (channel 0 least significant, bit_order='lsb_first'), bit_c = (z_c > 0); "
        "the buffers quantize.bits_to_indices / quantize.codebook were checked and dropped (the quantizer rebuilds "
        "them)"
        if quantizer_found["type"] == "lfq"
        else "VQ: Euclidean nearest code over the raw codebook (no l2 normalisation), as SimpleVectorizer",
    ]
    config_path = Path(config_file) if config_file is not None else find_config_file(path)
    yaml_config: dict[str, Any] = {}
    if config_path is not None:
        try:
            yaml_config = read_config(config_path)
        except CheckpointError as err:
            if config_file is not None:
                raise
            notes.append(f"ignored {config_path.name} found beside the checkpoint: {err}")
            config_path = None
        else:
            notes += check_config(yaml_config["vq_model"], inferred)
    vq_model = yaml_config.get("vq_model", {})
    if config_path is None:
        notes.append(
            "no YAML config: the loss options of the released configs assumed (commitment_cost 0.25, "
            + ("entropy_loss_weight 0.02, " if quantizer_found["type"] == "lfq" else "entropy_loss_weight 0, ")
            + "temperature 0.01, gamma 1.0)"
        )
    quantizer = quantizer_spec(inferred, vq_model)

    factor = 2 ** (len(net["channel_multiplier"]) - 1)
    size = image_size or yaml_config.get("resolution")
    if size is None:
        size = DEFAULT_IMAGE_SIZE
        notes.append(f"image_size {size} assumed (the releases'; pass image_size to change)")
    if size % factor:
        raise ValueError(f"image_size {size} must be a multiple of the downsample factor {factor}")

    codebook_size = quantizer_found.get("codebook_size", 2 ** net["latent_channels"])
    summary = {"net": net, "codebook_size": codebook_size, "codebook_dim": net["latent_channels"]}
    extra: dict[str, Any] = {"hub_repos": "https://huggingface.co/markweber"}
    if config_path is not None:
        extra["config_file"] = config_path.name
    metadata = conversion_metadata(MASKBIT, "maskbit", summary, path, "state_dict", extra, notes)
    release = RELEASES.get(path.name)
    if release is not None and _is_release_architecture(net, quantizer_found, release[0]):
        metadata["origin"]["release"] = release[2]
        metadata["reported_metrics"] = [
            {**m, "applies_to": f"MaskBit's {release[2]} as released by its authors"} for m in release[1]
        ]
    config = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from MaskBit ({path.name})",
        "metadata": metadata,
    }
    levels = len(net["channel_multiplier"])
    return load_converted(maskbit_to_vistok(loaded, levels), config, "MaskBit")


def _is_release_architecture(net: Mapping[str, Any], found: Mapping[str, Any], release: Mapping[str, Any]) -> bool:
    """Whether the inferred net and quantizer are a release's (so that its reported numbers apply)."""
    return (
        {key: net[key] for key in RELEASE_NET} == RELEASE_NET
        and net["downsample"] == "conv"
        and all(found.get(key) == value for key, value in release.items())
    )

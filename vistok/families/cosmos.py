"""NVIDIA Cosmos Tokenizer's discrete image tokenizers (Cosmos DI8x8 / DI16x16: Haar wavelets, conv net, FSQ) → vistok.

The releases (``nvidia/Cosmos-0.1-Tokenizer-DI8x8`` / ``-DI16x16``, first published as ``nvidia/Cosmos-Tokenizer-DI*``)
are three TorchScript archives — ``encoder.jit``, ``decoder.jit``, ``autoencoder.jit`` — with bfloat16 weights, and a
config.json that says only ``{"architectures": ["CosmosTokenizer"]}``: no plain state dict, no architecture. vistok
converts what NVIDIA released, the ``.jit`` files, not upstream's "torch mode" (which rebuilds the model from its
Python config and loads the archives' weights into it, keeping its own float32 Haar taps).

- **Reading.** An archive is read with :func:`vistok.convert.torchscript.read_torchscript`: its ``data.pkl`` is
  unpickled with an allow-list (module classes become inert records, tensors are rebuilt from the archive's own
  storages) and its code is never loaded or run. ``autoencoder.jit`` holds every weight; ``encoder.jit`` (encoder,
  quant_conv, quantizer) and ``decoder.jit`` (``inv_quant.quantizer``, post_quant_conv, decoder) together hold the
  same, so either the one file or the pair converts. A plain ``state_dict()`` of upstream's Python model (same keys,
  no buffers) converts too.
- **Buffers the Python model does not save.** A traced archive's state dict also carries the non-persistent
  buffers: ``{encoder.patcher,decoder.unpatcher}.wavelets`` (the Haar tap 1/√2 as bfloat16 0.70703125) and
  ``._arange``, and the FSQ's ``_levels``, ``_basis`` (int32) and ``implicit_codebook`` (64000 × 6, bfloat16; named
  ``inv_quant.quantizer.*`` in decoder.jit). They are checked — the levels give the quantizer, the basis must be
  upstream's channel-0-least-significant one and the codebook its codes — and dropped: vistok's ``fsq`` rebuilds
  them and the ``cosmos`` net computes the Haar transform with the exact 1/√2 (the bfloat16 tap would move a
  reconstruction by ~1e-3).
- **bfloat16 weights** are upcast exactly to float32; vistok computes in float32, which is what the reference
  vectors hold (the archives as shipped run only in bfloat16 and give other indices at ~3% of positions).
- **Indices**: FSQ levels [8, 8, 8, 5, 5, 5] (64,000 codes), index = Σ_c digit_c · basis_c with basis
  (1, 8, 64, 512, 2560, 12800): channel 0 is the least significant digit, indices are 0-based ([0, 63999]; the
  upstream README's "[1..64K]" is loose) — vistok's ``fsq`` convention, so the ids are upstream's unchanged.
  Upstream returns them as int32 (B, h, w); vistok as int64 (B, h, w).
- The net is vistok's ``cosmos`` (see :mod:`vistok.nets.cosmos`), whose module names are upstream's, so the keys are
  kept as they are.
"""

from __future__ import annotations

import math
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
from ..convert.torchscript import is_torchscript_archive, read_torchscript
from ..registry import Preset
from .base import conversion_metadata, register_family
from .records import License, ZooEntry

# The code is Apache 2.0, the weights are under the NVIDIA Open Model License: "other" is what a converted
# tokenizer's card states (as for Janus); the weights' licence is recorded beside it.
COSMOS = Origin(
    name="NVIDIA Cosmos Tokenizer",
    url="https://github.com/NVIDIA/Cosmos-Tokenizer",
    license="other",
    paper_title="Cosmos World Foundation Model Platform for Physical AI",
    paper_authors="NVIDIA (Niket Agarwal et al.)",
    paper_venue="arXiv:2501.03575 (2025)",
    paper_url="https://arxiv.org/abs/2501.03575",
    citation="""@article{agarwal2025cosmos,
  title={Cosmos World Foundation Model Platform for Physical AI},
  author={NVIDIA et. al.},
  journal={arXiv preprint arXiv:2501.03575},
  year={2025}
}""",
)
# The Hub repos' licence (model cards: license other, nvidia-open-model-license). The model cards state: "Models are
# commercially usable. You are free to create and distribute Derivative Models. NVIDIA does not claim ownership to
# any outputs generated using the Models or Derivative Models." No use-based restrictions: permissive in vistok's sense.
NVIDIA_OPEN_MODEL_LICENSE = License(
    "other",
    "NVIDIA Open Model License",
    "https://developer.download.nvidia.com/licenses/nvidia-open-model-license-agreement-june-2024.pdf",
)
LICENSE_NOTE = (
    "Weights licence: NVIDIA Open Model License — commercial use is allowed: NVIDIA's model cards state that the "
    "models are commercially usable, that derivative models may be created and distributed, and that NVIDIA claims "
    "no ownership of outputs. It is not an OSI open-source licence and carries conditions of its own (read it before "
    "shipping). The code (NVIDIA/Cosmos-Tokenizer) is Apache 2.0."
)

LAYOUT = "the Cosmos DI layout"
ARCHIVE_FILES = ("autoencoder.jit", "encoder.jit", "decoder.jit")
DEFAULT_IMAGE_SIZE = 256
UPSTREAM_NORM_GROUPS = 32
# TokenizerConfigs["DI"]: FSQ levels and the Haar patching of every DI release.
RELEASE_LEVELS = [8, 8, 8, 5, 5, 5]
HAAR_TAP = 1 / math.sqrt(2)
# Non-persistent buffers the traced archives carry (upstream key → what they are); checked, then dropped.
PATCHER_BUFFERS = ("encoder.patcher.wavelets", "encoder.patcher._arange", "decoder.unpatcher.wavelets",
                   "decoder.unpatcher._arange")
FSQ_BUFFERS = ("quantizer._levels", "quantizer._basis", "quantizer.implicit_codebook")
DECODER_JIT_QUANTIZER = "inv_quant.quantizer."

# TokenizerConfigs["DI"] with spatial_compression 8 / 16: channels 128, channels_mult [2, 4, 4], num_res_blocks 2,
# z_channels 256, patch_size 4 (haar), levels [8, 8, 8, 5, 5, 5]; 79,004,342 / 83,723,958 parameters.
RELEASE_NET = {"base_channels": 128, "channel_multiplier": [2, 4, 4], "num_res_blocks": 2, "latent_channels": 256,
               "patch_size": 4}
COMPRESSIONS = (8, 16)

README = "NVIDIA Cosmos paper (arXiv:2501.03575), discrete image tokenizers on ImageNet-1K"
# Where 4.57 comes from is not confirmed. Searched: NVIDIA's Cosmos tokenizer README (NVIDIA/Cosmos
# cosmos1/models/tokenizer/README.md, also vendored in NVIDIA/NeMo), the first NVIDIA/Cosmos-Tokenizer README, the
# nvidia/Cosmos-*-Tokenizer-DI* Hub model cards and NVIDIA's tokenizer web page: none gives an ImageNet rFID for the DI
# tokenizers or an evaluation protocol for one (the README's "Evaluation" is a DAVIS video table, its "Performance" a
# timing table on one A100). The same number is SEED-Voken's own measurement of Cosmos, so the protocol stays
# unknown and the note quotes the closest sources.
REPORTED = {
    16: (
        reported_metric(
            "rfid",
            4.57,
            README,
            COSMOS.paper_url,
            note="value as vistok issue 22 catalogues it; no NVIDIA source found that states it (Cosmos tokenizer "
            "README, Hub model cards, NVIDIA's tokenizer page searched)",
            protocol="unknown",
            protocol_note="NVIDIA's Cosmos tokenizer README evaluates on DAVIS ('Quantitative comparision of our "
            "tokenizer and previous tokenizers on DAVIS (Perazzi et al., 2016) dataset') and states no ImageNet "
            "protocol. 4.57 is the rFID (In1k) that SEED-Voken's docs/IBQ.md lists for Cosmos FSQ 16x at 256x256, "
            "measured with SEED-Voken's evaluation (vistok's seed-voken protocol); Open-MAGVIT2 (arXiv:2409.04410 "
            "v2) compares with Cosmos at 'ImageNet original resolution' instead ('1.93 vs. 0.78 rFID'). Which "
            "protocol produced 4.57 was not confirmed",
        ),
    ),
    8: (),
}

_BLOCK = re.compile(r"^(encoder\.down|decoder\.up)\.(\d+)\.block\.(\d+)\.")
_RESAMPLE = re.compile(r"^(encoder\.down|decoder\.up)\.(\d+)\.(downsample|upsample)\.conv\.weight$")
_LEVEL_ATTENTION = re.compile(r"^(encoder\.down|decoder\.up)\.(\d+)\.attn\.")


def _shape(state_dict: Mapping[str, Any], key: str, what: str) -> tuple[int, ...]:
    return tensor_shape(state_dict, key, what, LAYOUT)


# ----------------------------------------------------------------------------------------------- reading the files
def read_release(
    path: str | os.PathLike, trust_checkpoint: bool = False
) -> tuple[dict[str, torch.Tensor], list[str], list[Path]]:
    """``(tensors in autoencoder.jit's key names, notes, files read)`` from ``path``: ``autoencoder.jit``,
    ``encoder.jit`` or ``decoder.jit`` (the other of the pair is read from beside it), a folder holding them, or a
    plain ``torch.save`` state dict of upstream's model (read with :func:`~vistok.convert.load_checkpoint`'s
    allow-list unless ``trust_checkpoint``). Nothing from a TorchScript archive is run.

    Raises :class:`CheckpointError` for another kind of file, and for an encoder or decoder archive without its
    partner (each holds half of the weights)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Cosmos checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        present = [name for name in ARCHIVE_FILES if (path / name).is_file()]
        if not present:
            raise CheckpointError(
                f"{str(path)!r} holds none of {', '.join(ARCHIVE_FILES)}: expected a Cosmos DI release folder"
            )
        path = path / present[0]
    if not is_torchscript_archive(path):
        loaded = load_checkpoint(path, trust_checkpoint=trust_checkpoint)
        if not is_state_dict(loaded) or "encoder.conv_in.weight" not in loaded:
            found = describe_layout(loaded) if is_state_dict(loaded) else type(loaded).__name__
            raise CheckpointError(
                f"{path.name} is neither a Cosmos TorchScript archive (encoder.jit / decoder.jit / autoencoder.jit) "
                f"nor a state dict of Cosmos' DiscreteImageTokenizer: it looks like {found}"
            )
        notes = ["read a plain state dict of upstream's Python model (no TorchScript buffers to check)"]
        return dict(loaded), notes, [path]
    archive = read_torchscript(path)
    role = _role(archive.tensors, path)
    if role == "autoencoder":
        return archive.tensors, [f"read {path.name} (TorchScript, every weight); its code was not run"], [path]
    partner_name = "decoder.jit" if role == "encoder" else "encoder.jit"
    partner_path = path.with_name(partner_name)
    if not partner_path.is_file():
        raise CheckpointError(
            f"{path.name} holds only the {role} half of a Cosmos tokenizer; put {partner_name} beside it (or give "
            "autoencoder.jit, which holds both)"
        )
    partner = read_torchscript(partner_path)
    if _role(partner.tensors, partner_path) != ("decoder" if role == "encoder" else "encoder"):
        raise CheckpointError(f"{partner_path.name} is not the {partner_name[:-4]} archive of a Cosmos tokenizer")
    encoder, decoder = (archive, partner) if role == "encoder" else (partner, archive)
    merged = dict(encoder.tensors)
    for key, value in decoder.tensors.items():
        if key.startswith(DECODER_JIT_QUANTIZER):
            own = "quantizer." + key[len(DECODER_JIT_QUANTIZER):]
            if own in merged and not torch.equal(merged[own], value):
                raise CheckpointError(
                    f"decoder.jit's {key} differs from encoder.jit's {own}: the two files are not one tokenizer"
                )
            continue
        merged[key] = value
    notes = ["read encoder.jit + decoder.jit (TorchScript); their code was not run"]
    return merged, notes, [encoder.path, decoder.path]


def _role(tensors: Mapping[str, torch.Tensor], path: Path) -> str:
    has = {prefix: any(k.startswith(prefix) for k in tensors) for prefix in ("encoder.", "decoder.", "quant_conv.",
                                                                           DECODER_JIT_QUANTIZER)}
    if has["encoder."] and has["decoder."]:
        return "autoencoder"
    if has["encoder."] and has["quant_conv."]:
        return "encoder"
    if has["decoder."] and has[DECODER_JIT_QUANTIZER]:
        return "decoder"
    shown = ", ".join(list(tensors)[:5])
    raise CheckpointError(
        f"{path.name} is a TorchScript archive but not a Cosmos DI tokenizer (its tensors start {shown or 'nowhere'})"
    )


# -------------------------------------------------------------------------------------------- buffers and levels
def check_buffers(tensors: Mapping[str, torch.Tensor]) -> list[int]:
    """The FSQ levels the archive's buffers give, after checking every buffer the traced archives carry: Haar taps
    1/√2 (stored as bfloat16) and ``_arange`` [0, 1]; ``_basis`` = cumprod([1] + levels[:-1]) (channel 0 least
    significant); ``implicit_codebook`` row i = the codes of index i. :class:`CheckpointError` naming the buffer that
    differs (another value would mean another transform or index convention)."""
    for key in PATCHER_BUFFERS:
        if key not in tensors:
            raise CheckpointError(f"missing {key}: the archive has no Haar patcher (the DI releases patch with Haar)")
        value = tensors[key]
        if key.endswith("wavelets"):
            if value.shape != (2,) or (value.double() - HAAR_TAP).abs().max() > 2e-3:
                raise CheckpointError(f"{key} is {value.tolist()}; the Haar patcher's taps are 1/sqrt(2) = 0.7071")
        elif value.tolist() != [0, 1]:
            raise CheckpointError(f"{key} is {value.tolist()}; expected [0, 1] (the Haar filter's tap positions)")
    missing = [k for k in FSQ_BUFFERS if k not in tensors]
    if missing:
        raise CheckpointError(f"missing {', '.join(missing)}: not an FSQ (discrete) Cosmos tokenizer")
    levels = [int(v) for v in tensors["quantizer._levels"].tolist()]
    if not levels or any(level < 2 for level in levels):
        raise CheckpointError(f"quantizer._levels is {levels}; FSQ levels are integers >= 2")
    basis = [math.prod(levels[:c]) for c in range(len(levels))]
    if [int(v) for v in tensors["quantizer._basis"].tolist()] != basis:
        raise CheckpointError(
            f"quantizer._basis is {tensors['quantizer._basis'].tolist()}; upstream's FSQ has {basis} (channel 0 the "
            "least significant digit), the convention vistok converts"
        )
    codebook = tensors["quantizer.implicit_codebook"]
    size = math.prod(levels)
    if tuple(codebook.shape) != (size, len(levels)):
        raise CheckpointError(
            f"quantizer.implicit_codebook has shape {tuple(codebook.shape)}; levels {levels} give ({size}, {len(levels)})"
        )
    index = torch.arange(size).unsqueeze(1)
    lv, bs = torch.tensor(levels), torch.tensor(basis)
    codes = ((index // bs) % lv - lv // 2).double() / (lv // 2).double()
    if not torch.equal(codebook.double(), codes):
        raise CheckpointError(
            "quantizer.implicit_codebook is not the FSQ code table of its levels and basis (row i = the codes of "
            "index i, channel 0 least significant)"
        )
    return levels


# ------------------------------------------------------------------------------------------- architecture
def infer_cosmos_net(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """``{"num_channels", "codebook_dim", "net": {type "cosmos", base_channels, channel_multiplier, num_res_blocks,
    latent_channels, patch_size, spatial_compression, norm_groups}}`` from the shapes of an upstream Cosmos DI state
    dict (autoencoder.jit's key names; works on meta tensors). :class:`CheckpointError` naming the first
    inconsistency, in upstream's key names."""
    base, patched = _shape(state_dict, "encoder.conv_in.weight", "encoder input conv")[:2]
    blocks: dict[tuple[str, int], set[int]] = {}
    resamples: dict[str, set[int]] = {"encoder.down": set(), "decoder.up": set()}
    for key in state_dict:
        if m := _BLOCK.match(key):
            blocks.setdefault((m.group(1), int(m.group(2))), set()).add(int(m.group(3)))
        elif m := _RESAMPLE.match(key):
            resamples[m.group(1)].add(int(m.group(2)))
        elif m := _LEVEL_ATTENTION.match(key):
            raise CheckpointError(
                f"{key}: attention inside a level; the Cosmos DI releases have attention only in the mid blocks, "
                "and vistok's cosmos net builds that"
            )
    levels_blocks = {i: found for (side, i), found in blocks.items() if side == "encoder.down"}
    num_res_blocks, widths = encoder_levels(state_dict, levels_blocks, base, "conv_in's width", LAYOUT)
    levels = len(widths)
    down = resamples["encoder.down"]
    resampling = len(down)
    if down != set(range(resampling)) or resampling > levels - 1:
        raise CheckpointError(
            f"encoder downsamplers at levels {sorted(down)}; Cosmos downsamples in its FIRST levels (0..k-1, k < "
            f"{levels})"
        )
    decoder_levels = count_numbered({i for side, i in blocks if side == "decoder.up"}, "decoder levels (decoder.up.*)")
    if decoder_levels != levels:
        raise CheckpointError(f"the decoder has {decoder_levels} levels, the encoder {levels}")
    for i in range(levels):
        count = count_numbered(blocks[("decoder.up", i)], f"decoder.up.{i}.block")
        if count != num_res_blocks + 1:
            raise CheckpointError(
                f"decoder.up.{i} has {count} residual blocks; Cosmos' decoder has num_res_blocks + 1 = "
                f"{num_res_blocks + 1} per level"
            )
        width = _shape(state_dict, f"decoder.up.{i}.block.{count - 1}.conv2.weight", "decoder width")[0]
        if width != widths[i]:
            raise CheckpointError(f"decoder.up.{i} is {width} wide; the encoder's level {i} is {widths[i]}")
    up = resamples["decoder.up"]
    if up != set(range(levels - resampling, levels)):
        raise CheckpointError(
            f"decoder upsamplers at levels {sorted(up)}; with {resampling} encoder downsamplers Cosmos upsamples in "
            f"its deepest levels {list(range(levels - resampling, levels))}"
        )
    num_channels = _shape(state_dict, "decoder.conv_out.weight", "decoder output conv")[0]
    patch_area, rest = divmod(patched, 3)
    patch_size = math.isqrt(patch_area) if not rest else 0
    if rest or patch_size**2 != patch_area or patch_size & (patch_size - 1) or num_channels != patched:
        raise CheckpointError(
            f"encoder.conv_in reads {patched} channels and decoder.conv_out writes {num_channels}; the Haar front end "
            "of an RGB Cosmos tokenizer gives 3 * patch_size^2 (48 for patch_size 4) on both sides"
        )
    latent = check_latent_convs(state_dict, widths[-1], patched, LAYOUT, kernel=3)
    quant = _shape(state_dict, "quant_conv.weight", "quant_conv")
    if quant[1:] != (latent, 1, 1):
        raise CheckpointError(f"quant_conv has shape {quant}; expected a 1x1 conv from {latent} latent channels")
    return {
        "num_channels": 3,
        "codebook_dim": quant[0],
        "net": {
            "type": "cosmos",
            "base_channels": base,
            "channel_multiplier": [w // base for w in widths],
            "num_res_blocks": num_res_blocks,
            "latent_channels": latent,
            "patch_size": patch_size,
            "spatial_compression": patch_size * 2**resampling,
            "norm_groups": UPSTREAM_NORM_GROUPS,
        },
    }


def cosmos_to_vistok(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Upstream keys → vistok keys: the same names (the ``cosmos`` net keeps upstream's), without the buffers the
    traced archives carry (:data:`PATCHER_BUFFERS`, :data:`FSQ_BUFFERS`)."""
    dropped = set(PATCHER_BUFFERS) | set(FSQ_BUFFERS)
    return {key: value for key, value in state_dict.items() if key not in dropped}


def release_compression(net: Mapping[str, Any], levels: list[int]) -> int | None:
    """8 or 16 when ``net`` and ``levels`` are a DI release's architecture, else ``None``."""
    if levels != RELEASE_LEVELS or any(net.get(k) != v for k, v in RELEASE_NET.items()):
        return None
    return net["spatial_compression"] if net["spatial_compression"] in COMPRESSIONS else None


# --------------------------------------------------------------------------------------- presets and zoo entries
def _preset(compression: int) -> Preset:
    return Preset(
        name=f"cosmos-di-f{compression}",
        description=f"NVIDIA Cosmos DI{compression}x{compression} architecture: Haar patching + conv net + FSQ [8,8,8,5,5,5] "
        f"(64,000 codes), f{compression}, 256px → {256 // compression}x{256 // compression} tokens",
        config={
            "image_size": DEFAULT_IMAGE_SIZE,
            "net": {"type": "cosmos", **RELEASE_NET, "spatial_compression": compression},
            "quantizer": {"type": "fsq", "levels": list(RELEASE_LEVELS)},
        },
        source=f"NVIDIA/Cosmos-Tokenizer networks/configs.py TokenizerConfigs['DI'] with spatial_compression "
        f"{compression}",
    )


INDEX_NOTE = (
    "Token ids are upstream's: FSQ levels [8, 8, 8, 5, 5, 5], index = sum_c digit_c * basis_c with basis "
    "(1, 8, 64, 512, 2560, 12800) — channel 0 is the least significant digit — 0-based in [0, 63999] (the upstream "
    "README's '[1..64K]' is loose). Upstream returns int32 (B, h, w); vistok int64 (B, h, w)."
)
FILES_NOTE = (
    "The release is three TorchScript archives with bfloat16 weights; vistok reads autoencoder.jit's tensors "
    "without running its code, upcasts the weights exactly to float32 and computes in float32 (the reference "
    "vectors' target). The archives as shipped run only in bfloat16, which gives other indices at a few percent of "
    "positions. vistok matches the .jit files, not upstream's 'torch mode'."
)
PIXEL_NOTE = (
    "Pixels in [-1, 1] (upstream's uint8 / 127.5 - 1); the reconstruction is not clamped. Any size that is a multiple "
    "of the compression factor works (the net is convolutional, with global attention in the mid blocks); "
    "see the preprocessing line for how upstream frames an image."
)
PREPROCESSING_NOTE = (
    "Cosmos-Tokenizer's image_cli tokenizes each image at its own size, zero-padded (-1 after the range mapping) "
    "to a multiple of 16 and cropped back; it states no fixed-size pipeline"
)


def _entry(compression: int, repo: str, first_name: bool) -> ZooEntry:
    name = f"cosmos-{'tokenizer-' if first_name else ''}di{compression}x{compression}"
    notes = [INDEX_NOTE, FILES_NOTE, PIXEL_NOTE, LICENSE_NOTE]
    if first_name:
        notes.insert(0, f"The repo under the name the release was first published with; "
                        f"cosmos-di{compression}x{compression} reads nvidia/Cosmos-0.1-Tokenizer-DI{compression}x"
                        f"{compression}, its current name.")
    return ZooEntry(
        name=name,
        description=f"Cosmos DI{compression}x{compression} discrete image tokenizer (FSQ, 64,000 codes, f{compression}) "
        f"from {repo}",
        origin=COSMOS,
        license=NVIDIA_OPEN_MODEL_LICENSE,
        converter="cosmos",
        image_size=DEFAULT_IMAGE_SIZE,
        repo_id=repo,
        filenames=("autoencoder.jit",),
        preset=f"cosmos-di-f{compression}",
        reported_metrics=REPORTED[compression],
        notes=tuple(notes),
    )


ENTRIES = tuple(
    _entry(c, f"nvidia/{prefix}-DI{c}x{c}", first)
    for c in COMPRESSIONS
    for prefix, first in (("Cosmos-0.1-Tokenizer", False), ("Cosmos-Tokenizer", True))
)


@register_family(
    "cosmos",
    origin=COSMOS,
    summary="NVIDIA Cosmos DI tokenizers (FSQ): autoencoder.jit, or encoder.jit with decoder.jit beside it "
    "(TorchScript, read without running it), or a folder holding them",
    weights_help="auto (the archive's bfloat16 weights, upcast to float32)",
    presets=tuple(_preset(c) for c in COMPRESSIONS),
    entries=ENTRIES,
    preprocessing_note=PREPROCESSING_NOTE,
)
def convert_cosmos(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert a Cosmos DI release (``autoencoder.jit``; ``encoder.jit`` + ``decoder.jit``; a folder holding them;
    or a plain state dict of upstream's model) into a :class:`~vistok.VisTokenizer` (eval mode) on [−1, 1] pixels.

    Args:
        checkpoint: the file or folder.
        weights: ``"auto"``: a release holds one set of (bfloat16) weights.
        image_size: native resolution recorded in the config (default 256); any multiple of the compression works.
        trust_checkpoint: only for a plain ``torch.save`` state dict (see :func:`~vistok.convert.load_checkpoint`);
            TorchScript archives are never run, so it changes nothing for them.

    Raises :class:`CheckpointError` for a file that is not a Cosmos DI tokenizer (naming what it is), a pickle that
    names anything outside the allow-list (:class:`~vistok.convert.UnsafeCheckpointError`, nothing run), and
    ``ValueError`` for another ``weights`` or an ``image_size`` that is not a multiple of the compression.
    """
    if weights != "auto":
        raise ValueError(f"weights={weights!r}: a Cosmos release holds one set of weights; use 'auto'")
    tensors, notes, files = read_release(checkpoint, trust_checkpoint)
    inferred = infer_cosmos_net(tensors)
    net = inferred["net"]
    if any(key in tensors for key in FSQ_BUFFERS):
        levels = check_buffers(tensors)
        notes.append(
            "dropped the traced archive's buffers (Haar taps as bfloat16 0.70703125 and _arange; FSQ _levels, _basis, "
            "implicit_codebook) after checking them; vistok uses the exact 1/sqrt(2) and rebuilds the FSQ tables"
        )
    else:
        if inferred["codebook_dim"] != len(RELEASE_LEVELS):
            raise CheckpointError(
                f"a plain state dict carries no FSQ levels and its quant_conv gives {inferred['codebook_dim']} "
                f"channels; only the DI releases' {len(RELEASE_LEVELS)} ({RELEASE_LEVELS}) can be assumed"
            )
        levels = list(RELEASE_LEVELS)
        notes.append(f"FSQ levels {levels} assumed (TokenizerConfigs['DI']): a plain state dict has no _levels buffer")
    if len(levels) != inferred["codebook_dim"]:
        raise CheckpointError(
            f"quant_conv gives {inferred['codebook_dim']} channels but quantizer._levels has {len(levels)} levels"
        )
    factor = net["spatial_compression"]
    size = image_size or DEFAULT_IMAGE_SIZE
    if image_size is None:
        notes.append(f"image_size {size} assumed (any multiple of {factor} works; pass image_size to change)")
    if size % factor:
        raise ValueError(f"image_size {size} must be a multiple of the compression factor {factor}")
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in tensors.values() if t.is_floating_point()})
    notes += [
        f"weights stored as {', '.join(dtypes)}, upcast exactly to float32",
        "indices: FSQ levels " + str(levels) + ", channel 0 the least significant digit, 0-based (vistok's fsq "
        "convention); upstream returns int32, vistok int64",
        f"GroupNorm groups: {UPSTREAM_NORM_GROUPS} assumed (upstream's; shapes do not tell)",
        LICENSE_NOTE,
    ]
    quantizer = {"type": "fsq", "levels": levels}
    summary = {"net": net, "codebook_size": math.prod(levels), "codebook_dim": len(levels)}
    extra: dict[str, Any] = {
        "files": [p.name for p in files],
        "weights_license": {"name": NVIDIA_OPEN_MODEL_LICENSE.name, "url": NVIDIA_OPEN_MODEL_LICENSE.url,
                            "commercial_use": True},
    }
    metadata = conversion_metadata(COSMOS, "cosmos", summary, files[0], "bfloat16 weights upcast to float32", extra, notes)
    compression = release_compression(net, levels)
    if compression is not None:
        release = f"Cosmos-DI{compression}x{compression}"
        metadata["origin"]["release"] = release
        if REPORTED[compression]:
            metadata["reported_metrics"] = [
                {**m, "applies_to": f"NVIDIA's {release} as released by its authors"} for m in REPORTED[compression]
            ]
    config = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from NVIDIA Cosmos ({', '.join(p.name for p in files)})",
        "metadata": metadata,
    }
    return load_converted(cosmos_to_vistok(tensors), config, "Cosmos DI")

"""Show-o's MAGVIT-v2 tokenizer (``showlab/magvitv2``: ``pytorch_model.safetensors`` + a ``config.json`` that says
nothing) → vistok.

``MAGVITv2()`` takes no arguments: it always builds its encoder, decoder and LFQ from keyword defaults, so the
architecture is read from the tensor shapes. The network is a Taming VQGAN generalised in two ways that vistok's
``vqgan`` net expresses with ``encoder_res_blocks`` / ``decoder_channel_multiplier`` / ``decoder_res_blocks``:

- the encoder and the decoder have their own ``ch_mult`` (released: [1, 2, 2, 4, 4] / [1, 1, 2, 2, 4]),
- ``num_res_blocks`` is a per-level list on each side (released: [4, 3, 4, 3, 4] / [4, 4, 3, 4, 3]; no Taming "+1").

There is no attention inside the levels (``attn_resolutions=[5]`` is never reached) but one in each mid block, as
in every Taming net. ``encoder.quant_conv`` / ``decoder.post_quant_conv`` are vistok's ``quant_conv`` /
``post_quant_conv``. The quantizer is LFQ with 13 bits (8192 codes): bit = (z > 0), latent channel 0 the **most**
significant bit — vistok's ``msb_first`` order, read from the file's ``quantize.power_vals`` buffer; the
``quantize.embedding`` table (row i = the ±1 bits of i) is checked against that order and dropped (vistok's LFQ
computes it).

Show-o numbers an image token as ``index + 50305`` in its LLM vocabulary (phi-1.5's 50,295 tokens, ``[PAD]`` and
nine task tokens); the converter records it in ``config.metadata["model_ids"]``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..convert.containers import describe_layout, is_state_dict
from ..convert.magvit2_layout import load_converted
from ..convert.origins import Origin
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..convert.shapes import count_numbered, tensor_shape
from ..convert.taming_layout import rename_key
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import conversion_metadata, register_family
from .records import MIT, ZooEntry

SHOWO = Origin(
    name="Show-o",
    url="https://github.com/showlab/Show-o",
    license="mit",
    paper_title="Show-o: One Single Transformer to Unify Multimodal Understanding and Generation",
    paper_authors="Jinheng Xie, Weijia Mao, Zechen Bai, David Junhao Zhang, Weihao Wang, Kevin Qinghong Lin, Yuchao Gu, "
    "Zhijie Chen, Zhenheng Yang, Mike Zheng Shou",
    paper_venue="ICLR 2025",
    paper_url="https://arxiv.org/abs/2408.12528",
    citation="""@article{xie2024showo,
  title={Show-o: One Single Transformer to Unify Multimodal Understanding and Generation},
  author={Xie, Jinheng and Mao, Weijia and Bai, Zechen and Zhang, David Junhao and Wang, Weihao and Lin, Kevin Qinghong and Gu, Yuchao and Chen, Zhijie and Yang, Zhenheng and Shou, Mike Zheng},
  journal={arXiv preprint arXiv:2408.12528},
  year={2024}
}""",
)

REPO = "showlab/magvitv2"
WEIGHT_FILES = ("pytorch_model.safetensors", "pytorch_model.bin")  # Show-o's ModelMixin copy: names tried in order
CONFIG_FILE = "config.json"
CLASS_NAME = "MAGVITv2"
DEFAULT_IMAGE_SIZE = 256
UPSTREAM_NORM_GROUPS = 32
CODEBOOK_KEY, POWERS_KEY = "quantize.embedding", "quantize.power_vals"
# Show-o's LLM vocabulary: image token id = index + len(text tokenizer) = phi-1.5's 50,295 + [PAD] + 9 task tokens
# (<|soi|> <|eoi|> <|sov|> <|eov|> <|t2i|> <|mmu|> <|t2v|> <|v2v|> <|lvg|>); the mask token is the last id.
LLM_TOKEN_OFFSET = 50305
MODEL_IDS = {
    "kind": "offset",
    "offset": LLM_TOKEN_OFFSET,
    "mask_token_id": LLM_TOKEN_OFFSET + 8192,
    "source": "Show-o inference_mmu.py / training/prompting_utils.py / models/modeling_showo.py: image token id = "
    "index + len(text tokenizer) (phi-1.5's 50,295 tokens + [PAD] + 9 task tokens = 50,305); mask id = vocab_size - 1 "
    "= 58,497 (configs/showo_demo.yaml)",
}

# MAGVITv2()'s keyword defaults: the released tokenizer.
RELEASE_NET = {
    "type": "vqgan",
    "base_channels": 128,
    "channel_multiplier": [1, 2, 2, 4, 4],
    "num_res_blocks": 4,
    "latent_channels": 13,
    "attention_levels": [],
    "encoder_res_blocks": [4, 3, 4, 3, 4],
    "decoder_channel_multiplier": [1, 1, 2, 2, 4],
    "decoder_res_blocks": [4, 4, 3, 4, 3],
}
QUANTIZER = {"type": "lfq", "codebook_dim": 13, "bit_order": "msb_first"}
PRESET = Preset(
    name="showo-magvitv2",
    description="Show-o MAGVIT-v2 (Taming-style conv net, per-level blocks, LFQ 2^13 MSB first), 256px → 16x16 "
    "tokens",
    config={"image_size": 256, "net": RELEASE_NET, "quantizer": QUANTIZER},
    source="Xie et al., Show-o (ICLR 2025); MAGVITv2() of showlab/Show-o models/modeling_magvitv2.py",
)
ENTRY = ZooEntry(
    name="showo-magvitv2",
    description="Show-o's MAGVIT-v2 tokenizer (LFQ 2^13), 256px → 16x16 tokens (512px → 32x32)",
    origin=SHOWO,
    license=MIT,
    converter="showo",
    image_size=256,
    repo_id=REPO,
    filenames=WEIGHT_FILES,
    companion_files=(CONFIG_FILE,),
    preset=PRESET.name,
    model_ids=f"Show-o's LLM: id = index + {LLM_TOKEN_OFFSET} (mask token {LLM_TOKEN_OFFSET + 8192})",
    notes=(
        "The image tokenizer of Show-o (every Show-o config names showlab/magvitv2, the 512px ones included: they "
        "get 32x32 tokens); MMaDA and UniDisc use it too.",
        f"Show-o's LLM numbers an image token index + {LLM_TOKEN_OFFSET} (config.metadata['model_ids']); its mask "
        f"token is {LLM_TOKEN_OFFSET + 8192}.",
        "LFQ: bit = (z > 0), latent channel 0 the most significant bit (Open-MAGVIT2 and MaskBit use the other order).",
        "Licence: the Hub repo's card names none; Show-o's repository, which releases it, is MIT.",
    ),
)

_LEVEL = re.compile(r"^(encoder\.down|decoder\.up)\.(\d+)\.(block|attn)\.(\d+)\.")


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(
        size,
        filter="bicubic",
        size_rule="truncate",
        crop_offset="round",
        follows="Show-o training/utils.py image_transform (torchvision Resize BICUBIC + CenterCrop)",
    )


def _shape(state_dict: Mapping[str, torch.Tensor], key: str, what: str) -> tuple[int, ...]:
    return tensor_shape(state_dict, key, what, "Show-o's MAGVIT-v2 layout")


def _levels(state_dict: Mapping[str, torch.Tensor], side: str) -> tuple[list[int], list[int], list[int]]:
    """Per level of ``side`` (``encoder.down`` / ``decoder.up``): residual blocks, attention blocks, width."""
    blocks: dict[int, set[int]] = {}
    attn: dict[int, set[int]] = {}
    for key in state_dict:
        if (m := _LEVEL.match(key)) and m.group(1) == side:
            (blocks if m.group(3) == "block" else attn).setdefault(int(m.group(2)), set()).add(int(m.group(4)))
    count = count_numbered(set(blocks), f"{side} levels")
    if count == 0:
        raise CheckpointError(f"no {side}.*.block.* tensors: not Show-o's MAGVIT-v2 layout")
    res = [count_numbered(blocks[i], f"{side}.{i} blocks") for i in range(count)]
    att = [count_numbered(attn.get(i, set()), f"{side}.{i} attention blocks") for i in range(count)]
    widths = [_shape(state_dict, f"{side}.{i}.block.{res[i] - 1}.conv2.weight", f"{side}.{i} width")[0] for i in range(count)]
    return res, att, widths


def infer_showo_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``{"num_channels", "net", "quantizer"}`` from the shapes of a Show-o MAGVIT-v2 state dict (upstream keys;
    works on meta tensors). Raises :class:`CheckpointError` naming the first thing vistok cannot express."""
    base, num_channels = _shape(state_dict, "encoder.conv_in.weight", "encoder input conv")[:2]
    enc_res, enc_attn, enc_widths = _levels(state_dict, "encoder.down")
    dec_res, dec_attn, dec_widths = _levels(state_dict, "decoder.up")
    if len(dec_res) != len(enc_res):
        raise CheckpointError(f"the decoder has {len(dec_res)} levels, the encoder {len(enc_res)}")
    for side, widths in (("encoder", enc_widths), ("decoder", dec_widths)):
        if any(w % base for w in widths):
            raise CheckpointError(f"{side} widths {widths} are not multiples of the stem width {base}")
    attention = []
    for level, (e_res, e_att, d_res, d_att) in enumerate(zip(enc_res, enc_attn, dec_res, dec_attn, strict=True)):
        if (e_att and e_att != e_res) or (d_att and d_att != d_res) or bool(e_att) != bool(d_att):
            raise CheckpointError(
                f"attention at level {level} is not after every block on both sides (encoder {e_att} of {e_res}, "
                f"decoder {d_att} of {d_res}); vistok's vqgan puts it after every block of the same levels"
            )
        if e_att:
            attention.append(level)
    latent = _shape(state_dict, "encoder.conv_out.weight", "encoder output conv")[0]
    quant_conv = _shape(state_dict, "encoder.quant_conv.weight", "encoder.quant_conv")
    post_quant_conv = _shape(state_dict, "decoder.post_quant_conv.weight", "decoder.post_quant_conv")
    bits = quant_conv[0]
    if quant_conv[1] != latent or post_quant_conv[:2] != (latent, bits):
        raise CheckpointError(
            f"encoder.quant_conv {quant_conv[:2]} / decoder.post_quant_conv {post_quant_conv[:2]} do not map the "
            f"{latent}-channel latent to the quantizer and back"
        )
    decoder_in = _shape(state_dict, "decoder.conv_in.weight", "decoder input conv")
    if decoder_in[:2] != (dec_widths[-1], latent):
        raise CheckpointError(f"decoder.conv_in {decoder_in[:2]} does not map z {latent} to the deepest width {dec_widths[-1]}")
    codebook = _shape(state_dict, CODEBOOK_KEY, "LFQ code table")
    if codebook != (2**bits, bits):
        raise CheckpointError(f"{CODEBOOK_KEY} has shape {codebook}; an LFQ of {bits} bits has ({2**bits}, {bits})")
    if _shape(state_dict, POWERS_KEY, "LFQ bit values") != (bits,):
        raise CheckpointError(f"{POWERS_KEY} must hold one value per bit ({bits})")
    net = {
        "type": "vqgan",
        "base_channels": base,
        "channel_multiplier": [w // base for w in enc_widths],
        "num_res_blocks": max(enc_res),
        "latent_channels": latent,
        "attention_levels": attention,
        "norm_groups": UPSTREAM_NORM_GROUPS,
        "encoder_res_blocks": enc_res,
        "decoder_channel_multiplier": [w // base for w in dec_widths],
        "decoder_res_blocks": dec_res,
    }
    return {"num_channels": num_channels, "net": net, "quantizer": {"type": "lfq", "codebook_dim": bits}}


def bit_order(state_dict: Mapping[str, torch.Tensor], bits: int) -> str:
    """``"msb_first"`` or ``"lsb_first"`` from ``quantize.power_vals``, after checking that the ``quantize.embedding``
    table upstream decodes with holds the ±1 bits of each row index in that order. :class:`CheckpointError` for
    anything else (it would not be an index ⇄ code bijection vistok's LFQ computes)."""
    powers = state_dict[POWERS_KEY]
    if powers.is_meta:
        return "msb_first"
    msb = [2 ** (bits - 1 - c) for c in range(bits)]
    values = [int(v) for v in powers.reshape(-1).tolist()]
    if values == msb:
        order = "msb_first"
    elif values == msb[::-1]:
        order = "lsb_first"
    else:
        raise CheckpointError(f"{POWERS_KEY} is {values}: neither MSB-first nor LSB-first powers of two")
    weights = torch.tensor(values, dtype=torch.int64)
    rows = torch.arange(2**bits, dtype=torch.int64).unsqueeze(1)
    expected = torch.where((rows & weights) != 0, 1.0, -1.0)
    if not torch.equal(state_dict[CODEBOOK_KEY].to(torch.float32), expected):
        raise CheckpointError(
            f"{CODEBOOK_KEY} is not the ±1 bit table of the row index in {POWERS_KEY}'s order: upstream would decode "
            "indices to other codes than it encodes them with"
        )
    return order


def showo_to_vistok(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream keys → vistok's: Taming's renaming, the two 1×1 convs moved out of encoder / decoder, the LFQ
    buffers dropped (vistok's LFQ computes them)."""
    up_levels = {int(m.group(2)) for m in map(_LEVEL.match, state_dict) if m and m.group(1) == "decoder.up"}
    out = {}
    for key, value in state_dict.items():
        if key.startswith("quantize."):
            continue
        if key.startswith("encoder.quant_conv."):
            out[key.removeprefix("encoder.")] = value
        elif key.startswith("decoder.post_quant_conv."):
            out[key.removeprefix("decoder.")] = value
        else:
            out[rename_key(key, len(up_levels))] = value
    return out


def _weight_file(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        found = next((path / name for name in WEIGHT_FILES if (path / name).is_file()), None)
        if found is None:
            held = sorted(p.name for p in path.iterdir())
            raise CheckpointError(
                f"the folder {str(path)!r} holds none of Show-o's weight files {list(WEIGHT_FILES)}; it holds "
                f"{', '.join(held[:12]) or 'nothing'}"
            )
        return found
    return path


def _check_config(weight_file: Path) -> str | None:
    """The class config.json beside the weights names, if any; :class:`CheckpointError` for another model's."""
    config = weight_file.parent / CONFIG_FILE
    if not config.is_file():
        return None
    try:
        name = json.loads(config.read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None
    if name is not None and name != CLASS_NAME:
        raise CheckpointError(f"{config} describes a {name!r}, not Show-o's {CLASS_NAME}")
    return name


@register_family(
    "showo",
    origin=SHOWO,
    summary="Show-o MAGVIT-v2 tokenizer: showlab/magvitv2's pytorch_model.safetensors (architecture from the shapes, "
    "LFQ 2^13 MSB first)",
    weights_help="auto only (the file holds one set of weights)",
    presets=(PRESET,),
    entries=(ENTRY,),
    preprocessing=_preprocessing,
)
def convert_showo(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert Show-o's MAGVIT-v2 tokenizer into a :class:`~vistok.VisTokenizer` (eval mode, float32).

    Args:
        checkpoint: ``pytorch_model.safetensors`` (or ``pytorch_model.bin``), or the folder holding it.
        weights: ``"auto"`` only.
        image_size: native resolution recorded in the config (default 256; Show-o's 512 px models use the same
            tokenizer at 512).
        trust_checkpoint: allow arbitrary unpickling of a ``.bin`` (only for files from a trusted source).

    Raises :class:`CheckpointError` for a file that is not Show-o's MAGVIT-v2 (saying what it looks like) or one
    vistok cannot express, and ``ValueError`` for another ``weights`` value.
    """
    if weights != "auto":
        raise ValueError(f"weights={weights!r}: Show-o's tokenizer file holds one set of weights; use 'auto'")
    weight_file = _weight_file(Path(checkpoint))
    class_name = _check_config(weight_file)
    loaded = load_checkpoint(weight_file, trust_checkpoint=trust_checkpoint)
    if not is_state_dict(loaded):
        raise CheckpointError(f"{weight_file.name} is not a plain state dict of tensors")
    if POWERS_KEY not in loaded or not any(k.startswith("decoder.up.") for k in loaded):
        raise CheckpointError(
            f"{weight_file.name} is not Show-o's MAGVIT-v2 (expected encoder.down.*, decoder.up.*, {CODEBOOK_KEY} and "
            f"{POWERS_KEY}): it looks like {describe_layout(loaded)}"
        )
    unknown = sorted({k.split(".")[0] for k in loaded} - {"encoder", "decoder", "quantize"})
    if unknown or set(k for k in loaded if k.startswith("quantize.")) != {CODEBOOK_KEY, POWERS_KEY}:
        raise CheckpointError(f"{weight_file.name} holds tensors vistok does not know ({unknown or 'quantize.*'})")
    inferred = infer_showo_config(loaded)
    bits = inferred["quantizer"]["codebook_dim"]
    order = bit_order(loaded, bits)
    quantizer = {"type": "lfq", "codebook_dim": bits, "bit_order": order}
    net = inferred["net"]
    factor = 2 ** (len(net["channel_multiplier"]) - 1)
    size = image_size or DEFAULT_IMAGE_SIZE
    if size % factor:
        raise ValueError(f"image_size {size} must be a multiple of the downsample factor {factor}")
    notes = [
        "architecture read from the tensor shapes (MAGVITv2() takes no arguments; config.json describes nothing): "
        "separate encoder / decoder widths and per-level residual-block counts",
        f"GroupNorm groups: {UPSTREAM_NORM_GROUPS} assumed (upstream's; shapes do not tell)",
        f"LFQ bit order {order} read from {POWERS_KEY}; the {CODEBOOK_KEY} table was checked against it and dropped",
        "indices: vistok's (B, h, w) grid; upstream's get_code returns their row-major flattening (B, h*w)",
        "decoder output unclamped (Show-o's demo clamps (x + 1) / 2 to [0, 1] and truncates to uint8)",
        "LFQ loss weights are vistok's defaults (they play no part at inference)",
    ]
    if image_size is None:
        notes.append(f"image_size {size} assumed (the release's; pass image_size to change)")
    summary = {"net": net, "codebook_size": 2**bits, "codebook_dim": bits}
    extra: dict[str, Any] = {"config_class": class_name}
    metadata = conversion_metadata(SHOWO, "showo", summary, weight_file, "state_dict", extra, notes)
    metadata["model_ids"] = dict(MODEL_IDS)
    config = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from {SHOWO.name}'s MAGVIT-v2 tokenizer ({weight_file.name})",
        "metadata": metadata,
    }
    return load_converted(showo_to_vistok(loaded), config, "Show-o MAGVIT-v2")

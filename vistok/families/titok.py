"""TiTok (bytedance/1d-tokenizer) single-stage VQ tokenizers → vistok.

A released TiTok is a ``PyTorchModelHubMixin`` folder (e.g. the Hub repo
``yucornetto/tokenizer_titok_bl64_vq8k_imagenet``): ``model.safetensors`` (the bare state dict) and ``config.json``
(TiTok's OmegaConf config: ``model.vq_model`` and ``dataset.preprocessing.crop_size``). The net is vistok's
``titok``, whose module names are upstream's: ``encoder.*`` / ``decoder.*`` keys are unchanged, the top-level
``latent_tokens`` becomes ``encoder.latent_tokens`` and ``quantize.embedding.weight`` becomes ``quantizer.codebook``.

What comes from where:

- Widths, depths, patch sizes, number and size of the latent tokens, codebook and image size: the tensor shapes,
  cross-checked against ``config.json`` (and the widths / depths against the ViT size it names).
- Head counts: not in the weights. For upstream's ViT sizes (``small`` / ``base`` / ``large``: 8 / 12 / 16 heads)
  they come from the size names in ``config.json``; any other size name needs ``num_heads`` (``--num-heads
  ENC[,DEC]``), and the conversion is refused without it.
- Quantizer: vistok's ``vq`` (argmin of |z|² + |e|² − 2z·e), ``l2_norm`` = ``use_l2_norm``, commitment β =
  ``commitment_cost``.

Pixel range: TiTok encodes [0, 1] images and its decoder returns [0, 1]-range pixels (unclamped). The converted net
has ``pixel_range="unit"``, so the tokenizer takes and returns [−1, 1] like every vistok tokenizer: ``encode(2x − 1)``
gives upstream's ``encode(x)`` indices ((B, L) in vistok, (B, 1, L) upstream) and ``(decode(indices) + 1) / 2`` is
upstream's ``decode_tokens``.

Not supported, and refused with a message that says so: the two-stage models (``finetune_decoder`` true: the ViT
decoder predicts MaskGIT-VQGAN tokens that MaskGIT's decoder paints — TiTok-L-32 / B-64 / S-128), the VAE
variants (``quantize_mode: vae``) and the legacy latent layout (``is_legacy`` true).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..convert.magvit2_layout import load_converted
from ..convert.origins import Origin, reported_metric
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..nets.titok import upstream_key_to_vistok
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import ConverterOption, conversion_metadata, register_family
from .records import APACHE_2, ZooEntry

# Upstream's ViT sizes (modeling/modules/blocks.py): name → (width, depth, heads).
# TiTok (bytedance/1d-tokenizer): Apache 2.0 (file headers of modeling/titok.py; the Hub repos' mixin model cards say
# license apache-2.0). The README adds that its models were trained on ImageNet only and are for research purposes.
TITOK = Origin(
    name="TiTok",
    url="https://github.com/bytedance/1d-tokenizer",
    license="apache-2.0",
    paper_title="An Image is Worth 32 Tokens for Reconstruction and Generation",
    paper_authors="Qihang Yu, Mark Weber, Xueqing Deng, Xiaohui Shen, Daniel Cremers, Liang-Chieh Chen",
    paper_venue="NeurIPS 2024",
    paper_url="https://arxiv.org/abs/2406.07550",
    citation="""@inproceedings{yu2024an,
  title={An Image is Worth 32 Tokens for Reconstruction and Generation},
  author={Yu, Qihang and Weber, Mark and Deng, Xueqing and Shen, Xiaohui and Cremers, Daniel and Chen, Liang-Chieh},
  booktitle={Advances in Neural Information Processing Systems (NeurIPS)},
  year={2024}
}""",
)
TITOK_PAPER = "Yu et al., An Image is Worth 32 Tokens for Reconstruction and Generation (TiTok, NeurIPS 2024)"
TITOK_VIT_SIZES = {"S": (512, 8, 8), "B": (768, 12, 12), "L": (1024, 24, 16)}


def _preset(encoder: str, decoder: str, tokens: int) -> Preset:
    """configs/infer/TiTok/titok_{bl64,bl128,sl256}_vq8k.yaml: ViT encoder base or small, ViT decoder large, patch
    16, N latent tokens of 64 channels, a plain Euclidean 8192 x 64 codebook (commitment 0.25), [0, 1] pixels."""
    enc, dec = TITOK_VIT_SIZES[encoder], TITOK_VIT_SIZES[decoder]
    variant = f"{encoder.lower()}{decoder.lower()}{tokens}"
    return Preset(
        name=f"titok-{variant}-vq8k-imagenet256",
        description=f"TiTok-{encoder}{decoder}-{tokens} VQ (ViT encoder/decoder), 256px → 1-D sequence of {tokens} "
        "tokens, codebook 8192 x 64",
        config={
            "image_size": 256,
            "net": {
                "type": "titok",
                "image_size": 256,
                "encoder_patch_size": 16,
                "decoder_patch_size": 16,
                "encoder_width": enc[0],
                "encoder_depth": enc[1],
                "encoder_heads": enc[2],
                "decoder_width": dec[0],
                "decoder_depth": dec[1],
                "decoder_heads": dec[2],
                "num_latent_tokens": tokens,
                "token_size": 64,
                "pixel_range": "unit",
            },
            "quantizer": {"type": "vq", "codebook_size": 8192, "codebook_dim": 64, "commitment_weight": 0.25},
        },
        source=f"{TITOK_PAPER}; bytedance/1d-tokenizer configs/infer/TiTok/titok_{variant}_vq8k.yaml",
        tags=("imagenet256",),
    )


# The zoo, as README_TiTok.md lists it: yucornetto/tokenizer_titok_{bl64,bl128,sl256}_vq8k_imagenet, each a
# PyTorchModelHubMixin folder (model.safetensors + config.json). The two-stage TiTok-L-32 / B-64 / S-128 and the VAE
# variants are not converted, so they have no entries.
README = "https://github.com/bytedance/1d-tokenizer/blob/main/README_TiTok.md"
NOTES = (
    "A 1-D tokenizer: indices are (B, N) — a sequence of N latent tokens, not a grid — and it takes 256x256 images "
    "only (its position embeddings are fixed).",
    "Upstream works on [0, 1] pixels; the converted tokenizer takes and returns [-1, 1] like every vistok tokenizer "
    "(net option pixel_range 'unit') and does not clamp its output (upstream's demo clamps to [0, 1]).",
    "bytedance/1d-tokenizer's README: the models were trained on ImageNet only and are for research purposes.",
)
# README_TiTok.md, "Model Zoo": FID (reconstruction) on ImageNet 256x256.
RELEASES = (("bl64", "B", 64, 2.06), ("bl128", "B", 128, 1.49), ("sl256", "S", 256, 1.03))


def _entry(variant: str, encoder: str, tokens: int, rfid: float) -> ZooEntry:
    return ZooEntry(
        name=f"titok-{variant}-vq8k-imagenet256",
        description=f"TiTok-{encoder}L-{tokens} VQ, 256px → 1-D sequence of {tokens} tokens, codebook 8192 x 64",
        origin=TITOK,
        license=APACHE_2,
        converter="titok",
        image_size=256,
        repo_id=f"yucornetto/tokenizer_titok_{variant}_vq8k_imagenet",
        filenames=("model.safetensors",),
        companion_files=("config.json",),
        preset=f"titok-{variant}-vq8k-imagenet256",
        reported_metrics=(
            reported_metric("rfid", rfid, "TiTok README (README_TiTok.md, Model Zoo)", README, protocol="torch-fidelity"),
        ),
        notes=NOTES,
    )


VIT_SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}
MIXIN_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
MIXIN_CONFIG = "config.json"
CODEBOOK = "quantize.embedding.weight"
NUM_HEADS_HINT = "num_heads=ENC or (ENC, DEC) in Python, --num-heads ENC[,DEC] on the command line"
_BLOCK = re.compile(r"^(encoder|decoder)\.transformer\.(\d+)\.")


def _shape(state_dict: Mapping[str, Any], key: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise CheckpointError(f"this is not a TiTok state dict: it has no {key!r} tensor")
    return tuple(state_dict[key].shape)


def _depth(state_dict: Mapping[str, Any], part: str) -> int:
    blocks = {int(m.group(2)) for key in state_dict if (m := _BLOCK.match(key)) and m.group(1) == part}
    if not blocks or blocks != set(range(len(blocks))):
        raise CheckpointError(
            f"the {part}'s transformer blocks are not numbered 0..N-1 (found {sorted(blocks)}): not a TiTok state dict"
        )
    return len(blocks)


def _exact_root(value: int, what: str) -> int:
    root = round(value**0.5)
    if root * root != value:
        raise CheckpointError(f"{what} ({value}) is not a perfect square: not a TiTok state dict")
    return root


def infer_titok_shapes(state_dict: Mapping[str, Any]) -> dict[str, int]:
    """Everything the tensor shapes of a TiTok state dict (upstream keys) say about its architecture: widths, depths,
    patch sizes, image size, latent tokens, token size and codebook. Encoder and decoder are cross-checked."""
    enc_width = _shape(state_dict, "encoder.class_embedding")[-1]
    dec_width = _shape(state_dict, "decoder.class_embedding")[-1]
    enc_patch_shape = _shape(state_dict, "encoder.patch_embed.weight")  # (width, C, p, p)
    enc_patch = enc_patch_shape[-1]
    enc_grid = _exact_root(_shape(state_dict, "encoder.positional_embedding")[0] - 1, "encoder grid²")
    dec_grid = _exact_root(_shape(state_dict, "decoder.positional_embedding")[0] - 1, "decoder grid²")
    channels = _shape(state_dict, "decoder.conv_out.weight")[0]
    ffn_out = _shape(state_dict, "decoder.ffn.0.weight")[0]
    if ffn_out % channels:
        raise CheckpointError(f"decoder.ffn.0 has {ffn_out} outputs, not p·p·{channels}: not a single-stage TiTok")
    dec_patch = _exact_root(ffn_out // channels, "decoder patch²")
    num_tokens, latent_width = _shape(state_dict, "latent_tokens")
    token_size = _shape(state_dict, "encoder.conv_out.weight")[0]
    codebook_size, codebook_dim = _shape(state_dict, CODEBOOK)
    image_size = enc_grid * enc_patch
    checks = {
        "latent_tokens width vs encoder width": (latent_width, enc_width),
        "decoder image size (grid·patch) vs encoder's": (dec_grid * dec_patch, image_size),
        "decoder latent tokens vs encoder's": (_shape(state_dict, "decoder.latent_token_positional_embedding")[0], num_tokens),
        "decoder_embed input vs token size": (_shape(state_dict, "decoder.decoder_embed.weight")[1], token_size),
        "codebook dim vs token size": (codebook_dim, token_size),
        "image channels in vs out": (enc_patch_shape[1], channels),
    }
    for what, (got, expected) in checks.items():
        if got != expected:
            raise CheckpointError(f"inconsistent TiTok shapes: {what}: {got} != {expected}")
    return {
        "image_size": image_size,
        "num_channels": channels,
        "encoder_patch_size": enc_patch,
        "decoder_patch_size": dec_patch,
        "encoder_width": enc_width,
        "encoder_depth": _depth(state_dict, "encoder"),
        "decoder_width": dec_width,
        "decoder_depth": _depth(state_dict, "decoder"),
        "num_latent_tokens": num_tokens,
        "token_size": token_size,
        "codebook_size": codebook_size,
    }


def _section(config: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    """The nested ``config[path[0]][path[1]]…`` mapping, or ``{}`` where any level is absent or not a mapping."""
    for key in path:
        config = config.get(key) if isinstance(config, Mapping) else None
    return config if isinstance(config, Mapping) else {}


def _heads_given(num_heads: Any) -> tuple[int, int] | None:
    """``num_heads`` as (encoder, decoder), or ``None``; ``ValueError`` for anything but a positive int or a pair."""
    if num_heads is None:
        return None
    pair = (num_heads, num_heads) if isinstance(num_heads, int) and not isinstance(num_heads, bool) else num_heads
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in pair)
    ):
        raise ValueError(f"num_heads must be a positive int or a pair (encoder, decoder) of them, got {num_heads!r}")
    return int(pair[0]), int(pair[1])


def _vq_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``model.vq_model`` of a TiTok config.json; refuses what vistok does not convert."""
    vq = _section(config, "model", "vq_model")
    if not vq:
        raise CheckpointError(
            "config.json has no model.vq_model section, so it is not a TiTok config (TiTok's save_pretrained writes "
            "experiment / model.vq_model / dataset sections)"
        )
    mode = vq.get("quantize_mode", "vq")
    if mode != "vq":
        raise CheckpointError(
            f"config.json says quantize_mode {mode!r}: only TiTok's VQ tokenizers convert (the VAE variants have "
            "continuous latents, not tokens)"
        )
    if vq.get("finetune_decoder", True):  # upstream's default is True
        raise CheckpointError(
            "config.json says finetune_decoder true (or leaves it unset, which upstream reads as true): this is a "
            "two-stage TiTok (e.g. TiTok-L-32 / B-64 / S-128), whose ViT decoder predicts MaskGIT-VQGAN tokens that "
            "MaskGIT's pixel decoder paints. vistok converts the single-stage VQ models only (finetune_decoder false: "
            "tokenizer_titok_bl64_vq8k / bl128_vq8k / sl256_vq8k)"
        )
    if vq.get("is_legacy", True):
        raise CheckpointError(
            "config.json says is_legacy true (or leaves it unset, which upstream reads as true): the legacy latent "
            "layout is not supported; vistok converts the single-stage VQ models (is_legacy false)"
        )
    return vq


def titok_config_kwargs(
    state_dict: Mapping[str, Any],
    model_config: Mapping[str, Any],
    *,
    num_heads: Any = None,
    image_size: int | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """``VisTokenizerConfig`` keyword arguments for a TiTok state dict (upstream keys; shapes are all that is read, so
    meta tensors do) and its ``config.json`` (``model_config``), plus notes on where the head counts came from.

    Raises :class:`CheckpointError` when config.json and the shapes disagree or describe an unsupported model, and
    ``ValueError`` when the head counts are unknown (a size name upstream does not define and no ``num_heads``)
    or contradict the named size."""
    vq = _vq_config(model_config)
    shapes = infer_titok_shapes(state_dict)
    given = _heads_given(num_heads)
    heads, notes = [], []
    for k, part in enumerate(("encoder", "decoder")):
        size = vq.get(f"vit_{part[:3]}_model_size")
        width, depth = shapes[f"{part}_width"], shapes[f"{part}_depth"]
        if size in VIT_SIZES:
            named_width, named_depth, named_heads = VIT_SIZES[size]
            if (width, depth) != (named_width, named_depth):
                raise CheckpointError(
                    f"config.json names the {part} size {size!r} (width {named_width}, {named_depth} layers) but the "
                    f"weights have width {width} and {depth} layers"
                )
            if given is not None and given[k] != named_heads:
                raise ValueError(
                    f"num_heads gives the {part} {given[k]} heads, but config.json names upstream's size {size!r}, "
                    f"which has {named_heads}; leave num_heads out for upstream's sizes"
                )
            heads.append(named_heads)
            notes.append(f"{part}: {named_heads} heads, from the ViT size {size!r} named in config.json")
        elif given is None:
            named = (
                f"does not name the {part} ViT size (vit_{part[:3]}_model_size)"
                if size is None
                else f"names the {part} ViT size {size!r}, which upstream does not define (it knows "
                f"{', '.join(VIT_SIZES)})"
            )
            raise ValueError(
                f"config.json {named}, and the {part}'s head count is not in the weights: give it with "
                f"{NUM_HEADS_HINT}"
            )
        else:
            if width % given[k]:
                raise ValueError(f"num_heads: the {part} width {width} is not divisible by {given[k]} heads")
            heads.append(given[k])
            notes.append(f"{part}: {given[k]} heads, given by num_heads (config.json's size {size!r} is not upstream's)")
    expected = {
        "num_latent_tokens": shapes["num_latent_tokens"],
        "token_size": shapes["token_size"],
        "codebook_size": shapes["codebook_size"],
        "vit_enc_patch_size": shapes["encoder_patch_size"],
        "vit_dec_patch_size": shapes["decoder_patch_size"],
    }
    for name, actual in expected.items():
        if name in vq and vq[name] != actual:
            raise CheckpointError(
                f"config.json says {name}={vq[name]!r} but the weights have {actual!r}; the config and the weights "
                "do not belong together"
            )
    crop = _section(model_config, "dataset", "preprocessing").get("crop_size")
    if crop is not None and crop != shapes["image_size"]:
        raise CheckpointError(
            f"config.json says crop_size {crop!r} but the position embeddings fit {shapes['image_size']}px images"
        )
    if image_size is not None and image_size != shapes["image_size"]:
        raise ValueError(
            f"image_size {image_size}: this TiTok takes {shapes['image_size']}px images only (its position embeddings "
            f"are fixed); leave image_size out"
        )
    use_l2 = vq.get("use_l2_norm", False)
    if not isinstance(use_l2, bool):
        raise CheckpointError(f"config.json says use_l2_norm={use_l2!r}; expected true or false")
    net = {
        "type": "titok",
        "image_size": shapes["image_size"],
        "encoder_patch_size": shapes["encoder_patch_size"],
        "decoder_patch_size": shapes["decoder_patch_size"],
        "encoder_width": shapes["encoder_width"],
        "encoder_depth": shapes["encoder_depth"],
        "encoder_heads": heads[0],
        "decoder_width": shapes["decoder_width"],
        "decoder_depth": shapes["decoder_depth"],
        "decoder_heads": heads[1],
        "num_latent_tokens": shapes["num_latent_tokens"],
        "token_size": shapes["token_size"],
        "quant_conv": False,
        "pixel_range": "unit",
    }
    quantizer = {
        "type": "vq",
        "codebook_size": shapes["codebook_size"],
        "codebook_dim": shapes["token_size"],
        "l2_norm": use_l2,
        "commitment_weight": float(vq.get("commitment_cost", 0.25)),
    }
    kwargs = {"image_size": shapes["image_size"], "num_channels": shapes["num_channels"], "net": net, "quantizer": quantizer}
    return kwargs, notes


def titok_to_vistok(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream keys → vistok keys; :class:`CheckpointError` naming keys a single-stage TiTok does not have."""
    out, foreign = {}, []
    for key, value in state_dict.items():
        new = upstream_key_to_vistok(key)
        if new is None:
            foreign.append(key)
        else:
            out[new] = value
    if foreign:
        raise CheckpointError(
            f"the state dict holds {len(foreign)} tensor(s) a single-stage TiTok does not have "
            f"({', '.join(sorted(foreign)[:5])}{', …' if len(foreign) > 5 else ''})"
        )
    return out


def _mixin_files(checkpoint: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """The weight file and the parsed ``config.json`` of a TiTok mixin folder (or of the folder holding the given
    weight file)."""
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"TiTok checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        weight_file = next((path / name for name in MIXIN_WEIGHT_FILES if (path / name).is_file()), None)
        if weight_file is None:
            held = ", ".join(sorted(p.name for p in path.iterdir())[:12]) or "nothing"
            raise CheckpointError(
                f"the folder {str(path)!r} holds none of {list(MIXIN_WEIGHT_FILES)} (a TiTok Hub repo holds "
                f"config.json + model.safetensors); it holds {held}"
            )
    else:
        weight_file = path
    config_file = weight_file.parent / MIXIN_CONFIG
    if not config_file.is_file():
        raise CheckpointError(
            f"no config.json beside {weight_file.name}: a TiTok release is a folder with config.json (which says "
            "which ViT sizes and quantizer it uses) next to model.safetensors; pass that folder"
        )
    try:
        config = json.loads(config_file.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{str(config_file)!r} is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{str(config_file)!r} holds {type(config).__name__}, expected TiTok's config object")
    return weight_file, config


def _parse_num_heads(text: str) -> int | tuple[int, int]:
    """``"12"`` → 12, ``"12,16"`` → (12, 16); ``ValueError`` naming the expected form otherwise."""
    parts = text.split(",")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--num-heads must be ENC or ENC,DEC (positive integers), got {text!r}")
    heads = tuple(int(p) for p in parts)
    return heads[0] if len(heads) == 1 else (heads[0], heads[1])


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(size, filter="bicubic", size_rule="truncate", crop_offset="round",
                         follows="1d-tokenizer's eval transform (torchvision Resize BICUBIC + CenterCrop)")

@register_family(
    "titok",
    origin=TITOK,
    summary="TiTok single-stage VQ: a release folder (config.json + model.safetensors) or its weight file",
    weights_help="auto only (a release holds one set of weights)",
    options=(
        ConverterOption(
            "--num-heads",
            "num_heads",
            "attention heads of the encoder (and decoder) ViT; needed when config.json names a ViT size upstream "
            "does not define (small / base / large have 8 / 12 / 16)",
            metavar="ENC[,DEC]",
            parse=_parse_num_heads,
        ),
    ),
    presets=(_preset("B", "L", 64), _preset("B", "L", 128), _preset("S", "L", 256)),
    entries=tuple(_entry(*release) for release in RELEASES),
    preprocessing=_preprocessing,
)
def convert_titok(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
    num_heads: int | tuple[int, int] | None = None,
):
    """Convert a single-stage TiTok VQ tokenizer into a :class:`~vistok.VisTokenizer` (eval mode).

    Args:
        checkpoint: the release folder (``config.json`` + ``model.safetensors``, as ``TiTok.save_pretrained`` and
            the Hub repos have it), or its weight file with ``config.json`` beside it.
        weights: ``"auto"`` only (a release holds one set of weights).
        image_size: must be left out or equal the model's image size (TiTok's position embeddings are fixed).
        trust_checkpoint: allow arbitrary unpickling of a ``pytorch_model.bin`` (only for trusted files).
        num_heads: attention heads, ``int`` (both) or ``(encoder, decoder)``; required when ``config.json`` names a
            ViT size upstream does not define, refused when it contradicts an upstream size.

    The tokenizer's indices are (B, num_latent_tokens); it takes and returns [−1, 1] images of exactly the model's
    image size (see the module docstring for the pixel mapping).
    """
    if weights != "auto":
        raise CheckpointError(f"a TiTok release holds one set of weights; weights must be 'auto', got {weights!r}")
    weight_file, model_config = _mixin_files(checkpoint)
    loaded = load_checkpoint(weight_file, trust_checkpoint=trust_checkpoint)
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"{weight_file.name} is not a plain state dict (TiTok's mixin saves one)")
    config_kwargs, notes = titok_config_kwargs(loaded, model_config, num_heads=num_heads, image_size=image_size)
    state_dict = titok_to_vistok(loaded)
    net, quantizer = config_kwargs["net"], config_kwargs["quantizer"]
    summary = {"net": net, "codebook_size": quantizer["codebook_size"], "codebook_dim": quantizer["codebook_dim"]}
    extra = {"format": "PyTorchModelHubMixin folder (TiTok)", "config": model_config}
    notes.append("input and output in [-1, 1]: the net maps them to and from the [0, 1] pixels TiTok was trained on")
    metadata = conversion_metadata(TITOK, "titok", summary, weight_file, "model", extra, notes)
    name = _section(model_config, "experiment").get("output_dir") or weight_file.parent.name
    config_kwargs.update(metadata=metadata, source=f"converted from {TITOK.name} ({name})")
    return load_converted(state_dict, config_kwargs, "TiTok")


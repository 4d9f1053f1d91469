"""Janus / Janus-Pro's image-generation tokenizer (``gen_vision_model``) → vistok.

A Janus release (``deepseek-ai/Janus-Pro-1B``: one ``pytorch_model.bin``; ``-7B``: two shards and
``pytorch_model.bin.index.json``) is a whole multimodal model in bf16. Its generation tokenizer is every tensor
under ``gen_vision_model.``: a LlamaGen VQ-16 (``VQ_16()``: codebook 16384 x 8 with l2-normalised codes, 384 px →
24x24 tokens). Only those tensors are read (:mod:`vistok.convert.prefixed_tensors`), upcast exactly to float32, and
mapped like a LlamaGen checkpoint.

``config.json`` does not describe the VQ (upstream always builds ``VQ_16()``), so the architecture comes from the
tensor shapes alone. ``gen_embed.weight`` has the codebook's shape but is the language model's embedding of image
tokens, not the codebook (``gen_vision_model.quantize.embedding.weight``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..convert.containers import describe_layout
from ..convert.origins import Origin
from ..convert.prefixed_tensors import read_prefixed_tensors, top_level_names
from ..convert.safe_load import CheckpointError
from ..convert.vqgan_layout import build_tokenizer, infer_vqgan_config
from ..preprocessing import Preprocessing
from .base import conversion_metadata, register_family
from .llamagen import llamagen_quantizer_options, llamagen_to_vistok
from .records import TRANSFORMERS_WEIGHT_FILES, License, ZooEntry

PREFIX = "gen_vision_model."
DEFAULT_IMAGE_SIZE = 384
# What VQ_16() fixes that shapes cannot tell (LlamaGen's ModelArgs defaults, which Janus never overrides).
VQ16_MODEL_ARGS = {"codebook_l2_norm": True, "commit_loss_beta": 0.25, "entropy_loss_ratio": 0.0}
MODEL_LICENSE_URL = "https://github.com/deepseek-ai/Janus/blob/main/LICENSE-MODEL"
HF_CONVERTED_PREFIX = "model.vqmodel."
# Janus generates an image as codes of its own image vocabulary: generation_inference.py samples next_token from
# gen_head's logits (image_token_size = codebook_size entries), feeds it back through prepare_gen_img_embeds
# (gen_embed) and decodes the sampled ids with gen_vision_model.decode_code unchanged. The text vocabulary is
# never involved: the model id of a code is the code itself, in that separate vocabulary.
MODEL_IDS = {
    "kind": "offset",
    "offset": 0,
    "vocabulary": "Janus's image-generation vocabulary (gen_head logits / gen_embed rows, one per code), separate "
    "from the text vocabulary",
    "source": "Janus generation_inference.py and janus/models/modeling_vlm.py (gen_head, prepare_gen_img_embeds, "
    "decode_code); transformers' JanusForConditionalGeneration.generate does the same (generation_head, "
    "generation_embeddings)",
}
# transformers' JanusVQVAE names (convert_janus_weights_to_hf.py renamed Janus's) → Janus's, for the keys of one
# VQ model (prefix removed). Everything else keeps its name.
_HF_RENAMES = (
    (re.compile(r"^encoder\.down\.(\d+)\.block\."), r"encoder.conv_blocks.\1.res."),
    (re.compile(r"^encoder\.down\.(\d+)\."), r"encoder.conv_blocks.\1."),
    (re.compile(r"^decoder\.up\.(\d+)\.block\."), r"decoder.conv_blocks.\1.res."),
    (re.compile(r"^decoder\.up\.(\d+)\."), r"decoder.conv_blocks.\1."),
    (re.compile(r"^(encoder|decoder)\.mid\.block_1\."), r"\1.mid.0."),
    (re.compile(r"^(encoder|decoder)\.mid\.attn_1\."), r"\1.mid.1."),
    (re.compile(r"^(encoder|decoder)\.mid\.block_2\."), r"\1.mid.2."),
)


# Janus's code is MIT, but the weights are under the DeepSeek Model License (use-based restrictions): not permissive.
JANUS = Origin(
    name="Janus-Pro",
    url="https://github.com/deepseek-ai/Janus",
    license="other",
    paper_title="Janus-Pro: Unified Multimodal Understanding and Generation with Data and Model Scaling",
    paper_authors="Xiaokang Chen, Zhiyu Wu, Xingchao Liu, Zizheng Pan, Wen Liu, Zhenda Xie, Xingkai Yu, Chong Ruan",
    paper_venue="arXiv:2501.17811 (2025)",
    paper_url="https://arxiv.org/abs/2501.17811",
    citation="""@article{chen2025janus,
  title={Janus-Pro: Unified Multimodal Understanding and Generation with Data and Model Scaling},
  author={Chen, Xiaokang and Wu, Zhiyu and Liu, Xingchao and Pan, Zizheng and Liu, Wen and Xie, Zhenda and Yu, Xingkai and Ruan, Chong},
  journal={arXiv preprint arXiv:2501.17811},
  year={2025}
}""",
)
DEEPSEEK_MODEL_LICENSE = License("other", "DeepSeek Model License", MODEL_LICENSE_URL, permissive=False)


def _entry(size: str) -> ZooEntry:
    # The gen_vision_model.* tensors inside deepseek-ai/Janus-Pro-1B (one pytorch_model.bin) and -7B (an index +
    # two shards), both bf16. Upstream builds the VQ as LlamaGen's VQ_16() in both sizes, so both entries are the
    # LlamaGen VQ-16 architecture at Janus's 384 px. The file names are looked for in transformers' order, so the
    # entry keeps working if a release is re-uploaded as safetensors.
    return ZooEntry(
        name=f"vqgan-janus-pro-{size.lower()}",
        description=(
            f"Janus-Pro-{size}'s image-generation VQ tokenizer (LlamaGen VQ-16), 384px → 24x24 tokens, "
            "codebook 16384 x 8"
        ),
        origin=JANUS,
        license=DEEPSEEK_MODEL_LICENSE,
        converter="janus",
        image_size=384,
        repo_id=f"deepseek-ai/Janus-Pro-{size}",
        filenames=TRANSFORMERS_WEIGHT_FILES,
        preset="vqgan-llamagen-vq16",
        tensor_prefix=PREFIX,
        model_ids="Janus's image-generation head: id = index (its own 16384-entry vocabulary, not the text one)",
        notes=(
            f"The tokenizer Janus-Pro-{size} generates images with: its autoregressive model predicts these 576 "
            "codes, which this decoder turns into a 384x384 image. The download is the whole multimodal release "
            "(of a sharded one, only the shards holding the tokenizer); only the tokenizer's tensors are read from "
            "it and the language model is never loaded.",
        ),
    )


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(size, resize_edge="longest", filter="bicubic", size_rule="ratio_truncate",
                         framing="pad_square", crop_offset="floor", pad_fill=(127, 127, 127), min_side=14,
                         follows="Janus VLMImageProcessor (resize the long side + expand2square)")

@register_family(
    "janus",
    origin=JANUS,
    summary="Janus / Janus-Pro generation tokenizer: a release folder (or its weight file / index); only "
    "gen_vision_model.* is read",
    weights_help="auto only (the release holds one set of weights)",
    entries=(_entry("1B"), _entry("7B")),
    preprocessing=_preprocessing,
)
def convert_janus(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert the generation VQ tokenizer of a Janus / Janus-Pro release into a :class:`~vistok.VisTokenizer`
    (eval mode, float32).

    Args:
        checkpoint: the release folder, or its ``model.safetensors``, ``model.safetensors.index.json``,
            ``pytorch_model.bin`` or ``pytorch_model.bin.index.json`` (shards next to the index). Only the
            ``gen_vision_model.*`` tensors are read; the language model is never loaded.
        weights: ``"auto"`` only (a release holds one set of tokenizer weights).
        image_size: native resolution recorded in the config; default 384 (Janus generates 384 px images).
        trust_checkpoint: allow arbitrary unpickling of a ``.bin`` (only for files from a trusted source).

    Raises :class:`CheckpointError` when the release has no ``gen_vision_model.*`` tensors (saying what it holds,
    and what to load instead for transformers' converted Janus format), or when an index names a missing shard.
    """
    if weights != "auto":
        raise CheckpointError(
            f"a Janus release holds one set of tokenizer weights (gen_vision_model.*); weights must be 'auto', "
            f"got {weights!r}"
        )
    found = read_prefixed_tensors(checkpoint, PREFIX, trust_checkpoint=trust_checkpoint)
    if not found.tensors:
        raise CheckpointError(_no_tokenizer_message(found.weight_file.name, found.all_names))
    extra: dict[str, Any] = {}
    if found.weight_file.name.endswith(".index.json"):
        extra["shards_read"] = found.files_read
    return janus_tokenizer(found.tensors, image_size, weight_file=found.weight_file, extra=extra)


def transformers_to_janus(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers ``JanusVQVAE`` state dict (prefix removed) with Janus's own key names (the inverse of the
    VQ renames of transformers' convert_janus_weights_to_hf.py)."""
    out = {}
    for key, value in tensors.items():
        for pattern, replacement in _HF_RENAMES:
            key, count = pattern.subn(replacement, key)
            if count:
                break
        out[key] = value
    return out


def janus_tokenizer(
    tensors: Mapping[str, torch.Tensor],
    image_size: int | None = None,
    *,
    weight_file: Path | None = None,
    label: str | None = None,
    extra: dict[str, Any] | None = None,
    notes: list[str] | None = None,
):
    """The tokenizer of a Janus ``gen_vision_model`` state dict (prefix removed, Janus's key names). Shared by the
    release converter and :func:`vistok.convert.transformers_bridge.tokenizer_from_transformers`."""
    label = label or (weight_file.name if weight_file is not None else "state dict")
    state_dict = llamagen_to_vistok(_upcast(tensors))  # also drops quantize.codebook_used
    inferred = infer_vqgan_config(state_dict)
    quantizer, _ = llamagen_quantizer_options(
        VQ16_MODEL_ARGS, inferred["codebook_size"], inferred["codebook_dim"]
    )
    notes = [
        *(notes or []),
        "weights under the DeepSeek Model License (use-based restrictions; not an open-source licence): "
        f"{MODEL_LICENSE_URL}. Janus's code is MIT.",
        "architecture read from the tensor shapes (Janus's config.json does not describe the VQ); l2-normalised "
        "codes as in Janus's VQ_16()",
    ]
    extra = {
        "component": "gen_vision_model (image-generation VQ tokenizer)",
        "weights_license": {"name": "DeepSeek Model License", "url": MODEL_LICENSE_URL},
        **(extra or {}),
    }
    metadata = conversion_metadata(JANUS, "janus", inferred, weight_file, "gen_vision_model", extra, notes)
    metadata["model_ids"] = dict(MODEL_IDS)
    source = f"converted from {JANUS.name}'s generation VQ tokenizer ({label})"
    size = image_size or DEFAULT_IMAGE_SIZE
    return build_tokenizer(state_dict, quantizer, size, metadata, source=source)


def _upcast(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors to float32 (exact from bf16 / fp16); others unchanged."""
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()}


def _no_tokenizer_message(file_name: str, names: list[str]) -> str:
    if any(name.startswith(HF_CONVERTED_PREFIX) for name in names):
        return (
            f"{file_name} is in Hugging Face transformers' converted Janus format (model.vqmodel.*, with renamed "
            "modules), not the original release; vistok converts the original files: load deepseek-ai/Janus-Pro-1B "
            "(or deepseek-ai/Janus-Pro-7B) instead, or load this one with transformers' JanusForConditionalGeneration "
            "and pass it to VisTokenizer.from_transformers"
        )
    layout = describe_layout(dict.fromkeys(names))
    return (
        f"{file_name} has no gen_vision_model.* tensors, so it is not a Janus release (a Janus release holds its "
        f"image-generation tokenizer under gen_vision_model.*). It holds {top_level_names(names)}; "
        f"it looks like {layout}"
    )

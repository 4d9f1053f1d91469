"""Emu3's VisionTokenizer (``BAAI/Emu3-VisionTokenizer``: ``config.json`` + ``model.safetensors`` for BAAI's custom
code; the same network inside transformers' ``Emu3ForConditionalGeneration`` releases as ``vqmodel.*``) → vistok.

A MoVQ with temporal layers: vistok's ``movq`` net with ``temporal_downsample_factor`` (:mod:`vistok.nets.movq`
says what runs). Released: codebook 32768 × 4, z 4, ch 256, ch_mult (1, 2, 2, 4), two residual blocks, attention at
level 3 (``attn_resolutions`` are level indices here, not resolutions), temporal factor 4 — f8 in space. A still image
is upstream's clip of 4 identical frames; ``encode`` gives its one latent frame's codes (B, h, w) and ``decode``
returns frame 0, as upstream's ``encode`` / ``decode`` of a 4-D input do. Video is not handled.

Both key layouts are read without running any upstream code: BAAI's is Taming's (``encoder.down.{i}``,
``decoder.up.{i}`` by level, ``mid.block_1/attn_1/block_2``) plus the temporal modules; transformers' renames
``down_block.down`` / ``up_block.up`` / ``middle_block`` / ``attn_norm(s)`` and stores the attention projections as
Linear ``q_proj/k_proj/v_proj/out_proj``, which are mapped back. A transformers release's ``vocabulary_map`` names the
visual tokens ``<|visual token%06d|>``: the converter records their ids in ``config.metadata["model_ids"]``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..convert.containers import describe_layout
from ..convert.magvit2_layout import load_converted
from ..convert.origins import Origin
from ..convert.prefixed_tensors import WEIGHT_FILES, read_prefixed_tensors, top_level_names
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..convert.taming_layout import rename_key
from ..registry import Preset
from .base import conversion_metadata, register_family
from .records import APACHE_2, TRANSFORMERS_WEIGHT_FILES, ZooEntry

EMU3 = Origin(
    name="Emu3",
    url="https://github.com/baaivision/Emu3",
    license="apache-2.0",
    paper_title="Emu3: Next-Token Prediction is All You Need",
    paper_authors="Xinlong Wang et al. (BAAI Emu3 Team)",
    paper_venue="arXiv:2409.18869 (2024)",
    paper_url="https://arxiv.org/abs/2409.18869",
    citation="""@article{wang2024emu3,
  title={Emu3: Next-Token Prediction is All You Need},
  author={Wang, Xinlong and others},
  journal={arXiv preprint arXiv:2409.18869},
  year={2024}
}""",
)

REPO = "BAAI/Emu3-VisionTokenizer"
HF_PREFIXES = ("vqmodel.", "model.vqmodel.")  # transformers' on-disk layout / its in-memory one
DEFAULT_IMAGE_SIZE = 512
VISUAL_TOKEN = re.compile(r"^<\|visual token(\d{6})\|>$")
END_OF_ROW = "<|extra_200|>"
# Without a vocabulary (BAAI's folder) the record names the tokens: transformers' Emu3ImageVocabularyMapping reads a
# code as the 6 digits of "<|visual token%06d|>" (token[-8:-2]), and get_image_tokens ends each row with END_OF_ROW.
NAMED_MODEL_IDS = {
    "kind": "named",
    "token_format": "<|visual token{:06d}|>",
    "end_of_row": {"token": END_OF_ROW},
    "source": "Emu3's LLM vocabulary names code k <|visual token%06d|> (transformers' Emu3ImageVocabularyMapping "
    "and the vocabulary_map of its Emu3 releases); the ids are the LLM tokenizer's",
}
QUANTIZER_OPTIONS = {"l2_norm": False}

# Emu3VisionVQConfig()'s defaults: the released tokenizer.
RELEASE_NET = {
    "type": "movq",
    "base_channels": 256,
    "channel_multiplier": [1, 2, 2, 4],
    "num_res_blocks": 2,
    "latent_channels": 4,
    "attention_levels": [3],
    "norm_groups": 32,
    "spatial_norm_groups": 32,
    "temporal_downsample_factor": 4,
}
RELEASE_CODEBOOK = (32768, 4)
PRESET = Preset(
    name="movq-emu3-f8",
    description="Emu3 VisionTokenizer (MoVQ with temporal layers; stills), 512px → 64x64 tokens, codebook 32768 x 4",
    config={
        "image_size": 512,
        "net": RELEASE_NET,
        "quantizer": {"type": "vq", "codebook_size": RELEASE_CODEBOOK[0], "codebook_dim": RELEASE_CODEBOOK[1],
                      **QUANTIZER_OPTIONS},
    },
    source="Wang et al., Emu3 (arXiv:2409.18869); Emu3VisionVQConfig() of baaivision/Emu3 "
    "emu3/tokenizer/configuration_emu3visionvq.py",
)
_NOTES = (
    "Emu3 tokenizes each image at its own size (a multiple of 8 between 512² and 1024² pixels by default); the "
    "entry's 512 px is the smallest default size. Images only: a still is upstream's clip of 4 identical frames, "
    "decode returns frame 0.",
)
ENTRIES = (
    ZooEntry(
        name="movq-emu3",
        description="Emu3's VisionTokenizer (BAAI custom-code release), 512px → 64x64 tokens, codebook 32768 x 4",
        origin=EMU3,
        license=APACHE_2,
        converter="emu3",
        image_size=DEFAULT_IMAGE_SIZE,
        repo_id=REPO,
        filenames=("model.safetensors",),
        companion_files=("config.json",),
        preset=PRESET.name,
        model_ids="Emu3's LLM: code k is the token <|visual token%06d|>; its id comes from the LLM's vocabulary "
        "(to_model_ids(..., vocabulary=...))",
        notes=(
            *_NOTES,
            "The tokenizer of Emu3 Gen / Chat / Stage1: their LLM names the codes <|visual token000000|>… and "
            "ends each row with <|extra_200|>; this release carries no vocabulary (config.metadata['model_ids'] "
            "records the names, to_model_ids resolves them with the LLM's vocabulary), the transformers-format "
            "entries (movq-emu3-gen-hf, movq-emu3-chat-hf) record the ids from theirs.",
        ),
    ),
    *(
        ZooEntry(
            name=f"movq-emu3-{kind}-hf",
            description=f"Emu3-{kind.capitalize()}'s VisionTokenizer in transformers' format, 512px → 64x64 tokens",
            origin=EMU3,
            license=APACHE_2,
            converter="emu3",
            image_size=DEFAULT_IMAGE_SIZE,
            repo_id=f"BAAI/Emu3-{kind.capitalize()}-hf",
            filenames=TRANSFORMERS_WEIGHT_FILES,
            companion_files=("config.json",),
            tensor_prefix=HF_PREFIXES[0],
            preset=PRESET.name,
            model_ids="Emu3's LLM: the id of every <|visual token%06d|>, from config.json's vocabulary_map",
            notes=(
                *_NOTES,
                "Only the shards holding vqmodel.* are downloaded; the language model is never loaded. The vqmodel.* "
                "key prefix is the layout transformers' Emu3 conversion mapping reads (the repo's files were not "
                "inspected when this entry was written).",
                "config.metadata['model_ids'] records the LLM's ids of the visual tokens, read from config.json's "
                "vocabulary_map.",
            ),
        )
        for kind in ("gen", "chat")
    ),
)

# transformers' names → BAAI's (module paths; attention projections are also reshaped Linear → 1×1 conv).
_HF_RENAMES = (
    (re.compile(r"^(encoder)\.down_block\.down\."), r"\1.down."),
    (re.compile(r"^(decoder)\.up_block\.up\."), r"\1.up."),
    (re.compile(r"^(encoder|decoder)\.middle_block\.attn_norm\."), r"\1.mid.attn_1.norm."),
    (re.compile(r"^(encoder|decoder)\.middle_block\."), r"\1.mid."),
    (re.compile(r"\.(down|up)\.(\d+)\.attn_norms\.(\d+)\."), r".\1.\2.attn.\3.norm."),
    (re.compile(r"\.(q|k|v)_proj\."), r".\1."),
    (re.compile(r"\.out_proj\."), r".proj_out."),
)
_LEVEL = re.compile(r"^decoder\.up\.(\d+)\.")


def hf_to_baai(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' Emu3VQVAE keys (prefix stripped) → BAAI's, Linear attention weights as 1×1 conv weights."""
    out = {}
    for key, value in tensors.items():
        name = key
        for pattern, replacement in _HF_RENAMES:
            name = pattern.sub(replacement, name)
        if re.search(r"\.(attn\.\d+|attn_1)\.(q|k|v|proj_out)\.weight$", name) and value.dim() == 2:
            value = value.reshape(*value.shape, 1, 1)
        out[name] = value
    return out


def baai_to_vistok(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BAAI's keys → vistok's ``movq`` keys: Taming's renaming, the quant convs moved into encoder / decoder."""
    levels = len({int(m.group(1)) for m in map(_LEVEL.match, state_dict) if m})
    out = {}
    for key, value in state_dict.items():
        if key == "quantize.embedding.weight":
            out["quantizer.codebook"] = value
        elif key.startswith("quant_conv."):
            out[f"encoder.{key}"] = value
        elif key.startswith("post_quant_conv."):
            out[f"decoder.{key}"] = value
        else:
            out[rename_key(key, levels)] = value
    return out


def architecture(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(net, quantizer)`` specs from BAAI's config.json or transformers' ``vq_config`` (either spelling)."""

    def pick(*names: str, default: Any = None) -> Any:
        return next((config[n] for n in names if n in config), default)

    values = {
        "ch": pick("ch", "base_channels"),
        "ch_mult": pick("ch_mult", "channel_multiplier"),
        "num_res_blocks": pick("num_res_blocks"),
        "z_channels": pick("z_channels", "latent_channels"),
        "embed_dim": pick("embed_dim"),
        "codebook_size": pick("codebook_size"),
        "temporal_downsample_factor": pick("temporal_downsample_factor"),
    }
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise CheckpointError(f"the Emu3 config lacks {missing}")
    problems = []
    if pick("double_z", "double_latent", default=False):
        problems.append("double_z true")
    if pick("in_channels", default=3) != pick("out_channels", default=3):
        problems.append("in_channels != out_channels")
    if values["embed_dim"] != values["z_channels"]:
        problems.append(f"embed_dim {values['embed_dim']} != z_channels {values['z_channels']} (upstream cannot decode it)")
    if problems:
        raise CheckpointError("this Emu3 tokenizer cannot be expressed by vistok's movq net: " + "; ".join(problems))
    net = {
        "type": "movq",
        "base_channels": int(values["ch"]),
        "channel_multiplier": list(values["ch_mult"]),
        "num_res_blocks": int(values["num_res_blocks"]),
        "latent_channels": int(values["z_channels"]),
        "attention_levels": list(pick("attn_resolutions", default=[]) or []),  # level indices in Emu3
        "dropout": float(pick("dropout", default=0.0)),
        "norm_groups": 32,
        "spatial_norm_groups": 32,
        "temporal_downsample_factor": int(values["temporal_downsample_factor"]),
    }
    quantizer = {"type": "vq", "codebook_size": int(values["codebook_size"]), "codebook_dim": int(values["embed_dim"]),
                 **QUANTIZER_OPTIONS}
    return net, quantizer


def model_ids_from_vocabulary(vocabulary_map: Mapping[str, int], codebook_size: int) -> dict[str, Any]:
    """The LLM ids of the visual tokens ``<|visual token%06d|>`` (an offset when they are contiguous, else a table),
    and the end-of-row token; :class:`CheckpointError` unless every code is named once."""
    ids = {int(m.group(1)): int(i) for name, i in vocabulary_map.items() if (m := VISUAL_TOKEN.match(name))}
    if sorted(ids) != list(range(codebook_size)):
        raise CheckpointError(
            f"the vocabulary_map's {len(ids)} <|visual token…|> entries do not name the codes 0..{codebook_size - 1}"
        )
    table = [ids[k] for k in range(codebook_size)]
    offsets = {token_id - code for code, token_id in enumerate(table)}
    record: dict[str, Any] = (
        {"kind": "offset", "offset": offsets.pop()} if len(offsets) == 1 else {"kind": "table", "ids": table}
    )
    record["source"] = "config.json vocabulary_map (<|visual token%06d|> names)"
    if END_OF_ROW in vocabulary_map:
        record["end_of_row"] = {"token": END_OF_ROW, "id": int(vocabulary_map[END_OF_ROW])}
    return record


@register_family(
    "emu3",
    origin=EMU3,
    summary="Emu3 VisionTokenizer: BAAI's folder (config.json + model.safetensors) or a transformers Emu3 release "
    "(vqmodel.*); images only",
    weights_help="auto only (the release holds one set of weights)",
    presets=(PRESET,),
    entries=ENTRIES,
    preprocessing_note="Emu3VisionVQImageProcessor's smart_resize gives each image its own size: sides rounded to "
    "multiples of 8, scaled into [512², 1024²] pixels of area (floored / ceiled to multiples), PIL bicubic",
)
def convert_emu3(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert Emu3's VisionTokenizer into a :class:`~vistok.VisTokenizer` (eval mode, float32) with the temporal
    ``movq`` net.

    Args:
        checkpoint: BAAI's folder (or its ``model.safetensors``, ``config.json`` beside it), or a transformers Emu3
            release (folder, weight file or index).
        weights: ``"auto"`` only.
        image_size: native resolution recorded in the config (default 512).
        trust_checkpoint: allow arbitrary unpickling of a ``.bin`` (only for files from a trusted source).
    """
    if weights != "auto":
        raise ValueError(f"weights={weights!r}: an Emu3 release holds one set of weights; use 'auto'")
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    folder = path if path.is_dir() else path.parent
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"no config.json in {str(folder)!r}: an Emu3 release keeps its architecture there")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{config_file} is not a JSON config: {err}") from err
    if isinstance(config.get("vq_config"), dict):  # transformers' Emu3ForConditionalGeneration
        found, prefix = None, None
        for prefix in HF_PREFIXES:
            found = read_prefixed_tensors(path, prefix, trust_checkpoint=trust_checkpoint)
            if found.tensors:
                break
        assert found is not None and prefix is not None
        if not found.tensors:
            raise CheckpointError(
                f"{found.weight_file.name} has no vqmodel.* tensors, so it holds no Emu3 tokenizer; it holds "
                f"{top_level_names(found.all_names)}"
            )
        extra = {"format": "transformers", "tensor_prefix": prefix}
        if found.weight_file.name.endswith(".index.json"):
            extra["shards_read"] = found.files_read
        return transformers_tokenizer(found.tensors, config, image_size, weight_file=found.weight_file, extra=extra)
    model_type = config.get("model_type")
    if model_type != "Emu3VisionVQ":
        raise CheckpointError(
            f"{config_file} describes model_type {model_type!r}, not Emu3's VisionTokenizer (Emu3VisionVQ) nor a "
            "transformers Emu3 release (vq_config)"
        )
    weight_file = path if path.is_file() else next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weight_file is None:
        raise CheckpointError(f"{str(folder)!r} holds none of {list(WEIGHT_FILES)}")
    loaded = load_checkpoint(weight_file, trust_checkpoint=trust_checkpoint)
    state_dict = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in loaded.items()}
    net, quantizer = architecture(config)
    extra = {"format": "BAAI custom code"}
    model_ids = dict(NAMED_MODEL_IDS)
    return _tokenizer(state_dict, net, quantizer, image_size, weight_file, weight_file.name, extra, model_ids)


def transformers_tokenizer(
    tensors: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    image_size: int | None = None,
    *,
    weight_file: Path | None = None,
    label: str | None = None,
    extra: dict[str, Any] | None = None,
):
    """The tokenizer of transformers' Emu3 layout: ``tensors`` an ``Emu3VQVAE`` state dict (prefix removed),
    ``config`` a config with ``vq_config`` (and, for a whole model, its ``vocabulary_map``). Shared by the release
    converter and :func:`vistok.convert.transformers_bridge.tokenizer_from_transformers`."""
    state_dict = hf_to_baai({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()})
    net, quantizer = architecture(config["vq_config"])
    model_ids = None
    if isinstance(config.get("vocabulary_map"), dict):
        model_ids = model_ids_from_vocabulary(config["vocabulary_map"], quantizer["codebook_size"])
    label = label or (weight_file.name if weight_file is not None else "transformers Emu3VQVAE")
    extra = {"format": "transformers", **(extra or {})}
    return _tokenizer(state_dict, net, quantizer, image_size, weight_file, label, extra, model_ids)


def _tokenizer(state_dict, net, quantizer, image_size, weight_file, label, extra, model_ids):
    if "quantize.embedding.weight" not in state_dict or not any(k.startswith("decoder.time_conv.") for k in state_dict):
        raise CheckpointError(
            f"{label} is not an Emu3 VisionTokenizer state dict: it looks like {describe_layout(state_dict)}"
        )
    notes = [
        "a still image is upstream's clip of temporal_downsample_factor identical frames; encode gives the one latent "
        "frame's codes, decode returns frame 0 (as upstream's decode of (B, h, w) codes)",
        "attn_resolutions are level indices in Emu3 (not pixel resolutions)",
        "BatchNorm3d running statistics kept (eval mode uses them)",
        "quantizer: plain Euclidean nearest code (no l2 normalisation)",
        "decoder output unclamped (upstream's processor clips and truncates to uint8)",
    ]
    summary = {"net": net, "codebook_size": quantizer["codebook_size"], "codebook_dim": quantizer["codebook_dim"]}
    metadata = conversion_metadata(EMU3, "emu3", summary, weight_file, "state_dict", extra, notes)
    if model_ids is not None:
        metadata["model_ids"] = model_ids
    kwargs = {
        "image_size": image_size or DEFAULT_IMAGE_SIZE,
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from {EMU3.name}'s VisionTokenizer ({label})",
        "metadata": metadata,
    }
    return load_converted(baai_to_vistok(state_dict), kwargs, "Emu3 VisionTokenizer")

"""Chameleon's image tokenizer (Meta's ``tokenizer/vqgan.ckpt`` + ``tokenizer/vqgan.yaml``; the same files in
``GAIR/Anole-7b-v0.1``) and its transformers-format copies (``facebook/chameleon-7b`` / ``-30b``) → vistok.

The network is Taming's VQGAN as Chameleon's ``chameleon/inference/vqgan.py`` builds it: f16 (ch 128, ch_mult
[1, 1, 2, 2, 4], two residual blocks per level), z 256 quantized by a plain Euclidean 8192 × 256 codebook, 512 px →
32×32 tokens. Two things a textbook port gets wrong, and vistok's ``vqgan`` net expresses:

- the mid attention is always there, even with ``attn_resolutions: []`` (the release's value): so the release has
  no attention inside the levels but one in each mid block;
- where level attention goes is decided by the YAML's ``resolution`` halved once per level, not by the input size.
  The converter reads the YAML and checks it against the tensors (the tensors must be exactly what the YAML
  builds: upstream would fail or keep random weights otherwise).

``vqgan.ckpt`` is ``{"state_dict": …}`` (read with the weights-only loader); only ``encoder.``, ``decoder.``,
``quantize.``, ``quant_conv.`` and ``post_quant_conv.`` tensors are taken, as upstream's ``strict=False`` load does.

**transformers format.** transformers' converter drops every decoder tensor and stores the rest under
``model.vqmodel.`` with the architecture in ``config.json``'s ``vq_config``. vistok reads only those tensors (only
the shards holding them) and makes an **encode-only** tokenizer: its indices are the original's, and decoding
raises a message naming where the decoder weights are (the original ``vqgan.ckpt``). Its ``config.json`` also
carries the language model's ``vocabulary_map``, from which the converter records how Chameleon numbers image
tokens (``config.metadata["model_ids"]``).
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from ..convert.containers import describe_layout, select_state_dict
from ..convert.magvit2_layout import load_converted
from ..convert.origins import Origin, Release
from ..convert.prefixed_tensors import WEIGHT_FILES, read_prefixed_tensors, top_level_names
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..convert.taming_layout import convert_state_dict, rename_key
from ..convert.vqgan_layout import infer_vqgan_config
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import conversion_metadata, register_family
from .records import TRANSFORMERS_WEIGHT_FILES, License, ZooEntry

CHAMELEON = Origin(
    name="Chameleon",
    url="https://github.com/facebookresearch/chameleon",
    license="other",
    paper_title="Chameleon: Mixed-Modal Early-Fusion Foundation Models",
    paper_authors="Chameleon Team",
    paper_venue="arXiv:2405.09818 (2024)",
    paper_url="https://arxiv.org/abs/2405.09818",
    citation="""@article{Chameleon_Team_Chameleon_Mixed-Modal_Early-Fusion_2024,
  author = {Chameleon Team},
  doi = {10.48550/arXiv.2405.09818},
  journal = {arXiv preprint arXiv:2405.09818},
  title = {Chameleon: Mixed-Modal Early-Fusion Foundation Models},
  url = {https://github.com/facebookresearch/chameleon},
  year = {2024}
}""",
)
LICENSE_URL = "https://ai.meta.com/resources/models-and-libraries/chameleon-license/"
# The repository's README: "Use of this repository and related resources are governed by the Chameleon Research
# License". Research use only: not permissive. facebook/chameleon-* ask every user to accept it (gated).
CHAMELEON_LICENSE = License("other", "Chameleon Research License", LICENSE_URL, permissive=False)
CHAMELEON_LICENSE_GATED = License("other", "Chameleon Research License", LICENSE_URL, permissive=False, gated=True)

CKPT_NAME = "vqgan.ckpt"
YAML_NAME = "vqgan.yaml"
TOKENIZER_FOLDER = "tokenizer"
HF_PREFIXES = ("model.vqmodel.", "vqmodel.")  # transformers 5 on disk / older in-memory layout
KEPT_PREFIXES = ("encoder.", "decoder.", "quantize.", "quant_conv.", "post_quant_conv.")
DEFAULT_IMAGE_SIZE = 512
# VQModel builds VectorQuantizer2(beta=0.25) with legacy=True: β on the codebook term.
QUANTIZER_OPTIONS = {"l2_norm": False, "commitment_weight": 1.0, "codebook_weight": 0.25}
DECODER_LOCATION = (
    "Meta's original tokenizer/vqgan.ckpt + tokenizer/vqgan.yaml (the same files are in GAIR/Anole-7b-v0.1 under "
    "tokenizer/): load the zoo entry vqgan-chameleon, or `vistok convert chameleon vqgan.ckpt OUT`"
)
IMAGE_TOKEN_PREFIX = "IMGIMG"

# The released vqgan.yaml (as transformers' converted configs show it): ch 128, ch_mult [1,1,2,2,4], 2 blocks,
# attn_resolutions [], z 256, resolution 512, embed_dim 256, n_embed 8192.
RELEASE_NET = {
    "type": "vqgan",
    "base_channels": 128,
    "channel_multiplier": [1, 1, 2, 2, 4],
    "num_res_blocks": 2,
    "latent_channels": 256,
    "attention_levels": [],
}
RELEASE_CODEBOOK = (8192, 256)
PRESET = Preset(
    name="vqgan-chameleon-f16",
    description="Chameleon VQGAN (Taming, mid attention only), 512px → 32x32 tokens, codebook 8192 x 256",
    config={
        "image_size": 512,
        "net": RELEASE_NET,
        "quantizer": {
            "type": "vq",
            "codebook_size": RELEASE_CODEBOOK[0],
            "codebook_dim": RELEASE_CODEBOOK[1],
            **QUANTIZER_OPTIONS,
        },
    },
    source="Chameleon Team, Chameleon: Mixed-Modal Early-Fusion Foundation Models (arXiv:2405.09818); "
    "chameleon/inference/vqgan.py with the released tokenizer/vqgan.yaml",
)
RELEASE = Release(CHAMELEON, "image tokenizer (tokenizer/vqgan.ckpt)", (CKPT_NAME,), (1, 1, 2, 2, 4), RELEASE_CODEBOOK)

VOCABULARY_NOTE = (
    "Chameleon-family LLMs (Chameleon, Anole, Lumina-mGPT) name image tokens IMGIMG + the code's decimal digits "
    "written as letters A-J + a last character (IMGIMGBAZ = code 10). A transformers-format config.json carries "
    "that vocabulary_map: vqgan-chameleon-encoder-7b/-30b record the id of every code from it "
    "(config.metadata['model_ids']). Anole's image-head code treats rows 4..8195 of the 65,536-row lm_head as the "
    "8192 image tokens, i.e. id = code + 4 (not read from text_tokenizer.json here). Liquid instead uses id = "
    "code + len(its text tokenizer)."
)


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(
        size,
        resize_edge="shortest",
        filter="lanczos",
        size_rule="round",
        crop_offset="floor",
        alpha="white",
        follows="Chameleon ImageTokenizer._vqgan_input_from after _whiten_transparency",
    )


ENTRIES = (
    ZooEntry(
        name="vqgan-chameleon",
        description="Chameleon / Anole image tokenizer (Taming VQGAN), 512px → 32x32 tokens, codebook 8192 x 256",
        origin=CHAMELEON,
        license=CHAMELEON_LICENSE,
        converter="chameleon",
        image_size=512,
        repo_id="GAIR/Anole-7b-v0.1",
        filenames=(f"{TOKENIZER_FOLDER}/{CKPT_NAME}",),
        companion_files=(f"{TOKENIZER_FOLDER}/{YAML_NAME}",),
        preset=PRESET.name,
        notes=(
            "Meta's tokenizer/vqgan.ckpt + vqgan.yaml for Chameleon 7B/30B, as shipped (same md5 sums) in "
            "GAIR/Anole-7b-v0.1; also used by Anole, Lumina-mGPT and Liquid. Only the two tokenizer files are "
            "downloaded.",
            "Weights under the Chameleon Research License (research use only; not an open-source licence).",
            VOCABULARY_NOTE,
        ),
    ),
    *(
        ZooEntry(
            name=f"vqgan-chameleon-encoder-{size}",
            description=(
                f"Chameleon-{size.upper()}'s image tokenizer in transformers' format: ENCODE ONLY (no decoder "
                "weights), 512px → 32x32 tokens, codebook 8192 x 256"
            ),
            origin=CHAMELEON,
            license=CHAMELEON_LICENSE_GATED,
            converter="chameleon",
            image_size=512,
            repo_id=f"facebook/chameleon-{size}",
            filenames=TRANSFORMERS_WEIGHT_FILES,
            companion_files=("config.json",),
            tensor_prefix=HF_PREFIXES[0],
            model_ids="Chameleon's LLM: the id of every IMGIMG… token, from config.json's vocabulary_map",
            notes=(
                "transformers' conversion of Chameleon drops the decoder: this entry encodes (the same indices as "
                "the original tokenizer) but cannot decode; vqgan-chameleon has the decoder. Only the shards "
                "holding model.vqmodel.* are downloaded; the language model is never loaded.",
                "Gated: accept the Chameleon Research License on the repo page first (research use only).",
                VOCABULARY_NOTE,
            ),
        )
        for size in ("7b", "30b")
    ),
)


# ------------------------------------------------------------------------------------------------ the YAML
def read_release_yaml(path: Path) -> dict[str, Any]:
    """``model.params`` of a Chameleon ``vqgan.yaml`` (plain data; ``yaml.safe_load``)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(f"{str(path)!r} is not a readable YAML file: {err}") from err
    params = data.get("model", {}).get("params") if isinstance(data, dict) else None
    if not isinstance(params, dict) or not isinstance(params.get("ddconfig"), dict):
        raise CheckpointError(
            f"{str(path)!r} is not a Chameleon vqgan.yaml: expected model.params with ddconfig, n_embed and "
            "embed_dim"
        )
    return params


def architecture(ddconfig: Mapping[str, Any], n_embed: int, embed_dim: int, params: Mapping[str, Any] | None = None):
    """``(net spec, quantizer spec, resolution)`` that upstream's ``VQModel(ddconfig, n_embed, embed_dim, …)``
    builds. Raises :class:`CheckpointError` naming every setting vistok's ``vqgan`` net cannot express."""
    params = params or {}
    problems = []
    if ddconfig.get("double_z", True):
        problems.append("double_z true (the encoder emits 2*z_channels, which quant_conv cannot take)")
    if not ddconfig.get("resamp_with_conv", True):
        problems.append("resamp_with_conv false (average-pool down / conv-free upsampling)")
    attn_type = "linear" if ddconfig.get("use_linear_attn") else ddconfig.get("attn_type", "vanilla")
    if attn_type not in ("vanilla", "none"):
        problems.append(f"attn_type {attn_type!r}")
    if ddconfig.get("tanh_out") or ddconfig.get("give_pre_end"):
        problems.append("a decoder with tanh_out / give_pre_end")
    if ddconfig.get("in_channels", 3) != ddconfig.get("out_ch", 3):
        problems.append(f"in_channels {ddconfig.get('in_channels')} != out_ch {ddconfig.get('out_ch')}")
    if params.get("remap") is not None:
        problems.append("an index-remapping quantizer (remap)")
    if params.get("ignore_keys"):
        problems.append(f"ignore_keys {params['ignore_keys']} (upstream leaves those weights random)")
    if problems:
        raise CheckpointError("this Chameleon tokenizer cannot be expressed by vistok's vqgan: " + "; ".join(problems))
    mult = list(ddconfig["ch_mult"])
    resolution = int(ddconfig["resolution"])
    attn_resolutions = list(ddconfig.get("attn_resolutions") or [])
    # Upstream puts attention after every block of a level whose nominal resolution (the config's `resolution`
    # halved once per level) is listed; "none" makes every attention an identity, the mid one included.
    levels = [i for i in range(len(mult)) if resolution // 2**i in attn_resolutions] if attn_type == "vanilla" else []
    net = {
        "type": "vqgan",
        "base_channels": int(ddconfig["ch"]),
        "channel_multiplier": mult,
        "num_res_blocks": int(ddconfig["num_res_blocks"]),
        "latent_channels": int(ddconfig["z_channels"]),
        "attention_levels": levels,
        "dropout": float(ddconfig.get("dropout", 0.0)),
    }
    if attn_type == "none":
        net["mid_attention"] = False
    quantizer = {"type": "vq", "codebook_size": int(n_embed), "codebook_dim": int(embed_dim), **QUANTIZER_OPTIONS}
    return net, quantizer, resolution


def hf_ddconfig(vq_config: Mapping[str, Any]) -> tuple[dict[str, Any], int, int]:
    """transformers' ``vq_config`` (new names, the originals kept beside them) as upstream's ``ddconfig``,
    ``n_embed``, ``embed_dim``."""

    def pick(new: str, old: str, default: Any = None) -> Any:
        return vq_config.get(new, vq_config.get(old, default))

    ddconfig = {
        "ch": pick("base_channels", "ch"),
        "ch_mult": pick("channel_multiplier", "ch_mult"),
        "num_res_blocks": vq_config.get("num_res_blocks"),
        "attn_resolutions": vq_config.get("attn_resolutions") or [],
        "resolution": vq_config.get("resolution"),
        "z_channels": pick("latent_channels", "z_channels"),
        "double_z": pick("double_latent", "double_z", False),
        "in_channels": vq_config.get("in_channels", 3),
        "out_ch": pick("out_channels", "out_ch", 3),
        "attn_type": vq_config.get("attn_type", "vanilla"),
        "dropout": vq_config.get("dropout", 0.0),
    }
    missing = [k for k, v in ddconfig.items() if v is None]
    n_embed, embed_dim = pick("num_embeddings", "n_embed"), vq_config.get("embed_dim")
    if missing or n_embed is None or embed_dim is None:
        raise CheckpointError(
            f"config.json's vq_config lacks {missing + [n for n, v in (('num_embeddings', n_embed), ('embed_dim', embed_dim)) if v is None]}"
        )
    return ddconfig, n_embed, embed_dim


# ---------------------------------------------------------------------------------------- image token ids
def code_of_token_name(name: str) -> int | None:
    """The codebook index an ``IMGIMG…`` vocabulary name stands for (``IMGIMGBAZ`` → 10), else ``None``: the prefix
    and the last character dropped, letters A–J read as the digits 0–9."""
    if not name.startswith(IMAGE_TOKEN_PREFIX):
        return None
    digits = name[len(IMAGE_TOKEN_PREFIX) : -1]
    if not digits or any(c not in string.ascii_uppercase[:10] for c in digits):
        return None
    return int("".join(str(ord(c) - ord("A")) for c in digits))


def model_ids_from_vocabulary(vocabulary_map: Mapping[str, int], codebook_size: int) -> dict[str, Any]:
    """How the LLM numbers image tokens, read from a transformers ``vocabulary_map``: ``{"kind": "offset",
    "offset": c}`` when the id of code k is k + c for every code, else ``{"kind": "table", "ids": [...]}``;
    plus the begin / end / placeholder ids the processor uses. Raises :class:`CheckpointError` when the map does not
    name every code exactly once."""
    ids: dict[int, int] = {}
    for name, token_id in vocabulary_map.items():
        code = code_of_token_name(name)
        if code is not None:
            if code in ids:
                raise CheckpointError(f"the vocabulary_map names image code {code} twice")
            ids[code] = int(token_id)
    if sorted(ids) != list(range(codebook_size)):
        raise CheckpointError(
            f"the vocabulary_map's {len(ids)} IMGIMG… tokens do not name the codes 0..{codebook_size - 1} once each"
        )
    table = [ids[k] for k in range(codebook_size)]
    offsets = {token_id - code for code, token_id in enumerate(table)}
    record: dict[str, Any] = (
        {"kind": "offset", "offset": offsets.pop()} if len(offsets) == 1 else {"kind": "table", "ids": table}
    )
    record["source"] = "config.json vocabulary_map (IMGIMG… names: the code's digits as letters A-J)"
    for role, token in (("begin_image", "<racm3:break>"), ("end_image", "<eoss>"), ("image_placeholder", "<image>")):
        if token in vocabulary_map:
            record[role] = {"token": token, "id": int(vocabulary_map[token])}
    return record


# ------------------------------------------------------------------------------------------------ files
def _locate(path: Path) -> tuple[str, Path, Path | None]:
    """``("ckpt", vqgan.ckpt, vqgan.yaml or None)`` or ``("hf", weight file or folder, config.json)``."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        for folder in (path, path / TOKENIZER_FOLDER):
            if (folder / CKPT_NAME).is_file():
                return "ckpt", folder / CKPT_NAME, _yaml_beside(folder / CKPT_NAME)
        if (path / "config.json").is_file():
            return "hf", path, path / "config.json"
        held = sorted(p.name for p in path.iterdir())
        raise CheckpointError(
            f"the folder {str(path)!r} holds neither {CKPT_NAME} (Meta's release, also under {TOKENIZER_FOLDER}/) "
            f"nor a transformers config.json; it holds {', '.join(held[:12]) or 'nothing'}"
        )
    if path.name in WEIGHT_FILES or path.name.endswith((".safetensors", ".index.json")):
        config = path.parent / "config.json"
        if not config.is_file():
            raise CheckpointError(
                f"{path.name} looks like a transformers weight file but there is no config.json beside it"
            )
        return "hf", path, config
    return "ckpt", path, _yaml_beside(path)


def _yaml_beside(ckpt: Path) -> Path | None:
    for candidate in (ckpt.with_suffix(".yaml"), ckpt.parent / YAML_NAME):
        if candidate.is_file():
            return candidate
    return None


def _check_against_tensors(net: dict, quantizer: dict, converted: Mapping[str, torch.Tensor], what: str) -> None:
    """:class:`CheckpointError` listing each hyper-parameter in which the config and the tensors' shapes differ."""
    inferred = infer_vqgan_config(converted)
    found = {**inferred["net"], "codebook_size": inferred["codebook_size"], "codebook_dim": inferred["codebook_dim"]}
    wanted = {**net, "codebook_size": quantizer["codebook_size"], "codebook_dim": quantizer["codebook_dim"]}
    differences = [f"{k}: config {wanted[k]!r}, tensors {v!r}" for k, v in found.items() if k != "type" and wanted.get(k) != v]
    if differences:
        raise CheckpointError(f"the tensors of {what} ({'; '.join(differences)}): refused, upstream could not load them")


# ------------------------------------------------------------------------------------------------ converter
@register_family(
    "chameleon",
    origin=CHAMELEON,
    summary="Chameleon / Anole image tokenizer: tokenizer/vqgan.ckpt (+ vqgan.yaml beside it), or a transformers "
    "Chameleon release (model.vqmodel.*: encode-only, it has no decoder)",
    weights_help="auto (= state_dict) or state_dict",
    presets=(PRESET,),
    releases=(RELEASE,),
    entries=ENTRIES,
    preprocessing=_preprocessing,
)
def convert_chameleon(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
):
    """Convert Chameleon's image tokenizer into a :class:`~vistok.VisTokenizer` (eval mode, float32).

    Args:
        checkpoint: ``vqgan.ckpt`` (with ``vqgan.yaml`` beside it, as Meta's download and Anole ship them; without
            it the architecture is read from the shapes alone), a folder holding them (or a ``tokenizer/``
            subfolder), or a transformers Chameleon release (folder, weight file or index, ``config.json``
            beside it): that one gives an encode-only tokenizer.
        weights: ``"auto"`` or ``"state_dict"``.
        image_size: native resolution recorded in the config (default: the YAML's / vq_config's ``resolution``,
            512 for the release).
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).

    Raises :class:`CheckpointError` for files that are not Chameleon's tokenizer (saying what they are), settings
    vistok's ``vqgan`` cannot express, and tensors that are not exactly what the YAML / vq_config builds.
    """
    if weights not in ("auto", "state_dict"):
        raise ValueError(f"weights={weights!r}: a Chameleon tokenizer holds one set of weights; use 'auto'")
    kind, path, config_file = _locate(Path(checkpoint))
    if kind == "hf":
        return _convert_transformers(path, config_file, image_size, trust_checkpoint)
    return _convert_ckpt(path, config_file, image_size, trust_checkpoint)


def _convert_ckpt(ckpt: Path, yaml_file: Path | None, image_size: int | None, trust_checkpoint: bool):
    loaded = load_checkpoint(ckpt, trust_checkpoint=trust_checkpoint)
    state_dict, which = select_state_dict(loaded, ("state_dict",))
    kept = {k: v for k, v in state_dict.items() if k.startswith(KEPT_PREFIXES)}
    ignored = sorted({k.split(".")[0] for k in state_dict if not k.startswith(KEPT_PREFIXES)})
    if not any(k.startswith("decoder.") for k in kept) or "quantize.embedding.weight" not in kept:
        raise CheckpointError(
            f"{ckpt.name} is not a Chameleon vqgan.ckpt (expected encoder.*, decoder.*, quantize.embedding.weight "
            f"under state_dict): it looks like {describe_layout(state_dict)}"
        )
    converted, _, _ = convert_state_dict(kept)
    notes = [
        "quantizer: plain Euclidean nearest code (no l2 normalisation), Taming's legacy loss (beta 0.25 on the "
        "codebook term)",
        "indices: vistok's (B, h, w) grid; upstream returns their row-major flattening (B*h*w,)",
        "decoder output unclamped (upstream's demo clamps to [-1, 1] and truncates to uint8)",
    ]
    if ignored:
        notes.append(f"ignored as upstream's strict=False load does: {', '.join(f'{p}.*' for p in ignored)}")
    if yaml_file is not None:
        params = read_release_yaml(yaml_file)
        net, quantizer, resolution = architecture(params["ddconfig"], params["n_embed"], params["embed_dim"], params)
        _check_against_tensors(net, quantizer, converted, f"{ckpt.name} are not what {yaml_file.name} builds")
        notes.append(f"architecture from {yaml_file.name} (checked against the tensors)")
    else:
        inferred = infer_vqgan_config(converted)
        net = inferred["net"]
        quantizer = {
            "type": "vq",
            "codebook_size": inferred["codebook_size"],
            "codebook_dim": inferred["codebook_dim"],
            **QUANTIZER_OPTIONS,
        }
        resolution = DEFAULT_IMAGE_SIZE
        notes.append(
            f"no {YAML_NAME} beside {ckpt.name}: architecture read from the tensor shapes, GroupNorm 32 groups and "
            f"resolution {DEFAULT_IMAGE_SIZE} assumed"
        )
    summary = {"net": net, "codebook_size": quantizer["codebook_size"], "codebook_dim": quantizer["codebook_dim"]}
    extra: dict[str, Any] = {"config_file": yaml_file.name if yaml_file else None, "vocabulary": VOCABULARY_NOTE}
    metadata = conversion_metadata(CHAMELEON, "chameleon", summary, ckpt, which, extra, notes)
    config = {
        "image_size": image_size or resolution,
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from {CHAMELEON.name}'s image tokenizer ({ckpt.name})",
        "metadata": metadata,
    }
    return load_converted(converted, config, f"Chameleon {ckpt.name}")


def _convert_transformers(path: Path, config_file: Path, image_size: int | None, trust_checkpoint: bool):
    try:
        hf_config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{str(config_file)!r} is not a JSON config: {err}") from err
    vq_config = hf_config.get("vq_config") if isinstance(hf_config, dict) else None
    if not isinstance(vq_config, dict):
        raise CheckpointError(
            f"{config_file} has no vq_config: not a transformers Chameleon release (model_type "
            f"{hf_config.get('model_type') if isinstance(hf_config, dict) else None!r})"
        )
    found, prefix = None, None
    for prefix in HF_PREFIXES:
        found = read_prefixed_tensors(path, prefix, trust_checkpoint=trust_checkpoint)
        if found.tensors:
            break
    assert found is not None
    if not found.tensors:
        raise CheckpointError(
            f"{found.weight_file.name} has no model.vqmodel.* tensors, so it holds no Chameleon image tokenizer; it "
            f"holds {top_level_names(found.all_names)}"
        )
    extra: dict[str, Any] = {}
    if found.weight_file.name.endswith(".index.json"):
        extra["shards_read"] = found.files_read
    weight_file = found.weight_file
    return transformers_tokenizer(
        found.tensors, hf_config, prefix, image_size,
        weight_file=weight_file if weight_file.is_file() else None, label=weight_file.name, extra=extra,
    )  # fmt: skip


def transformers_tokenizer(
    tensors: Mapping[str, torch.Tensor],
    hf_config: Mapping[str, Any],
    prefix: str,
    image_size: int | None = None,
    *,
    weight_file: Path | None = None,
    label: str,
    extra: dict[str, Any] | None = None,
):
    """The tokenizer of transformers' Chameleon layout: ``tensors`` are a ``ChameleonVQVAE`` state dict (prefix
    removed; without ``decoder.*`` it is encode-only), ``hf_config`` a config with ``vq_config`` (and, for a whole
    model, its ``vocabulary_map``). ``label`` names where they came from in messages. Shared by the release
    converter and :func:`vistok.convert.transformers_bridge.tokenizer_from_transformers`."""
    vq_config = hf_config["vq_config"]
    tensors = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()}
    ddconfig, n_embed, embed_dim = hf_ddconfig(vq_config)
    net, quantizer, resolution = architecture(ddconfig, n_embed, embed_dim)
    has_decoder = any(k.startswith("decoder.") for k in tensors)
    unknown = sorted({k.split(".")[0] for k in tensors if not k.startswith(KEPT_PREFIXES)})
    if unknown:
        raise CheckpointError(f"the {prefix}* tensors include parts vistok does not know: {unknown}")
    if has_decoder:
        converted, _, _ = convert_state_dict(tensors)
    else:
        converted = {
            ("quantizer.codebook" if k == "quantize.embedding.weight" else rename_key(k, 0)): v
            for k, v in tensors.items()
            if k.startswith(("encoder.", "quant_conv.", "post_quant_conv.", "quantize.embedding.weight"))
        }
        others = sorted(k for k in tensors if k.startswith("quantize.") and k != "quantize.embedding.weight")
        if others:
            raise CheckpointError(f"the quantizer holds tensors vistok does not know: {others[:4]}")
        net["decoder_unavailable"] = (
            f"this Chameleon tokenizer was loaded from transformers' format ({label}), "
            f"which carries the encoder and the quantizer only: it encodes, but cannot decode. The decoder "
            f"weights are in {DECODER_LOCATION}."
        )
    notes = [
        "read from a transformers Chameleon release: only the model.vqmodel.* tensors (the language model is never "
        "loaded); the architecture from config.json's vq_config, checked against the tensors",
        "indices: vistok's (B, h, w) grid; transformers' image_tokens are their row-major flattening",
    ]
    if not has_decoder:
        notes.append("encode-only: the release has no decoder weights (transformers' converter drops them)")
    summary = {"net": net, "codebook_size": quantizer["codebook_size"], "codebook_dim": quantizer["codebook_dim"]}
    extra = {"format": "transformers", "vocabulary": VOCABULARY_NOTE, **(extra or {})}
    metadata = conversion_metadata(CHAMELEON, "chameleon", summary, weight_file, prefix.rstrip("."), extra, notes)
    vocabulary_map = hf_config.get("vocabulary_map")
    if isinstance(vocabulary_map, dict):
        metadata["model_ids"] = model_ids_from_vocabulary(vocabulary_map, quantizer["codebook_size"])
    config = {
        "image_size": image_size or resolution,
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from {CHAMELEON.name}'s image tokenizer in transformers' format ({label})",
        "metadata": metadata,
    }
    return load_converted(converted, config, f"transformers Chameleon {label}")

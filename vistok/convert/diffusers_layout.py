"""The diffusers ``VQModel`` layout: its state-dict keys ⇄ vistok's ``vqgan`` + ``vq`` keys, and its config →
a vistok config. Pure data: no diffusers install needed (:mod:`vistok.diffusers_interop` builds on it for
``from_diffusers`` / ``to_diffusers``; the aMUSEd converter reads a release folder with it).

The key mapping is tabulated in :mod:`vistok.diffusers_interop`'s docstring. A VQModel without mid-block
attention (``mid_block_add_attention=False``, aMUSEd) maps to ``mid_attention=False``: vistok's mid keeps its two
residual blocks as ``mid.0`` / ``mid.2``. A ``norm_type="spatial"`` VQModel (MoVQ, Kandinsky) maps to the ``movq``
net: its ``quant_conv`` / ``post_quant_conv`` are the net's ``encoder.quant_conv`` / ``decoder.post_quant_conv`` and
its decoder attentions' ``spatial_norm`` is vistok's ``attn.{j}.norm``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .safe_load import CheckpointError

DOWN, ATTN_DOWN = "DownEncoderBlock2D", "AttnDownEncoderBlock2D"
UP, ATTN_UP = "UpDecoderBlock2D", "AttnUpDecoderBlock2D"
DIFFUSERS_EPS = 1e-6  # diffusers' Encoder/Decoder hard-code GroupNorm eps 1e-6
DIFFUSERS_BETA = 0.25  # VQModel builds VectorQuantizer(beta=0.25, legacy=True)
CONFIG_FILE = "config.json"
# diffusers' weight names, in the order a folder is searched (an fp16 variant is upcast exactly to float32).
WEIGHT_FILES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
)
SPATIAL_NORM_GROUPS = 32  # diffusers' SpatialNorm hard-codes GroupNorm(32, eps 1e-6) whatever norm_num_groups says

# ``VQModel.__init__``'s defaults (diffusers 0.42.1): a saved config.json lacking a key means this value.
VQMODEL_DEFAULTS: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": [DOWN],
    "up_block_types": [UP],
    "block_out_channels": [64],
    "layers_per_block": 1,
    "act_fn": "silu",
    "latent_channels": 3,
    "sample_size": 32,
    "num_vq_embeddings": 256,
    "norm_num_groups": 32,
    "vq_embed_dim": None,
    "scaling_factor": 0.18215,
    "norm_type": "group",
    "mid_block_add_attention": True,
    "lookup_from_codebook": False,
    "force_upcast": False,
}


_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_MID = {"0": "resnets.0", "1": "attentions.0", "2": "resnets.1"}
_LEVEL = re.compile(r"^(encoder|decoder)\.conv_blocks\.(\d+)\.(res|attn|downsample|upsample)\.(.*)$")
_MID_KEY = re.compile(r"^(encoder|decoder)\.mid\.([012])\.(.*)$")




def diffusers_vq_loss(beta: float = 0.25, legacy: bool = True) -> dict[str, float | bool]:
    """vistok ``vq`` options equal to diffusers' ``VectorQuantizer(beta, legacy)``: plain Euclidean codes, and β on
    the codebook term when ``legacy`` (the form diffusers' released VQModels keep), on the commitment term otherwise."""
    return {
        "l2_norm": False,
        "commitment_weight": 1.0 if legacy else beta,
        "codebook_weight": beta if legacy else 1.0,
    }

def _inner(kind_in_block: str, rest: str) -> str:
    """Map the part after a block (``norm1.weight``, ``q.bias`` …) to diffusers' names."""
    name, _, param = rest.partition(".")
    if kind_in_block == "attn":
        return f"{_ATTN[name]}.{param}"
    return rest.replace("nin_shortcut.", "conv_shortcut.", 1)


def diffusers_key(key: str, spatial: bool = False) -> str:
    """The diffusers ``VQModel`` state-dict key of a vistok ``vqgan`` + ``vq`` key; ``spatial``: of a ``movq`` net
    (``norm_type="spatial"``), whose quant convs sit inside its encoder / decoder and whose decoder attention norms
    are diffusers' ``spatial_norm``."""
    if spatial:
        if key.startswith(("encoder.quant_conv.", "decoder.post_quant_conv.")):
            return key.split(".", 1)[1]
        name = diffusers_key(key)
        if name.startswith("decoder.") and ".attentions." in name:
            name = name.replace(".group_norm.", ".spatial_norm.", 1)
        return name
    if key == "quantizer.codebook":
        return "quantize.embedding.weight"
    if m := _LEVEL.match(key):
        side, level, kind, rest = m.groups()
        block = f"{side}.{'down_blocks' if side == 'encoder' else 'up_blocks'}.{level}"
        if kind == "res":
            index, _, inner = rest.partition(".")
            return f"{block}.resnets.{index}.{_inner('res', inner)}"
        if kind == "attn":
            index, _, inner = rest.partition(".")
            return f"{block}.attentions.{index}.{_inner('attn', inner)}"
        return f"{block}.{'downsamplers' if kind == 'downsample' else 'upsamplers'}.0.{rest}"
    if m := _MID_KEY.match(key):
        side, index, rest = m.groups()
        return f"{side}.mid_block.{_MID[index]}.{_inner('attn' if index == '1' else 'res', rest)}"
    return key.replace("encoder.norm_out.", "encoder.conv_norm_out.").replace(
        "decoder.norm_out.", "decoder.conv_norm_out."
    )



def _check_importable(cfg: Mapping[str, Any]) -> list[int]:
    """Validate a VQModel config (every key present) for import; returns the attention levels."""
    problems = []
    if cfg["act_fn"] != "silu":
        problems.append(f"act_fn={cfg['act_fn']!r} (vistok's vqgan uses silu)")
    if cfg["norm_type"] not in ("group", "spatial"):
        problems.append(f"norm_type={cfg['norm_type']!r} (vistok maps 'group' to its vqgan net, 'spatial' to movq)")
    if cfg["norm_type"] == "spatial" and cfg["vq_embed_dim"] not in (None, cfg["latent_channels"]):
        problems.append(
            f"norm_type='spatial' with vq_embed_dim {cfg['vq_embed_dim']} != latent_channels {cfg['latent_channels']} "
            "(diffusers' spatial norms are built for latent_channels but fed the codes: such a model cannot decode)"
        )
    if cfg["in_channels"] != cfg["out_channels"]:
        problems.append(f"in_channels {cfg['in_channels']} != out_channels {cfg['out_channels']}")
    down, up = list(cfg["down_block_types"]), list(cfg["up_block_types"])
    if any(t not in (DOWN, ATTN_DOWN) for t in down) or any(t not in (UP, ATTN_UP) for t in up):
        problems.append(f"block types {down} / {up} (supported: {DOWN}, {ATTN_DOWN} / {UP}, {ATTN_UP})")
    levels = [i for i, t in enumerate(down) if t == ATTN_DOWN]
    if len(up) != len(down) or sorted(len(up) - 1 - i for i, t in enumerate(up) if t == ATTN_UP) != levels:
        problems.append(f"decoder attention {up} does not mirror encoder attention {down}")
    widths = list(cfg["block_out_channels"])
    if len(widths) != len(down):
        problems.append(f"{len(widths)} block_out_channels for {len(down)} down blocks")
    base = widths[0]
    if any(c % base for c in widths):
        problems.append(f"block_out_channels {widths} are not multiples of the first")
    if problems:
        raise ValueError(
            "this diffusers VQModel cannot be expressed by vistok's vqgan: " + "; ".join(problems)
        )
    return levels


def vq_model_config_and_weights(
    diffusers_config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    *,
    image_size: int | None = None,
    pixel_range: str = "signed",
    source: str | None = None,
    beta: float = DIFFUSERS_BETA,
    legacy: bool = True,
) -> tuple[Any, dict[str, torch.Tensor]]:
    """The :class:`~vistok.VisTokenizerConfig` and state dict of a :class:`~vistok.VisTokenizer` computing what
    the diffusers ``VQModel`` described by ``diffusers_config`` (its ``config.json`` as a dict; missing keys take
    :data:`VQMODEL_DEFAULTS`) with weights ``state_dict`` (diffusers keys) computes. Needs no diffusers install.

    ``pixel_range="unit"``: the model was trained on [0, 1] pixels (aMUSEd); see the ``vqgan`` net's option.
    ``beta`` / ``legacy`` are the quantizer's (VQModel always builds β 0.25, legacy). Raises ``ValueError`` naming
    every reason the model cannot be expressed, a diffusers tensor missing or one left over.
    """
    from ..configuration import VisTokenizerConfig

    cfg = {**VQMODEL_DEFAULTS, **{k: v for k, v in diffusers_config.items() if not k.startswith("_")}}
    attention_levels = _check_importable(cfg)
    widths = list(cfg["block_out_channels"])
    base = widths[0]
    factor = 2 ** (len(widths) - 1)
    sample = cfg["sample_size"] if isinstance(cfg["sample_size"], int) else max(cfg["sample_size"])
    size = image_size or (sample if sample % factor == 0 else factor * max(1, round(sample / factor)))
    metadata: dict[str, Any] = {
        "diffusers": {
            "scaling_factor": cfg["scaling_factor"],
            "force_upcast": cfg["force_upcast"],
            "lookup_from_codebook": cfg["lookup_from_codebook"],
            "sample_size": cfg["sample_size"],
        }
    }
    if source is not None:
        metadata["origin"] = {"name": "diffusers VQModel", "repository": source}
    net: dict[str, Any] = {
        "type": "vqgan",
        "base_channels": base,
        "channel_multiplier": [c // base for c in widths],
        "num_res_blocks": cfg["layers_per_block"],
        "latent_channels": cfg["latent_channels"],
        "attention_levels": attention_levels,
        "norm_groups": cfg["norm_num_groups"],
        "norm_eps": DIFFUSERS_EPS,
    }
    if not cfg["mid_block_add_attention"]:
        net["mid_attention"] = False
    spatial = cfg["norm_type"] == "spatial"
    if spatial:  # MoVQ (Kandinsky): the decoder's norms are conditioned on the codes
        net["type"] = "movq"
        net["spatial_norm_groups"] = SPATIAL_NORM_GROUPS
        if pixel_range != "signed":
            raise ValueError(f"pixel_range={pixel_range!r}: vistok's movq net works on [-1, 1] pixels only")
    elif pixel_range != "signed":
        net["pixel_range"] = pixel_range
    config = VisTokenizerConfig(
        image_size=size,
        num_channels=cfg["in_channels"],
        net=net,
        quantizer={
            "type": "vq",
            "codebook_size": cfg["num_vq_embeddings"],
            "codebook_dim": cfg["vq_embed_dim"] or cfg["latent_channels"],
            **diffusers_vq_loss(beta, legacy),
        },
        source=f"imported from diffusers VQModel {source}" if source else "imported from a diffusers VQModel",
        metadata=metadata,
    )
    from ..architecture import build_modules

    with torch.device("meta"):
        ours = build_modules(config)
    expected = {
        f"{part}.{key}": tensor
        for part in ("encoder", "quantizer", "quant_conv", "post_quant_conv", "decoder")
        for key, tensor in getattr(ours, part).state_dict().items()
    }
    converted, used = {}, set()
    for key, value in expected.items():
        name = diffusers_key(key, spatial)
        if name not in state_dict:
            raise ValueError(f"the diffusers VQModel has no parameter {name!r} (needed for vistok {key!r})")
        theirs = state_dict[name]
        if theirs.numel() != value.numel():
            raise ValueError(
                f"the diffusers VQModel's {name} has shape {tuple(theirs.shape)}; its config makes vistok's {key} "
                f"{tuple(value.shape)}"
            )
        converted[key] = theirs.detach().reshape(value.shape)
        used.add(name)
    leftover = sorted(set(state_dict) - used)
    if leftover:
        raise ValueError(f"diffusers VQModel parameters vistok cannot place: {leftover[:6]}")
    return config, converted


# ------------------------------------------------------------------------------------------ release folders
def find_vq_model_files(path: str | os.PathLike, subfolder: str) -> tuple[Path, Path]:
    """``(config.json, weight file)`` of a diffusers VQModel folder, given the folder, a pipeline folder holding it
    as ``subfolder`` (aMUSEd: ``vqvae``, Kandinsky: ``movq``), or the weight file itself (``config.json`` beside
    it). Raises ``FileNotFoundError`` for a missing path and :class:`CheckpointError` naming what is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        folder = path / subfolder if not (path / CONFIG_FILE).exists() and (path / subfolder).is_dir() else path
        weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
        if weights is None:
            held = sorted(p.name for p in folder.iterdir())
            raise CheckpointError(
                f"the folder {str(folder)!r} holds none of diffusers' weight files {list(WEIGHT_FILES)}; it holds "
                f"{', '.join(held[:12]) or 'nothing'}"
            )
    else:
        folder, weights = path.parent, path
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise CheckpointError(
            f"no {CONFIG_FILE} beside {weights.name} in {str(folder)!r}: a diffusers VQModel folder holds its "
            f"config.json next to the weights (in a pipeline: its {subfolder}/ subfolder)"
        )
    return config, weights


def read_vq_model_config(config_file: Path) -> dict[str, Any]:
    """The ``config.json`` of a diffusers ``VQModel`` as a dict; :class:`CheckpointError` for another class."""
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{str(config_file)!r} is not a JSON config: {err}") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{str(config_file)!r} is not a JSON object")
    cls = config.get("_class_name")
    if cls != "VQModel":
        raise CheckpointError(
            f"{str(config_file)!r} describes a diffusers {cls!r}, not a VQModel"
            + (" (a continuous VAE has no codebook: it is not a tokenizer)" if cls == "AutoencoderKL" else "")
        )
    return config


def read_vq_model_folder(
    path: str | os.PathLike, subfolder: str, trust_checkpoint: bool = False
) -> tuple[Path, Path, dict[str, Any], dict[str, torch.Tensor]]:
    """``(config file, weight file, config dict, float32 state dict)`` of a diffusers VQModel folder (see
    :func:`find_vq_model_files`), read as data: safe loading, no diffusers. :class:`CheckpointError` for anything
    that is not a VQModel's."""
    from .containers import describe_layout, is_state_dict
    from .safe_load import load_checkpoint

    config_file, weight_file = find_vq_model_files(path, subfolder)
    config = read_vq_model_config(config_file)
    loaded = load_checkpoint(weight_file, trust_checkpoint=trust_checkpoint)
    if not is_state_dict(loaded):
        raise CheckpointError(f"{weight_file.name} is not a state dict of tensors")
    state_dict = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in loaded.items()}
    if not any(k.startswith("encoder.down_blocks.") for k in state_dict):
        raise CheckpointError(
            f"{weight_file.name} is not a diffusers VQModel state dict: it looks like {describe_layout(state_dict)}"
        )
    return config_file, weight_file, config, state_dict

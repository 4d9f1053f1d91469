"""vistok ``vqgan`` + ``vq`` tokenizers ⇄ 🤗 diffusers ``VQModel`` (the Taming-style model latent-diffusion uses).

The two share one architecture: GroupNorm(eps 1e-6)+SiLU residual blocks, single-head attention (diffusers'
``Attention`` with ``heads = channels / attention_head_dim = 1``), a mid block of resnet–attention–resnet,
stride-2 convs with (0, 1, 0, 1) padding (``downsample_padding=0``) and nearest ×2 + conv upsampling. Per-level
attention is expressed by block types (``AttnDownEncoderBlock2D`` / ``AttnUpDecoderBlock2D``). Key mapping:

================================================  ===============================================================
vistok                                            diffusers
================================================  ===============================================================
``encoder.conv_blocks.{i}.res.{j}``                 ``encoder.down_blocks.{i}.resnets.{j}`` (``nin_shortcut`` →
                                                  ``conv_shortcut``)
``…attn.{j}.{norm,q,k,v,proj_out}`` (1×1 convs)     ``…attentions.{j}.{group_norm,to_q,to_k,to_v,to_out.0}`` (linear)
``encoder.conv_blocks.{i}.downsample.conv``         ``encoder.down_blocks.{i}.downsamplers.0.conv``
``{en,de}coder.mid.{0,1,2}``                        ``{en,de}coder.mid_block.{resnets.0, attentions.0, resnets.1}``
``decoder.conv_blocks.{i}`` (decode order)          ``decoder.up_blocks.{i}`` (``upsample`` → ``upsamplers.0``)
``{en,de}coder.norm_out``                           ``{en,de}coder.conv_norm_out``
``quantizer.codebook``                              ``quantize.embedding.weight``
================================================  ===============================================================

Without mid-block attention (``mid_block_add_attention=False``, aMUSEd's VQ-GAN) the net has
``mid_attention=False`` and its mid keeps the two residual blocks (``mid.0`` / ``mid.2``). The mapping itself is
data, in :mod:`vistok.convert.diffusers_layout`: importing needs no diffusers install when the config and the
weights are given as data (:func:`vq_model_config_and_weights`, what the aMUSEd converter uses on a
``config.json`` + ``diffusion_pytorch_model.safetensors`` folder).

diffusers' ``VectorQuantizer`` is a plain nearest-neighbour VQ with a fixed loss (legacy form, β = 0.25:
``||sg(z_q) − z||² + 0.25·||z_q − sg(z)||²``). An l2-normalised vistok codebook is exported *normalised*: with
unit-norm codes, argmin ||z − e||² = argmax cos(z, e), so the indices and the codes — hence the reconstructions —
are the ones vistok computes. Training-time behaviour (loss weights, EMA updates, entropy terms) does not carry
over; the diffusers model is for inference and for pipelines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import huggingface_hub
import torch

from .configuration import VisTokenizerConfig
from .convert.diffusers_layout import (
    ATTN_DOWN,
    ATTN_UP,
    DIFFUSERS_BETA,
    DIFFUSERS_EPS,
    DOWN,
    SPATIAL_NORM_GROUPS,
    UP,
    VQMODEL_DEFAULTS,
    diffusers_key,
    vq_model_config_and_weights,
)

__all__ = [
    "VQMODEL_DEFAULTS",
    "check_diffusers_compatible",
    "decode_indices_with_diffusers",
    "diffusers_config_and_weights",
    "diffusers_indices",
    "diffusers_key",
    "to_diffusers",
    "vq_model_config_and_weights",
]


def _import_diffusers():
    try:
        import diffusers
    except ImportError as err:
        raise ImportError(
            "diffusers interop needs the `diffusers` package: pip install 'vistok[interop]'"
        ) from err
    return diffusers


# ------------------------------------------------------------------------------------------------ export
def check_diffusers_compatible(config) -> None:
    """Raise ``ValueError`` listing every reason a tokenizer config cannot be expressed as a diffusers
    ``VQModel``."""
    net, q = config.net, config.quantizer
    problems = []
    if net["type"] not in ("vqgan", "movq"):
        problems.append(
            f"its net is {net['type']!r}; only the 'vqgan' net (Taming / LlamaGen architecture) and 'movq' map"
        )
    elif net["type"] == "movq" and net.get("temporal_downsample_factor", 1) != 1:
        problems.append("its movq net has temporal layers (Emu3), which diffusers' VQModel does not have")
    elif net["type"] == "movq" and (
        net["spatial_norm_groups"] != SPATIAL_NORM_GROUPS or net["latent_channels"] != q.get("codebook_dim")
    ):
        problems.append(
            f"diffusers' spatial norm needs {SPATIAL_NORM_GROUPS} groups and codes as wide as the latent (this movq: "
            f"{net['spatial_norm_groups']} groups, latent {net['latent_channels']}, codes {q.get('codebook_dim')})"
        )
    elif net["channel_multiplier"][0] != 1:
        problems.append(
            f"channel_multiplier[0] is {net['channel_multiplier'][0]}; VQModel has no separate stem width"
        )
    elif net["norm_eps"] != DIFFUSERS_EPS:
        problems.append(f"its GroupNorm eps is {net['norm_eps']}; VQModel hard-codes {DIFFUSERS_EPS}")
    elif net.get("decoder_unavailable"):
        problems.append("it is encode-only (its release carries no decoder weights)")
    elif net["type"] == "vqgan" and not config.net_family().is_mirrored:
        problems.append(
            "its decoder does not mirror its encoder (per-level block counts or decoder widths of its own); "
            "VQModel's decoder is the encoder's mirror with layers_per_block + 1 blocks per level"
        )
    if q["type"] != "vq":
        problems.append(
            f"its quantizer is {q['type']!r}; only the nearest-neighbour 'vq' quantizer maps onto diffusers' "
            "VectorQuantizer"
        )
    if problems:
        raise ValueError("diffusers' VQModel cannot express this tokenizer: " + "; ".join(problems))


def to_diffusers(tok, *, scaling_factor: float | None = None, lookup_from_codebook: bool | None = None):
    """A ``diffusers.VQModel`` that computes the same reconstruction as ``tok`` (a ``vqgan`` + ``vq`` tokenizer).

    ``vq_model(x).sample`` equals ``tok(x).reconstruction`` and the indices of ``vq_model.quantize`` equal
    ``tok.encode(x).indices`` (up to float rounding of the two nearest-code searches on exact ties). For a
    ``pixel_range="unit"`` net (aMUSEd) the VQModel works on [0, 1] pixels, as the original does:
    ``vq_model((x + 1) / 2).sample * 2 − 1`` is ``tok(x).reconstruction``. A ``movq`` tokenizer (Kandinsky) gives a
    ``norm_type="spatial"`` VQModel.

    Args:
        scaling_factor: the VQModel's latent ``scaling_factor`` (used by latent-diffusion pipelines, not by the
            reconstruction). Default: the value recorded when the tokenizer came from diffusers, else 1.0 (no
            scaling, as latent diffusion does for VQ latents).
        lookup_from_codebook: let ``VQModel.decode(indices, force_not_quantize=True, shape=…)`` decode token ids.
            Default: the recorded value, else True.

    Raises ``ValueError`` for tokenizers diffusers cannot express (see :func:`check_diffusers_compatible`).
    """
    diffusers = _import_diffusers()
    config = tok.config
    check_diffusers_compatible(config)
    net, q = config.net, config.quantizer
    recorded = (config.metadata or {}).get("diffusers", {})
    levels = len(net["channel_multiplier"])
    spatial = net["type"] == "movq"
    attention = set(tok.config.net_family().attention_levels)
    widths = [net["base_channels"] * m for m in net["channel_multiplier"]]
    model = diffusers.VQModel(
        in_channels=config.num_channels,
        out_channels=config.num_channels,
        down_block_types=tuple(ATTN_DOWN if i in attention else DOWN for i in range(levels)),
        up_block_types=tuple(ATTN_UP if levels - 1 - i in attention else UP for i in range(levels)),
        block_out_channels=tuple(widths),
        layers_per_block=net["num_res_blocks"],
        act_fn="silu",
        latent_channels=net["latent_channels"],
        sample_size=config.image_size,
        num_vq_embeddings=q["codebook_size"],
        norm_num_groups=net["norm_groups"],
        vq_embed_dim=q["codebook_dim"],
        scaling_factor=scaling_factor if scaling_factor is not None else recorded.get("scaling_factor", 1.0),
        norm_type="spatial" if spatial else "group",
        mid_block_add_attention=net.get("mid_attention", True),
        lookup_from_codebook=(
            lookup_from_codebook
            if lookup_from_codebook is not None
            else recorded.get("lookup_from_codebook", True)
        ),
        force_upcast=recorded.get("force_upcast", False),
    )
    target = model.state_dict()
    converted = {}
    for key, value in tok.state_dict().items():
        if key == "quantizer.codebook":
            value = tok.quantizer.effective_codebook()
        name = diffusers_key(key, spatial)
        if name not in target:
            raise ValueError(
                f"internal key mapping error: vistok {key!r} → {name!r} is not a VQModel parameter"
            )
        converted[name] = value.detach().reshape(target[name].shape).clone()
    missing = sorted(set(target) - set(converted))
    if missing:
        raise ValueError(
            f"internal key mapping error: VQModel parameters without a vistok source: {missing[:6]}"
        )
    model.load_state_dict(converted)
    if tok.dtype != torch.float32:
        model = model.to(dtype=tok.dtype)
    return model.eval()


# ------------------------------------------------------------------------------------------------ import
def _resolve_vq_model(model_or_repo: Any, kwargs: dict[str, Any]):
    diffusers = _import_diffusers()
    if isinstance(model_or_repo, diffusers.VQModel):
        return model_or_repo, None
    if isinstance(model_or_repo, torch.nn.Module):
        raise TypeError(
            f"from_diffusers expects a diffusers.VQModel (or a repo id / folder holding one), got "
            f"{type(model_or_repo).__name__}"
        )
    if not isinstance(model_or_repo, (str, os.PathLike)):
        raise TypeError(
            f"from_diffusers expects a diffusers.VQModel, a repo id or a folder, got {type(model_or_repo).__name__}"
        )
    path = Path(model_or_repo)
    if (
        "subfolder" not in kwargs
        and path.is_dir()
        and not (path / "config.json").exists()
        and (path / "vqvae").is_dir()
    ):
        kwargs = {
            **kwargs,
            "subfolder": "vqvae",
        }  # a pipeline folder (latent diffusion keeps its VQModel there)
    try:
        return diffusers.VQModel.from_pretrained(str(model_or_repo), **kwargs), str(model_or_repo)
    except OSError as err:
        offline = huggingface_hub.is_offline_mode()
        raise OSError(
            f"could not load a diffusers VQModel from {str(model_or_repo)!r}"
            + (f" (subfolder {kwargs['subfolder']!r})" if kwargs.get("subfolder") else "")
            + ": it is not a local folder with a VQModel config.json"
            + (" and HF_HUB_OFFLINE is set" if offline else " and the Hub could not provide it")
            + ". For a pipeline repo pass subfolder='vqvae'; offline, download it elsewhere "
            f"(`hf download {model_or_repo}`) and pass the local folder. (Underlying error: {err})"
        ) from err


def diffusers_config_and_weights(
    model_or_repo: Any,
    *,
    image_size: int | None = None,
    pixel_range: str = "signed",
    **from_pretrained_kwargs: Any,
) -> tuple[VisTokenizerConfig, dict[str, torch.Tensor]]:
    """The config and state dict of a :class:`~vistok.VisTokenizer` computing what a diffusers ``VQModel``
    computes (:meth:`vistok.VisTokenizer.from_diffusers` builds the tokenizer from them).

    ``model_or_repo``: a ``diffusers.VQModel``, a Hub repo id or a local folder (a pipeline folder with a
    ``vqvae/`` subfolder is recognised; for Hub pipelines pass ``subfolder="vqvae"``). ``pixel_range="unit"``
    for a model trained on [0, 1] pixels (aMUSEd's VQ-GAN: its pipelines never map images to [−1, 1]); the
    tokenizer still takes and returns [−1, 1]. Extra keyword arguments go to ``VQModel.from_pretrained``
    (``revision``, ``subfolder``, ``token``, ``cache_dir``, ``local_files_only``). The quantizer gets diffusers'
    legacy loss weights (commitment 1.0, codebook 0.25) so losses match too; ``scaling_factor``, ``force_upcast``,
    ``lookup_from_codebook`` are kept in ``config.metadata["diffusers"]`` and restored by :func:`to_diffusers`.
    """
    vq_model, source = _resolve_vq_model(model_or_repo, dict(from_pretrained_kwargs))
    if getattr(vq_model.quantize, "remap", None) is not None:
        raise ValueError(
            "this diffusers VQModel cannot be expressed by vistok's vqgan: an index-remapping quantizer (remap)"
        )
    return vq_model_config_and_weights(
        dict(vq_model.config),
        vq_model.state_dict(),
        image_size=image_size,
        pixel_range=pixel_range,
        source=source,
        beta=getattr(vq_model.quantize, "beta", DIFFUSERS_BETA),
        legacy=getattr(vq_model.quantize, "legacy", True),
    )


def diffusers_indices(vq_model, pixel_values: torch.Tensor) -> torch.Tensor:
    """Token ids (B, h, w) int64 that a diffusers ``VQModel`` assigns to ``pixel_values`` (its own search)."""
    latents = vq_model.encode(pixel_values).latents
    _, _, (_, _, indices) = vq_model.quantize(latents)
    b, _, h, w = latents.shape
    return indices.reshape(b, h, w)


def decode_indices_with_diffusers(vq_model, indices: torch.Tensor) -> torch.Tensor:
    """Decode (B, h, w) token ids with a diffusers ``VQModel`` (needs ``lookup_from_codebook=True``)."""
    if not vq_model.config.lookup_from_codebook:
        raise ValueError("this VQModel was built with lookup_from_codebook=False; it cannot decode token ids")
    b, h, w = indices.shape
    shape = (b, h, w, vq_model.config.vq_embed_dim or vq_model.config.latent_channels)
    return vq_model.decode(indices.reshape(-1), force_not_quantize=True, shape=shape).sample

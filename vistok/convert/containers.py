"""Find the weights inside an upstream checkpoint container and say what a state dict looks like."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .safe_load import CheckpointError


def is_state_dict(obj: Any) -> bool:
    """A non-empty mapping of string keys to tensors."""
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def select_state_dict(
    checkpoint: Any, preference: tuple[str, ...], weights: str = "auto"
) -> tuple[dict, str]:
    """The state dict inside ``checkpoint`` and the name of the entry it came from.

    ``checkpoint`` is either a bare state dict (returned as ``"state_dict"``) or a dict holding state dicts under
    some of the names in ``preference``. ``weights="auto"`` takes the first present name of ``preference``; any
    other value must be one of the present names. Raises :class:`CheckpointError` saying what was found.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"expected a checkpoint dict (with {' / '.join(preference)}) or a state dict, found a "
            f"{type(checkpoint).__name__}"
        )
    if is_state_dict(checkpoint):
        if weights not in ("auto", "state_dict"):
            raise CheckpointError(f"the file is a bare state dict; it has no {weights!r} entry")
        return dict(checkpoint), "state_dict"
    present = [name for name in preference if is_state_dict(checkpoint.get(name))]
    if weights == "auto":
        if not present:
            raise CheckpointError(
                f"no weights found: expected a state dict under one of {list(preference)}, found keys "
                f"{sorted(map(str, checkpoint))[:12]}"
            )
        weights = present[0]
    elif weights not in present:
        raise CheckpointError(f"the checkpoint has no {weights!r} weights; available: {present or 'none'}")
    return dict(checkpoint[weights]), weights


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop a prefix that every key carries (``module.`` from DistributedDataParallel)."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def describe_layout(state_dict: Mapping[str, Any]) -> str:
    """A short guess at what kind of checkpoint a state dict comes from, for error messages."""
    keys = list(state_dict)
    has = lambda fragment: any(fragment in k for k in keys)  # noqa: E731
    if has("encoder.down_blocks.") or has("decoder.up_blocks."):
        return "a diffusers VQModel/AutoencoderKL (load it with VisTokenizer.from_diffusers)"
    if has("quantize.embed.weight") or has("quantize.proj."):
        return "a Taming GumbelQuantize VQGAN (quantize.proj / quantize.embed), which vistok cannot convert"
    if has("encoder.down.") and has("decoder.up."):
        return "a Taming / latent-diffusion VQGAN (convert it with `vistok convert taming`)"
    if has("encoder.conv_blocks.") and has("quantize."):
        return "a LlamaGen VQ model (convert it with `vistok convert llamagen`)"
    if has("quantizer.codebook") and has("encoder.conv_blocks."):
        return "already a vistok state dict (load the folder with VisTokenizer.from_pretrained)"
    shown = ", ".join(keys[:5]) + (", …" if len(keys) > 5 else "")
    return f"an unrecognised state dict with {len(keys)} entries ({shown})"

"""What the aMUSEd and Kandinsky converters share: a diffusers ``VQModel`` folder, read and mapped by
:mod:`vistok.convert.diffusers_layout`, becomes a tokenizer with its conversion record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..configuration import VisTokenizerConfig
from ..convert.magvit2_layout import load_converted
from ..convert.origins import Origin
from .base import conversion_metadata

# Notes every diffusers VQModel conversion carries, after the family's own.
VQ_MODEL_NOTES = (
    "indices: vistok's (B, h, w) grid; diffusers' VectorQuantizer returns their row-major flattening",
    "quantizer: plain Euclidean nearest code (no l2 normalisation), diffusers' legacy loss (beta 0.25 on the "
    "codebook term)",
)


def vq_model_tokenizer(
    origin: Origin,
    family: str,
    model: str,
    config_file: Path,
    weight_file: Path,
    config: VisTokenizerConfig,
    converted: dict,
    notes: list[str],
) -> Any:
    """The tokenizer of a converted VQModel (``config`` and ``converted`` weights from
    ``vq_model_config_and_weights``), its metadata recording ``origin``, the files and ``notes``; ``model`` names
    what it is in the source line and load errors (``"VQ-GAN"``: "converted from aMUSEd's VQ-GAN (…)")."""
    notes = [*notes, *VQ_MODEL_NOTES]
    if "fp16" in weight_file.name:
        notes.append(f"weights read from the fp16 variant {weight_file.name}, upcast exactly to float32")
    net, quantizer = config.net, config.quantizer
    inferred = {"net": net, "codebook_size": quantizer["codebook_size"], "codebook_dim": quantizer["codebook_dim"]}
    extra: dict[str, Any] = {"diffusers_config": config_file.name, "diffusers": config.metadata["diffusers"]}
    metadata = conversion_metadata(origin, family, inferred, weight_file, "state_dict", extra, notes)
    metadata["diffusers"] = config.metadata["diffusers"]
    kwargs = {
        "image_size": config.image_size,
        "num_channels": config.num_channels,
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from {origin.name}'s {model} ({weight_file.name})",
        "metadata": metadata,
    }
    return load_converted(converted, kwargs, f"{origin.name} {model}")

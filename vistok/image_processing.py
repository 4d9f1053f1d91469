"""Image processor: PIL / numpy / tensor images ⇄ ``pixel_values`` in [−1, 1] (registered with
AutoImageProcessor). A zoo entry's processor runs its upstream project's own pipeline (:mod:`vistok.preprocessing`),
so its tokens are the upstream project's."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_base import BatchFeature
from transformers.image_utils import PILImageResampling

from .preprocessing import Preprocessing, preprocess


class VisTokenizerImageProcessor(PilBackend):
    """Resize the shorter side to ``image_size`` (bicubic), centre-crop to ``image_size`` × ``image_size``,
    convert to RGB and scale to [−1, 1] (``x / 127.5 − 1``). ``postprocess`` maps model outputs back to PIL.

    With ``preprocessing`` (a :class:`~vistok.preprocessing.Preprocessing` or its dict, as a zoo entry's processor
    carries it) the pixels are those of that upstream pipeline instead — resize filter, framing, offsets — mapped
    into [−1, 1] the same way; ``preprocessing=None`` is vistok's generic pipeline above."""

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    do_convert_rgb = True
    size = {"shortest_edge": 256}
    crop_size = {"height": 256, "width": 256}

    def __init__(self, image_size: int | None = None, preprocessing: Preprocessing | dict | None = None, **kwargs):
        if isinstance(preprocessing, dict):
            preprocessing = Preprocessing.from_dict(preprocessing)
        self.preprocessing = preprocessing.to_dict() if preprocessing is not None else None
        if preprocessing is not None:
            image_size = image_size or preprocessing.size
            if image_size != preprocessing.size:
                raise ValueError(f"image_size {image_size} differs from the preprocessing's size {preprocessing.size}")
        if image_size is not None:
            kwargs.setdefault("size", {"shortest_edge": image_size})
            kwargs.setdefault("crop_size", {"height": image_size, "width": image_size})
        super().__init__(**kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' loading for the name as :func:`vistok.resolver.resolve` reads it: bundled and zoo names
        load, presets and near misses are refused at once."""
        from .resolver import PRESET, ZOO, UnknownNameError, preset_message, resolve

        resolved = resolve(pretrained_model_name_or_path)
        if resolved.kind == PRESET:
            raise UnknownNameError(preset_message(resolved.target))
        if resolved.kind == ZOO:  # the entry's upstream pipeline: a few hundred bytes of config, no download
            return cls.for_zoo_entry(resolved.entry)
        return super().from_pretrained(resolved.path, *args, **kwargs)

    @classmethod
    def for_zoo_entry(cls, entry: Any) -> VisTokenizerImageProcessor:
        """The processor of a zoo entry: its family's upstream pipeline at the entry's resolution (vistok's generic
        one when the family states none)."""
        from .families import entry_preprocessing

        return cls(image_size=entry.image_size, preprocessing=entry_preprocessing(entry))

    @classmethod
    def for_config(cls, config: Any) -> VisTokenizerImageProcessor:
        """The processor a tokenizer's folder carries: the upstream pipeline its conversion recorded
        (``config.metadata["preprocessing"]``), else the generic one at the config's resolution."""
        recorded = (config.metadata or {}).get("preprocessing")
        return cls(image_size=config.image_size, preprocessing=recorded)

    def preprocess(self, images: Any, *args: Any, return_tensors: Any = None, **kwargs: Any) -> BatchFeature:
        """``images`` (a PIL image, an (H, W, 3) uint8 array, or a list of them) → ``pixel_values`` in [−1, 1];
        transformers' generic pipeline unless this processor carries an upstream one."""
        if self.preprocessing is None:
            return super().preprocess(images, *args, return_tensors=return_tensors, **kwargs)
        given = sorted(k for k, v in kwargs.items() if v is not None)
        if args or given:
            raise TypeError(
                f"this processor runs an upstream pipeline ({Preprocessing.from_dict(self.preprocessing).describe()}); "
                f"options {given or list(args)} do not apply to it"
            )
        pipeline = Preprocessing.from_dict(self.preprocessing)
        batch = images if isinstance(images, (list, tuple)) else [images]
        pixels = np.stack([preprocess(_as_pil(image), pipeline) for image in batch])
        values = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1
        return BatchFeature({"pixel_values": values}, tensor_type=return_tensors)

    @staticmethod
    def postprocess(pixel_values: torch.Tensor) -> list[Image.Image]:
        """(B, 3, H, W) or (3, H, W) float in [−1, 1] → list of RGB PIL images (values clamped, rounded)."""
        if pixel_values.ndim == 3:
            pixel_values = pixel_values.unsqueeze(0)
        if pixel_values.ndim != 4:
            raise ValueError(f"expected (B, C, H, W) pixel values, got shape {tuple(pixel_values.shape)}")
        arrays = to_uint8(pixel_values).permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a) for a in arrays]


def to_uint8(pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) float in [−1, 1] (values outside are clamped) → (B, C, H, W) uint8 in [0, 255], rounded as a
    saved image would be. Metrics and the demo measure exactly this form."""
    if not torch.is_floating_point(pixel_values):
        raise TypeError(f"expected floating-point pixel values in [-1, 1], got dtype {pixel_values.dtype}")
    if pixel_values.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got shape {tuple(pixel_values.shape)}")
    return ((pixel_values.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _as_pil(image: Any) -> Image.Image:
    """A PIL image, or an (H, W, 3) / (H, W) uint8 array, as a PIL image; ``TypeError`` naming what is accepted."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (2, 3):
        return Image.fromarray(image)
    raise TypeError(
        "an upstream pipeline takes PIL images or (H, W, 3) uint8 arrays, got "
        + (f"an array of dtype {image.dtype}, shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__)
    )

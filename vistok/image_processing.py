"""Image processor: PIL / numpy / tensor images ⇄ ``pixel_values`` in [−1, 1] (registered with
AutoImageProcessor)."""

from __future__ import annotations

import torch
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling


class VisTokenizerImageProcessor(PilBackend):
    """Resize the shorter side to ``image_size`` (bicubic), centre-crop to ``image_size`` × ``image_size``,
    convert to RGB and scale to [−1, 1] (``x / 127.5 − 1``). ``postprocess`` maps model outputs back to PIL."""

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

    def __init__(self, image_size: int | None = None, **kwargs):
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
        if resolved.kind == ZOO:  # the entry's native resolution: no download needed
            return cls(image_size=resolved.entry.image_size)
        return super().from_pretrained(resolved.path, *args, **kwargs)

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

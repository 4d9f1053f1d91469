"""Decoding stored images into RGB PIL images, and PIL images into ``pixel_values`` tensors.

Datasets store images in many shapes: 🤗 ``Image`` features (``{"bytes", "path"}`` when not decoded), raw bytes,
file paths, PIL images or numpy arrays, in any PIL mode. Everything here converts to 8-bit RGB or raises
:class:`UnreadableImageError`, which the dataset wrappers turn into a skipped, counted sample.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

# Modes whose pixel values are not 8-bit and must be rescaled, not clipped, before going to RGB.
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


# vistok resizes an image's shorter side to the resolution it works at: an image much longer than it is wide would
# grow to gigabytes (a 1×250,000 PNG of 2 KB becomes 64×16,000,000 at 64 px). Beyond this ratio it is refused.
MAX_ASPECT_RATIO = 64


class UnreadableImageError(ValueError):
    """A stored image could not be decoded (truncated, corrupt, unknown format or unsupported value)."""


class ImageInputError(UnreadableImageError):
    """An image vistok will not use as it is (too thin to resize, too large to decode, smaller than one token,
    damaged); the message says why and what to do instead. Datasets skip and count it like an unreadable one."""


def check_aspect_ratio(width: int, height: int) -> None:
    """``ImageInputError`` when one side of a ``width``×``height`` image is more than :data:`MAX_ASPECT_RATIO`
    times the other (cheap: call it with the header's size, before decoding)."""
    short, long = sorted((int(width), int(height)))
    if long > MAX_ASPECT_RATIO * max(short, 1):
        ratio = long / max(short, 1)
        times = f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.1f}"
        shape = ("wide", "tall") if width > height else ("tall", "wide")
        raise ImageInputError(
            f"The image is {width}×{height} pixels, {times} times as {shape[0]} as it is {shape[1]}: resizing "
            f"its shorter side would make it enormous, so vistok takes at most {MAX_ASPECT_RATIO}:1; crop it nearer "
            "to a square."
        )


def _high_bit_depth_to_l(image: Image.Image) -> Image.Image:
    """Map a 16/32-bit integer or float grayscale image to 8-bit ``L`` by rescaling, not clipping."""
    array = np.asarray(image, dtype=np.float64)
    if image.mode in _SIXTEEN_BIT_MODES:
        array = array / 257.0
    elif image.mode == "F":
        if array.size and np.nanmax(array) <= 1.0:
            array = array * 255.0
    elif array.size and array.max() > 255:  # mode "I": treat as 16-bit when values exceed 8 bits
        array = array / 257.0
    array = np.nan_to_num(array, nan=0.0)
    return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Return ``image`` as an 8-bit RGB PIL image.

    Handles every PIL mode: transparent images (RGBA, LA, P with transparency) are composited over
    ``background``; 16-bit / 32-bit / float grayscale is rescaled to 8 bits; CMYK, YCbCr, L, 1, P convert directly.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("La", "RGBa"):  # premultiplied alpha: PIL converts it only to LA / RGBA
        image = image.convert(image.mode.upper())
    if image.mode in ("P", "L") and "transparency" in image.info:  # a transparent key (palette entry, PNG tRNS grey)
        image = image.convert("RGBA")
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        image = _high_bit_depth_to_l(image)
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channel-first → channel-last
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating):
            array = np.clip(array, 0.0, 1.0) * 255.0 if np.nanmax(array) <= 1.0 else np.clip(array, 0, 255)
        elif array.max(initial=0) > 255:
            array = array / 257.0
        array = np.rint(np.nan_to_num(array)).astype(np.uint8)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise UnreadableImageError(f"cannot interpret an array of shape {array.shape} as an image")
    return Image.fromarray(array)


def has_alpha(image: Image.Image) -> bool:
    """Whether ``image`` carries transparency: an alpha channel, or a transparent key (a palette entry, or the grey
    or RGB value a PNG's tRNS chunk names)."""
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def is_transparent(image: Image.Image) -> bool:
    """Whether some pixel of ``image`` is not fully opaque (an alpha channel that is 255 everywhere is not)."""
    if not has_alpha(image):
        return False
    if image.mode in _ALPHA_MODES:
        return image.getchannel(image.mode[-1]).getextrema()[0] < 255
    return image.mode in ("P", "L")  # a transparent key (whether a pixel uses it is not worth a scan)


def open_image(value: Any, keep_mode: bool = False) -> Image.Image:
    """Open one stored image as RGB (``keep_mode``: in its own PIL mode, for an upstream pipeline that makes it RGB
    its own way, :func:`vistok.preprocessing.to_upstream_rgb`).

    ``value`` may be a PIL image, a 🤗 ``Image`` feature dict ``{"bytes": ..., "path": ...}``, raw encoded bytes,
    a file path, or a numpy array (H, W[, C]) / (C, H, W). The pixels are fully loaded (truncated files fail here,
    not later). Raises :class:`UnreadableImageError` for anything that cannot be decoded, and its subclass
    :class:`ImageInputError` — from the header, before decoding — for an image too thin to resize
    (:func:`check_aspect_ratio`).
    """
    try:
        if isinstance(value, Image.Image):
            image = value
        elif isinstance(value, dict):
            if value.get("bytes") is not None:
                image = Image.open(io.BytesIO(value["bytes"]))
            elif value.get("path"):
                image = Image.open(value["path"])
            else:
                raise UnreadableImageError("image record has neither 'bytes' nor 'path'")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            image = Image.open(io.BytesIO(bytes(value)))
        elif isinstance(value, (str, os.PathLike)):
            image = Image.open(value)
        elif isinstance(value, np.ndarray):
            image = _array_to_pil(value)
        elif value is None:
            raise UnreadableImageError("image is missing (None)")
        else:
            raise UnreadableImageError(f"cannot decode an image from a value of type {type(value).__name__}")
        check_aspect_ratio(image.width, image.height)
        image.load()
        return image if keep_mode else to_rgb(image)
    except UnreadableImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(f"{type(err).__name__}: {err}") from err


def pil_to_pixel_values(image: Image.Image) -> torch.Tensor:
    """RGB PIL image → float32 tensor (3, H, W) in [-1, 1] (0 ↦ -1, 255 ↦ 1)."""
    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {image.mode!r}; call to_rgb first")
    array = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)
    return array.float().div_(127.5).sub_(1.0)

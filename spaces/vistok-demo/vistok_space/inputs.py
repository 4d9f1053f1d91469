"""Uploads → the RGB image a tokenizer sees, with a plain-language notice for every change made on the way.

Every failure is an :class:`InputError` whose message can be shown to the user as is.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vistok.data.images import to_rgb

RESOLUTIONS = (128, 256, 512)
ORIGINAL = "original"
# "Original aspect" keeps the photo's shape but bounds its longest side, so a phone photo stays interactive.
MAX_ORIGINAL_SIDE = 512
# Images above this are called out as large in the notice (they are downscaled like any other).
LARGE_IMAGE_PIXELS = 16_000_000

_MODE_NAMES = {
    "1": "1-bit black-and-white",
    "L": "grayscale",
    "LA": "grayscale + alpha",
    "La": "grayscale + alpha",
    "P": "palette (indexed-colour)",
    "PA": "palette + alpha",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "HSV": "HSV",
    "I": "32-bit integer grayscale",
    "I;16": "16-bit grayscale",
    "I;16B": "16-bit grayscale",
    "I;16L": "16-bit grayscale",
    "I;16N": "16-bit grayscale",
    "F": "32-bit float grayscale",
}


EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class InputError(ValueError):
    """The upload or an option cannot be used; the message says why and what to do instead."""


@dataclass
class DecodedUpload:
    """``image``: the upload as 8-bit RGB (JPEGs possibly decoded at a reduced scale); ``original_size``: the
    upload's own (width, height) after EXIF rotation; ``notices``: one sentence per conversion made."""

    image: Image.Image
    original_size: tuple[int, int]
    notices: list[str] = field(default_factory=list)


@dataclass
class PreparedImage:
    """``image``: the RGB PIL image handed to the tokenizer (sides divisible by its downsample factor);
    ``notices``: one sentence per conversion, resize or crop applied to the upload."""

    image: Image.Image
    notices: list[str] = field(default_factory=list)


def parse_resolution(resolution: Any) -> int | str:
    """``128`` / ``"256"`` / ``"512"`` → that int; ``"original"`` → ``"original"``; anything else → InputError."""
    text = str(resolution).strip().lower()
    if text == ORIGINAL:
        return ORIGINAL
    if text.isdigit() and int(text) in RESOLUTIONS:
        return int(text)
    valid = ", ".join([*map(str, RESOLUTIONS), ORIGINAL])
    raise InputError(f"Unknown resolution {resolution!r}; choose one of: {valid}.")


def open_upload(source: Any, draft_side: int | None = None) -> DecodedUpload:
    """Decode an upload into an 8-bit RGB PIL image.

    ``source``: a file path, a ``data:`` URL, encoded bytes, a PIL image or a uint8 numpy array (H, W[, C]).
    ``draft_side``: JPEGs are decoded directly at a reduced scale no smaller than this (fast for huge photos).
    Notices cover animated images (first frame used), mode conversions and EXIF rotation.
    """
    notices: list[str] = []
    image = _open(source)
    stored_width = image.width
    try:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            image.seek(0)
            notices.append(f"Animated image ({frames} frames): the first frame is used.")
        if draft_side and image.format == "JPEG":
            image.draft("RGB", (draft_side, draft_side))
        image.load()
        rotated = image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1)
        transposed = ImageOps.exif_transpose(image) if rotated else image
    except Image.DecompressionBombError as err:
        raise InputError(
            f"This image is too large to decode safely ({err}). Upload a smaller image."
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise InputError(f"The image file is damaged or truncated and cannot be decoded ({err}).") from err
    if rotated:
        notices.append("Rotated according to the photo's EXIF orientation.")
    mode = transposed.mode
    transparent = mode in _ALPHA_MODES or (mode == "P" and "transparency" in transposed.info)
    rgb = to_rgb(transposed)
    if mode != "RGB":
        name = _MODE_NAMES.get(mode, f"mode {mode}")
        how = ", composited over white" if transparent else ""
        notices.append(f"Converted a {name} image (PIL mode {mode}) to 8-bit RGB{how}.")
    ratio = stored_width / image.width  # > 1 when JPEG draft decoding reduced the scale
    original_size = (round(transposed.width * ratio), round(transposed.height * ratio))
    return DecodedUpload(image=rgb, original_size=original_size, notices=notices)


def prepare(
    image: Image.Image,
    resolution: int | str,
    downsample_factor: int,
    original_size: tuple[int, int] | None = None,
) -> PreparedImage:
    """Resize / crop an RGB image for a tokenizer with the given downsample factor.

    ``resolution`` N (int): shorter side resized to N, centre crop N × N (what the image processor does).
    ``"original"``: the photo's own aspect, longest side at most ``MAX_ORIGINAL_SIDE``, centre-cropped to multiples
    of the factor. ``original_size``: the upload's size before any reduced-scale decoding (for the notices).
    Raises :class:`InputError` when the image is smaller than one token patch.
    """
    f = int(downsample_factor)
    width, height = image.size
    original_size = original_size or image.size
    if width < f or height < f:
        raise InputError(
            f"The image is {width}×{height} pixels, smaller than one token of this tokenizer ({f}×{f} pixels). "
            f"Upload an image at least {f} pixels wide and high."
        )
    if resolution != ORIGINAL and (not isinstance(resolution, int) or resolution % f):
        raise InputError(f"Resolution {resolution!r} is not a multiple of the tokenizer's patch size {f}.")
    notices: list[str] = []
    if resolution == ORIGINAL:
        scale = min(1.0, MAX_ORIGINAL_SIDE / max(width, height))
        size = (max(f, round(width * scale)), max(f, round(height * scale)))
        crop = (size[0] - size[0] % f, size[1] - size[1] % f)
    else:
        scale = resolution / min(width, height)
        size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
        crop = (resolution, resolution)
    if size != original_size:
        notices.append(_resize_notice(original_size, size, resolution))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    if crop != image.size:
        left, top = (image.width - crop[0]) // 2, (image.height - crop[1]) // 2
        image = image.crop((left, top, left + crop[0], top + crop[1]))
        why = "a square" if resolution != ORIGINAL else f"multiples of the tokenizer's {f}-pixel patch"
        notices.append(f"Centre-cropped to {crop[0]}×{crop[1]} ({why}).")
    return PreparedImage(image=image, notices=notices)


def _resize_notice(before: tuple[int, int], after: tuple[int, int], resolution: int | str) -> str:
    pixels = before[0] * before[1]
    direction = "Downscaled" if after[0] * after[1] < pixels else "Upscaled"
    if pixels > LARGE_IMAGE_PIXELS:
        direction = f"Large image ({pixels / 1e6:.1f} megapixels) downscaled"
    rule = (
        f"longest side at most {MAX_ORIGINAL_SIDE} px"
        if resolution == ORIGINAL
        else f"shorter side to {resolution} px"
    )
    blur = " — expect a blurry original" if direction == "Upscaled" else ""
    return f"{direction} from {before[0]}×{before[1]} to {after[0]}×{after[1]} ({rule}){blur}."


def _open(source: Any) -> Image.Image:
    if source is None:
        raise InputError("No image: upload an image or pick one of the examples.")
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        if (
            source.dtype != np.uint8
            or source.ndim not in (2, 3)
            or (source.ndim == 3 and source.shape[-1] not in (1, 3, 4))
        ):
            raise InputError(
                f"Expected a uint8 image array (H, W[, 1|3|4]), got {source.dtype} {source.shape}."
            )
        return Image.fromarray(source.squeeze(-1) if source.ndim == 3 and source.shape[-1] == 1 else source)
    if isinstance(source, (bytes, bytearray)):
        stream: Any = io.BytesIO(bytes(source))
    elif isinstance(source, str) and source.startswith("data:"):
        try:
            stream = io.BytesIO(base64.b64decode(source.split(",", 1)[1], validate=False))
        except (IndexError, binascii.Error) as err:
            raise InputError("The uploaded data URL is not valid base64 image data.") from err
    elif isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise InputError(
                f"The uploaded file {os.path.basename(str(source))!r} is missing; upload it again."
            )
        stream = source
    else:
        raise InputError(f"Cannot read an image from a {type(source).__name__}; upload an image file.")
    try:
        return Image.open(stream)
    except Image.DecompressionBombError as err:
        raise InputError(
            f"This image is too large to decode safely ({err}). Upload a smaller image."
        ) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        name = (
            os.path.basename(str(source))
            if isinstance(source, (str, os.PathLike)) and not str(source).startswith("data:")
            else "upload"
        )
        raise InputError(
            f"The file {name!r} is not an image this demo can read. Upload a PNG, JPEG, WebP, GIF, BMP or TIFF image."
        ) from err

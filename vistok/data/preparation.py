"""A user's image → the RGB image a tokenizer sees, with a plain-language notice for every change made on the way.

``vistok reconstruct`` and the Space both prepare images here, so one photo gives the same pixels, the same notices
and the same PSNR in both::

    image = open_image_file("photo.jpg")                   # lazy: only the header is read
    decoded = decode_image(image, draft_side=256)          # 8-bit RGB; JPEGs decoded at a reduced scale ≥ 256
    prepared = prepare_image(decoded.image, 256, tok.downsample_factor, original_size=decoded.original_size,
                             pipeline=recorded_pipeline(tok.config))  # the entry's upstream framing, if it has one
    notices = decoded.notices + prepared.notices           # e.g. "Converted a grayscale image … to 8-bit RGB."

With ``pipeline`` (a zoo entry's :class:`~vistok.preprocessing.Preprocessing`), an image is framed exactly as the
tokenizer's upstream project frames it (its filter, crop or pad), so its tokens are the upstream project's; without,
vistok's generic framing (shorter side, bicubic, centre crop). :func:`draft_side` says how far a JPEG may be decoded
at a reduced scale for either.

Every image that cannot be used raises :class:`~vistok.data.images.ImageInputError`, whose message says why and what
to do (too large to decode, damaged, smaller than one token, too thin); :func:`open_image_file` raises
:class:`~vistok.data.images.UnreadableImageError` for anything that is not an image at all.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from ..preprocessing import Preprocessing, preprocess, resized_size
from .images import ImageInputError, UnreadableImageError, check_aspect_ratio, is_transparent, to_rgb

ORIGINAL = "original"
# "original" keeps the photo's shape but bounds its longest side, so a phone photo stays interactive.
MAX_ORIGINAL_SIDE = 512
# Images above this are called out as large in the notice (they are downscaled like any other).
LARGE_IMAGE_PIXELS = 16_000_000
EXIF_ORIENTATION = 0x0112

MODE_NAMES = {
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


@dataclass
class DecodedImage:
    """``image``: the image as 8-bit RGB (in its own PIL mode with ``decode_image(keep_mode=True)``; JPEGs possibly
    decoded at a reduced scale); ``original_size``: its own
    (width, height) after EXIF rotation; ``notices``: one sentence per conversion made."""

    image: Image.Image
    original_size: tuple[int, int]
    notices: list[str] = field(default_factory=list)


@dataclass
class PreparedImage:
    """``image``: the RGB PIL image handed to the tokenizer (sides divisible by its downsample factor);
    ``notices``: one sentence per resize or crop applied."""

    image: Image.Image
    notices: list[str] = field(default_factory=list)


def open_image_file(source: str | os.PathLike | bytes | Any) -> Image.Image:
    """Open an image file (a path, encoded bytes or a binary file object) without decoding its pixels.

    PIL's ``DecompressionBombWarning`` is not printed: a large image is downscaled like any other and
    :func:`prepare_image` says so in its notice. ``ImageInputError`` for an image too large to decode safely
    (PIL's ``DecompressionBombError``); ``UnreadableImageError`` for anything that is not an image PIL can read
    (missing file included).
    """
    stream = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(stream)
    except Image.DecompressionBombError as err:
        raise ImageInputError(f"This image is too large to decode safely ({err}); use a smaller image.") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise UnreadableImageError(f"{type(err).__name__}: {err}") from err


def decode_image(image: Image.Image, draft_side: int | None = None, keep_mode: bool = False) -> DecodedImage:
    """Decode ``image`` (from :func:`open_image_file`, or any PIL image) into 8-bit RGB, or with ``keep_mode`` in
    its own PIL mode (transparent, 16-bit…) for an upstream pipeline that makes it RGB its own way
    (:func:`prepare_image` with ``pipeline``, which then says what it did).

    ``draft_side``: JPEGs are decoded directly at a reduced scale whose sides are no smaller than this (fast, and
    little memory, for huge photos). Notices cover animated images (first frame used), mode conversions and EXIF
    rotation. ``ImageInputError`` for an image too thin to resize (checked from its header, before decoding), too
    large to decode safely, or damaged.
    """
    notices: list[str] = []
    check_aspect_ratio(image.width, image.height)
    stored_width = image.width
    try:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            image.seek(0)
            notices.append(f"Animated image ({frames} frames): the first frame is used.")
        if draft_side and image.format == "JPEG":
            image.draft("RGB", (draft_side, draft_side))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
        rotated = image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1)
        transposed = ImageOps.exif_transpose(image) if rotated else image
    except Image.DecompressionBombError as err:
        raise ImageInputError(f"This image is too large to decode safely ({err}); use a smaller image.") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageInputError(
            f"The image file is damaged or truncated and cannot be decoded ({err}); use an intact copy."
        ) from err
    if rotated:
        notices.append("Rotated according to the photo's EXIF orientation.")
    rgb = transposed if keep_mode else _to_rgb_noticed(transposed, notices)
    ratio = stored_width / image.width  # > 1 when JPEG draft decoding reduced the scale
    original_size = (round(transposed.width * ratio), round(transposed.height * ratio))
    return DecodedImage(image=rgb, original_size=original_size, notices=notices)


def _to_rgb_noticed(image: Image.Image, notices: list[str]) -> Image.Image:
    """vistok's conversion to 8-bit RGB (:func:`~vistok.data.images.to_rgb`), with its notice."""
    if image.mode == "RGB":
        return image
    how = ", composited over white" if is_transparent(image) else ""
    notices.append(f"Converted a {_mode_name(image.mode)} image (PIL mode {image.mode}) to 8-bit RGB{how}.")
    return to_rgb(image)


def _mode_name(mode: str) -> str:
    return MODE_NAMES.get(mode, f"mode {mode}")


def recorded_pipeline(config: Any) -> Preprocessing | None:
    """The upstream pipeline a tokenizer's config records (``config.metadata["preprocessing"]``, written for zoo
    entries), or ``None`` when it records none (vistok's generic framing applies)."""
    recorded = (getattr(config, "metadata", None) or {}).get("preprocessing")
    if not recorded:
        return None
    try:
        return Preprocessing.from_dict(recorded)
    except (TypeError, ValueError) as err:  # a hand-edited or foreign config: say which record, not where it broke
        raise ValueError(
            f"the tokenizer's config records a preprocessing pipeline vistok cannot read (config.metadata"
            f"['preprocessing']: {err}); fix or remove it, or use vistok's generic framing"
        ) from err


def draft_side(image: Image.Image, resolution: int | str, pipeline: Preprocessing | None = None) -> int | None:
    """The ``draft_side`` to decode ``image`` (opened, not yet decoded) with for :func:`prepare_image`.

    Generic framing: the target side (a JPEG is decoded at the smallest scale that still covers it). An upstream
    pipeline: ``None`` (full decode, so the pixels are upstream's), unless the image is larger than
    ``LARGE_IMAGE_PIXELS``, where memory comes first (:func:`prepare_image` then says the pixels may differ).
    """
    if resolution == ORIGINAL:
        return MAX_ORIGINAL_SIDE
    side = int(resolution)
    if pipeline is None:
        return side
    if image.width * image.height <= LARGE_IMAGE_PIXELS:
        return None
    return 2 * max(side, pipeline.at(side).resize_to or side)


def prepare_image(
    image: Image.Image,
    resolution: int | str,
    downsample_factor: int,
    original_size: tuple[int, int] | None = None,
    pipeline: Preprocessing | None = None,
) -> PreparedImage:
    """Resize / crop an RGB image for a tokenizer with the given downsample factor.

    ``resolution`` N (int): with ``pipeline`` (the tokenizer's upstream :class:`~vistok.preprocessing.Preprocessing`,
    e.g. :func:`recorded_pipeline`), that pipeline at N px; without, shorter side resized to N (bicubic) and a centre
    crop N × N (the generic image processor). ``"original"``: the photo's own aspect, longest side at most
    ``MAX_ORIGINAL_SIDE``, centre-cropped to multiples of the factor (an upstream pipeline frames a fixed size, so it
    does not apply; the notice says so). ``original_size``: the image's size before any reduced-scale decoding (for
    the notices). ``ImageInputError`` when the image is smaller than one token, or too thin to resize.
    """
    f = int(downsample_factor)
    width, height = image.size
    original_size = original_size or image.size
    if width < f or height < f:
        raise ImageInputError(
            f"The image is {width}×{height} pixels, smaller than one token of this tokenizer ({f}×{f} pixels); "
            f"use an image at least {f} pixels wide and high."
        )
    check_aspect_ratio(*original_size)
    if resolution != ORIGINAL and (not isinstance(resolution, int) or resolution % f):
        raise ImageInputError(f"Resolution {resolution!r} is not a multiple of the tokenizer's patch size {f}.")
    notices: list[str] = []
    if pipeline is not None and resolution != ORIGINAL:
        return _prepare_upstream(image, pipeline.at(resolution), original_size)
    if pipeline is not None:
        notices.append("The tokenizer's upstream framing works at a fixed size, so vistok's generic resize keeps "
                       "the photo's shape here.")  # fmt: skip
    image = _to_rgb_noticed(image, notices)  # kept in its mode for an upstream pipeline that does not apply here
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


def _prepare_upstream(image: Image.Image, pipeline: Preprocessing, original_size: tuple[int, int]) -> PreparedImage:
    notices = [f"Framed as the tokenizer's upstream project does: {pipeline.describe()}."]
    if image.mode != "RGB":  # kept in its own mode by decode_image(keep_mode=True)
        if is_transparent(image):
            how = "blended on white" if pipeline.alpha == "white" else "its transparency dropped (PIL's convert)"
            notices.append(f"Made a transparent {_mode_name(image.mode)} image RGB as the upstream project does: "
                           f"{how}.")  # fmt: skip
        else:
            notices.append(f"Converted a {_mode_name(image.mode)} image (PIL mode {image.mode}) to RGB as the "
                           "upstream project does (PIL's convert).")  # fmt: skip
    if image.size != original_size:
        notices.append(
            f"The {original_size[0]}×{original_size[1]} photo was decoded at a reduced scale "
            f"({image.width}×{image.height}) to bound memory, so its pixels may differ slightly from the upstream "
            "pipeline's."
        )
    grown = [new > old for new, old in zip(resized_size(original_size, pipeline), original_size, strict=True)]
    if pipeline.framing == "resize" and original_size[0] != original_size[1]:
        notices.append(f"Stretched from {original_size[0]}×{original_size[1]} to {pipeline.size}×{pipeline.size}: "
                       "the upstream pipeline does not keep the aspect ratio.")  # fmt: skip
    if all(grown) if pipeline.framing == "resize" else any(grown):
        notices.append(f"Upscaled from {original_size[0]}×{original_size[1]} — expect a blurry original.")
    try:
        pixels = preprocess(image, pipeline)
    except ValueError as err:  # a side too short for the crop after the pipeline's own rounding
        raise ImageInputError(f"This image cannot be framed as the tokenizer's upstream project does ({err}).") from err
    return PreparedImage(image=Image.fromarray(pixels), notices=notices)


def _resize_notice(before: tuple[int, int], after: tuple[int, int], resolution: int | str) -> str:
    pixels = before[0] * before[1]
    direction = "Downscaled" if after[0] * after[1] < pixels else "Upscaled"
    if pixels > LARGE_IMAGE_PIXELS:
        direction = f"Large image ({pixels / 1e6:.1f} megapixels) downscaled"
    rule = f"longest side at most {MAX_ORIGINAL_SIDE} px" if resolution == ORIGINAL else f"shorter side to {resolution} px"
    blur = " — expect a blurry original" if direction == "Upscaled" else ""
    return f"{direction} from {before[0]}×{before[1]} to {after[0]}×{after[1]} ({rule}){blur}."


__all__ = [
    "LARGE_IMAGE_PIXELS",
    "MAX_ORIGINAL_SIDE",
    "ORIGINAL",
    "DecodedImage",
    "ImageInputError",
    "PreparedImage",
    "decode_image",
    "draft_side",
    "open_image_file",
    "prepare_image",
    "recorded_pipeline",
]

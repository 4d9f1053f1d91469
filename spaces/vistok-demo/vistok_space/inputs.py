"""Uploads → the RGB image a tokenizer sees, with a plain-language notice for every change made on the way.

The decoding, conversions, resizing, crops and their notices are vistok's own (:mod:`vistok.data.preparation`), the
ones ``vistok reconstruct`` uses, so a photo gives the same pixels, notices and PSNR here and on the command line.
This module adds what only the page has: the kinds of upload (data URLs, arrays, gone temporary files) and the
resolution menu. Every failure is an :class:`InputError` whose message can be shown to the user as is.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from vistok.data.images import ImageInputError, UnreadableImageError
from vistok.data.preparation import (
    LARGE_IMAGE_PIXELS,
    MAX_ORIGINAL_SIDE,
    ORIGINAL,
    DecodedImage,
    PreparedImage,
    decode_image,
    draft_side,
    open_image_file,
    recorded_pipeline,
)
from vistok.data.preparation import prepare_image as prepare

RESOLUTIONS = (128, 256, 512)
# The library's error for an image it will not use; uploads the page cannot read raise it too.
InputError = ImageInputError
DecodedUpload = DecodedImage


def parse_resolution(resolution: Any) -> int | str:
    """``128`` / ``"256"`` / ``"512"`` → that int; ``"original"`` → ``"original"``; anything else → InputError."""
    text = str(resolution).strip().lower()
    if text == ORIGINAL:
        return ORIGINAL
    if text.isdigit() and int(text) in RESOLUTIONS:
        return int(text)
    valid = ", ".join([*map(str, RESOLUTIONS), ORIGINAL])
    raise InputError(f"Unknown resolution {resolution!r}; choose one of: {valid}.")


def open_upload(
    source: Any, draft_side: int | Callable[[Image.Image], int | None] | None = None, keep_mode: bool = False
) -> DecodedImage:
    """Decode an upload into an 8-bit RGB PIL image (:func:`vistok.data.preparation.decode_image`; with
    ``keep_mode``, in its own PIL mode for the tokenizer's upstream pipeline to convert).

    ``source``: a file path, a ``data:`` URL, encoded bytes, a PIL image or a uint8 numpy array (H, W[, C]).
    ``draft_side``: JPEGs are decoded directly at a reduced scale no smaller than this (fast for huge photos); a
    callable gets the opened, not yet decoded image and returns it (e.g. :func:`vistok.data.preparation.draft_side`).
    Notices cover animated images (first frame used), mode conversions and EXIF rotation.
    """
    image = _open(source)
    side = draft_side(image) if callable(draft_side) else draft_side
    return decode_image(image, draft_side=side, keep_mode=keep_mode)


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
        return open_image_file(stream)
    except InputError:
        raise
    except UnreadableImageError as err:
        name = (
            os.path.basename(str(source))
            if isinstance(source, (str, os.PathLike)) and not str(source).startswith("data:")
            else "upload"
        )
        raise InputError(
            f"The file {name!r} is not an image this demo can read. Upload a PNG, JPEG, WebP, GIF, BMP or TIFF image."
        ) from err


__all__ = [
    "LARGE_IMAGE_PIXELS",
    "MAX_ORIGINAL_SIDE",
    "ORIGINAL",
    "RESOLUTIONS",
    "DecodedUpload",
    "InputError",
    "draft_side",
    "PreparedImage",
    "open_upload",
    "parse_resolution",
    "prepare",
    "recorded_pipeline",
]

"""How an upstream project turns a photo into the pixels its tokenizer sees, as data.

Each family states its evaluation pipeline as a :class:`Preprocessing` (resize rule and filter, optional BOX
pre-halving, crop or pad framing and how offsets round); :func:`preprocess` runs it with the library the upstream
project used (Pillow, or OpenCV for albumentations' linear resize) and returns uint8 pixels, which the image
processor maps into vistok's ``[-1, 1]``. Tokens computed on these pixels are the upstream project's tokens.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

PIL_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
FILTERS = (*PIL_FILTERS, "cv2_linear")
# How the resized image's size is computed from the edge the rule targets (``edge``: that edge's length, ``target``:
# its new length, ``dim``: each side):
#   "truncate"       int(target * dim / edge)       torchvision's and transformers' resize of one edge
#   "round"          round(dim * (target / edge))   ADM's center_crop_arr, albumentations' SmallestMaxSize
#   "ratio_truncate" int(dim / edge * target)       Janus' VLMImageProcessor
#   "aspect_truncate" with r = width / height: a longer width int(r * target), a longer height int(target / r)
#                                                  Infinity's tools/run_infinity.py transform
SIZE_RULES = ("truncate", "round", "ratio_truncate", "aspect_truncate")
# "resize": both sides straight to ``size`` (the aspect ratio is not kept: diffusers' VaeImageProcessor default)
FRAMINGS = ("center_crop", "pad_square", "resize")
# Crop offsets: "floor" (margin // 2: transformers, ADM, albumentations) or "round" (int(round(margin / 2)):
# torchvision's CenterCrop).
OFFSETS = ("floor", "round")
# What happens to a transparent image's alpha channel: "drop" — PIL's convert("RGB"), what `Image.open(p).convert(
# "RGB")` pipelines do (the colour under a transparent pixel is kept); "white" — Chameleon's _whiten_transparency
# (blend on white in float64, (1 - a)·255 + a·rgb, truncated to uint8).
ALPHA_MODES = ("drop", "white")


@dataclass(frozen=True)
class Preprocessing:
    """One upstream pipeline.

    Attributes:
        size: the side of the square output, in pixels.
        resize_edge: which edge is resized to ``resize_to``: ``"shortest"`` or ``"longest"``.
        resize_to: that edge's new length (default ``size``; VAR resizes to 288 then crops 256).
        filter: ``bicubic`` / ``bilinear`` / ``lanczos`` / ``box`` (Pillow, antialiased) or ``cv2_linear``
            (OpenCV ``INTER_LINEAR``, no antialias).
        size_rule: how the other side's length is computed (see ``SIZE_RULES``).
        box_prehalve: first halve the image with Pillow's BOX filter while its shortest side is at least twice
            ``size`` (ADM's ``center_crop_arr``).
        framing: ``center_crop`` to ``size``, ``pad_square`` (paste centred on a ``pad_fill`` square) or ``resize``
            (both sides straight to ``size``; ``resize_edge`` and ``size_rule`` do not apply).
        crop_offset: how a crop or pad offset rounds (see ``OFFSETS``).
        pad_fill: the RGB fill of ``pad_square``.
        min_side: the smallest length a resized side may get (Janus: 14).
        alpha: how a transparent image becomes RGB (see ``ALPHA_MODES``).
        reducing_gap: Pillow's ``reducing_gap`` for the resize (``None``: Pillow's default, no reduction first;
            diffusers' Kandinsky 2.2 processor passes 1).
        follows: the upstream file and function this reproduces (shown in cards and ``vistok zoo info``).
    """

    size: int
    resize_edge: str = "shortest"
    resize_to: int | None = None
    filter: str = "bicubic"
    size_rule: str = "truncate"
    box_prehalve: bool = False
    framing: str = "center_crop"
    crop_offset: str = "floor"
    pad_fill: tuple[int, int, int] = (127, 127, 127)
    min_side: int = 1
    reducing_gap: float | None = None
    alpha: str = "drop"
    follows: str = ""

    def __post_init__(self) -> None:
        checks = {
            "resize_edge": (self.resize_edge, ("shortest", "longest")),
            "filter": (self.filter, FILTERS),
            "size_rule": (self.size_rule, SIZE_RULES),
            "framing": (self.framing, FRAMINGS),
            "crop_offset": (self.crop_offset, OFFSETS),
            "alpha": (self.alpha, ALPHA_MODES),
        }
        for name, (value, valid) in checks.items():
            if value not in valid:
                raise ValueError(f"preprocessing {name} must be one of {', '.join(valid)}, got {value!r}")
        if not isinstance(self.size, int) or self.size <= 0:
            raise ValueError(f"preprocessing size must be a positive integer, got {self.size!r}")
        if self.size_rule == "aspect_truncate" and self.resize_edge != "shortest":
            raise ValueError("preprocessing size_rule 'aspect_truncate' resizes the shortest edge (resize_edge 'shortest')")
        if self.reducing_gap is not None and not isinstance(self.reducing_gap, (int, float)):
            raise ValueError(f"preprocessing reducing_gap must be a number or None, got {self.reducing_gap!r}")
        if self.reducing_gap is not None and self.filter == "cv2_linear":
            raise ValueError("preprocessing reducing_gap is a Pillow option: it does not apply to filter 'cv2_linear'")
        if self.reducing_gap is not None and not self.reducing_gap >= 1.0:
            raise ValueError(f"preprocessing reducing_gap must be >= 1 (Pillow's rule), got {self.reducing_gap!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "pad_fill": list(self.pad_fill)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """From :meth:`to_dict`'s output (a processor config); unknown keys raise ``ValueError`` naming the valid ones."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown preprocessing option(s) {unknown}; valid: {', '.join(sorted(fields))}")
        values = dict(data)
        if "pad_fill" in values:
            values["pad_fill"] = tuple(values["pad_fill"])
        return cls(**values)

    def at(self, size: int) -> Preprocessing:
        """The same pipeline for a ``size``-px output (a resize target other than ``size`` scales with it)."""
        if size == self.size:
            return self
        resize_to = None if self.resize_to is None else round(self.resize_to * size / self.size)
        return dataclasses.replace(self, size=size, resize_to=resize_to)

    def describe(self) -> str:
        """One line: what the pipeline does, and the upstream code it follows."""
        edge = self.resize_to or self.size
        steps = []
        if self.box_prehalve:
            steps.append("BOX halvings while ≥ 2× the size")
        gap = f", reducing_gap {self.reducing_gap:g}" if self.reducing_gap is not None else ""
        if self.framing == "resize":
            steps.append(f"both sides to {self.size} ({self.filter.replace('_', ' ')}{gap}; aspect ratio not kept)")
        else:
            steps.append(f"{self.resize_edge} side to {edge} ({self.filter.replace('_', ' ')}{gap})")
        if self.framing == "center_crop":
            steps.append(f"centre crop {self.size} (offset {self.crop_offset})")
        elif self.framing == "pad_square":
            steps.append(f"pad to a {self.size}² square with {tuple(self.pad_fill)}")
        if self.alpha == "white":
            steps.insert(0, "transparency blended on white (truncated)")
        return ", ".join(steps) + (f" — as {self.follows}" if self.follows else "")


def to_upstream_rgb(image: Image.Image, alpha: str = "drop") -> Image.Image:
    """``image`` in RGB as an upstream pipeline makes it: ``alpha`` ``"drop"`` is PIL's ``convert("RGB")``;
    ``"white"`` blends a transparent image on white as Chameleon does (float64, truncated to uint8)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("La", "RGBa"):  # premultiplied alpha (in-memory images only): PIL converts it from LA / RGBA
        image = image.convert(image.mode.upper())
    with warnings.catch_warnings():  # PIL's advice to go through RGBA for palette transparency: upstream does not
        warnings.filterwarnings("ignore", message="Palette images with Transparency", category=UserWarning)
        if alpha == "white":
            rgba = np.asarray(image.convert("RGBA"))
            if (rgba[:, :, 3] < 255).any():
                a = rgba[:, :, 3:4] / 255.0
                return Image.fromarray(((1 - a) * 255 + a * rgba[:, :, :3]).astype(np.uint8), "RGB")
        return image.convert("RGB")


def preprocess(image: Image.Image, pipeline: Preprocessing) -> np.ndarray:
    """``image`` (any PIL mode, transparent ones included: ``pipeline.alpha`` says how it becomes RGB) through
    ``pipeline``: uint8 (size, size, 3)."""
    image = to_upstream_rgb(image, pipeline.alpha)
    if pipeline.box_prehalve:
        while min(image.size) >= 2 * pipeline.size:
            image = image.resize(tuple(x // 2 for x in image.size), resample=Image.Resampling.BOX)
    new_width, new_height = resized_size(image.size, pipeline)
    if pipeline.filter == "cv2_linear":
        import cv2

        pixels = cv2.resize(np.asarray(image), (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    else:
        resample = PIL_FILTERS[pipeline.filter]
        pixels = np.asarray(image.resize((new_width, new_height), resample=resample, reducing_gap=pipeline.reducing_gap))
    if pipeline.framing == "resize":
        return np.ascontiguousarray(pixels)
    if pipeline.framing == "center_crop":
        top = _offset(new_height - pipeline.size, pipeline.crop_offset)
        left = _offset(new_width - pipeline.size, pipeline.crop_offset)
        if top < 0 or left < 0:
            raise ValueError(
                f"the image resizes to {new_width}×{new_height}, smaller than the {pipeline.size}² crop"
            )
        return np.ascontiguousarray(pixels[top : top + pipeline.size, left : left + pipeline.size])
    side = max(new_width, new_height)
    canvas = np.empty((side, side, 3), dtype=np.uint8)
    canvas[:] = np.asarray(pipeline.pad_fill, dtype=np.uint8)
    top, left = _offset(side - new_height, pipeline.crop_offset), _offset(side - new_width, pipeline.crop_offset)
    canvas[top : top + new_height, left : left + new_width] = pixels
    if side != pipeline.size:
        canvas = np.asarray(Image.fromarray(canvas).resize((pipeline.size, pipeline.size), PIL_FILTERS[pipeline.filter]))
    return canvas


def resized_size(size: tuple[int, int], pipeline: Preprocessing) -> tuple[int, int]:
    """(width, height) that an image of ``size`` (after any BOX pre-halving) is resized to before framing."""
    if pipeline.framing == "resize":
        return pipeline.size, pipeline.size
    width, height = size
    edge = min(width, height) if pipeline.resize_edge == "shortest" else max(width, height)
    target = pipeline.resize_to or pipeline.size
    if pipeline.size_rule == "aspect_truncate":  # the float expression differs between the two orientations
        ratio = width / height
        sides = (int(ratio * target), target) if width > height else (target, int(target / ratio))
        return tuple(max(side, pipeline.min_side) for side in sides)
    return tuple(max(_side(dim, edge, target, pipeline.size_rule), pipeline.min_side) for dim in (width, height))


def _side(dim: int, edge: int, target: int, rule: str) -> int:
    if dim == edge:
        return target
    if rule == "truncate":
        return int(target * dim / edge)
    if rule == "round":
        return round(dim * (target / edge))
    return int(dim / edge * target)


def _offset(margin: int, rule: str) -> int:
    return margin // 2 if rule == "floor" else int(round(margin / 2.0))

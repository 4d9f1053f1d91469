"""Tokenize and reconstruct image files with a tokenizer; print the size used, the token grid and PSNR.

    vistok reconstruct photo.jpg                                  # bundled vistok/default at its native 64 px
    vistok reconstruct a.png b.jpg --image-size 256 --output-dir recs/
    vistok reconstruct photo.jpg --model runs/celeba-vq/final

Each image is prepared as the vistok Space prepares an upload (vistok.data.preparation: the same pixels, notices and
PSNR): converted to 8-bit RGB (grey, RGBA, 16-bit, CMYK, palette, the first frame of an animation, EXIF rotation),
framed as the tokenizer's upstream project frames it (a zoo entry's recorded pipeline: its resize filter, crop or
pad; `--preprocessing generic` or a tokenizer that records none: shorter side resized with bicubic — a large JPEG
decoded at a reduced scale — and a centre crop) to a square of --image-size pixels (default: the model's native
resolution, its config's image_size), tokenized, decoded and
written as <output-dir>/<name>_reconstruction.png at that size; every change is listed under the file's line. PSNR is
vistok's metric (vistok.metrics): the crop and its reconstruction both rounded to uint8 as saved, on [0, 1]. A file
that cannot be read or used (smaller than one token, too thin to resize, too large to decode), or whose
reconstruction cannot be written, is skipped and reported; the exit status is 1 when any file failed. Existing
reconstructions are not replaced unless --overwrite is given; each is written atomically.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, …)")
    parser.add_argument("--model", default="vistok/default", help="any tokenizer name: a folder, vistok/<name>, a zoo name or upstream repo id, a vistok Hub repo")
    parser.add_argument("--output-dir", default="reconstructions", help="where the reconstructions are written")
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="side of the square crop that is tokenized, a multiple of the model's downsample factor "
        "(default: the model's native resolution)",
    )
    parser.add_argument(
        "--preprocessing",
        choices=("upstream", "generic"),
        default="upstream",
        help="frame each image as the tokenizer's upstream project does (its zoo entry's pipeline: an 8-bit RGB "
        "photo gets upstream's pixels and tokens; conversions such as EXIF rotation or alpha compositing are listed "
        "under the file), or with vistok's generic resize and centre crop (identical pixels for every tokenizer)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace reconstructions that already exist")


@dataclass
class Reconstruction:
    """One image through the tokenizer. ``original`` and ``reconstruction``: uint8 (3, S, S) as saved;
    ``indices``: int64 (N,) token ids in the tokenizer's reading order; ``psnr``: dB, vistok.metrics' PSNR of the two uint8 images."""

    original: Any
    reconstruction: Any
    indices: Any
    psnr: float


def reconstruct_image(tok: Any, image: Any) -> Reconstruction:
    """Run ``tok`` on ``image`` (an RGB PIL image whose sides are multiples of its downsample factor, as
    :func:`vistok.data.preparation.prepare_image` makes it) and measure PSNR as ``vistok evaluate`` does."""
    import torch

    from ..data import pil_to_pixel_values
    from ..image_processing import to_uint8
    from ..metrics.psnr import psnr_per_image

    pixels = pil_to_pixel_values(image).unsqueeze(0)
    with torch.inference_mode():
        out = tok(pixels)
    original, reconstruction = to_uint8(pixels), to_uint8(out.reconstruction)
    psnr = float(psnr_per_image(original, reconstruction)[0])
    flat = tok.token_layout.flatten(out.indices)[0]  # this image's tokens, whatever the layout
    return Reconstruction(original[0], reconstruction[0], flat, psnr)


def valid_image_size(image_size: int, factor: int, model: str) -> int:
    """``image_size`` if it is a positive multiple of ``factor``; else ``SystemExit`` naming the nearest valid sizes."""
    if image_size <= 0:
        raise SystemExit(f"vistok reconstruct: --image-size must be positive, got {image_size}")
    if image_size % factor:
        below = image_size // factor * factor
        nearest = [size for size in (below, below + factor) if size > 0]
        raise SystemExit(
            f"vistok reconstruct: --image-size must be a multiple of {factor}, the downsample factor of {model}; "
            f"got {image_size}: use {' or '.join(map(str, nearest))}"
        )
    return image_size


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..data import ImageInputError, UnreadableImageError
    from ..data.preparation import decode_image, draft_side, open_image_file, prepare_image, recorded_pipeline
    from ..modeling import VisTokenizer

    try:
        import vistok.metrics.psnr  # noqa: F401  (PSNR is measured by vistok.metrics, an optional extra)
    except ImportError as error:
        raise SystemExit(
            f"vistok reconstruct measures PSNR with vistok.metrics, which needs the metrics extra: "
            f"pip install 'vistok[metrics]' ({error})"
        ) from error
    targets = _output_paths(args.images, Path(args.output_dir))
    existing = [str(target) for target in targets if target.exists()]
    if existing and not args.overwrite:
        raise SystemExit(
            f"vistok reconstruct: {len(existing)} output file(s) already exist ({', '.join(existing[:3])}"
            f"{', …' if len(existing) > 3 else ''}); pass --overwrite to replace them or choose another --output-dir"
        )
    try:
        tok = VisTokenizer.from_pretrained(args.model).eval()
    except (OSError, ValueError) as error:
        raise SystemExit(f"vistok reconstruct: cannot load {args.model!r}: {error}") from error
    factor = tok.config.downsample_factor
    layout = tok.token_layout
    if args.image_size is None:
        size, why = tok.config.image_size, "the model's native resolution"
        if layout.kind == "grid":
            why += "; --image-size changes it"
    elif layout.kind != "grid" and args.image_size != tok.config.image_size:
        raise SystemExit(
            f"vistok reconstruct: {args.model!r} makes a {layout.kind} of tokens and works at "
            f"{tok.config.image_size}×{tok.config.image_size} px only; drop --image-size or pass "
            f"{tok.config.image_size}"
        )
    else:
        size, why = valid_image_size(args.image_size, factor, args.model), "--image-size"
    latent_hw = tok.config.latent_hw if layout.kind == "sequence" else (size // factor, size // factor)
    try:
        pipeline = recorded_pipeline(tok.config) if args.preprocessing == "upstream" else None
    except ValueError as error:
        raise SystemExit(f"vistok reconstruct: {args.model!r}: {error} (--preprocessing generic)") from error
    framing = (
        f"framed as its upstream project does ({pipeline.at(size).describe()})"
        if pipeline is not None
        else "resized (shorter side, bicubic) and centre-cropped" + (
            " (vistok's generic framing: the tokenizer records no upstream pipeline)"
            if args.preprocessing == "upstream" else " (--preprocessing generic)"
        )
    )
    print(
        f"Each image is {framing} to {size}×{size} px ({why}), giving "
        f"{layout.describe(latent_hw)}; reconstructions are {size}×{size} px."
    )
    targets[0].parent.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    for name, target in zip(args.images, targets, strict=True):
        try:
            image = open_image_file(name)
            decoded = decode_image(image, draft_side=draft_side(image, size, pipeline), keep_mode=pipeline is not None)
            prepared = prepare_image(decoded.image, size, factor, original_size=decoded.original_size, pipeline=pipeline)
        except ImageInputError as error:  # an image, but not one to use as it is: the message says what to do
            print(f"{name}: skipped. {error}", file=sys.stderr)
            failed.append(name)
            continue
        except (UnreadableImageError, OSError) as error:
            print(f"{name}: skipped, not a readable image ({error})", file=sys.stderr)
            failed.append(name)
            continue
        result = reconstruct_image(tok, prepared.image)
        try:
            _save_atomically(Image.fromarray(result.reconstruction.permute(1, 2, 0).numpy()), target)
        except OSError as error:
            print(f"{name}: reconstruction not written to {target} ({error})", file=sys.stderr)
            failed.append(name)
            continue
        width, height = decoded.original_size
        print(
            f"{name} ({width}×{height} px): {result.indices.numel()} tokens, PSNR {result.psnr:.2f} dB → {target}"
            + "".join(f"\n  - {notice}" for notice in decoded.notices + prepared.notices)
        )
    if failed:
        print(f"{len(failed)} of {len(targets)} file(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _save_atomically(image: Any, target: Path) -> None:
    """Write ``image`` (PIL) as PNG to ``target`` through a temporary file in the same folder: a crash or a full
    disk leaves either the previous file or the new one, never a truncated picture. The file gets the permissions
    of any file the user creates (0666 less the umask; ``tempfile.mkstemp`` would make it 0600)."""
    import os
    import secrets

    while True:
        temporary = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, format="PNG")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _output_paths(images: list[str], out_dir: Path) -> list[Path]:
    """``out_dir/<stem>_reconstruction.png`` per input; two inputs with one stem would overwrite each other."""
    targets = [out_dir / f"{Path(name).stem}_reconstruction.png" for name in images]
    seen: dict[Path, str] = {}
    for name, target in zip(images, targets, strict=True):
        if target in seen:
            raise SystemExit(
                f"vistok reconstruct: {seen[target]} and {name} would both be written to {target}; "
                "rename one or run them separately with different --output-dir"
            )
        seen[target] = name
    return targets

"""Tokenize and reconstruct image files with a tokenizer; print the token grid size and PSNR."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, …)")
    parser.add_argument("--model", default="vistok/default", help="local folder, Hub repo id or bundled name")
    parser.add_argument("--output-dir", default="reconstructions", help="where the reconstructions are written")
    parser.add_argument("--image-size", type=int, default=None, help="resize/crop size (default: the model's)")


def run(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image, UnidentifiedImageError

    from ..image_processing import VisTokenizerImageProcessor
    from ..modeling import VisTokenizer

    tok = VisTokenizer.from_pretrained(args.model).eval()
    processor = VisTokenizerImageProcessor(image_size=args.image_size or tok.config.image_size)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in map(Path, args.images):
        try:
            image = Image.open(path)
            image.load()
        except (OSError, UnidentifiedImageError) as err:
            raise SystemExit(f"{path}: not a readable image file ({err})") from err
        pixels = processor(image.convert("RGB"), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            out = tok(pixels)
        rec = processor.postprocess(out.reconstruction)[0]
        target = out_dir / f"{path.stem}_reconstruction.png"
        rec.save(target)
        mse = ((out.reconstruction.clamp(-1, 1) - pixels) / 2).pow(2).mean().item()
        psnr = 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))).item()
        h, w = out.indices.shape[-2:]
        print(f"{path}: {h}x{w} tokens, PSNR {psnr:.2f} dB → {target}")
    return 0

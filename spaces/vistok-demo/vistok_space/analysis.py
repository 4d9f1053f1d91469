"""Run a tokenizer on one image and measure the round trip as a user would see it (saved uint8 images)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from PIL import Image

import vistok
from vistok.data.images import pil_to_pixel_values
from vistok.entropy import code_perplexity, used_code_counts
from vistok.layouts import GridLayout, TokenLayout
from vistok.metrics import psnr_per_image, ssim_per_image, to_uint8
from vistok.metrics.ssim import SSIM_BORDER

RAW_BITS_PER_PIXEL = 24  # an uncompressed 8-bit RGB image


@dataclass
class Reconstruction:
    """One image through a tokenizer.

    ``original`` / ``reconstructed``: uint8 (3, H, W) tensors as saved; ``indices``: this image's token ids in the
    tokenizer's layout (int64 (h, w) for a grid, (L,) for a sequence, a list of (p, p) per scale for multi-scale);
    ``layout``: that :class:`vistok.layouts.TokenLayout`; ``codebook_size``: K; ``seconds``: wall time of encode +
    decode; ``per_scale``: for multi-scale tokenizers, uint8 (3, H, W) images decoded after 1, 2, … scales.
    """

    original: torch.Tensor
    reconstructed: torch.Tensor
    indices: torch.Tensor | list[torch.Tensor]
    codebook_size: int
    seconds: float
    layout: TokenLayout = GridLayout()
    per_scale: list[torch.Tensor] | None = None

    @property
    def flat_indices(self) -> torch.Tensor:
        """(N,) every token id in the layout's reading order."""
        batch = self.indices.unsqueeze(0) if isinstance(self.indices, torch.Tensor) else [i[None] for i in self.indices]
        return self.layout.flatten(batch)[0]

    def to_pil(self) -> tuple[Image.Image, Image.Image]:
        """(original, reconstruction) as RGB PIL images."""
        return tuple(Image.fromarray(t.permute(1, 2, 0).numpy()) for t in (self.original, self.reconstructed))

    def code_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(codes, counts)``: the distinct codes this image uses (ascending int64) and how many tokens use each.
        Nothing codebook-sized is allocated, so a 2^40-code LFQ model works too."""
        return used_code_counts(self.flat_indices, self.codebook_size)


def reconstruct(tokenizer: vistok.VisTokenizer, image: Image.Image) -> Reconstruction:
    """Encode and decode an RGB PIL image whose sides are multiples of ``tokenizer.downsample_factor``."""
    pixel_values = pil_to_pixel_values(image).unsqueeze(0)
    start = time.perf_counter()
    with torch.inference_mode():
        output = tokenizer(pixel_values)
    seconds = time.perf_counter() - start
    layout = tokenizer.token_layout
    per_scale = None
    if layout.kind == "multiscale":
        with torch.inference_mode():
            per_scale = [to_uint8(image.float())[0] for image in tokenizer.decode_progressive(output.indices)]
        indices = [scale[0].to(torch.int64).cpu() for scale in output.indices]
    else:
        indices = output.indices[0].to(torch.int64).cpu()
    return Reconstruction(
        original=to_uint8(pixel_values)[0],
        reconstructed=to_uint8(output.reconstruction.float())[0],
        indices=indices,
        codebook_size=int(tokenizer.codebook_size),
        seconds=seconds,
        layout=layout,
        per_scale=per_scale,
    )


def measure(result: Reconstruction) -> dict:
    """The numbers the Space shows, as JSON-ready values.

    ``psnr_db`` (``None`` for a pixel-exact copy) and ``ssim`` (``None`` when the image is too small for the
    11-pixel window) are computed on [0, 1] like ``vistok evaluate``; ``bits_per_image`` = tokens · log2 K;
    ``compression_ratio`` = raw 24-bit RGB bits / bits_per_image; ``codebook_usage`` = distinct codes / K;
    ``perplexity`` = exp(entropy) of this image's code histogram.
    """
    original, reconstructed = result.original.unsqueeze(0), result.reconstructed.unsqueeze(0)
    height, width = original.shape[-2:]
    psnr = float(psnr_per_image(original, reconstructed)[0])
    ssim = None
    if min(height, width) > 2 * SSIM_BORDER:
        ssim = float(ssim_per_image(original, reconstructed)[0])
    tokens = int(result.flat_indices.numel())
    grid = list(result.indices.shape[::-1]) if result.layout.kind == "grid" else None
    k = result.codebook_size
    bits_per_token = math.log2(k) if k > 1 else 0.0
    bits = tokens * bits_per_token
    raw_bits = height * width * RAW_BITS_PER_PIXEL
    codes, counts = result.code_counts()
    used = int(codes.numel())
    perplexity = float(code_perplexity(counts))
    return {
        "psnr_db": psnr if math.isfinite(psnr) else None,
        "ssim": ssim,
        "image_size": [width, height],
        "token_grid": grid,
        "token_layout": _layout_text(result),
        "tokens_per_image": tokens,
        "codebook_size": k,
        "bits_per_token": bits_per_token,
        "bits_per_image": bits,
        "raw_bits": raw_bits,
        "compression_ratio": raw_bits / bits if bits else None,
        "codes_used": used,
        "codebook_usage": used / k,
        "perplexity": perplexity,
        "seconds": result.seconds,
    }


def _layout_text(result: Reconstruction) -> str:
    if result.layout.kind == "grid":
        h, w = result.indices.shape
        return f"{w} × {h} grid"
    if result.layout.kind == "sequence":
        return "1-D sequence"
    sides = [int(scale.shape[-1]) for scale in result.indices]
    return f"{len(sides)} scales, {sides[0]}×{sides[0]} … {sides[-1]}×{sides[-1]}"


def metrics_markdown(metrics: dict, tokenizer_name: str) -> str:
    """A small Markdown table of :func:`measure`'s numbers."""
    psnr = "∞ (exact)" if metrics["psnr_db"] is None else f"{metrics['psnr_db']:.2f} dB"
    ssim = "n/a (image under 11 px)" if metrics["ssim"] is None else f"{metrics['ssim']:.4f}"
    ratio = "n/a" if metrics["compression_ratio"] is None else f"{metrics['compression_ratio']:.1f} ×"
    width, height = metrics["image_size"]
    rows = [
        ("Tokenizer", f"`{tokenizer_name}`"),
        ("PSNR", psnr),
        ("SSIM", ssim),
        ("Image", f"{width} × {height} px"),
        ("Tokens per image", f"{metrics['tokens_per_image']:,} ({metrics['token_layout']})"),
        ("Bits per image", f"{metrics['bits_per_image']:,.0f} ({metrics['bits_per_token']:.2f} bits/token)"),
        ("Compression vs raw 24-bit RGB", f"{ratio} ({metrics['raw_bits']:,} bits raw)"),
        (
            "Codebook usage in this image",
            f"{metrics['codes_used']:,} of {metrics['codebook_size']:,} codes "
            f"({100 * metrics['codebook_usage']:.1f} %), perplexity {metrics['perplexity']:.1f}",
        ),
        ("Encode + decode time", f"{metrics['seconds'] * 1000:.0f} ms"),
    ]
    return "| Metric | Value |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)

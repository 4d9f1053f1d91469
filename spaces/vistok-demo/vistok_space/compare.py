"""The Compare tab: one image through up to four tokenizers, side by side — reconstructions, token maps, PSNR / LPIPS,
SSIM, tokens and bits per image.

:func:`run_compare` never raises: a bad upload is a status message, a tokenizer that cannot be loaded is reported in
the status while the others are still compared. LPIPS (VGG) needs torchvision's VGG16 weights (found as
``vistok evaluate`` finds them: ``VISTOK_LPIPS_VGG_WEIGHTS``, the torch hub cache, else a download); without them
the column says why.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .analysis import measure, reconstruct
from .inputs import MAX_ORIGINAL_SIDE, ORIGINAL, InputError, open_upload, parse_resolution, prepare
from .pipeline import fixed_resolution
from .tokenizers import TokenizerCache, TokenizerLoadError, split_names
from .visuals import token_picture

logger = logging.getLogger("vistok_space")

MAX_COMPARED = 4


class LPIPSScorer:
    """LPIPS-VGG between saved (uint8) images, built once on first use (thread-safe); ``None`` with the reason when
    its backbone weights cannot be found or downloaded."""

    def __init__(self, allow_download: bool = True) -> None:
        self.allow_download = allow_download
        self._lock = threading.Lock()
        self._network: torch.nn.Module | None = None
        self.unavailable: str | None = None

    def network(self) -> torch.nn.Module | None:
        with self._lock:
            if self._network is None and self.unavailable is None:
                from vistok.metrics import MissingWeightsError, build_lpips_vgg

                try:
                    self._network = build_lpips_vgg(allow_download=self.allow_download)
                except MissingWeightsError as err:
                    self.unavailable = str(err).splitlines()[0]
                except ImportError as err:  # the lpips package (and torchvision) are optional for the Space
                    self.unavailable = f"the lpips package is not installed ({err}); pip install lpips torchvision"
            return self._network

    @torch.no_grad()
    def __call__(self, original: torch.Tensor, reconstruction: torch.Tensor) -> float | None:
        """LPIPS of two uint8 (3, H, W) images, or ``None`` when unavailable."""
        network = self.network()
        if network is None:
            return None
        from vistok.metrics.images import uint8_to_signed

        return float(network(uint8_to_signed(original[None]), uint8_to_signed(reconstruction[None])).flatten()[0])


@dataclass
class CompareEntry:
    """One tokenizer's result: its name, the pictures, and :func:`~vistok_space.analysis.measure`'s numbers plus
    ``lpips``."""

    name: str
    original: Image.Image
    reconstruction: Image.Image
    token_map: Image.Image
    metrics: dict[str, Any]

    def summary(self) -> str:
        """A few Markdown lines for this tokenizer's panel."""
        m = self.metrics
        psnr = "∞ (exact)" if m["psnr_db"] is None else f"{m['psnr_db']:.2f} dB"
        lpips = "n/a" if m.get("lpips") is None else f"{m['lpips']:.4f}"
        ssim = "n/a" if m["ssim"] is None else f"{m['ssim']:.4f}"
        return (
            f"**`{display_name(self.name)}`**\n\n"
            f"PSNR **{psnr}** · LPIPS **{lpips}** · SSIM {ssim}\n\n"
            f"{m['tokens_per_image']:,} tokens ({m['token_layout']}) · {m['bits_per_image']:,.0f} bits · "
            f"{m['codebook_size']:,} codes"
        )


@dataclass
class CompareResult:
    """Everything the Compare tab shows; ``entries`` in the order the tokenizers were chosen."""

    status: str
    entries: list[CompareEntry] = field(default_factory=list)
    table: str = ""

    @property
    def original(self) -> Image.Image | None:
        return self.entries[0].original if self.entries else None

    def metrics(self) -> list[dict[str, Any]]:
        return [{"tokenizer": entry.name, **entry.metrics} for entry in self.entries]


def display_name(name: str) -> str:
    """How a tokenizer is named on the page: a local folder by its last component, any other name as it is."""
    if os.sep in name and Path(name).expanduser().is_dir():
        return Path(name).name
    return name


def chosen_names(names: Any) -> list[str]:
    """The tokenizers picked: a list from the multi-select box, or one comma-separated string (the API)."""
    if names is None:
        return []
    if isinstance(names, str):
        return split_names(names)
    return split_names(str(name) for name in names if name is not None) if isinstance(names, Iterable) else []


def run_compare(
    upload: Any, names: Any, resolution: Any, cache: TokenizerCache, lpips: LPIPSScorer | None = None
) -> CompareResult:
    """Reconstruct ``upload`` with each of ``names`` (up to :data:`MAX_COMPARED`) at ``resolution``."""
    try:
        return _compare(upload, chosen_names(names), resolution, cache, lpips)
    except InputError as err:
        return CompareResult(status=f"**Could not compare:** {err}")
    except Exception as err:  # the page must never show a traceback; the log keeps it
        logger.exception("unexpected failure in the vistok Space's Compare tab")
        return CompareResult(
            status=f"**Could not compare:** something went wrong inside the demo ({type(err).__name__}: {err}). "
            "Try another image, resolution or tokenizers."
        )


def _compare(
    upload: Any, names: list[str], resolution: Any, cache: TokenizerCache, lpips: LPIPSScorer | None
) -> CompareResult:
    if not names:
        return CompareResult(status=f"**Could not compare:** pick one to {MAX_COMPARED} tokenizers.")
    if len(names) > MAX_COMPARED:
        return CompareResult(
            status=f"**Could not compare:** {len(names)} tokenizers chosen; pick at most {MAX_COMPARED}."
        )
    target = parse_resolution(resolution)
    decoded = open_upload(upload, draft_side=MAX_ORIGINAL_SIDE if target == ORIGINAL else target)
    entries: list[CompareEntry] = []
    problems: list[str] = []
    notices: list[str] = list(decoded.notices)
    for name in names:
        try:
            tokenizer = cache.get(name)
        except TokenizerLoadError as err:
            problems.append(str(err))
            continue
        size = target
        fixed = fixed_resolution(tokenizer)
        if fixed is not None and size != fixed:
            notices.append(f"`{name}` works at {fixed}×{fixed} px only: its image was prepared at that size.")
            size = fixed
        prepared = prepare(decoded.image, size, tokenizer.downsample_factor, original_size=decoded.original_size)
        notices += [n for n in prepared.notices if n not in notices]
        result = reconstruct(tokenizer, prepared.image)
        metrics = measure(result)
        metrics["lpips"] = lpips(result.original, result.reconstructed) if lpips is not None else None
        original, reconstruction = result.to_pil()
        entries.append(CompareEntry(name, original, reconstruction, token_picture(result, original.size), metrics))
    if lpips is not None and lpips.unavailable:
        notices.append(f"LPIPS is not available here: {lpips.unavailable}")
    sizes = {entry.original.size for entry in entries}
    if len(sizes) > 1:
        notices.append("The tokenizers needed different image sizes (each is a multiple of its downsampling "
                       "factor): each is measured against its own prepared original; the one shown is the first's.")
    lines = [f"**Compared** {len(entries)} of {len(names)} tokenizer(s)." if entries else "**Could not compare.**"]
    lines += [f"- {problem}" for problem in problems]
    lines += [f"- {notice}" for notice in notices]
    return CompareResult(status="\n".join(lines), entries=entries, table=comparison_table(entries))


def comparison_table(entries: list[CompareEntry]) -> str:
    """A Markdown table, narrow enough for a phone: one row per tokenizer with PSNR and LPIPS (its panel has the token
    count and the rest), then how to read the token maps."""
    if not entries:
        return ""
    rows = []
    for entry in entries:
        m = entry.metrics
        psnr = "∞" if m["psnr_db"] is None else f"{m['psnr_db']:.2f} dB"
        lpips = "n/a" if m.get("lpips") is None else f"{m['lpips']:.4f}"
        rows.append(f"| `{display_name(entry.name)}` | {psnr} | {lpips} |")
    return ("| Tokenizer | PSNR | LPIPS |\n|---|---|---|\n" + "\n".join(rows)
            + "\n\nToken maps: one cell per token, id 0 blue … id K−1 red.")  # fmt: skip

"""One Space request end to end: upload + tokenizer name + resolution → pictures, numbers and a status line.

:func:`run_request` never raises: bad uploads and unloadable tokenizers become a readable status message, and an
unexpected failure is logged with its traceback on the server while the page gets a one-line message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure
from PIL import Image

from .analysis import measure, metrics_markdown, reconstruct
from .inputs import InputError, draft_side, open_upload, parse_resolution, prepare, recorded_pipeline
from .tokenizers import TokenizerCache, TokenizerLoadError
from .visuals import code_histogram_figure, error_map_image, token_picture

logger = logging.getLogger("vistok_space")


@dataclass
class DemoResult:
    """Everything the page shows for one request; the pictures are ``None`` when the request failed."""

    status: str
    original: Image.Image | None = None
    reconstruction: Image.Image | None = None
    token_map: Image.Image | None = None
    error_map: Image.Image | None = None
    histogram: Figure | None = None
    metrics_table: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reconstruction is not None


def run_request(
    upload: Any, tokenizer_name: str | None, resolution: Any, cache: TokenizerCache
) -> DemoResult:
    """Reconstruct ``upload`` (path, data URL, bytes, PIL image or uint8 array) with the named tokenizer at
    ``resolution`` (128 / 256 / 512 or ``"original"``)."""
    try:
        return _run(upload, tokenizer_name, resolution, cache)
    except (InputError, TokenizerLoadError) as err:
        return DemoResult(status=f"**Could not run:** {err}")
    except Exception as err:  # the page must never show a traceback; the log keeps it
        logger.exception("unexpected failure in the vistok Space")
        return DemoResult(
            status=f"**Could not run:** something went wrong inside the demo ({type(err).__name__}: {err}). "
            "Try another image, resolution or tokenizer."
        )


def fixed_resolution(tokenizer: Any) -> int | None:
    """The one image size a tokenizer accepts (sequence tokenizers: their position embeddings; multi-scale ones:
    their finest scale), or ``None`` when any multiple of its patch size works."""
    layout = tokenizer.token_layout
    if layout.kind == "sequence":
        return int(tokenizer.config.image_size)
    if layout.kind == "multiscale":
        return int(layout.patch_nums[-1] * tokenizer.downsample_factor)
    return None


def _run(upload: Any, tokenizer_name: str | None, resolution: Any, cache: TokenizerCache) -> DemoResult:
    target = parse_resolution(resolution)
    name = (tokenizer_name or "").strip()
    tokenizer = cache.get(name)
    layout_notice = []
    fixed = fixed_resolution(tokenizer)
    if fixed is not None and target != fixed:
        layout_notice.append(
            f"This tokenizer makes a {tokenizer.token_layout.kind} of tokens and works at {fixed}×{fixed} px only, "
            f"so the image was prepared at {fixed}×{fixed} instead of the chosen resolution."
        )
        target = fixed
    # framed as the tokenizer's upstream project frames it, so its tokens are upstream's (vistok reconstruct does too)
    pipeline = recorded_pipeline(tokenizer.config)
    decoded = open_upload(upload, draft_side=lambda image: draft_side(image, target, pipeline),
                          keep_mode=pipeline is not None)
    prepared = prepare(
        decoded.image, target, tokenizer.downsample_factor, original_size=decoded.original_size, pipeline=pipeline
    )
    result = reconstruct(tokenizer, prepared.image)
    metrics = measure(result)
    original, reconstruction = result.to_pil()
    if tokenizer.token_layout.kind == "sequence":
        layout_notice.append("The token ids are a 1-D sequence, drawn as a strip (first token on the left).")
    elif tokenizer.token_layout.kind == "multiscale":
        layout_notice.append(
            "The token ids come one map per scale (coarse to fine, left to right), each above the image decoded "
            "from the scales up to it."
        )
    notices = decoded.notices + layout_notice + prepared.notices
    status = f"**Reconstructed** with `{name}`." + "".join(f"\n- {notice}" for notice in notices)
    return DemoResult(
        status=status,
        original=original,
        reconstruction=reconstruction,
        token_map=token_picture(result, original.size),
        error_map=error_map_image(result.original, result.reconstructed),
        histogram=code_histogram_figure(*result.code_counts(), result.codebook_size),
        metrics_table=metrics_markdown(metrics, name),
        metrics=metrics,
    )

"""Taming's EMA quantizer (``EMAVectorQuantizer``, used by ``taming.models.vqgan.EMAVQ``) → vistok's EMA ``vq``.

Upstream's ``EmbeddingEMA`` keeps three tensors under ``quantize.embedding.``: ``weight`` (K, D), the codebook;
``cluster_size`` (K,), the EMA code counts; and ``embed_avg`` (K, D), the EMA sums of assigned latents. After each
training step the codebook is ``embed_avg / s[:, None]`` with the Laplace-smoothed counts
``s = (cluster_size + ε) / (n + K·ε) · n``, n = Σ cluster_size. In eval mode it is a plain nearest-code VQ over
``weight``. vistok's ``vq`` with ``ema_decay`` keeps the same statistics under the same update rule
(``ema_cluster_size``, ``ema_embed_sum``), so they are carried over and fine-tuning continues the same EMA.

An older layout stored ``weight`` and ``embed_avg`` transposed, (D, K). When K ≠ D the length of ``cluster_size``
(K) says which axis holds the codes. When K = D no shape can tell; the values can: the codebook is the EMA sums
divided by one positive scale per code, so ``embed_avg`` is ``weight`` rescaled along the code axis and, unless all
codes share one scale, not along the other axis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .safe_load import CheckpointError

PREFIX = "quantize.embedding."
WEIGHT, CLUSTER_SIZE, EMBED_AVG = (PREFIX + name for name in ("weight", "cluster_size", "embed_avg"))
STATISTICS = (CLUSTER_SIZE, EMBED_AVG)
# Relative residual of "embed_avg = per-code scale × weight" below which a layout fits. fp32 checkpoints fit to
# ~1e-7 and fp16 ones to ~1e-3; the wrong axis of a trained codebook is off by the spread of the code counts.
FIT_TOLERANCE = 1e-2
# The wrong axis must fit at least this many times worse before it counts as ruled out.
FIT_MARGIN = 10.0


def is_ema_quantizer(state_dict: Mapping[str, Any]) -> bool:
    """True when the state dict holds any of Taming's EMA statistics (``quantize.embedding.{cluster_size,
    embed_avg}``)."""
    return any(key in state_dict for key in STATISTICS)


def codes_along_rows(weight: torch.Tensor, cluster_size: torch.Tensor, embed_avg: torch.Tensor) -> bool:
    """Whether an EMA codebook is stored (K, D) (True: upstream's layout) or transposed (D, K) (False).

    Raises :class:`CheckpointError` when the tensors fit neither layout, or (K = D only) when the values cannot tell
    the two apart.
    """
    if weight.dim() != 2 or cluster_size.dim() != 1 or tuple(embed_avg.shape) != tuple(weight.shape):
        raise CheckpointError(
            "this looks like a Taming EMAVectorQuantizer checkpoint (quantize.embedding.cluster_size / embed_avg) "
            f"but its tensors do not fit one: weight {tuple(weight.shape)} and embed_avg {tuple(embed_avg.shape)} "
            f"must be the same 2-D shape and cluster_size {tuple(cluster_size.shape)} one entry per code"
        )
    rows, cols = weight.shape
    codes = cluster_size.shape[0]
    if codes not in (rows, cols):
        raise CheckpointError(
            f"this looks like a Taming EMAVectorQuantizer checkpoint, but cluster_size has {codes} entries while "
            f"the codebook is {rows} x {cols}: one of its axes must be the number of codes"
        )
    if rows != cols:
        return codes == rows
    return _layout_from_values(weight, embed_avg)


def _layout_from_values(weight: torch.Tensor, embed_avg: torch.Tensor) -> bool:
    by_rows = _scale_fit_residual(weight.double(), embed_avg.double())
    by_cols = _scale_fit_residual(weight.double().t(), embed_avg.double().t())
    if by_rows <= FIT_TOLERANCE and by_cols > FIT_MARGIN * by_rows:
        return True
    if by_cols <= FIT_TOLERANCE and by_rows > FIT_MARGIN * by_cols:
        return False
    k = weight.shape[0]
    raise CheckpointError(
        f"this looks like a Taming EMAVectorQuantizer checkpoint with a square {k} x {k} codebook (K = D), stored "
        "either (K, D) as upstream or transposed (D, K) as an older layout did; refused because neither shapes nor "
        "values tell which: embed_avg should be the codebook rescaled per code, and that fits along "
        f"rows with relative residual {by_rows:.2g} and along columns with {by_cols:.2g} (a checkpoint saved before "
        "training, or with equal counts for every code, fits both)"
    )


def _scale_fit_residual(weight: torch.Tensor, embed_avg: torch.Tensor) -> float:
    """Relative residual of the best fit ``embed_avg[k] ≈ c_k · weight[k]`` (one scale per row)."""
    norms = weight.pow(2).sum(1)
    scale = (embed_avg * weight).sum(1) / norms.clamp_min(torch.finfo(torch.float64).tiny)
    residual = (embed_avg - scale[:, None] * weight).norm()
    return float(residual / embed_avg.norm().clamp_min(torch.finfo(torch.float64).tiny))


def ema_quantizer_to_vistok(
    state_dict: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """vistok's ``quantizer.{codebook, ema_cluster_size, ema_embed_sum}`` in (K, D) order from Taming's EMA
    quantizer tensors, and notes saying what was converted or assumed.

    Raises :class:`CheckpointError` when a statistic is missing or the layout cannot be determined.
    """
    missing = [key for key in (WEIGHT, *STATISTICS) if key not in state_dict]
    if missing:
        raise CheckpointError(
            "this looks like a Taming EMAVectorQuantizer checkpoint (it has "
            f"{', '.join(k for k in STATISTICS if k in state_dict)}) but it lacks {', '.join(missing)}; refused "
            "because without it the codebook or its EMA statistics are incomplete"
        )
    weight, cluster_size, embed_avg = (state_dict[key] for key in (WEIGHT, CLUSTER_SIZE, EMBED_AVG))
    notes = []
    if not codes_along_rows(weight, cluster_size, embed_avg):
        weight, embed_avg = weight.t().contiguous(), embed_avg.t().contiguous()
        notes.append(
            f"the EMA codebook was stored transposed (D, K) = {tuple(weight.shape[::-1])} (an older Taming "
            "layout); it was transposed to (K, D)"
        )
    converted = {
        "quantizer.codebook": weight,
        "quantizer.ema_cluster_size": cluster_size,
        "quantizer.ema_embed_sum": embed_avg,
    }
    return converted, notes

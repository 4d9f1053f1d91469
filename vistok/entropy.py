"""Code histograms and their entropies, defined once.

- :func:`used_code_counts`: which codes occur in a set of indices and how often, without a codebook-sized tensor
  for large codebooks (LFQ and FSQ allow up to 2^62 codes).
- :func:`code_perplexity`: exp(entropy) of a code histogram — the quantizers' batch statistic, the evaluation
  metric and the Space all use it.
- :func:`entropy_terms`: the two entropies of the entropy regulariser (VQ's and LFQ's), computed chunk by chunk
  with recomputation in backward so that its memory stays bounded whatever N and K are.

Depends on torch only, so that quantizers and metrics can both import it without importing each other.
"""

from __future__ import annotations

import torch

# Logits more than this far below a row's maximum are raised to it. Their probabilities (< e^-60) change no
# entropy measurably, but left alone the sharp softmaxes of small temperatures (τ = 0.01) underflow into
# subnormal floats, which CPU kernels process far more slowly.
ENTROPY_LOGIT_RANGE = 60.0

#: Largest codebook whose usage is counted in a dense (K,) histogram (8 MiB of int64); larger codebooks are
#: counted with ``torch.unique`` (a sort of the indices — slower for small codebooks, so not used for them).
DENSE_HISTOGRAM_MAX_CODES = 2**20

#: Default size of one chunk's (rows × K) float32 logit block in :func:`entropy_terms`.
ENTROPY_CHUNK_BYTES = 8 * 2**20


def outside_codebook(low: int, high: int, codebook_size: int) -> bool:
    """Whether ids spanning ``[low, high]`` cannot all be codes of a ``codebook_size`` codebook. A codebook larger
    than int64's range (2^64 codes: Infinity's d = 64) stores each token's bit pattern, so every int64 is an id."""
    if codebook_size > 2**63:
        return False
    return low < 0 or high >= codebook_size


def used_code_counts(indices: torch.Tensor, codebook_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct codes of any-shaped int64 ``indices`` (values in [0, codebook_size)) and their counts.

    Returns ``(codes, counts)``: two int64 (M,) tensors on the indices' device, ``codes`` ascending, every count
    > 0. Allocates nothing codebook-sized when ``codebook_size`` > :data:`DENSE_HISTOGRAM_MAX_CODES`.
    """
    flat = indices.reshape(-1)
    if codebook_size <= DENSE_HISTOGRAM_MAX_CODES:
        histogram = torch.bincount(flat, minlength=codebook_size)
        codes = histogram.nonzero().squeeze(1)
        return codes, histogram[codes]
    return torch.unique(flat, sorted=True, return_counts=True)


def code_perplexity(counts: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """exp(entropy in nats) of the distribution ``counts / counts.sum()``, a 0-dim tensor of ``dtype``.

    ``counts``: 1-D non-negative counts, one per code — a full histogram or only the used codes' counts (zeros
    contribute nothing). Lies in [1, number of non-zero counts]; 1 when every count is zero.
    """
    counts = counts.to(dtype)
    total = counts.sum()
    probs = counts[counts > 0] / total
    return torch.exp(-(probs * probs.log()).sum())


def entropy_terms(
    x: torch.Tensor,
    codes: torch.Tensor,
    scale: float,
    bias: torch.Tensor | None = None,
    max_chunk_bytes: int = ENTROPY_CHUNK_BYTES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean per-sample entropy and entropy of the mean distribution of ``p = softmax(scale · x @ codesᵀ + bias)``.

    ``x``: (N, D); ``codes``: (K, D); ``bias``: (K,) or None; all may require gradients. Returns
    ``(per_sample_entropy, codebook_entropy)`` — float32 scalars, differentiable w.r.t. ``x``, ``codes`` and
    ``bias``, equal (to float32 rounding) to the direct formula on the full (N, K) logits, including the
    :data:`ENTROPY_LOGIT_RANGE` floor under each row's logits.

    Memory: the (N, K) logits are never formed. Rows are processed in chunks of at most ``max_chunk_bytes`` of
    float32 logits, and backward recomputes each chunk instead of keeping it; only ``x``, ``codes``, ``bias`` and
    the (K,) mean distribution are saved for backward. ``tests/test_entropy.py`` measures N = 16,384, K = 1,024,
    D = 8 (a 64 MiB logit matrix) with the default 8 MiB chunks: 0.54 MiB saved for backward, and a peak
    resident memory of forward + backward under 32 MiB (four chunks) over the inputs, also through VQ's and
    LFQ's entropy losses — where the direct formula under autograd peaks above 256 MiB. The price is a second
    (N × K) product in backward.
    """
    if x.ndim != 2 or codes.ndim != 2 or x.shape[1] != codes.shape[1]:
        raise ValueError(f"expected x (N, D) and codes (K, D), got {tuple(x.shape)} and {tuple(codes.shape)}")
    if bias is not None and bias.shape != (codes.shape[0],):
        raise ValueError(f"bias must have shape ({codes.shape[0]},), got {tuple(bias.shape)}")
    if bias is None:
        bias = codes.new_zeros(codes.shape[0])
    rows = max(1, max_chunk_bytes // (4 * max(codes.shape[0], 1)))
    sample_entropy, codebook_entropy = _ChunkedEntropy.apply(x, codes, bias, float(scale), rows)
    return sample_entropy, codebook_entropy


def _chunk_log_probs(x: torch.Tensor, codes: torch.Tensor, bias: torch.Tensor, scale: float):
    """float32 log-softmax of one chunk's floored logits, and the mask of logits above the floor."""
    logits = torch.addmm(bias, x, codes.t(), alpha=scale)
    floor = logits.amax(dim=-1, keepdim=True) - ENTROPY_LOGIT_RANGE
    kept = logits > floor
    log_p = torch.log_softmax(logits.clamp_(min=floor), dim=-1)
    return log_p, kept


class _ChunkedEntropy(torch.autograd.Function):
    """Forward and backward of :func:`entropy_terms`, one chunk of rows at a time (in-place where possible, so
    about three chunk-sized blocks are alive at once)."""

    @staticmethod
    def forward(ctx, x, codes, bias, scale, rows):
        x32, codes32, bias32 = x.float(), codes.float(), bias.float()
        n = x.shape[0]
        sample_sum = x32.new_zeros(())
        probs_sum = x32.new_zeros(codes.shape[0])
        for start in range(0, n, rows):
            log_p, _ = _chunk_log_probs(x32[start : start + rows], codes32, bias32, scale)
            p = log_p.exp()
            probs_sum += p.sum(0)
            sample_sum -= p.mul_(log_p).sum()
            del log_p, p
        mean_probs = probs_sum / max(n, 1)
        codebook_entropy = -torch.special.xlogy(mean_probs, mean_probs).sum()
        ctx.save_for_backward(x, codes, bias, mean_probs)
        ctx.scale, ctx.rows = scale, rows
        return sample_sum / max(n, 1), codebook_entropy

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_sample, grad_codebook):
        x, codes, bias, mean_probs = ctx.saved_tensors
        x32, codes32, bias32 = x.float(), codes.float(), bias.float()
        n, scale = max(x.shape[0], 1), ctx.scale
        # u_k = upstream · d codebook_entropy / d m_k = upstream · −(log m_k + 1).
        u = grad_codebook * torch.where(mean_probs > 0, -(mean_probs.log() + 1), 0.0)
        grad_x = torch.zeros_like(x32) if ctx.needs_input_grad[0] else None
        grad_codes = torch.zeros_like(codes32) if ctx.needs_input_grad[1] else None
        grad_bias = torch.zeros_like(bias32) if ctx.needs_input_grad[2] else None
        for start in range(0, x.shape[0], ctx.rows):
            chunk = x32[start : start + ctx.rows]
            log_p, kept = _chunk_log_probs(chunk, codes32, bias32, scale)
            p = log_p.exp()
            row_entropy = -(p * log_p).sum(-1, keepdim=True)
            # dH_i/dl_ij = −p_ij (log p_ij + H_i);  dm_k/dl_ij = p_ij (δ_jk − p_ik) / N.  Built in log_p's storage:
            # grad_logits = p · (−g_S (log p + H) + u − p·u) / N, zero where the floor replaced the logit.
            p_dot_u = (p @ u).unsqueeze(-1)
            grad_logits = log_p.add_(row_entropy).mul_(-grad_sample).add_(u).sub_(p_dot_u).mul_(p)
            del p
            grad_logits.masked_fill_(~kept, 0.0).div_(n)
            if grad_x is not None:
                grad_x[start : start + ctx.rows] = torch.mm(grad_logits, codes32).mul_(scale)
            if grad_codes is not None:
                grad_codes.addmm_(grad_logits.t(), chunk, alpha=scale)
            if grad_bias is not None:
                grad_bias += grad_logits.sum(0)
            del grad_logits, kept
        return (
            None if grad_x is None else grad_x.to(x.dtype),
            None if grad_codes is None else grad_codes.to(codes.dtype),
            None if grad_bias is None else grad_bias.to(bias.dtype),
            None,
            None,
        )

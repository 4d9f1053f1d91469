"""IBQ: index backpropagation quantization (Shi et al., 2024, "Taming Scalable Visual Tokenizer for Autoregressive
Image Generation", arXiv 2412.02692; the authors' ``IndexPropagationQuantize`` in TencentARC/SEED-Voken,
src/IBQ/modules/vqvae/quantize.py, and configs/IBQ/gpu/imagenet_ibqgan_16384.yaml).

Where the formulas come from, and where vistok deviates:

- Lookup: logits ``l_n = ⟨z, e_n⟩``, a plain dot product with the raw codebook (no −||e_n||² term, no
  normalisation), index ``argmax_n l_n``, code ``e_index``. This is not nearest-neighbour VQ: the two disagree
  wherever code norms differ (159 of 192 positions of the upstream parity file ``tests/data/ibq_tiny.ckpt``).
- Gradient (the paper's index backpropagation): upstream quantizes with the one-hot
  ``hard − sg(soft) + soft``, ``soft = softmax(l)`` over **all** K codes, times the codebook. Its value is the
  hard code; its gradient reaches ``z`` and every codebook row through the softmax. vistok returns the codes
  themselves (bit-exact, so ``quantized == indices_to_codes(indices)``) plus a zero-valued term whose gradient
  is that of ``softmax(l) @ sg(E)``; the codebook's gradient through the one-hot is the hard one, as upstream
  (there ``−sg(soft) + soft`` cancels in the product's codebook gradient). Unlike VQ, the gradient to ``z`` is
  therefore **not** the identity.
- Losses, upstream's ``quant_loss`` with its three terms named separately (means over elements):
  ``index_backprop_loss = ||q_ib − z||²`` with ``q_ib`` the index-backpropagated codes (weight 1 upstream),
  ``commitment_loss = ||sg(q) − z||²`` (weight 1 upstream) and ``codebook_loss = β·||q − sg(z)||²``
  (β = 0.25 upstream: IBQ's β weighs the codebook term). The loss module multiplies ``quant_loss`` by
  ``quant_loss_weight`` = 1.0.
- Entropy regulariser: upstream's ``compute_entropy_loss`` on ``l / τ`` (τ = 0.01), ``sample_minimization_weight
  · H(per sample) − batch_maximization_weight · H(batch mean)`` (both 1.0), weighted by the loss module's
  ``entropy_loss_weight`` (0.05 in the configs vistok read). Upstream guards its logs with +1e-5; vistok computes
  exact entropies with ``vistok.entropy.entropy_terms`` (logits floored at the row maximum − 60), chunked.
  Upstream computes it in eval mode too; vistok only in training, like its other entropy regularisers.
- Initialisation: ``nn.Embedding``'s default N(0, 1), as upstream (the config sets ``l2_normalize: False``).

Memory: the N × K logits are never formed whole. The argmax and the backward of the softmax path run over
blocks of rows of at most ``max_chunk_bytes`` of float32 logits each (backward recomputes them), and the
entropy term is chunked the same way; at K = 262,144 a 64 MiB block holds 64 rows. The price is a second and
third N × K product in backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from ..entropy import entropy_terms
from ..outputs import QuantizerOutput
from ..registry import QUANTIZERS
from .base import Quantizer, channels_first_grid, channels_last_flat, check_positive, usage_stats

#: Default size of one block of float32 logits (rows × K) in the IBQ lookup, its backward and its entropy term.
IBQ_CHUNK_BYTES = 64 * 2**20


def _rows_per_chunk(codebook_size: int, max_chunk_bytes: int) -> int:
    return max(1, max_chunk_bytes // (4 * max(codebook_size, 1)))


@torch.no_grad()
def largest_dot_product(z: torch.Tensor, codebook: torch.Tensor, max_chunk_bytes: int = IBQ_CHUNK_BYTES) -> torch.Tensor:
    """(N,) int64 index of the code with the largest dot product ``⟨z_i, e_n⟩`` for each row of ``z`` (N, D),
    codebook (K, D); computed in float32 (float64 for float64 inputs), a block of rows at a time."""
    dtype = torch.promote_types(torch.promote_types(z.dtype, codebook.dtype), torch.float32)
    z, codebook = z.to(dtype), codebook.to(dtype)
    rows = _rows_per_chunk(codebook.shape[0], max_chunk_bytes)
    out = torch.empty(z.shape[0], dtype=torch.int64, device=z.device)
    for start in range(0, z.shape[0], rows):
        out[start : start + rows] = (z[start : start + rows] @ codebook.t()).argmax(dim=-1)
    return out


class _SoftmaxPath(torch.autograd.Function):
    """Forward: zeros (N, D). Backward: the gradient of ``softmax(z @ Eᵀ) @ sg(E)`` w.r.t. ``z`` and ``E``.

    Adding it to the hard codes gives upstream's ``(hard − sg(soft) + soft) @ E`` gradient to ``z`` and, through
    the logits, to every codebook row, while the value stays exactly the codes (x + 0 is x).
    """

    @staticmethod
    def forward(ctx, z, codebook, rows):
        ctx.save_for_backward(z, codebook)
        ctx.rows = rows
        return z.new_zeros(z.shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        z, codebook = ctx.saved_tensors
        z32, codes32, grad32 = z.float(), codebook.float(), grad.float()
        grad_z = torch.empty_like(z32) if ctx.needs_input_grad[0] else None
        grad_codebook = torch.zeros_like(codes32) if ctx.needs_input_grad[1] else None
        for start in range(0, z.shape[0], ctx.rows):
            chunk = z32[start : start + ctx.rows]
            p = torch.softmax(chunk @ codes32.t(), dim=-1)
            # d(p @ E)/dl: dl_n = p_n (g·e_n − Σ_m p_m g·e_m), built in place in one (rows × K) block.
            grad_p = grad32[start : start + ctx.rows] @ codes32.t()
            grad_logits = grad_p.sub_((grad_p * p).sum(-1, keepdim=True)).mul_(p)
            del p
            if grad_z is not None:
                grad_z[start : start + ctx.rows] = grad_logits @ codes32
            if grad_codebook is not None:
                grad_codebook.addmm_(grad_logits.t(), chunk)
            del grad_logits, grad_p
        return (
            None if grad_z is None else grad_z.to(z.dtype),
            None if grad_codebook is None else grad_codebook.to(codebook.dtype),
            None,
        )


@QUANTIZERS.register("ibq")
class IndexBackpropQuantizer(Quantizer):
    """IBQ: code = argmax of the dot product with the raw codebook; gradients through the softmax over all codes.

    Args:
        codebook_size: number of codes K.
        codebook_dim: code dimension D.
        commitment_weight: weight of ``||sg(q) − z||²`` (1.0 upstream).
        codebook_weight: weight of ``||q − sg(z)||²`` (upstream's β, 0.25).
        index_backprop_weight: weight of ``||q_ib − z||²``, whose gradient goes through the softmax (1.0 upstream).
        entropy_weight: weight of the entropy regulariser (upstream's ``entropy_loss_weight``); 0 disables it.
        entropy_temperature: τ of ``softmax(⟨z, e⟩ / τ)`` in the entropy regulariser.
        sample_entropy_weight: weight of the mean per-sample entropy inside the regulariser.
        codebook_entropy_weight: weight of the (subtracted) entropy of the batch-mean distribution.
        max_chunk_bytes: float32 logit block size of the lookup, its backward and the entropy term.
    """

    tiny = {"codebook_size": 32, "codebook_dim": 4}

    def __init__(
        self,
        codebook_size: int = 16384,
        codebook_dim: int = 256,
        commitment_weight: float = 1.0,
        codebook_weight: float = 0.25,
        index_backprop_weight: float = 1.0,
        entropy_weight: float = 0.05,
        entropy_temperature: float = 0.01,
        sample_entropy_weight: float = 1.0,
        codebook_entropy_weight: float = 1.0,
        max_chunk_bytes: int = IBQ_CHUNK_BYTES,
    ):
        super().__init__()
        self._codebook_size = codebook_size
        self._codebook_dim = codebook_dim
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        self.index_backprop_weight = index_backprop_weight
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.sample_entropy_weight = sample_entropy_weight
        self.codebook_entropy_weight = codebook_entropy_weight
        self.max_chunk_bytes = max_chunk_bytes
        self.codebook = nn.Parameter(torch.empty(codebook_size, codebook_dim))
        self.init_weights()

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive(spec, "codebook_size", "codebook_dim", "max_chunk_bytes", integer=True)
        check_positive(spec, "entropy_temperature")
        check_positive(
            spec, "commitment_weight", "codebook_weight", "index_backprop_weight", "entropy_weight",
            "sample_entropy_weight", "codebook_entropy_weight", allow_zero=True,
        )

    def init_weights(self) -> None:
        init.normal_(self.codebook, mean=0.0, std=1.0)  # nn.Embedding's default, as upstream

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """z: (B, D, h, w) → quantized (B, D, h, w) codes (exactly ``codebook[indices]``), indices (B, h, w)."""
        flat = channels_last_flat(z)
        codebook = self.codebook
        rows = _rows_per_chunk(self._codebook_size, self.max_chunk_bytes)
        indices = largest_dot_product(flat.detach(), codebook.detach(), self.max_chunk_bytes)
        codes = F.embedding(indices, codebook).to(flat.dtype)
        if torch.is_grad_enabled() and (flat.requires_grad or codebook.requires_grad):
            quantized = codes + _SoftmaxPath.apply(flat, codebook, rows).to(codes.dtype)
        else:
            quantized = codes

        losses = {
            "index_backprop_loss": self.index_backprop_weight * F.mse_loss(quantized, flat),
            "commitment_loss": self.commitment_weight * F.mse_loss(flat, codes.detach()),
            "codebook_loss": self.codebook_weight * F.mse_loss(codes, flat.detach()),
        }
        if self.entropy_weight > 0 and self.training:
            sample_entropy, codebook_entropy = entropy_terms(
                flat, codebook, scale=1 / self.entropy_temperature, max_chunk_bytes=self.max_chunk_bytes
            )
            losses["entropy_loss"] = self.entropy_weight * (
                self.sample_entropy_weight * sample_entropy - self.codebook_entropy_weight * codebook_entropy
            )

        indices = indices.view(z.shape[0], z.shape[2], z.shape[3])
        return QuantizerOutput(
            quantized=channels_first_grid(quantized, z),
            indices=indices,
            losses=losses,
            stats=usage_stats(indices, self.codebook_size),
        )

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        self.check_indices(indices)
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2).contiguous()

"""The quantizer contract and the helpers every quantizer shares (defined once, here)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from einops import rearrange
from torch import nn

from ..entropy import code_perplexity, used_code_counts

#: Largest codebook of an implicit-codebook quantizer (FSQ, LFQ): every index, and the codebook size itself, fits
#: an int64 with a bit to spare. Usage statistics and LFQ's entropy objective work up to this size: usage counts
#: allocate nothing codebook-sized above ``vistok.entropy.DENSE_HISTOGRAM_MAX_CODES`` (2^20) codes, and LFQ's
#: codebook entropy is summed over groups of channels above ``vistok.quantizers.lfq.MAX_EXACT_ENTROPY_BITS`` (15) bits.
MAX_CODEBOOK_SIZE = 2**62


class Quantizer(nn.Module):
    """Base class: maps latents (B, D, h, w) to discrete codes.

    Subclasses implement ``forward(z) -> QuantizerOutput`` and ``indices_to_codes(indices)``, expose
    ``codebook_size`` and ``codebook_dim``, and put their parameter/buffer initialisation in
    ``init_weights()`` — the tokenizer's ``_init_weights`` calls it, so it survives transformers' ``post_init``
    and rebuilds non-persistent buffers after ``from_pretrained``.
    """

    registered_name: str = ""
    #: Options of the smallest sensible instance, used by the common tests and examples.
    tiny: dict = {}

    # Quantizers with an explicit codebook set these two in __init__; implicit ones override the properties.
    _codebook_size: int
    _codebook_dim: int

    @property
    def codebook_size(self) -> int:
        """Number of codes K; indices lie in [0, K)."""
        return self._codebook_size

    @property
    def codebook_dim(self) -> int:
        """Channels D of ``quantized``."""
        return self._codebook_dim

    def init_weights(self) -> None:
        """(Re)initialise parameters and buffers owned directly by this module (not its children)."""

    def set_trainable_flags(self) -> None:
        """Mark parameters that must not receive gradients (e.g. an EMA-updated codebook) as frozen."""

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        """Raise ``ValueError`` naming the bad option when a normalised spec is invalid."""

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) int64 indices → (B, D, h, w) codes, exactly the values ``forward`` returns as ``quantized``."""
        raise NotImplementedError

    def check_indices(self, indices: torch.Tensor) -> None:
        if not isinstance(indices, torch.Tensor):
            raise TypeError(f"indices must be a torch.Tensor of shape (B, h, w), got {type(indices).__name__}")
        if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
            raise TypeError(f"indices must be an integer tensor (int64), got dtype {indices.dtype}")
        if indices.ndim != 3:
            raise ValueError(f"indices must have shape (B, h, w), got shape {tuple(indices.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(
                f"indices must lie in [0, {self.codebook_size}) (the codebook size), "
                f"got values in [{int(indices.min())}, {int(indices.max())}]"
            )


def check_positive(spec: dict, *names: str, allow_zero: bool = False, integer: bool = False) -> None:
    """Raise a ``ValueError`` unless every named option is a number (an int with ``integer``) > 0 (or ≥ 0 with
    ``allow_zero``)."""
    for name in names:
        value = spec[name]
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            raise ValueError(f"quantizer option {name!r} must be {'an integer' if integer else 'a number'}, got {value!r}")
        if value < 0 or (value == 0 and not allow_zero):
            raise ValueError(f"quantizer option {name!r} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def channels_last_flat(z: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) → (B·h·w, D)."""
    return rearrange(z, "b d h w -> (b h w) d")


def channels_first_grid(flat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B·h·w, D) → contiguous (B, D, h, w) with the batch and spatial sizes of ``like``.

    Contiguous so that decoding these codes and decoding ``indices_to_codes`` run the same conv kernels.
    """
    b, _, h, w = like.shape
    return rearrange(flat, "(b h w) d -> b d h w", b=b, h=h, w=w).contiguous()


class _StraightThrough(torch.autograd.Function):
    """Value of ``codes``, gradient of the identity to ``z`` (none to ``codes``)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        ctx.z_dtype = z.dtype
        return codes.view_as(codes)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.to(ctx.z_dtype), None


def scalar_quantization_dtype(z: torch.Tensor) -> torch.dtype:
    """The dtype FSQ and LFQ quantize in: float32, or float64 for float64 latents.

    bfloat16 has 8 significant bits: FSQ's bound computed in it rounds its half-width (3.5035 → 3.5 for 8 levels),
    so half-precision latents landed on other levels than the same numbers in float32, and LFQ's codes
    (±``codebook_scale``) were rounded. Half-precision latents are therefore upcast first.
    """
    return torch.promote_types(z.dtype, torch.float32)


def straight_through(z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Forward value exactly ``codes``, gradient of the identity to ``z`` (and none to ``codes``).

    The textbook form ``z + (codes − z).detach()`` is not always exactly ``codes`` in floating point, which broke
    ``decode_quantized(encode(x).quantized) == decode(encode(x).indices)`` whenever gradients were enabled;
    this returns the codes themselves, so the equality holds bit for bit with or without autograd.
    ``z`` and ``codes`` have the same shape.
    """
    if not (torch.is_grad_enabled() and z.requires_grad):
        return codes
    return _StraightThrough.apply(z, codes.detach())


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` in place across processes when torch.distributed is initialised; returns it."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def code_histogram(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Counts per code, float32 (codebook_size,), of any-shaped int64 ``indices`` (for quantizers that hold a
    (K, D) codebook anyway, e.g. VQ's EMA update)."""
    return torch.bincount(indices.reshape(-1), minlength=codebook_size).float()


def usage_stats(indices: torch.Tensor, codebook_size: int) -> dict[str, torch.Tensor]:
    """Batch diagnostics: fraction of codes used (``batch_usage`` ∈ [0, 1]) and ``perplexity`` (exp entropy),
    float32 scalars. Nothing codebook-sized is allocated for large codebooks (see ``used_code_counts``)."""
    with torch.no_grad():
        _, counts = used_code_counts(indices, codebook_size)
        return {
            "batch_usage": torch.tensor(counts.numel() / codebook_size, device=indices.device),
            "perplexity": code_perplexity(counts, torch.float32),
        }

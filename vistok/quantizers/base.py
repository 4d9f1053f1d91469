"""The quantizer contract and the helpers every quantizer shares (defined once, here)."""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from einops import rearrange
from torch import nn

from ..entropy import code_perplexity, outside_codebook, used_code_counts

#: Largest codebook of an implicit-codebook quantizer (FSQ, LFQ): every index, and the codebook size itself, fits
#: an int64 with a bit to spare. Usage statistics and LFQ's entropy objective work up to this size: usage counts
#: allocate nothing codebook-sized above ``vistok.entropy.DENSE_HISTOGRAM_MAX_CODES`` (2^20) codes, and LFQ's
#: codebook entropy is summed over groups of channels above ``vistok.quantizers.lfq.MAX_EXACT_ENTROPY_BITS`` (15) bits.
MAX_CODEBOOK_SIZE = 2**62


#: The methods every quantizer runs in float32 (see :class:`Quantizer`): each subclass's own definition of one of
#: these is wrapped by :func:`in_float32` when the class is created.
FLOAT32_METHODS = ("forward", "indices_to_codes", "progressive_codes")


class Quantizer(nn.Module):
    """Base class: maps latents (B, D, h, w) to discrete codes.

    Subclasses implement ``forward(z) -> QuantizerOutput`` and ``indices_to_codes(indices)``, expose
    ``codebook_size`` and ``codebook_dim``, and put their parameter/buffer initialisation in
    ``init_weights()`` — the tokenizer's ``_init_weights`` calls it, so it survives transformers' ``post_init``
    and rebuilds non-persistent buffers after ``from_pretrained``.

    **Quantizers compute in float32, always** (the base class's rule, so a new quantizer cannot forget it): every
    subclass's ``forward``, ``indices_to_codes`` and ``progressive_codes`` (:data:`FLOAT32_METHODS`) run with
    autocast off, half-precision (bfloat16 / float16) tensor arguments raised to float32, and the quantizer's own
    half-precision parameters and buffers (a bfloat16 model's codebook) raised to float32 for the call
    (:func:`float32_region`). float32 and float64 are left as they are. So under
    ``torch.autocast(dtype=torch.bfloat16)`` (mixed-precision training) the search compares the float32 latents
    with the float32 codebook, and a bfloat16 model searches its bfloat16 codes exactly, in float32 — derived codes
    (an l2-normalised or projected codebook) included. Outputs are not cast back: ``quantized`` and the losses come
    out in float32 (``quantized`` is exactly ``indices_to_codes(indices)``; the decoder casts it to its own dtype,
    as ``decode`` does), the gradient reaches the latents in their own dtype. A float32 quantizer given float32
    latents outside autocast computes exactly what it computes without the rule.
    """

    registered_name: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in FLOAT32_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_in_float32", False):
                setattr(cls, name, in_float32(method))
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


def in_float32(method: Callable) -> Callable:
    """``method`` of a quantizer run inside :func:`float32_region` (what the base class does to every
    :data:`FLOAT32_METHODS` a subclass defines)."""

    @functools.wraps(method)
    def wrapper(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        with float32_region(self, (args, kwargs)) as (args, kwargs):
            return method(self, *args, **kwargs)

    wrapper._in_float32 = True
    return wrapper


def _is_half(t: Any) -> bool:
    """A floating-point tensor narrower than float32 (bfloat16, float16, float8 …)."""
    return isinstance(t, torch.Tensor) and t.is_floating_point() and torch.finfo(t.dtype).bits < 32


def _raise_halves(value: Any) -> Any:
    """``value`` with every half-precision tensor in it (also inside lists, tuples and dicts) cast to float32
    (differentiably: the gradient reaches the original in its own dtype)."""
    if _is_half(value):
        return value.float()
    if isinstance(value, (list, tuple)):
        raised = [_raise_halves(v) for v in value]
        return type(value)(raised) if type(value) in (list, tuple) else value
    if isinstance(value, dict):
        return {k: _raise_halves(v) for k, v in value.items()}
    return value


def _device_types(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, torch.Tensor):
        into.add(value.device.type)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _device_types(v, into)
    elif isinstance(value, dict):
        for v in value.values():
            _device_types(v, into)
    return into


# One lock per quantizer, kept outside the module (a lock cannot be deep-copied or pickled). Whoever swaps a
# quantizer's half-precision parameters for float32 copies holds it for the whole call, and every call looks at the
# parameters under it: two threads calling the same bfloat16 quantizer take turns instead of one seeing the other
# restore the originals mid-call. A quantizer without half-precision state holds it only to look.
_SWAP_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_SWAP_LOCKS_GUARD = threading.Lock()


def _swap_lock(module: nn.Module) -> threading.RLock:
    with _SWAP_LOCKS_GUARD:
        lock = _SWAP_LOCKS.get(module)
        if lock is None:
            lock = _SWAP_LOCKS[module] = threading.RLock()
        return lock


@contextlib.contextmanager
def _half_state_in_float32(module: nn.Module) -> Iterator[None]:
    """Inside: each half-precision parameter and buffer of ``module`` (and its children) is a float32 copy, made
    differentiably so that gradients reach the original. Outside again: the originals are back, and a copy changed
    in place meanwhile (an EMA codebook update) is written back into its original, rounded to its dtype."""
    lock = _swap_lock(module)
    lock.acquire()
    try:
        slots = [
            (store, name, tensor)
            for owner in module.modules()
            for store in (owner._parameters, owner._buffers)
            for name, tensor in store.items()
            if _is_half(tensor)
        ]
    except BaseException:
        lock.release()
        raise
    if not slots:  # nothing to raise (or an enclosing call in this thread already did): the lock is not needed
        lock.release()
        yield
        return
    copies: dict[int, torch.Tensor] = {}  # by original: tied tensors stay tied
    try:
        for store, name, tensor in slots:
            if id(tensor) not in copies:
                copies[id(tensor)] = tensor.float()
            store[name] = copies[id(tensor)]
        yield
    finally:
        for store, name, tensor in reversed(slots):
            store[name] = tensor
        with torch.no_grad():
            for _, _, tensor in slots:
                copy = copies.pop(id(tensor), None)
                if copy is not None and not torch.equal(copy, tensor.float()):
                    tensor.data.copy_(copy.detach())
        lock.release()


@contextlib.contextmanager
def float32_region(module: nn.Module, arguments: Any) -> Iterator[Any]:
    """The float32 rule of :class:`Quantizer`, for a call of ``module`` with ``arguments``: autocast off (on every
    device the arguments and the module live on), half-precision tensors in ``arguments`` and half-precision
    parameters / buffers of ``module`` raised to float32 for the duration. Yields the raised ``arguments``."""
    device_types = _device_types(arguments, set())
    first = next(iter([*module.parameters(), *module.buffers()]), None)
    if first is not None:
        device_types.add(first.device.type)
    with contextlib.ExitStack() as stack:
        for device_type in sorted(device_types or {"cpu"}):
            if torch.amp.is_autocast_available(device_type):  # not e.g. "meta"
                stack.enter_context(torch.autocast(device_type, enabled=False))
        stack.enter_context(_half_state_in_float32(module))
        yield _raise_halves(arguments)


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


def check_multiscale_indices(indices: Any, patch_nums: list[int], codebook_size: int) -> None:
    """``TypeError`` / ``ValueError`` naming the expected shapes and range unless ``indices`` is a list of one
    integer (B, p, p) tensor per scale ``p`` of ``patch_nums`` with values that are codes of a ``codebook_size``
    codebook (any int64 beyond int64's range: :func:`vistok.entropy.outside_codebook`)."""
    expected = ", ".join(f"(B, {p}, {p})" for p in patch_nums)
    if not isinstance(indices, (list, tuple)) or len(indices) != len(patch_nums):
        raise ValueError(
            f"indices must be a list of {len(patch_nums)} integer tensors [{expected}], one per scale, got "
            f"{type(indices).__name__}" + (f" of {len(indices)}" if isinstance(indices, (list, tuple)) else "")
        )
    for k, (idx, p) in enumerate(zip(indices, patch_nums, strict=True)):
        if not isinstance(idx, torch.Tensor) or idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
            raise TypeError(f"indices[{k}] must be an integer (int64) tensor of shape (B, {p}, {p})")
        if idx.ndim != 3 or tuple(idx.shape[1:]) != (p, p) or idx.shape[0] != indices[0].shape[0]:
            raise ValueError(
                f"indices[{k}] must have shape (B, {p}, {p}) with the same B at every scale, got {tuple(idx.shape)}"
            )
        if idx.numel() and outside_codebook(int(idx.min()), int(idx.max()), codebook_size):
            raise ValueError(
                f"indices[{k}] must lie in [0, {codebook_size}) (the codebook size), got values in "
                f"[{int(idx.min())}, {int(idx.max())}]"
            )

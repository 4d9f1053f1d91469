"""Token layouts: the shape in which a tokenizer hands out its token ids, and everything that depends on it.

Most tokenizers emit one 2-D grid of tokens per image; two widely used designs do not:

========== ============================================ ============================================================
layout     ``encode(x).indices`` / ``decode(indices)``   example
========== ============================================ ============================================================
grid       int64 tensor (B, h, w), h = H / f             VQGAN f16 at 256 px: (B, 16, 16), 256 tokens
sequence   int64 tensor (B, L), L fixed by the model     TiTok-L-32: (B, 32) — a 1-D sequence, no spatial grid
multiscale list of int64 tensors, one (B, p, p) per      VAR: [(B, 1, 1), (B, 2, 2), …, (B, 16, 16)], 680 tokens,
           scale, coarse to fine                         decoded from the sum of all scales
========== ============================================ ============================================================

Who decides: the net family says whether its latent is a grid or a sequence of latent tokens
(:attr:`vistok.nets.NetFamily.latent_kind`); a quantizer that quantizes at several scales says so
(``Quantizer.layout = "multiscale"`` and a ``patch_nums`` option). :func:`layout_for` combines them, and
:attr:`VisTokenizerConfig.token_layout <vistok.VisTokenizerConfig.token_layout>` is the one place the rest of
vistok asks.

Inside the model the quantizer always works on a (B, D, h, w) latent — a sequence of L latent tokens is a
(B, D, 1, L) latent — and returns its indices in its own form (:meth:`TokenLayout.to_user` /
:meth:`TokenLayout.from_user` convert). Everything downstream (codebook usage, cards, the Space, token datasets) uses
:meth:`TokenLayout.flatten` — (B, N) in the layout's reading order — and :meth:`TokenLayout.describe` instead of
assuming a grid. Grid tokenizers keep the API and checkpoints they always had.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

Indices = torch.Tensor | list[torch.Tensor]


def _check_integer(tensor: Any, what: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise TypeError(f"{what} must be an integer tensor (int64), got dtype {tensor.dtype}")


class TokenLayout:
    """How a tokenizer's token ids are shaped. Subclasses: :class:`GridLayout`, :class:`SequenceLayout`,
    :class:`MultiScaleLayout`."""

    kind: str = ""

    def to_user(self, indices: Indices) -> Indices:
        """The quantizer's indices → what ``encode(x).indices`` returns."""
        return indices

    def from_user(self, indices: Any) -> Indices:
        """What ``decode`` accepts → the quantizer's form; ``TypeError`` / ``ValueError`` naming the expected
        shape for anything else (the value range is the quantizer's to check)."""
        raise NotImplementedError

    def flatten(self, indices: Indices) -> torch.Tensor:
        """(B, N) int64: every token of each image in the layout's reading order (row-major; scales coarse to
        fine). This is how token datasets store them and what codebook statistics count."""
        raise NotImplementedError

    def unflatten(self, flat: torch.Tensor, latent_hw: tuple[int, int]) -> Indices:
        """Inverse of :meth:`flatten` for a latent of ``latent_hw`` (the grid's h, w)."""
        raise NotImplementedError

    def tokens_per_image(self, latent_hw: tuple[int, int]) -> int:
        raise NotImplementedError

    def describe(self, latent_hw: tuple[int, int]) -> str:
        """A short human description, e.g. ``"16×16 grid"``."""
        raise NotImplementedError

    def spec(self, latent_hw: tuple[int, int]) -> dict[str, Any]:
        """JSON description for datasets and cards: ``{"layout": kind, ...shape...}``."""
        raise NotImplementedError


@dataclass(frozen=True)
class GridLayout(TokenLayout):
    """Indices (B, h, w): one token per latent position, read row-major.

    >>> GridLayout().describe((16, 16))
    '16×16 grid (256 tokens)'
    """

    kind = "grid"

    def from_user(self, indices: Any) -> torch.Tensor:
        _check_integer(indices, "indices")
        if indices.ndim != 3:
            raise ValueError(f"indices must have shape (B, h, w), got shape {tuple(indices.shape)}")
        return indices

    def flatten(self, indices: Indices) -> torch.Tensor:
        assert isinstance(indices, torch.Tensor)
        return indices.reshape(indices.shape[0], -1)

    def unflatten(self, flat: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
        return flat.reshape(flat.shape[0], *latent_hw)

    def tokens_per_image(self, latent_hw: tuple[int, int]) -> int:
        return latent_hw[0] * latent_hw[1]

    def describe(self, latent_hw: tuple[int, int]) -> str:
        h, w = latent_hw
        return f"{h}×{w} grid ({h * w} tokens)"

    def spec(self, latent_hw: tuple[int, int]) -> dict[str, Any]:
        return {"layout": self.kind, "shape": list(latent_hw)}


@dataclass(frozen=True)
class SequenceLayout(TokenLayout):
    """Indices (B, L): a 1-D sequence of ``length`` latent tokens (TiTok), whatever the image size. Inside the
    model the latent is (B, D, 1, L).

    >>> SequenceLayout(32).describe((1, 32))
    '1-D sequence of 32 tokens'
    """

    length: int
    kind = "sequence"

    def to_user(self, indices: Indices) -> torch.Tensor:
        assert isinstance(indices, torch.Tensor) and indices.ndim == 3 and indices.shape[1] == 1
        return indices[:, 0]

    def from_user(self, indices: Any) -> torch.Tensor:
        _check_integer(indices, "indices")
        if indices.ndim != 2 or indices.shape[1] != self.length:
            raise ValueError(
                f"indices must have shape (B, {self.length}) (a sequence of {self.length} tokens), got shape "
                f"{tuple(indices.shape)}"
            )
        return indices[:, None, :]

    def flatten(self, indices: Indices) -> torch.Tensor:
        assert isinstance(indices, torch.Tensor)
        return indices.reshape(indices.shape[0], -1)

    def unflatten(self, flat: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
        return flat.reshape(flat.shape[0], self.length)

    def tokens_per_image(self, latent_hw: tuple[int, int]) -> int:
        return self.length

    def describe(self, latent_hw: tuple[int, int]) -> str:
        return f"1-D sequence of {self.length} tokens"

    def spec(self, latent_hw: tuple[int, int]) -> dict[str, Any]:
        return {"layout": self.kind, "length": self.length}


@dataclass(frozen=True)
class MultiScaleLayout(TokenLayout):
    """Indices: a list with one (B, p, p) tensor per scale p of ``patch_nums`` (coarse to fine; VAR). The last
    scale is the latent grid itself; the image is decoded from all scales together.

    >>> MultiScaleLayout((1, 2, 3, 4)).describe((4, 4))
    '4 scales 1×1 … 4×4 (30 tokens)'
    """

    patch_nums: tuple[int, ...]
    kind = "multiscale"

    def _scales(self, latent_hw: tuple[int, int]) -> list[tuple[int, int]]:
        h, w = latent_hw
        last = self.patch_nums[-1]
        if (h, w) != (last, last):
            raise ValueError(
                f"this multi-scale tokenizer's last scale is {last}×{last}, so its latent must be {last}×{last}; "
                f"got {h}×{w} (use images of {last}× the downsample factor)"
            )
        return [(p, p) for p in self.patch_nums]

    def from_user(self, indices: Any) -> list[torch.Tensor]:
        expected = ", ".join(f"(B, {p}, {p})" for p in self.patch_nums)
        if not isinstance(indices, (list, tuple)) or len(indices) != len(self.patch_nums):
            got = f"{type(indices).__name__}" + (f" of {len(indices)}" if isinstance(indices, (list, tuple)) else "")
            raise ValueError(f"indices must be a list of {len(self.patch_nums)} tensors [{expected}], got a {got}")
        batch = None
        for k, (scale, p) in enumerate(zip(indices, self.patch_nums, strict=True)):
            _check_integer(scale, f"indices[{k}]")
            if scale.ndim != 3 or tuple(scale.shape[1:]) != (p, p) or (batch is not None and scale.shape[0] != batch):
                raise ValueError(
                    f"indices[{k}] must have shape (B, {p}, {p}) with the same B at every scale, got "
                    f"{tuple(scale.shape)}"
                )
            batch = scale.shape[0]
        return list(indices)

    def flatten(self, indices: Indices) -> torch.Tensor:
        assert isinstance(indices, (list, tuple))
        return torch.cat([scale.reshape(scale.shape[0], -1) for scale in indices], dim=1)

    def unflatten(self, flat: torch.Tensor, latent_hw: tuple[int, int]) -> list[torch.Tensor]:
        out, start = [], 0
        for h, w in self._scales(latent_hw):
            out.append(flat[:, start : start + h * w].reshape(flat.shape[0], h, w))
            start += h * w
        return out

    def tokens_per_image(self, latent_hw: tuple[int, int]) -> int:
        return sum(h * w for h, w in self._scales(latent_hw))

    def describe(self, latent_hw: tuple[int, int]) -> str:
        first, last = self.patch_nums[0], self.patch_nums[-1]
        return (
            f"{len(self.patch_nums)} scales {first}×{first} … {last}×{last} "
            f"({self.tokens_per_image(latent_hw)} tokens)"
        )

    def spec(self, latent_hw: tuple[int, int]) -> dict[str, Any]:
        return {"layout": self.kind, "scales": [list(s) for s in self._scales(latent_hw)]}


def layout_for(latent_kind: str, num_latent_tokens: int | None, quantizer_cls: type, quantizer_spec: dict) -> TokenLayout:
    """The layout of a tokenizer whose net has ``latent_kind`` (``"grid"`` / ``"sequence"``, with
    ``num_latent_tokens``) and whose quantizer is ``quantizer_cls`` configured by ``quantizer_spec``."""
    if getattr(quantizer_cls, "layout", "grid") == "multiscale":
        if latent_kind == "sequence":
            raise ValueError(
                "a multi-scale quantizer needs a square latent grid to downsample, but this net emits a 1-D "
                "sequence of latent tokens; pair it with a grid net (e.g. var, vqgan)"
            )
        return MultiScaleLayout(tuple(int(p) for p in quantizer_spec["patch_nums"]))
    if latent_kind == "sequence":
        if not num_latent_tokens:
            raise ValueError("a sequence net must say how many latent tokens it has (num_latent_tokens)")
        return SequenceLayout(int(num_latent_tokens))
    if latent_kind != "grid":
        raise ValueError(f"unknown latent kind {latent_kind!r}; expected 'grid' or 'sequence'")
    return GridLayout()

"""MoVQ: a Taming-style VQGAN whose decoder normalisation is conditioned on the quantized latent ("spatial norm",
Zheng et al., 2022, "MoVQ: Modulating Quantized Vectors for High-Fidelity Image Generation", arXiv 2209.09002) — the
tokenizer of Kandinsky 2.1 / 2.2 / 3 (diffusers ``VQModel(norm_type="spatial")``).

Encoder: vistok's ``vqgan`` encoder (GroupNorm of ``norm_groups``, eps 1e-6), followed by the 1×1 ``quant_conv``.
Decoder: ``post_quant_conv`` (1×1), then conv_in, mid (res, attention, res), the levels from the deepest up with
``num_res_blocks + 1`` residual blocks each (attention after each at ``attention_levels``), nearest ×2 + conv3×3
upsampling, the output norm, SiLU and conv_out — where **every** norm is a :class:`SpatialNorm`:
``GroupNorm(x) · conv_y(zq) + conv_b(zq)``, zq the quantized codes (before ``post_quant_conv``) resized to the
feature map by nearest interpolation, conv_y / conv_b 1×1 convs with bias. diffusers hard-codes that GroupNorm to 32
groups (eps 1e-6) whatever ``norm_num_groups`` says: ``spatial_norm_groups``. An attention block's residual is its
input before the spatial norm.

The decoder needs the codes themselves, so the two 1×1 convs live inside the encoder / decoder
(:attr:`Movq.uses_quant_conv` is ``False``; the tokenizer tells the net the quantizer's ``codebook_dim`` through
:meth:`Movq.bind_codebook_dim`): ``encoder.quant_conv`` maps ``latent_channels`` to the codes, ``decoder.post_quant_conv``
maps them back, and the spatial norms read the codes. ``decode_quantized(z)`` of an unquantised latent is diffusers'
``decode(z, force_not_quantize=True)`` (what the Kandinsky pipelines run).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from ..registry import NETS
from .base import LevelledNetFamily
from .layers import Upsample
from .vqgan import VQGANEncoder


class SpatialNorm(nn.Module):
    """``GroupNorm(x) · conv_y(zq) + conv_b(zq)``, zq nearest-resized to x's size (keys ``norm_layer``, ``conv_y``,
    ``conv_b``)."""

    def __init__(self, channels: int, zq_channels: int, groups: int, eps: float):
        super().__init__()
        self.norm_layer = nn.GroupNorm(num_groups=groups, num_channels=channels, eps=eps, affine=True)
        self.conv_y = nn.Conv2d(zq_channels, channels, 1)
        self.conv_b = nn.Conv2d(zq_channels, channels, 1)

    def forward(self, x: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        zq = F.interpolate(zq, size=x.shape[-2:], mode="nearest")
        return self.norm_layer(x) * self.conv_y(zq) + self.conv_b(zq)


class SpatialResnetBlock(GradientCheckpointingLayer):
    """SpatialNorm · SiLU · conv3×3 · SpatialNorm · SiLU · dropout · conv3×3, plus a 1×1 shortcut on the input when
    the width changes."""

    def __init__(self, in_channels: int, out_channels: int, zq_channels: int, dropout: float, groups: int, eps: float):
        super().__init__()
        self.norm1 = SpatialNorm(in_channels, zq_channels, groups, eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = SpatialNorm(out_channels, zq_channels, groups, eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x, zq)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h, zq))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class SpatialAttnBlock(GradientCheckpointingLayer):
    """Single-head spatial self-attention after a SpatialNorm, residual on the un-normalised input."""

    def __init__(self, channels: int, zq_channels: int, groups: int, eps: float):
        super().__init__()
        self.norm = SpatialNorm(channels, zq_channels, groups, eps)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x, zq)
        q, k, v = (proj(y).reshape(b, 1, c, h * w).transpose(2, 3) for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v).transpose(2, 3).reshape(b, c, h, w)
        return x + self.proj_out(out)


class MovqEncoder(VQGANEncoder):
    """vistok's ``vqgan`` encoder followed by the 1×1 ``quant_conv`` (latent → latent)."""

    def __init__(self, in_channels: int, net: Movq):
        super().__init__(in_channels, net)
        # the vqgan encoder ends at the quantizer's width; MoVQ's ends at z_channels, then its own quant_conv
        self.conv_out = nn.Conv2d(self.norm_out.num_channels, net.z_channels, 3, padding=1)
        self.quant_conv = nn.Conv2d(net.z_channels, net.codebook_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(super().forward(x))


class _Level(nn.Module):
    def __init__(self):
        super().__init__()
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()


class MovqDecoder(nn.Module):
    """Quantized codes (B, latent_channels, h, w) → images, every norm conditioned on the codes."""

    def __init__(self, out_channels: int, net: Movq):
        super().__init__()
        ch, mult, z = net.base_channels, net.channel_multiplier, net.codebook_dim
        groups, eps = net.spatial_norm_groups, net.norm_eps
        num_levels = len(mult)
        block_in = ch * mult[-1]
        self.post_quant_conv = nn.Conv2d(z, net.z_channels, 1)
        self.conv_in = nn.Conv2d(net.z_channels, block_in, 3, padding=1)
        self.mid = nn.ModuleList(
            [
                SpatialResnetBlock(block_in, block_in, z, net.dropout, groups, eps),
                SpatialAttnBlock(block_in, z, groups, eps) if net.mid_attention else nn.Identity(),
                SpatialResnetBlock(block_in, block_in, z, net.dropout, groups, eps),
            ]
        )
        self.conv_blocks = nn.ModuleList()
        for i in range(num_levels):
            level = num_levels - 1 - i  # the encoder level at this resolution
            block = _Level()
            block_out = ch * mult[level]
            for _ in range(net.num_res_blocks + 1):
                block.res.append(SpatialResnetBlock(block_in, block_out, z, net.dropout, groups, eps))
                block_in = block_out
                if level in net.attention_levels:
                    block.attn.append(SpatialAttnBlock(block_in, z, groups, eps))
            if level != 0:
                block.upsample = Upsample(block_in)
            self.conv_blocks.append(block)
        self.norm_out = SpatialNorm(block_in, z, groups, eps)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    @property
    def last_layer(self) -> nn.Parameter:
        return self.conv_out.weight

    def forward(self, zq: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(self.post_quant_conv(zq))
        h = self.mid[0](h, zq)
        if not isinstance(self.mid[1], nn.Identity):
            h = self.mid[1](h, zq)
        h = self.mid[2](h, zq)
        for block in self.conv_blocks:
            for i, res in enumerate(block.res):
                h = res(h, zq)
                if len(block.attn):
                    h = block.attn[i](h, zq)
            if hasattr(block, "upsample"):
                h = block.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h, zq)))


@NETS.register("movq")
class Movq(LevelledNetFamily):
    """MoVQ (Kandinsky's VQGAN with a spatially conditioned decoder).

    Args:
        base_channels, channel_multiplier, num_res_blocks, latent_channels, attention_levels, dropout, norm_groups,
            norm_eps, mid_attention: as the ``vqgan`` net's; ``latent_channels`` is the encoder's output width
            (diffusers' ``latent_channels``, Kandinsky 4), which its own ``quant_conv`` maps to the codes.
        spatial_norm_groups: GroupNorm groups inside every decoder SpatialNorm (diffusers hard-codes 32).
    """

    tiny = {**LevelledNetFamily.tiny, "spatial_norm_groups": 4}

    def __init__(
        self,
        base_channels: int = 128,
        channel_multiplier: tuple[int, ...] = (1, 2, 2, 4),
        num_res_blocks: int = 2,
        latent_channels: int = 4,
        attention_levels: tuple[int, ...] | None = None,
        dropout: float = 0.0,
        norm_groups: int = 32,
        norm_eps: float = 1e-6,
        mid_attention: bool = True,
        spatial_norm_groups: int = 32,
    ):
        self.base_channels = base_channels
        self.channel_multiplier = list(channel_multiplier)
        self.num_res_blocks = num_res_blocks
        self.latent_channels_ = latent_channels
        self.attention_levels = (
            [len(self.channel_multiplier) - 1] if attention_levels is None else list(attention_levels)
        )
        self.dropout = dropout
        self.norm_groups = norm_groups
        self.norm_eps = norm_eps
        self.mid_attention = mid_attention
        self.spatial_norm_groups = spatial_norm_groups
        self.codebook_dim = latent_channels  # until the tokenizer binds its quantizer's
        # what VQGANEncoder reads: a plain Taming encoder on [-1, 1] pixels
        levels = len(self.channel_multiplier)
        self.pixel_range = "signed"
        self.encoder_res_blocks = [num_res_blocks] * levels

    @property
    def z_channels(self) -> int:
        """The encoder's output width (before its ``quant_conv``)."""
        return self.latent_channels_

    @property
    def latent_channels(self) -> int:
        """What the quantizer sees: the codes' width (after the encoder's own ``quant_conv``)."""
        return self.codebook_dim

    def bind_codebook_dim(self, codebook_dim: int) -> None:
        """The quantizer's ``codebook_dim``: the width of the codes the decoder is conditioned on."""
        self.codebook_dim = codebook_dim

    @property
    def uses_quant_conv(self) -> bool:
        return False  # quant_conv / post_quant_conv live in the encoder / decoder: the decoder needs the codes

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        cls.check_levels(spec)
        mult = spec["channel_multiplier"]
        levels = spec["attention_levels"]
        if levels is not None and any(not isinstance(lv, int) or not 0 <= lv < len(mult) for lv in levels):
            raise ValueError(f"movq attention_levels must be level indices in [0, {len(mult)}), got {levels!r}")
        cls.check_dropout_and_norm_eps(spec)
        cls.check_flags(spec, "mid_attention")
        groups = spec["spatial_norm_groups"]
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"movq spatial_norm_groups must be a positive integer, got {groups!r}")
        for m in mult:
            if (spec["base_channels"] * m) % groups:
                raise ValueError(
                    f"movq: every level width ({spec['base_channels'] * m}) must be divisible by "
                    f"spatial_norm_groups ({groups})"
                )

    def build_encoder(self, in_channels: int) -> nn.Module:
        return MovqEncoder(in_channels, self)

    def build_decoder(self, out_channels: int) -> nn.Module:
        return MovqDecoder(out_channels, self)

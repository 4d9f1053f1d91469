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

**Emu3** (``temporal_downsample_factor`` > 1, BAAI's Emu3 VisionTokenizer) adds temporal layers, run on a still image
the way upstream runs it: the image is a clip of ``tdf`` identical frames; after the 2-D encoder, log2(tdf)
``time_conv`` blocks (causal Conv3d, kernel (4, 3, 3), stride (2, 1, 1), each followed by SiLU) reduce them to one
latent frame, then ``num_res_blocks`` ``time_res_stack`` blocks (BatchNorm3d · SiLU · causal Conv3d 3×3×3, twice, plus
the identity) and a causal Conv3d (3, 1, 1) ``quant_conv``. Every causal Conv3d prepends exactly 2 zero frames
(whatever its kernel) and pads space by (k − s) // 2 (+ (k − s) % 2 before). The decoder looks the codes up, applies
the causal ``post_quant_conv``, runs ``[post_quant_conv(codes); codes]`` (batch-concatenated, the same weights for
both) through its ``time_res_stack`` and log2(tdf) ``time_conv`` upsamplers (nearest ×2 in time, causal Conv3d
3×3×3, SiLU), and decodes frame 0 of the first half conditioned on frame 0 of the second (upstream's ``decode`` of a
still returns frame 0 only). This needs the codes as wide as the latent.
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


class CausalConv3d(nn.Module):
    """Emu3's causal Conv3d: 2 zero frames in front whatever the kernel, space padded (k − s) // 2 (+ remainder
    before); the conv is ``.conv`` (upstream's key layout)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int, int], stride=(1, 1, 1)):
        super().__init__()
        padding: tuple[int, ...] = ()
        for k, st in reversed(list(zip(kernel_size[1:], stride[1:], strict=True))):
            p = k - st
            padding += (p // 2 + p % 2, p // 2)
        self.padding = padding + (2, 0)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class TemporalResnetBlock(nn.Module):
    """BatchNorm3d · SiLU · causal Conv3d 3×3×3 · BatchNorm3d · SiLU · dropout · causal Conv3d 3×3×3, plus the
    identity (Emu3's ``time_res_stack`` blocks; widths never change there)."""

    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.norm1 = nn.BatchNorm3d(channels)
        self.conv1 = CausalConv3d(channels, channels, (3, 3, 3))
        self.norm2 = nn.BatchNorm3d(channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv3d(channels, channels, (3, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(self.dropout(F.silu(self.norm2(h))))


class TemporalConv(nn.Module):
    """A causal Conv3d (key ``conv.conv``) halving time (encoder: kernel (4, 3, 3), stride (2, 1, 1)) or, after a
    nearest ×2 in time, keeping it (decoder: 3×3×3)."""

    def __init__(self, channels: int, upsample: bool):
        super().__init__()
        self.upsample = upsample
        if upsample:
            self.conv = CausalConv3d(channels, channels, (3, 3, 3))
        else:
            self.conv = CausalConv3d(channels, channels, (4, 3, 3), stride=(2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = x.repeat_interleave(2, dim=2)  # nearest ×2 along time
        return self.conv(x)


def _temporal_stages(net: Movq) -> int:
    return net.temporal_downsample_factor.bit_length() - 1


class MovqEncoder(VQGANEncoder):
    """vistok's ``vqgan`` encoder followed by the 1×1 ``quant_conv`` (latent → latent)."""

    def __init__(self, in_channels: int, net: Movq):
        super().__init__(in_channels, net)
        # the vqgan encoder ends at the quantizer's width; MoVQ's ends at z_channels, then its own quant_conv
        self.conv_out = nn.Conv2d(self.norm_out.num_channels, net.z_channels, 3, padding=1)
        self.frames = net.temporal_downsample_factor
        if self.frames > 1:
            self.time_conv = nn.ModuleList(TemporalConv(net.z_channels, upsample=False) for _ in range(_temporal_stages(net)))
            self.time_res_stack = nn.Sequential(
                *(TemporalResnetBlock(net.z_channels, net.dropout) for _ in range(net.num_res_blocks))
            )
            self.quant_conv = CausalConv3d(net.z_channels, net.codebook_dim, (3, 1, 1))
        else:
            self.quant_conv = nn.Conv2d(net.z_channels, net.codebook_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = super().forward(x)
        if self.frames == 1:
            return self.quant_conv(h)
        # a still is a clip of identical frames: the per-frame 2-D encoder output, repeated along time
        h = h.unsqueeze(2).expand(-1, -1, self.frames, -1, -1)
        for conv in self.time_conv:
            h = F.silu(conv(h))
        h = self.quant_conv(self.time_res_stack(h))
        return h[:, :, 0]  # the one latent frame


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
        self.frames = net.temporal_downsample_factor
        if self.frames > 1 and z != net.z_channels:
            raise ValueError(
                f"a temporal movq net (Emu3) needs codes as wide as its latent: codebook_dim {z}, latent_channels "
                f"{net.z_channels} (its decoder runs both through the same temporal layers)"
            )
        if self.frames > 1:
            self.post_quant_conv = CausalConv3d(z, net.z_channels, (3, 1, 1))
            self.time_res_stack = nn.Sequential(
                *(TemporalResnetBlock(net.z_channels, net.dropout) for _ in range(net.num_res_blocks))
            )
            self.time_conv = nn.ModuleList(TemporalConv(net.z_channels, upsample=True) for _ in range(_temporal_stages(net)))
        else:
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

    def _temporal(self, zq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Emu3: frame 0 of the temporally processed [post_quant_conv(codes); codes]."""
        codes = zq.unsqueeze(2)  # (B, C, 1, h, w): one latent frame
        both = torch.cat((self.post_quant_conv(codes), codes), dim=0)
        both = self.time_res_stack(both)
        for conv in self.time_conv:
            both = F.silu(conv(both))
        h, condition = both[:, :, 0].chunk(2, dim=0)  # upstream decodes every frame and returns frame 0
        return h, condition

    def forward(self, zq: torch.Tensor) -> torch.Tensor:
        if self.frames > 1:
            h, zq = self._temporal(zq)
            h = self.conv_in(h)
        else:
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
        temporal_downsample_factor: 1 (Kandinsky: no temporal layers, 1×1 quant convs) or a power of two (Emu3: 4),
            the number of identical frames a still becomes and the temporal layers' depth (see the module doc).
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
        temporal_downsample_factor: int = 1,
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
        self.temporal_downsample_factor = temporal_downsample_factor
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
        tdf = spec["temporal_downsample_factor"]
        if isinstance(tdf, bool) or not isinstance(tdf, int) or tdf < 1 or tdf & (tdf - 1):
            raise ValueError(f"movq temporal_downsample_factor must be 1 or a power of two, got {tdf!r}")
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

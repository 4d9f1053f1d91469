"""VAR's convolutional VQVAE encoder/decoder (Tian et al., 2024, "Visual Autoregressive Modeling", arXiv 2404.02905;
FoundationVision/VAR models/basic_vae.py).

A Taming-style conv net with these differences, all of which a port must match:

- attention is ONE 1×1 conv ``qkv`` with 3C outputs (q, k, v in that order) plus ``proj_out``, scale C^−½
  (Taming has separate ``q`` / ``k`` / ``v`` convs);
- attention after each residual block of the deepest level only (``attention``, upstream's ``using_sa``) and in the
  middle (``mid_attention``, ``using_mid_sa``);
- the decoder has ``num_res_blocks + 1`` blocks per level; downsampling zero-pads (0, 1, 0, 1) and applies a stride-2
  conv3×3; GroupNorm of 32 groups, eps 1e-6;
- ``quant_conv`` / ``post_quant_conv`` are 3×3 (upstream's ``quant_conv_ks=3``): the family says so with
  :attr:`VAR.quant_conv_kernel_size`, which :func:`vistok.architecture.build_modules` reads. Infinity's bitwise VAE
  (FoundationVision/Infinity ``bsq_vae``) is the same net without attention and without these convs
  (``quant_conv=False``: the encoder output is the quantizer input, the codes are the decoder input).

Module names are upstream's (``down[i].block / .attn / .downsample``, ``mid.block_1 / attn_1 / block_2``, decoder
``up[i]`` indexed by level), so a VAR state dict maps onto it by renaming only ``quantize.`` to ``quantizer.``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from ..registry import NETS
from .base import LevelledNetFamily
from .layers import Downsample, ResnetBlock, Upsample, group_norm


class PackedAttnBlock(GradientCheckpointingLayer):
    """Single-head spatial self-attention whose q, k and v come from one 1×1 conv ``qkv`` (3C outputs, in that
    order), with a residual connection: x + proj_out(softmax(qᵀk / √C) v)."""

    def __init__(self, channels: int, groups: int, eps: float):
        super().__init__()
        self.norm = group_norm(channels, groups, eps)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        # (B, 1, h·w, C): one head; SDPA's default scale is C^−½, upstream's.
        q, k, v = (t.transpose(1, 2).unsqueeze(1) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v).squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


def _attention(channels: int, net: VAR) -> nn.Module:
    return PackedAttnBlock(channels, net.norm_groups, net.norm_eps)


class _Level(nn.Module):
    """One resolution level: ``block`` (residual blocks), ``attn`` (one after each block, or none), optional
    ``downsample`` / ``upsample``."""

    def __init__(self):
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()

    def run_blocks(self, h: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            h = block(h)
            if len(self.attn):
                h = self.attn[i](h)
        return h


class _Mid(nn.Module):
    """block_1 → attn_1 (when ``mid_attention``) → block_2."""

    def __init__(self, channels: int, net: VAR):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, net.dropout, net.norm_groups, net.norm_eps)
        if net.mid_attention:
            self.attn_1 = _attention(channels, net)
        self.block_2 = ResnetBlock(channels, channels, net.dropout, net.norm_groups, net.norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.block_1(h)
        if hasattr(self, "attn_1"):
            h = self.attn_1(h)
        return self.block_2(h)


class VAREncoder(nn.Module):
    def __init__(self, in_channels: int, net: VAR):
        super().__init__()
        ch, mult = net.base_channels, net.channel_multiplier
        last = len(mult) - 1
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for level, m in enumerate(mult):
            stage = _Level()
            for _ in range(net.num_res_blocks):
                stage.block.append(ResnetBlock(block_in, ch * m, net.dropout, net.norm_groups, net.norm_eps))
                block_in = ch * m
                if level == last and net.attention:
                    stage.attn.append(_attention(block_in, net))
            if level != last:
                stage.downsample = Downsample(block_in)
            self.down.append(stage)
        self.mid = _Mid(block_in, net)
        self.norm_out = group_norm(block_in, net.norm_groups, net.norm_eps)
        self.conv_out = nn.Conv2d(block_in, net.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            h = stage.run_blocks(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VARDecoder(nn.Module):
    def __init__(self, out_channels: int, net: VAR):
        super().__init__()
        ch, mult = net.base_channels, net.channel_multiplier
        last = len(mult) - 1
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(net.latent_channels, block_in, 3, padding=1)
        self.mid = _Mid(block_in, net)
        stages: list[_Level] = []
        for level in reversed(range(len(mult))):  # built deepest first; up[i] is level i, as upstream
            stage = _Level()
            for _ in range(net.num_res_blocks + 1):
                stage.block.append(ResnetBlock(block_in, ch * mult[level], net.dropout, net.norm_groups, net.norm_eps))
                block_in = ch * mult[level]
                if level == last and net.attention:
                    stage.attn.append(_attention(block_in, net))
            if level != 0:
                stage.upsample = Upsample(block_in)
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.norm_out = group_norm(block_in, net.norm_groups, net.norm_eps)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    @property
    def last_layer(self) -> nn.Parameter:
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for stage in reversed(self.up):
            h = stage.run_blocks(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@NETS.register("var")
class VAR(LevelledNetFamily):
    """VAR's VQVAE encoder/decoder.

    Args:
        base_channels: channels of the first level (upstream's ``ch``; 160 in ``vae_ch160v4096z32.pth``).
        channel_multiplier: per-level multipliers (upstream hard-codes (1, 1, 2, 2, 4): f16).
        num_res_blocks: residual blocks per encoder level (the decoder has one more); upstream hard-codes 2.
        latent_channels: encoder output / decoder input channels (``z_channels``; 32 in the release).
        attention: attention after each residual block of the deepest level (``using_sa``).
        mid_attention: attention between the two middle blocks (``using_mid_sa``).
        quant_conv_kernel_size: kernel of ``quant_conv`` / ``post_quant_conv`` (``quant_conv_ks``, 3 upstream).
        dropout, norm_groups, norm_eps: as upstream (0.0, 32, 1e-6).
        quant_conv: whether the tokenizer puts ``quant_conv`` / ``post_quant_conv`` around the quantizer (default
            ``True``, VAR). ``False`` (Infinity's bitwise VAE): none, so ``latent_channels`` must equal the
            quantizer's ``codebook_dim`` and ``quant_conv_kernel_size`` is unused.
    """

    def __init__(
        self,
        base_channels: int = 160,
        channel_multiplier: tuple[int, ...] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        latent_channels: int = 32,
        attention: bool = True,
        mid_attention: bool = True,
        quant_conv_kernel_size: int = 3,
        dropout: float = 0.0,
        norm_groups: int = 32,
        norm_eps: float = 1e-6,
        quant_conv: bool = True,
    ):
        self.base_channels = base_channels
        self.channel_multiplier = list(channel_multiplier)
        self.num_res_blocks = num_res_blocks
        self.latent_channels_ = latent_channels
        self.attention = attention
        self.mid_attention = mid_attention
        self.quant_conv_kernel_size = quant_conv_kernel_size
        self.dropout = dropout
        self.norm_groups = norm_groups
        self.norm_eps = norm_eps
        self.quant_conv = quant_conv

    @property
    def uses_quant_conv(self) -> bool:
        return self.quant_conv

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        cls.check_levels(spec)
        cls.check_flags(spec, "attention", "mid_attention", "quant_conv")
        k = spec["quant_conv_kernel_size"]
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0 or k % 2 == 0:
            raise ValueError(f"var net option 'quant_conv_kernel_size' must be a positive odd integer, got {k!r}")
        cls.check_dropout_and_norm_eps(spec)

    def build_encoder(self, in_channels: int) -> nn.Module:
        return VAREncoder(in_channels, self)

    def build_decoder(self, out_channels: int) -> nn.Module:
        return VARDecoder(out_channels, self)

"""The Taming / LlamaGen convolutional VQGAN encoder-decoder.

Module layout follows LlamaGen (``conv_blocks[i].res / .attn / .downsample``, ``mid = [res, attn, res]``); Taming
checkpoints map onto it by renaming (``down`` → ``conv_blocks``, ``block`` → ``res``, decoder ``up[i]`` →
``conv_blocks[L−1−i]``), see ``vistok.convert``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import NETS
from .base import LevelledNetFamily
from .layers import AttnBlock, Downsample, ResnetBlock, Upsample, group_norm


class _Level(nn.Module):
    """One resolution level: residual blocks, optional attention after each, optional resampling."""

    def __init__(self):
        super().__init__()
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()

    def run_blocks(self, h: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.res):
            h = block(h)
            if len(self.attn):
                h = self.attn[i](h)
        return h


def _mid(channels: int, dropout: float, groups: int, eps: float) -> nn.ModuleList:
    return nn.ModuleList(
        [
            ResnetBlock(channels, channels, dropout, groups, eps),
            AttnBlock(channels, groups, eps),
            ResnetBlock(channels, channels, dropout, groups, eps),
        ]
    )


class VQGANEncoder(nn.Module):
    def __init__(self, in_channels: int, net: VQGAN):
        super().__init__()
        ch, mult, groups, eps = net.base_channels, net.channel_multiplier, net.norm_groups, net.norm_eps
        num_levels = len(mult)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.conv_blocks = nn.ModuleList()
        block_in = ch
        for level in range(num_levels):
            block = _Level()
            block_out = ch * mult[level]
            for _ in range(net.num_res_blocks):
                block.res.append(ResnetBlock(block_in, block_out, net.dropout, groups, eps))
                block_in = block_out
                if level in net.attention_levels:
                    block.attn.append(AttnBlock(block_in, groups, eps))
            if level != num_levels - 1:
                block.downsample = Downsample(block_in)
            self.conv_blocks.append(block)
        self.mid = _mid(block_in, net.dropout, groups, eps)
        self.norm_out = group_norm(block_in, groups, eps)
        self.conv_out = nn.Conv2d(block_in, net.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for block in self.conv_blocks:
            h = block.run_blocks(h)
            if hasattr(block, "downsample"):
                h = block.downsample(h)
        for layer in self.mid:
            h = layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VQGANDecoder(nn.Module):
    def __init__(self, out_channels: int, net: VQGAN):
        super().__init__()
        ch, mult, groups, eps = net.base_channels, net.channel_multiplier, net.norm_groups, net.norm_eps
        num_levels = len(mult)
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(net.latent_channels, block_in, 3, padding=1)
        self.mid = _mid(block_in, net.dropout, groups, eps)
        self.conv_blocks = nn.ModuleList()
        for i in range(num_levels):
            level = num_levels - 1 - i  # the encoder level at this resolution
            block = _Level()
            block_out = ch * mult[level]
            for _ in range(net.num_res_blocks + 1):
                block.res.append(ResnetBlock(block_in, block_out, net.dropout, groups, eps))
                block_in = block_out
                if level in net.attention_levels:
                    block.attn.append(AttnBlock(block_in, groups, eps))
            if level != 0:
                block.upsample = Upsample(block_in)
            self.conv_blocks.append(block)
        self.norm_out = group_norm(block_in, groups, eps)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    @property
    def last_layer(self) -> nn.Parameter:
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for layer in self.mid:
            h = layer(h)
        for block in self.conv_blocks:
            h = block.run_blocks(h)
            if hasattr(block, "upsample"):
                h = block.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@NETS.register("vqgan")
class VQGAN(LevelledNetFamily):
    """Taming / LlamaGen VQGAN.

    Args:
        base_channels: channels of the first level (``ch``).
        channel_multiplier: per-level multipliers; ``len − 1`` stride-2 stages, so f = 2^(len − 1).
        num_res_blocks: residual blocks per encoder level (the decoder has one more, as upstream).
        latent_channels: encoder output / decoder input channels (``z_channels``).
        attention_levels: encoder levels (0 = full resolution) with attention after each residual block;
            ``None`` = the last level only (Taming's ``attn_resolutions=[16]`` at 256 px f16, and LlamaGen).
        dropout, norm_groups, norm_eps: as upstream (0.0, 32, 1e-6).
    """

    def __init__(
        self,
        base_channels: int = 128,
        channel_multiplier: tuple[int, ...] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        latent_channels: int = 256,
        attention_levels: tuple[int, ...] | None = None,
        dropout: float = 0.0,
        norm_groups: int = 32,
        norm_eps: float = 1e-6,
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

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        cls.check_levels(spec)
        mult = spec["channel_multiplier"]
        levels = spec["attention_levels"]
        if levels is not None and any(not isinstance(lv, int) or not 0 <= lv < len(mult) for lv in levels):
            raise ValueError(f"vqgan attention_levels must be level indices in [0, {len(mult)}), got {levels!r}")
        cls.check_dropout_and_norm_eps(spec)


    def build_encoder(self, in_channels: int) -> nn.Module:
        return VQGANEncoder(in_channels, self)

    def build_decoder(self, out_channels: int) -> nn.Module:
        return VQGANDecoder(out_channels, self)

"""NVIDIA Cosmos Tokenizer's discrete image (DI) encoder/decoder: a Haar-wavelet front end and an LDM-style conv net.

What it computes (written from the reference vectors' README, ``shared/reference/cosmos/README.md``, which lists
what a port must match, and checked against them; no upstream code was copied):

- **Haar patching.** ``log2(patch_size)`` levels of a 2-D Haar transform, each turning C channels at H × W into 4C
  at H/2 × W/2. For a 2×2 block [[a, b], [c, d]] the bands are LL = (a+b+c+d)/4, LH = (a+b−c−d)/4 (top row minus
  bottom row), HL = (a−b+c−d)/4 (left column minus right), HH = (a−b−c+d)/4: upstream's orthonormal taps
  1/√2 applied along rows and columns, then divided by 2, so LL is the block mean. The channels are the blocks
  [LL, LH, HL, HH] of the level's input channels, so after two levels channel = band₂·12 + band₁·3 + rgb. The
  decoder ends with the exact inverse (a = LL+LH+HL+HH, b = LL+LH−HL−HH, c = LL−LH+HL−HH, d = LL−LH−HL+HH per
  level, deepest level first). vistok computes the transform with the exact coefficients; the released archives
  also carry the taps as a bfloat16 buffer (0.70703125), which upstream's Python model does not use and which vistok
  drops (using it would move a reconstruction by about 1e-3).
- **Encoder.** conv_in 3×3 (3·patch_size² → base) · per level i: ``num_res_blocks`` residual blocks to
  ``base·channel_multiplier[i]`` (the first from the previous level's width, ``base`` before level 0) · mid =
  residual block, single-head attention, residual block · GroupNorm · SiLU · conv_out 3×3 → ``latent_channels``.
  Only ``log2(spatial_compression / patch_size)`` levels resample, and it is the FIRST levels that do (zero pad
  (0, 1, 0, 1), stride-2 conv 3×3), not one per level boundary as in Taming.
- **Decoder.** conv_in 3×3 → the deepest width · mid · levels from the deepest up, each ``num_res_blocks + 1``
  residual blocks; the DEEPEST levels upsample (nearest ×2, conv 3×3) right after their blocks: level i upsamples
  when i ≥ levels − log2(spatial_compression / patch_size) · GroupNorm · SiLU · conv_out 3×3 → 3·patch_size²
  channels · inverse Haar.
- GroupNorm(32, eps 1e-6), SiLU; attention (q, k, v, proj_out 1×1 convs, softmax(qᵀk/√C)) only in the two mids —
  the released ``attn_resolutions=[32]`` at ``resolution=1024`` place none in the levels (the first level works at
  1024 / patch_size = 256). Outputs are not clamped.

Module names follow upstream (``down.i.block.j``, ``down.i.downsample.conv``, ``mid.block_1`` / ``attn_1`` /
``block_2``, ``up.i.block.j`` with ``up.i`` the decoder's level i, ``up.i.upsample.conv``), so a converted state
dict keeps upstream's keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import NETS
from .base import LevelledNetFamily, check_positive_ints
from .layers import AttnBlock, Downsample, ResnetBlock, Upsample, group_norm


def haar_analysis(x: torch.Tensor) -> torch.Tensor:
    """One Haar level: (B, C, H, W) with even H, W → (B, 4C, H/2, W/2), channels [LL, LH, HL, HH] blocks of C."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.cat(((a + b + c + d) / 4, (a + b - c - d) / 4, (a - b + c - d) / 4, (a - b - c + d) / 4), dim=1)


def haar_synthesis(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`haar_analysis`: (B, 4C, h, w) → (B, C, 2h, 2w)."""
    ll, lh, hl, hh = x.chunk(4, dim=1)
    a, b = ll + lh + hl + hh, ll + lh - hl - hh
    c, d = ll - lh + hl - hh, ll - lh - hl + hh
    top, bottom = torch.stack((a, b), dim=-1), torch.stack((c, d), dim=-1)  # (B, C, h, w, 2): columns interleaved
    out = torch.stack((top, bottom), dim=-3)  # (B, C, h, 2, w, 2): rows interleaved
    n, ch, h, _, w, _ = out.shape
    return out.reshape(n, ch, 2 * h, 2 * w)


class HaarPatcher(nn.Module):
    """``levels`` Haar levels: (B, C, H, W) → (B, C·4^levels, H/2^levels, W/2^levels). No parameters."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.levels):
            if x.shape[-2] % 2 or x.shape[-1] % 2:
                raise ValueError(f"the Haar front end needs even sizes at every level, got {tuple(x.shape[-2:])}")
            x = haar_analysis(x)
        return x


class HaarUnpatcher(nn.Module):
    """The inverse of :class:`HaarPatcher`."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.levels):
            x = haar_synthesis(x)
        return x


class _Level(nn.Module):
    """One level: residual blocks (``block``), and a resampler when the level has one."""

    def __init__(self):
        super().__init__()
        self.block = nn.ModuleList()


class _Mid(nn.Module):
    def __init__(self, channels: int, dropout: float, groups: int, eps: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout, groups, eps)
        self.attn_1 = AttnBlock(channels, groups, eps)
        self.block_2 = ResnetBlock(channels, channels, dropout, groups, eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class CosmosEncoder(nn.Module):
    def __init__(self, in_channels: int, net: CosmosDI):
        super().__init__()
        ch, mult, groups, eps = net.base_channels, net.channel_multiplier, net.norm_groups, net.norm_eps
        self.patcher = HaarPatcher(net.wavelet_levels)
        self.conv_in = nn.Conv2d(in_channels * net.patch_size**2, ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for i, m in enumerate(mult):
            level = _Level()
            for _ in range(net.num_res_blocks):
                level.block.append(ResnetBlock(block_in, ch * m, net.dropout, groups, eps))
                block_in = ch * m
            if i < net.num_resamples:  # the first levels downsample
                level.downsample = Downsample(block_in)
            self.down.append(level)
        self.mid = _Mid(block_in, net.dropout, groups, eps)
        self.norm_out = group_norm(block_in, groups, eps)
        self.conv_out = nn.Conv2d(block_in, net.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(self.patcher(x))
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class CosmosDecoder(nn.Module):
    def __init__(self, out_channels: int, net: CosmosDI):
        super().__init__()
        ch, mult, groups, eps = net.base_channels, net.channel_multiplier, net.norm_groups, net.norm_eps
        levels = len(mult)
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(net.latent_channels, block_in, 3, padding=1)
        self.mid = _Mid(block_in, net.dropout, groups, eps)
        up: list[_Level] = [None] * levels  # type: ignore[list-item]
        for i in reversed(range(levels)):  # built from the deepest level, as it runs; up[i] is level i
            level = _Level()
            for _ in range(net.num_res_blocks + 1):
                level.block.append(ResnetBlock(block_in, ch * mult[i], net.dropout, groups, eps))
                block_in = ch * mult[i]
            if i >= levels - net.num_resamples:  # the deepest levels upsample
                level.upsample = Upsample(block_in)
            up[i] = level
        self.up = nn.ModuleList(up)
        self.norm_out = group_norm(block_in, groups, eps)
        self.conv_out = nn.Conv2d(block_in, out_channels * net.patch_size**2, 3, padding=1)
        self.unpatcher = HaarUnpatcher(net.wavelet_levels)

    @property
    def last_layer(self) -> nn.Parameter:
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.unpatcher(self.conv_out(F.silu(self.norm_out(h))))


@NETS.register("cosmos")
class CosmosDI(LevelledNetFamily):
    """NVIDIA Cosmos Tokenizer's discrete image (DI) net (see the module docstring).

    Args:
        base_channels: channels after conv_in (upstream ``channels``: 128 in the releases).
        channel_multiplier: per-level widths as multiples of ``base_channels`` (``channels_mult``: [2, 4, 4]).
        num_res_blocks: residual blocks per encoder level (the decoder has one more per level).
        latent_channels: encoder output / decoder input channels (``z_channels``: 256).
        patch_size: the Haar front end's factor, a power of two (4 = two levels: 3 → 48 channels).
        spatial_compression: the total downsample factor f (8 or 16); ``log2(f / patch_size)`` levels resample,
            at most ``len(channel_multiplier) − 1``.
        dropout, norm_groups, norm_eps: as upstream (0.0, 32, 1e-6).
    """

    tiny = {
        "base_channels": 8,
        "channel_multiplier": [1, 2],
        "num_res_blocks": 1,
        "latent_channels": 8,
        "norm_groups": 4,
        "patch_size": 2,
        "spatial_compression": 4,
    }

    def __init__(
        self,
        base_channels: int = 128,
        channel_multiplier: tuple[int, ...] = (2, 4, 4),
        num_res_blocks: int = 2,
        latent_channels: int = 256,
        patch_size: int = 4,
        spatial_compression: int = 8,
        dropout: float = 0.0,
        norm_groups: int = 32,
        norm_eps: float = 1e-6,
    ):
        self.base_channels = base_channels
        self.channel_multiplier = list(channel_multiplier)
        self.num_res_blocks = num_res_blocks
        self.latent_channels_ = latent_channels
        self.patch_size = patch_size
        self.spatial_compression = spatial_compression
        self.dropout = dropout
        self.norm_groups = norm_groups
        self.norm_eps = norm_eps

    @property
    def wavelet_levels(self) -> int:
        return int(math.log2(self.patch_size))

    @property
    def num_resamples(self) -> int:
        """How many levels downsample (encoder) / upsample (decoder): log2(spatial_compression / patch_size)."""
        return int(math.log2(self.spatial_compression // self.patch_size))

    @property
    def downsample_factor(self) -> int:
        return self.spatial_compression

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        cls.check_levels(spec)
        if spec["base_channels"] % spec["norm_groups"]:
            raise ValueError(
                f"cosmos base_channels ({spec['base_channels']}) must be divisible by norm_groups ({spec['norm_groups']})"
            )
        check_positive_ints(spec, "patch_size", "spatial_compression")
        patch, factor = spec["patch_size"], spec["spatial_compression"]
        if patch & (patch - 1):
            raise ValueError(f"cosmos patch_size must be a power of two (Haar levels), got {patch}")
        if factor % patch or (factor // patch) & (factor // patch - 1):
            raise ValueError(
                f"cosmos spatial_compression must be patch_size ({patch}) times a power of two, got {factor}"
            )
        resamples = int(math.log2(factor // patch))
        levels = len(spec["channel_multiplier"])
        if resamples > levels - 1:
            raise ValueError(
                f"cosmos spatial_compression {factor} with patch_size {patch} needs {resamples} resampling levels, "
                f"but {levels} levels have at most {levels - 1}"
            )
        cls.check_dropout_and_norm_eps(spec)

    def build_encoder(self, in_channels: int) -> nn.Module:
        return CosmosEncoder(in_channels, self)

    def build_decoder(self, out_channels: int) -> nn.Module:
        return CosmosDecoder(out_channels, self)

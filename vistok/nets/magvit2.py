"""The MAGVIT-v2 "improved" convolutional encoder-decoder of Open-MAGVIT2 (SEED-Voken's ``improved_model.py``).

What differs from the Taming / LlamaGen ``vqgan`` net (each checked against the reference layout
``magvit2_256_L_state_dict_spec.json`` and the notes in the reference README):

- Residual blocks: GroupNorm · SiLU · conv3×3 · GroupNorm · SiLU · conv3×3, **both convs without bias**, and a
  bias-free 1×1 ``nin_shortcut`` when the width changes. No dropout, no attention anywhere.
- Encoder: bias-free 3×3 ``conv_in``; per level ``num_res_blocks`` blocks, then (all levels but the last) a bare
  stride-2 3×3 conv with symmetric padding 1 (``down.{i}.downsample``, with bias); ``num_res_blocks`` mid blocks;
  GroupNorm · SiLU · **1×1** ``conv_out``.
- Decoder: 3×3 ``conv_in`` (with bias) and ``num_res_blocks`` mid blocks; then, from the last level to the
  first, an :class:`AdaptiveGroupNorm` driven by the decoder's input, ``num_res_blocks`` blocks (not +1), and
  (all levels but the first) a 3×3 conv to 4× the channels followed by a DCR :func:`depth_to_space`;
  GroupNorm · SiLU · 3×3 ``conv_out``. SimVQ's copy of this model (its ``improved_model.py``) has no adaptive
  norms: ``adaptive_norm=False`` builds that decoder (layout ``simvq_128_B_state_dict_spec.json``).
- No ``quant_conv`` / ``post_quant_conv``: the encoder output is the quantizer input and the quantized latent is
  the decoder input (and the adaptive norms' style). With the default ``quant_conv=False`` the family declares
  this (:attr:`Magvit2.uses_quant_conv`), so ``latent_channels`` must equal the quantizer's ``codebook_dim``.

Module names are upstream's, so an upstream checkpoint's ``encoder.*`` / ``decoder.*`` keys are vistok's keys
unchanged (:func:`upstream_key_to_vistok`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from ..registry import NETS
from .base import LevelledNetFamily
from .layers import group_norm


def depth_to_space(x: torch.Tensor, block_size: int = 2) -> torch.Tensor:
    """DCR depth-to-space: (B, s²·C, h, w) → (B, C, s·h, s·w) with out[c, s·y + i, s·x + j] = in[(s·i + j)·C + c, y, x].

    ``nn.PixelShuffle`` is the CRD order (in[s²·c + s·i + j]); the two agree only after permuting channels.
    """
    b, channels, h, w = x.shape
    s = block_size
    c = channels // (s * s)
    x = x.reshape(b, s, s, c, h, w).permute(0, 3, 4, 1, 5, 2)  # (b, c, h, i, w, j)
    return x.reshape(b, c, h * s, w * s)


class Magvit2ResBlock(GradientCheckpointingLayer):
    """GroupNorm · SiLU · conv3×3 · GroupNorm · SiLU · conv3×3 (no biases), plus a bias-free 1×1 shortcut when
    the width changes."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, eps: float):
        super().__init__()
        self.norm1 = group_norm(in_channels, groups, eps)
        self.norm2 = group_norm(out_channels, groups, eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        shortcut = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return h + shortcut


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm without affine, scaled and shifted by linear maps of the style's per-channel statistics:
    ``GN(x) · gamma(sqrt(var_hw(style) + eps)) + beta(mean_hw(style))``.

    The variance over the h·w positions is the **unbiased** one (correction 1), as upstream computes it (torch's
    default ``var``), so a 1×1 style map gives NaN there too.
    """

    def __init__(self, style_channels: int, channels: int, groups: int, eps: float):
        super().__init__()
        self.gn = nn.GroupNorm(groups, channels, eps=eps, affine=False)
        self.gamma = nn.Linear(style_channels, channels)
        self.beta = nn.Linear(style_channels, channels)
        self.eps = eps

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        flat = style.flatten(2)
        scale = self.gamma(torch.sqrt(flat.var(dim=-1, correction=1) + self.eps))
        shift = self.beta(flat.mean(dim=-1))
        return self.gn(x) * scale[:, :, None, None] + shift[:, :, None, None]


class Upsampler(nn.Module):
    """conv3×3 (C → 4C, with bias) followed by DCR :func:`depth_to_space` (×2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 4 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(self.conv1(x), 2)


class Magvit2Encoder(nn.Module):
    def __init__(self, in_channels: int, net: Magvit2):
        super().__init__()
        ch, mult, groups, eps, blocks = (
            net.base_channels,
            net.channel_multiplier,
            net.norm_groups,
            net.norm_eps,
            net.num_res_blocks,
        )
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        block_in = ch
        for level, m in enumerate(mult):
            down = nn.Module()
            down.block = nn.ModuleList()
            for _ in range(blocks):
                down.block.append(Magvit2ResBlock(block_in, ch * m, groups, eps))
                block_in = ch * m
            if level < len(mult) - 1:
                down.downsample = nn.Conv2d(block_in, block_in, 3, stride=2, padding=1)
            self.down.append(down)
        self.mid_block = nn.ModuleList(
            Magvit2ResBlock(block_in, block_in, groups, eps) for _ in range(blocks)
        )
        self.norm_out = group_norm(block_in, groups, eps)
        self.conv_out = nn.Conv2d(block_in, net.latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for down in self.down:
            for block in down.block:
                h = block(h)
            if hasattr(down, "downsample"):
                h = down.downsample(h)
        for block in self.mid_block:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Magvit2Decoder(nn.Module):
    """Its input is the quantized latent, which also drives every :class:`AdaptiveGroupNorm` (``adaptive[i]``
    before the blocks of level ``i``) when the net has ``adaptive_norm`` (without it, no ``adaptive`` modules)."""

    def __init__(self, out_channels: int, net: Magvit2):
        super().__init__()
        ch, mult, groups, eps, blocks = (
            net.base_channels,
            net.channel_multiplier,
            net.norm_groups,
            net.norm_eps,
            net.num_res_blocks,
        )
        z = net.latent_channels
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(z, block_in, 3, padding=1)
        self.mid_block = nn.ModuleList(
            Magvit2ResBlock(block_in, block_in, groups, eps) for _ in range(blocks)
        )
        up_levels: list[nn.Module] = []
        adaptive: list[nn.Module] = []
        for level in reversed(range(len(mult))):
            if net.adaptive_norm:
                adaptive.append(AdaptiveGroupNorm(z, block_in, groups, eps))
            up = nn.Module()
            up.block = nn.ModuleList()
            for _ in range(blocks):
                up.block.append(Magvit2ResBlock(block_in, ch * mult[level], groups, eps))
                block_in = ch * mult[level]
            if level > 0:
                up.upsample = Upsampler(block_in)
            up_levels.append(up)
        # Indexed by level (0 = full resolution), as upstream.
        self.up = nn.ModuleList(reversed(up_levels))
        if adaptive:
            self.adaptive = nn.ModuleList(reversed(adaptive))
        self.norm_out = group_norm(block_in, groups, eps)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    @property
    def last_layer(self) -> nn.Parameter:
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        style = z
        h = self.conv_in(z)
        for block in self.mid_block:
            h = block(h)
        for level in reversed(range(len(self.up))):
            if hasattr(self, "adaptive"):
                h = self.adaptive[level](h, style)
            up = self.up[level]
            for block in up.block:
                h = block(h)
            if hasattr(up, "upsample"):
                h = up.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@NETS.register("magvit2")
class Magvit2(LevelledNetFamily):
    """Open-MAGVIT2's improved conv encoder/decoder; the defaults are ``imagenet_lfqgan_256_L`` (f16, z 18 for
    LFQ 2^18).

    Args:
        base_channels: channels of the first level (``ch``).
        channel_multiplier: per-level multipliers; ``len − 1`` stride-2 stages, so f = 2^(len − 1).
        num_res_blocks: residual blocks per level, in the encoder and the decoder, and the number of mid blocks.
        latent_channels: encoder output / decoder input channels (``z_channels``).
        norm_groups, norm_eps: GroupNorm groups and eps (upstream: 32, 1e-6).
        quant_conv: put vistok's 1×1 ``quant_conv`` / ``post_quant_conv`` around the quantizer. Upstream has none
            (``False``, then ``latent_channels`` must equal the quantizer's ``codebook_dim``); ``True`` lets the
            latent width differ from the code width (the decoder's style is then the projected code).
        adaptive_norm: put an :class:`AdaptiveGroupNorm` before each decoder level (Open-MAGVIT2, default);
            ``False`` builds SimVQ's decoder, which has none.
    """

    tiny = {**LevelledNetFamily.tiny, "quant_conv": True}  # the tiny net must fit every quantizer's codebook_dim

    def __init__(
        self,
        base_channels: int = 128,
        channel_multiplier: tuple[int, ...] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 4,
        latent_channels: int = 18,
        norm_groups: int = 32,
        norm_eps: float = 1e-6,
        quant_conv: bool = False,
        adaptive_norm: bool = True,
    ):
        self.base_channels = base_channels
        self.channel_multiplier = list(channel_multiplier)
        self.num_res_blocks = num_res_blocks
        self.latent_channels_ = latent_channels
        self.norm_groups = norm_groups
        self.norm_eps = norm_eps
        self.quant_conv = quant_conv
        self.adaptive_norm = adaptive_norm

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        cls.check_levels(spec)
        cls.check_flags(spec, "quant_conv", "adaptive_norm")
        cls.check_dropout_and_norm_eps(spec)

    @property
    def uses_quant_conv(self) -> bool:
        return self.quant_conv

    def build_encoder(self, in_channels: int) -> nn.Module:
        return Magvit2Encoder(in_channels, self)

    def build_decoder(self, out_channels: int) -> nn.Module:
        return Magvit2Decoder(out_channels, self)


# ------------------------------------------------------------------------------------- upstream key layout
def upstream_key_to_vistok(key: str) -> str | None:
    """The vistok state-dict key for an Open-MAGVIT2 (SEED-Voken ``lfqgan.VQModel``) or SimVQ encoder / decoder
    key, or ``None`` for keys this net does not hold (``loss.*``, ``quantize.*``, ``model_ema.*``: EMA shadows are
    picked by :mod:`vistok.convert.lightning_ema` first).

    The module names are upstream's, so ``encoder.*`` / ``decoder.*`` keys are unchanged. Weights map one to one,
    with no permutation: :func:`depth_to_space` is upstream's DCR order. (LFQ's bit order is a separate matter,
    settled by the quantizer's ``bit_order``: upstream's channel 0 is the least significant bit.)
    """
    if key.startswith(("encoder.", "decoder.")):
        return key
    return None

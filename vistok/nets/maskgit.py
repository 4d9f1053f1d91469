"""The MaskGIT VQGAN convolutional encoder-decoder, as the PyTorch port that TiTok (bytedance/1d-tokenizer,
``modeling/modules/maskgit_vqgan.py``) uses for ``maskgit-vqgan-imagenet-f16-256.bin``.

What differs from the Taming / LlamaGen ``vqgan`` net (each checked against the reference layout
``maskgit_vqgan_f16_256_state_dict_spec.json`` and the reference README's MaskGIT section):

- No attention anywhere (no attention in the mid block either).
- Every conv pads TensorFlow-style "same" (:class:`SameConv2d`); all of them have stride 1, so that is 1 for the
  3×3 convs and 0 for the 1×1 ones.
- Residual blocks: GroupNorm · SiLU · conv3×3 · GroupNorm · SiLU · dropout · conv3×3, **both convs without bias**.
  Where the width changes, the 1×1 ``nin_shortcut`` maps out → out channels (no bias) and is applied to the block's
  **output**: ``h + nin_shortcut(h)`` — the input does not reach the output through a skip at all there
  (:class:`MaskgitResBlock`).
- Encoder: bias-free 3×3 ``conv_in``; per level ``num_res_blocks`` blocks, then (all levels but the last) a 2×2
  average pool; ``num_res_blocks`` mid blocks; GroupNorm · SiLU · **1×1** ``conv_out``.
- Decoder: 3×3 ``conv_in``; ``num_res_blocks`` mid blocks; from the last level to the first, ``num_res_blocks``
  blocks (not +1) and (all levels but the first) nearest ×2 upsampling then a 3×3 ``upsample_conv``;
  GroupNorm · SiLU · 3×3 ``conv_out``.
- No ``quant_conv`` / ``post_quant_conv``: the ``latent_channels`` latent is quantized directly.
- GroupNorm: 32 groups, eps 1e-6.

Module names are upstream's (``down[i].block[j]``, ``mid[j]``, ``up[i].block[j]``, ``up[i].upsample_conv``), so the
file's ``encoder.*`` / ``decoder.*`` keys are vistok's unchanged; only the codebook is renamed
(``quantize.embedding.weight`` → ``quantizer.codebook``, see :mod:`vistok.families.maskgit`).

MaskBit's VQGAN+ (markweberdev/maskbit ``modeling/modules/autoencoder.py``, ``sample_with_conv: true``) is this net
with one change, the option ``downsample="conv"``: between levels the encoder downsamples with a 3×3 stride-2 conv
(with bias, ``down[i].down_conv``) under TensorFlow "same" padding — (0, 1) on an even size, (1, 1) on an odd one —
instead of the 2×2 average pool. Everything else (blocks, shortcut on the output, bias-free ``conv_in``, no
attention, no ``quant_conv``, the decoder) is the same (:mod:`vistok.families.maskbit` maps its key names).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from ..registry import NETS
from .base import LevelledNetFamily
from .layers import group_norm

#: How the encoder halves the resolution between levels (the ``downsample`` option).
DOWNSAMPLING = ("avg_pool", "conv")


def tf_same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) of one spatial axis: the total makes the output
    ``ceil(size / stride)`` long, and an odd total puts the extra pixel after."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` with TensorFlow "same" padding (:func:`tf_same_padding`): the output is
    ``ceil(size / stride)`` long and an odd total padding puts the extra pixel after.

    At stride 1 the padding does not depend on the input size, so it is fixed here: symmetric ones go to the conv
    itself, an uneven one (even kernels) is padded explicitly. At a larger stride it depends on the size and is
    computed per input, per axis: a 3×3 stride-2 conv pads (0, 1) on an even size and (1, 1) on an odd one."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, stride: int = 1):
        before, after = tf_same_padding(1, kernel_size) if stride == 1 else (0, 0)  # stride 1: size-independent
        padding = before if before == after else 0
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.uneven_padding = (before, after, before, after) if before != after else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != (1, 1):
            top, bottom = tf_same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
            left, right = tf_same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
            x = F.pad(x, (left, right, top, bottom))
        elif self.uneven_padding is not None:
            x = F.pad(x, self.uneven_padding)
        return super().forward(x)


class MaskgitResBlock(GradientCheckpointingLayer):
    """GroupNorm · SiLU · conv3×3 · GroupNorm · SiLU · dropout · conv3×3 (both convs bias-free), giving ``h``.

    Returns ``x + h`` when the width is kept, and ``h + nin_shortcut(h)`` when it changes: upstream's 1×1
    ``nin_shortcut`` (out → out channels, no bias) is applied to the block's own output, not to its input.
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float, groups: int, eps: float):
        super().__init__()
        self.norm1 = group_norm(in_channels, groups, eps)
        self.conv1 = SameConv2d(in_channels, out_channels, 3, bias=False)
        self.norm2 = group_norm(out_channels, groups, eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = SameConv2d(out_channels, out_channels, 3, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = SameConv2d(out_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if hasattr(self, "nin_shortcut"):
            return h + self.nin_shortcut(h)
        return x + h


def _blocks(count: int, in_channels: int, out_channels: int, net: Maskgit) -> nn.ModuleList:
    """``count`` residual blocks, the first ``in → out`` channels, the rest ``out → out``."""
    blocks = nn.ModuleList()
    for _ in range(count):
        blocks.append(MaskgitResBlock(in_channels, out_channels, net.dropout, net.norm_groups, net.norm_eps))
        in_channels = out_channels
    return blocks


class MaskgitEncoder(nn.Module):
    """Images (B, C, H, W) → latents (B, latent_channels, H/f, W/f); maps [−1, 1] inputs to [0, 1] first when the
    net's ``pixel_range`` is ``"unit"``. Between levels: a 2×2 average pool (``downsample="avg_pool"``, MaskGIT) or
    the level's 3×3 stride-2 ``down_conv`` (``"conv"``, MaskBit's VQGAN+)."""

    def __init__(self, in_channels: int, net: Maskgit):
        super().__init__()
        ch, mult = net.base_channels, net.channel_multiplier
        self.unit_range = net.pixel_range == "unit"
        self.conv_in = SameConv2d(in_channels, ch, 3, bias=False)
        self.down = nn.ModuleList()
        block_in = ch
        for i, m in enumerate(mult):
            level = nn.Module()
            level.block = _blocks(net.num_res_blocks, block_in, ch * m, net)
            block_in = ch * m
            if net.downsample == "conv" and i < len(mult) - 1:
                level.down_conv = SameConv2d(block_in, block_in, 3, stride=2)
            self.down.append(level)
        self.mid = _blocks(net.num_res_blocks, block_in, block_in, net)
        self.norm_out = group_norm(block_in, net.norm_groups, net.norm_eps)
        self.conv_out = SameConv2d(block_in, net.latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unit_range:
            x = (x + 1) / 2
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for block in level.block:
                h = block(h)
            if hasattr(level, "down_conv"):
                h = level.down_conv(h)
            elif i < len(self.down) - 1:
                h = F.avg_pool2d(h, kernel_size=2, stride=2)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class MaskgitDecoder(nn.Module):
    """Latents (B, latent_channels, h, w) → images (B, C, h·f, w·f), unclamped; maps the [0, 1] output of a
    ``pixel_range="unit"`` net to [−1, 1] (``2y − 1``)."""

    def __init__(self, out_channels: int, net: Maskgit):
        super().__init__()
        ch, mult = net.base_channels, net.channel_multiplier
        self.unit_range = net.pixel_range == "unit"
        block_in = ch * mult[-1]
        self.conv_in = SameConv2d(net.latent_channels, block_in, 3)
        self.mid = _blocks(net.num_res_blocks, block_in, block_in, net)
        levels: list[nn.Module] = []
        for i in reversed(range(len(mult))):
            level = nn.Module()
            level.block = _blocks(net.num_res_blocks, block_in, ch * mult[i], net)
            block_in = ch * mult[i]
            if i > 0:
                level.upsample_conv = SameConv2d(block_in, block_in, 3)
            levels.append(level)
        self.up = nn.ModuleList(reversed(levels))  # indexed by level (0 = full resolution), as upstream
        self.norm_out = group_norm(block_in, net.norm_groups, net.norm_eps)
        self.conv_out = SameConv2d(block_in, out_channels, 3)

    @property
    def last_layer(self) -> nn.Parameter:
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample_conv"):
                h = level.upsample_conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        y = self.conv_out(F.silu(self.norm_out(h)))
        return 2 * y - 1 if self.unit_range else y


@NETS.register("maskgit")
class Maskgit(LevelledNetFamily):
    """MaskGIT's VQGAN encoder/decoder (TiTok's PyTorch port); the defaults are ``maskgit-vqgan-imagenet-f16-256``
    (f16, z 256, for a 1024 × 256 codebook).

    Args:
        base_channels: channels of the first level (upstream ``hidden_channels``).
        channel_multiplier: per-level multipliers (``channel_mult``); ``len − 1`` 2× downsamplings, so
            f = 2^(len − 1).
        num_res_blocks: residual blocks per level, in the encoder and the decoder, and the number of mid blocks.
        latent_channels: encoder output / decoder input channels (``z_channels``).
        dropout: dropout inside the residual blocks (upstream 0).
        norm_groups, norm_eps: GroupNorm groups and eps (upstream: 32, 1e-6).
        quant_conv: put vistok's 1×1 ``quant_conv`` / ``post_quant_conv`` around the quantizer. Upstream has none
            (``False``; then ``latent_channels`` must equal the quantizer's ``codebook_dim``).
        pixel_range: the pixel range the network itself works in. vistok tokenizers always take and return
            [−1, 1]; ``"signed"`` (default) means the network does too. ``"unit"`` means it was trained on [0, 1]
            pixels, as upstream's MaskGIT VQGAN was: the encoder then maps its [−1, 1] input by ``(x + 1) / 2``
            and the decoder maps its output ``y`` by ``2y − 1``, so a converted MaskGIT tokenizer takes and returns
            [−1, 1] like every vistok tokenizer and computes upstream's numbers (upstream's output is
            ``(reconstruction + 1) / 2``). The decoder does not clamp (upstream's ``decode`` clamps to [0, 1]).
        downsample: how the encoder halves the resolution between levels: ``"avg_pool"`` (default, MaskGIT's 2×2
            average pool) or ``"conv"`` (MaskBit's VQGAN+, ``sample_with_conv``: a 3×3 stride-2 conv with bias and
            TensorFlow "same" padding, one per level but the last).
    """

    tiny = {**LevelledNetFamily.tiny, "quant_conv": True}  # the tiny net must fit every quantizer's codebook_dim

    def __init__(
        self,
        base_channels: int = 128,
        channel_multiplier: tuple[int, ...] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        latent_channels: int = 256,
        dropout: float = 0.0,
        norm_groups: int = 32,
        norm_eps: float = 1e-6,
        quant_conv: bool = False,
        pixel_range: str = "signed",
        downsample: str = "avg_pool",
    ):
        self.base_channels = base_channels
        self.channel_multiplier = list(channel_multiplier)
        self.num_res_blocks = num_res_blocks
        self.latent_channels_ = latent_channels
        self.dropout = dropout
        self.norm_groups = norm_groups
        self.norm_eps = norm_eps
        self.quant_conv = quant_conv
        self.pixel_range = pixel_range
        self.downsample = downsample

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        cls.check_levels(spec)
        cls.check_flags(spec, "quant_conv")
        cls.check_pixel_range(spec)
        cls.check_dropout_and_norm_eps(spec)
        if spec["downsample"] not in DOWNSAMPLING:
            raise ValueError(
                f"maskgit downsample must be one of {', '.join(map(repr, DOWNSAMPLING))} ('avg_pool': MaskGIT's 2x2 "
                f"average pool; 'conv': MaskBit's 3x3 stride-2 conv), got {spec['downsample']!r}"
            )

    @property
    def uses_quant_conv(self) -> bool:
        return self.quant_conv

    def build_encoder(self, in_channels: int) -> nn.Module:
        return MaskgitEncoder(in_channels, self)

    def build_decoder(self, out_channels: int) -> nn.Module:
        return MaskgitDecoder(out_channels, self)

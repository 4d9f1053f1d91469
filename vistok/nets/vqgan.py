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


def _mid(channels: int, dropout: float, groups: int, eps: float, attention: bool = True) -> nn.ModuleList:
    """res, attention, res — or res, identity, res without mid attention, so the keys stay ``mid.0`` / ``mid.2``."""
    return nn.ModuleList(
        [
            ResnetBlock(channels, channels, dropout, groups, eps),
            AttnBlock(channels, groups, eps) if attention else nn.Identity(),
            ResnetBlock(channels, channels, dropout, groups, eps),
        ]
    )


class VQGANEncoder(nn.Module):
    def __init__(self, in_channels: int, net: VQGAN):
        super().__init__()
        ch, mult, groups, eps = net.base_channels, net.channel_multiplier, net.norm_groups, net.norm_eps
        num_levels = len(mult)
        self.unit_range = net.pixel_range == "unit"
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.conv_blocks = nn.ModuleList()
        block_in = ch
        for level in range(num_levels):
            block = _Level()
            block_out = ch * mult[level]
            for _ in range(net.encoder_res_blocks[level]):
                block.res.append(ResnetBlock(block_in, block_out, net.dropout, groups, eps))
                block_in = block_out
                if level in net.attention_levels:
                    block.attn.append(AttnBlock(block_in, groups, eps))
            if level != num_levels - 1:
                block.downsample = Downsample(block_in)
            self.conv_blocks.append(block)
        self.mid = _mid(block_in, net.dropout, groups, eps, net.mid_attention)
        self.norm_out = group_norm(block_in, groups, eps)
        self.conv_out = nn.Conv2d(block_in, net.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unit_range:
            x = (x + 1) / 2
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
        ch, groups, eps = net.base_channels, net.norm_groups, net.norm_eps
        mult = net.decoder_channel_multiplier
        num_levels = len(mult)
        self.unit_range = net.pixel_range == "unit"
        block_in = ch * mult[-1]
        self.conv_in = nn.Conv2d(net.latent_channels, block_in, 3, padding=1)
        self.mid = _mid(block_in, net.dropout, groups, eps, net.mid_attention)
        self.conv_blocks = nn.ModuleList()
        for i in range(num_levels):
            level = num_levels - 1 - i  # the encoder level at this resolution
            block = _Level()
            block_out = ch * mult[level]
            for _ in range(net.decoder_res_blocks[level]):
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
        y = self.conv_out(F.silu(self.norm_out(h)))
        return 2 * y - 1 if self.unit_range else y


class DecoderUnavailableError(RuntimeError):
    """The tokenizer was loaded from a release that carries no decoder weights: it encodes only."""


class UnavailableDecoder(nn.Module):
    """Stands in for a decoder whose weights the release does not carry (no parameters): decoding raises
    :class:`DecoderUnavailableError` with ``message``, which says where the decoder weights are."""

    def __init__(self, message: str):
        super().__init__()
        self.message = message

    @property
    def last_layer(self) -> nn.Parameter:
        raise DecoderUnavailableError(self.message)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        raise DecoderUnavailableError(self.message)


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
        mid_attention: the single-head attention between the two mid residual blocks, on both sides (default
            ``True``, as Taming and LlamaGen). ``False`` (diffusers' ``mid_block_add_attention=False``, aMUSEd's
            VQ-GAN) leaves the two residual blocks back to back.
        pixel_range: the pixel range the network itself works in. vistok tokenizers always take and return
            [−1, 1]; ``"signed"`` (default) means the network does too. ``"unit"`` means it was trained on [0, 1]
            pixels (aMUSEd's VQ-GAN): the encoder maps its input by ``(x + 1) / 2`` and the decoder its output
            ``y`` by ``2y − 1``, so the tokenizer still takes and returns [−1, 1] and upstream's own output is
            ``(reconstruction + 1) / 2``.
        encoder_res_blocks: residual blocks per encoder level (level 0 first); ``None`` = ``num_res_blocks`` at
            every level.
        decoder_channel_multiplier: per-level multipliers of the decoder (level 0 first, same number of levels as
            the encoder); ``None`` = ``channel_multiplier``, the mirror of the encoder.
        decoder_res_blocks: residual blocks per decoder level (level 0, the full-resolution one, first); ``None`` =
            ``num_res_blocks + 1`` at every level, as Taming. Show-o's MAGVIT-v2 tokenizer sets these three: its
            encoder and decoder have different widths and per-level block counts.
        decoder_unavailable: ``None`` (default): the net has its decoder. A message: the release carries no decoder
            weights (transformers' Chameleon checkpoints), so the tokenizer is encode-only: it has no decoder
            parameters and decoding raises :class:`DecoderUnavailableError` with this message (which should say
            where the decoder weights are).
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
        mid_attention: bool = True,
        pixel_range: str = "signed",
        encoder_res_blocks: tuple[int, ...] | None = None,
        decoder_channel_multiplier: tuple[int, ...] | None = None,
        decoder_res_blocks: tuple[int, ...] | None = None,
        decoder_unavailable: str | None = None,
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
        self.pixel_range = pixel_range
        # None = Taming's mirror; the attributes hold the values used (what cards and the zoo's checks show)
        levels = len(self.channel_multiplier)
        self.encoder_res_blocks = [num_res_blocks] * levels if encoder_res_blocks is None else list(encoder_res_blocks)
        self.decoder_channel_multiplier = (
            list(self.channel_multiplier) if decoder_channel_multiplier is None else list(decoder_channel_multiplier)
        )
        self.decoder_res_blocks = [num_res_blocks + 1] * levels if decoder_res_blocks is None else list(decoder_res_blocks)
        self.decoder_unavailable = decoder_unavailable

    @property
    def is_mirrored(self) -> bool:
        """Whether the decoder mirrors the encoder as Taming's does (same widths, one more block per level)."""
        levels = len(self.channel_multiplier)
        return (
            self.encoder_res_blocks == [self.num_res_blocks] * levels
            and self.decoder_channel_multiplier == self.channel_multiplier
            and self.decoder_res_blocks == [self.num_res_blocks + 1] * levels
        )

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        cls.check_levels(spec)
        mult = spec["channel_multiplier"]
        levels = spec["attention_levels"]
        if levels is not None and any(not isinstance(lv, int) or not 0 <= lv < len(mult) for lv in levels):
            raise ValueError(f"vqgan attention_levels must be level indices in [0, {len(mult)}), got {levels!r}")
        cls.check_dropout_and_norm_eps(spec)
        cls.check_flags(spec, "mid_attention")
        cls.check_pixel_range(spec)
        for name in ("encoder_res_blocks", "decoder_channel_multiplier", "decoder_res_blocks"):
            value = spec[name]
            if value is None:
                continue
            if (
                not isinstance(value, list)
                or len(value) != len(mult)
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
            ):
                raise ValueError(
                    f"vqgan {name} must be null or a list of {len(mult)} positive ints (one per level, as "
                    f"channel_multiplier), got {value!r}"
                )
        message = spec["decoder_unavailable"]
        if message is not None and (not isinstance(message, str) or not message.strip()):
            raise ValueError(f"vqgan decoder_unavailable must be null or a message, got {message!r}")
        for m in spec["decoder_channel_multiplier"] or ():
            if (spec["base_channels"] * m) % spec["norm_groups"]:
                raise ValueError(
                    f"vqgan decoder width {spec['base_channels'] * m} (base_channels × decoder_channel_multiplier) "
                    f"is not divisible by norm_groups={spec['norm_groups']}"
                )


    def build_encoder(self, in_channels: int) -> nn.Module:
        return VQGANEncoder(in_channels, self)

    def build_decoder(self, out_channels: int) -> nn.Module:
        if self.decoder_unavailable is not None:
            return UnavailableDecoder(self.decoder_unavailable)
        return VQGANDecoder(out_channels, self)

"""TiTok's 1-D tokenizer network (Yu et al., 2024; bytedance/1d-tokenizer, single-stage models, ``is_legacy`` false).

A ViT encoder reads the image patches together with ``num_latent_tokens`` learnable latent tokens and keeps only the
latent tokens; a ViT decoder reads those (quantized) tokens together with one mask token per patch and paints the
patches. The latent is therefore a sequence, not a grid (:mod:`vistok.layouts`): the encoder returns
(B, token_size, 1, L) and the tokenizer's indices are (B, L).

What a port must match (checked against ``titok_bl64_vq8k_state_dict_spec.json`` and the reference README):

- Encoder: conv patch embedding (kernel = stride = patch) → ``[class_embedding, patches] + positional_embedding``,
  followed by ``latent_tokens + latent_token_positional_embedding`` → ``ln_pre`` → pre-LN transformer blocks →
  ``ln_post`` on the latent tokens only → the (B, L, width) tokens as a (B, width, L, 1) map → 1×1 ``conv_out`` →
  reshaped to (B, token_size, 1, L).
- Decoder: ``decoder_embed`` (linear token_size → width) of the codes ``+ latent_token_positional_embedding`` is
  appended to ``[class_embedding, grid² × mask_token] + positional_embedding`` → ``ln_pre`` → blocks → tokens
  1..grid² → ``ln_post`` → (B, width, grid, grid) → 1×1 conv ``ffn.0`` to p·p·C channels → rearrange
  ``b (p1 p2 c) h w -> b c (h p1) (w p2)`` (:func:`~vistok.nets.magvit2.depth_to_space`) → 3×3 ``conv_out``.
- Blocks: ``x + attn(ln_1(x))``, ``x + mlp(ln_2(x))`` with ``nn.MultiheadAttention`` (packed ``in_proj_weight``,
  sequence-first as upstream), LayerNorm eps 1e-5, MLP 4× width with exact GELU (``mlp.c_fc`` / ``mlp.c_proj``).
- The head count does not show in the weights; upstream's sizes are small / base / large = 8 / 12 / 16 heads.

Module names are upstream's, so an upstream checkpoint's ``encoder.*`` / ``decoder.*`` keys are vistok's unchanged;
only the top-level ``latent_tokens`` moves into the encoder (``encoder.latent_tokens``) and the codebook is renamed
(see :mod:`vistok.convert.titok`). Upstream has no ``quant_conv``: with the default ``quant_conv=False`` the
quantizer sees ``token_size`` channels.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from ..registry import NETS
from .base import NetFamily, check_positive_ints
from .magvit2 import depth_to_space

MLP_RATIO = 4


class ResidualAttentionBlock(GradientCheckpointingLayer):
    """Pre-LN transformer block on sequence-first (L, B, width) tokens: ``x + attn(ln_1(x))``, then
    ``x + mlp(ln_2(x))`` with a 4× exact-GELU MLP."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, MLP_RATIO * width),
                gelu=nn.GELU(),
                c_proj=nn.Linear(MLP_RATIO * width, width),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


def _transformer(width: int, depth: int, heads: int) -> nn.ModuleList:
    return nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(depth))


def _run_blocks(blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """(B, N, width) → (B, N, width) through the sequence-first blocks."""
    x = x.permute(1, 0, 2)
    for block in blocks:
        x = block(x)
    return x.permute(1, 0, 2)


def _embedding(*shape: int, width: int) -> nn.Parameter:
    """A learnt embedding initialised as upstream's: N(0, 1/width)."""
    return nn.Parameter(width**-0.5 * torch.randn(*shape))


class TitokEncoder(nn.Module):
    """Images (B, C, image_size, image_size) → latent tokens (B, token_size, 1, num_latent_tokens)."""

    def __init__(self, in_channels: int, net: Titok):
        super().__init__()
        width, patch = net.encoder_width, net.encoder_patch_size
        self.image_size = net.image_size
        self.grid_size = net.image_size // patch
        self.num_latent_tokens = net.num_latent_tokens
        self.token_size = net.token_size
        self.unit_range = net.pixel_range == "unit"
        self.latent_tokens = _embedding(net.num_latent_tokens, width, width=width)
        self.class_embedding = _embedding(1, width, width=width)
        self.positional_embedding = _embedding(self.grid_size**2 + 1, width, width=width)
        self.latent_token_positional_embedding = _embedding(net.num_latent_tokens, width, width=width)
        self.patch_embed = nn.Conv2d(in_channels, width, patch, stride=patch)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _transformer(width, net.encoder_depth, net.encoder_heads)
        self.ln_post = nn.LayerNorm(width)
        self.conv_out = nn.Conv2d(width, net.token_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if (h, w) != (self.image_size, self.image_size):
            raise ValueError(
                f"this TiTok encoder takes {self.image_size}×{self.image_size} images (its position embeddings are "
                f"fixed), got {h}×{w}"
            )
        if self.unit_range:
            x = (x + 1) / 2  # the network was trained on [0, 1] pixels
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, grid², width)
        cls = self.class_embedding.to(patches.dtype).expand(b, -1, -1)
        image_tokens = torch.cat([cls, patches], dim=1) + self.positional_embedding.to(patches.dtype)
        latent = self.latent_tokens + self.latent_token_positional_embedding
        tokens = torch.cat([image_tokens, latent.to(patches.dtype).expand(b, -1, -1)], dim=1)
        tokens = _run_blocks(self.transformer, self.ln_pre(tokens))
        latent = self.ln_post(tokens[:, 1 + self.grid_size**2 :])  # (B, L, width)
        latent = self.conv_out(latent.transpose(1, 2).unsqueeze(-1))  # (B, token_size, L, 1)
        return latent.reshape(b, self.token_size, 1, self.num_latent_tokens)


class TitokDecoder(nn.Module):
    """Latent tokens (B, token_size, 1, num_latent_tokens) → images (B, C, image_size, image_size), unclamped."""

    def __init__(self, out_channels: int, net: Titok):
        super().__init__()
        width, patch = net.decoder_width, net.decoder_patch_size
        self.grid_size = net.image_size // patch
        self.patch_size = patch
        self.num_latent_tokens = net.num_latent_tokens
        self.token_size = net.token_size
        self.width = width
        self.unit_range = net.pixel_range == "unit"
        self.class_embedding = _embedding(1, width, width=width)
        self.positional_embedding = _embedding(self.grid_size**2 + 1, width, width=width)
        self.mask_token = _embedding(1, 1, width, width=width)
        self.latent_token_positional_embedding = _embedding(net.num_latent_tokens, width, width=width)
        self.decoder_embed = nn.Linear(net.token_size, width)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _transformer(width, net.decoder_depth, net.decoder_heads)
        self.ln_post = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Conv2d(width, patch * patch * out_channels, 1))
        self.conv_out = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    @property
    def last_layer(self) -> nn.Parameter:
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        if (c, h, w) != (self.token_size, 1, self.num_latent_tokens):
            raise ValueError(
                f"this TiTok decoder takes latent tokens of shape (B, {self.token_size}, 1, {self.num_latent_tokens}), "
                f"got {tuple(z.shape)}"
            )
        codes = self.decoder_embed(z.reshape(b, c, w).transpose(1, 2))  # (B, L, width)
        codes = codes + self.latent_token_positional_embedding.to(codes.dtype)
        masks = self.mask_token.to(codes.dtype).expand(b, self.grid_size**2, -1)
        cls = self.class_embedding.to(codes.dtype).expand(b, -1, -1)
        image_tokens = torch.cat([cls, masks], dim=1) + self.positional_embedding.to(codes.dtype)
        tokens = _run_blocks(self.transformer, self.ln_pre(torch.cat([image_tokens, codes], dim=1)))
        patches = self.ln_post(tokens[:, 1 : 1 + self.grid_size**2])  # (B, grid², width)
        patches = patches.transpose(1, 2).reshape(b, self.width, self.grid_size, self.grid_size)
        pixels = depth_to_space(self.ffn(patches), self.patch_size)  # b (p1 p2 c) h w -> b c (h p1) (w p2)
        y = self.conv_out(pixels)
        return 2 * y - 1 if self.unit_range else y


@NETS.register("titok")
class Titok(NetFamily):
    """TiTok's ViT encoder / decoder with learnable latent tokens (a 1-D token sequence). The defaults are
    TiTok-BL-64 (``titok_bl64_vq8k``: base encoder, large decoder, patch 16, 64 tokens of 64 channels, 256 px).

    Args:
        image_size: the one image size the net takes (its position embeddings are fixed); must equal the
            tokenizer's ``image_size``.
        encoder_patch_size, decoder_patch_size: ViT patch sizes (upstream ``vit_enc_patch_size`` /
            ``vit_dec_patch_size``); each must divide ``image_size``.
        encoder_width, encoder_depth, encoder_heads: the encoder ViT (upstream small / base / large:
            512, 8, 8 / 768, 12, 12 / 1024, 24, 16).
        decoder_width, decoder_depth, decoder_heads: the decoder ViT, likewise.
        num_latent_tokens: L, the number of tokens an image becomes.
        token_size: channels of a latent token (the quantizer's ``codebook_dim`` unless ``quant_conv``).
        quant_conv: put vistok's 1×1 ``quant_conv`` / ``post_quant_conv`` around the quantizer. Upstream has none
            (``False``).
        pixel_range: the pixel range the network itself works in; vistok tokenizers always take and return
            [−1, 1]. ``"signed"`` (default): the network works on [−1, 1] too. ``"unit"``: it was trained on
            [0, 1] pixels, as every released TiTok was; the encoder then maps its input by ``(x + 1) / 2`` and the
            decoder maps its output ``y`` by ``2y − 1`` (the same option as the ``maskgit`` net's). The decoder
            does not clamp.
    """

    latent_kind = "sequence"
    tiny = {
        "image_size": 16,
        "encoder_patch_size": 4,
        "decoder_patch_size": 4,
        "encoder_width": 16,
        "encoder_depth": 1,
        "encoder_heads": 2,
        "decoder_width": 16,
        "decoder_depth": 1,
        "decoder_heads": 2,
        "num_latent_tokens": 6,
        "token_size": 8,
        "quant_conv": True,  # the tiny net must fit every quantizer's codebook_dim
    }

    def __init__(
        self,
        image_size: int = 256,
        encoder_patch_size: int = 16,
        decoder_patch_size: int = 16,
        encoder_width: int = 768,
        encoder_depth: int = 12,
        encoder_heads: int = 12,
        decoder_width: int = 1024,
        decoder_depth: int = 24,
        decoder_heads: int = 16,
        num_latent_tokens: int = 64,
        token_size: int = 64,
        quant_conv: bool = False,
        pixel_range: str = "signed",
    ):
        self.image_size = image_size
        self.encoder_patch_size = encoder_patch_size
        self.decoder_patch_size = decoder_patch_size
        self.encoder_width = encoder_width
        self.encoder_depth = encoder_depth
        self.encoder_heads = encoder_heads
        self.decoder_width = decoder_width
        self.decoder_depth = decoder_depth
        self.decoder_heads = decoder_heads
        self.num_latent_tokens = num_latent_tokens
        self.token_size = token_size
        self.quant_conv = quant_conv
        self.pixel_range = pixel_range

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive_ints(
            spec,
            "image_size",
            "encoder_patch_size",
            "decoder_patch_size",
            "encoder_width",
            "encoder_depth",
            "encoder_heads",
            "decoder_width",
            "decoder_depth",
            "decoder_heads",
            "num_latent_tokens",
            "token_size",
        )
        for part in ("encoder", "decoder"):
            patch = spec[f"{part}_patch_size"]
            if spec["image_size"] % patch:
                raise ValueError(
                    f"titok {part}_patch_size ({patch}) must divide image_size ({spec['image_size']})"
                )
            width, heads = spec[f"{part}_width"], spec[f"{part}_heads"]
            if width % heads:
                raise ValueError(f"titok {part}_width ({width}) must be divisible by {part}_heads ({heads})")
        cls.check_flags(spec, "quant_conv")
        cls.check_pixel_range(spec)

    @property
    def latent_channels(self) -> int:
        return self.token_size

    @property
    def downsample_factor(self) -> int:
        """The encoder's patch size: images are cut into (image_size / patch)² patches."""
        return self.encoder_patch_size

    @property
    def uses_quant_conv(self) -> bool:
        return self.quant_conv

    def build_encoder(self, in_channels: int) -> nn.Module:
        return TitokEncoder(in_channels, self)

    def build_decoder(self, out_channels: int) -> nn.Module:
        return TitokDecoder(out_channels, self)


# ------------------------------------------------------------------------------------- upstream key layout
def upstream_key_to_vistok(key: str) -> str | None:
    """The vistok state-dict key of a TiTok (``modeling/titok.py``) key: ``encoder.*`` / ``decoder.*`` unchanged,
    the top-level ``latent_tokens`` → ``encoder.latent_tokens``, ``quantize.embedding.weight`` →
    ``quantizer.codebook``; ``None`` for anything else."""
    if key.startswith(("encoder.", "decoder.")):
        return key
    if key == "latent_tokens":
        return "encoder.latent_tokens"
    if key == "quantize.embedding.weight":
        return "quantizer.codebook"
    return None

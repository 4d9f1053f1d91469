"""The modules a :class:`~vistok.VisTokenizerConfig` describes, built in one place.

:class:`~vistok.VisTokenizer` is made of exactly these modules; the model card counts a config's parameters from
them without building (or importing) the model class.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .configuration import VisTokenizerConfig
from .quantizers.base import Quantizer
from .registry import QUANTIZERS


@dataclass
class TokenizerModules:
    """encoder → quant_conv → quantizer → post_quant_conv → decoder, and the encoder's downsample factor."""

    encoder: nn.Module
    quant_conv: nn.Module  # nn.Conv2d, or nn.Identity for a family without them (no parameters, no keys)
    quantizer: Quantizer
    post_quant_conv: nn.Module
    decoder: nn.Module
    downsample_factor: int

    def num_parameters(self) -> int:
        modules = (self.encoder, self.quant_conv, self.quantizer, self.post_quant_conv, self.decoder)
        return sum(p.numel() for module in modules for p in module.parameters())


def build_modules(config: VisTokenizerConfig) -> TokenizerModules:
    """Freshly initialised modules for ``config`` (on the current default device: use ``torch.device("meta")``
    to only inspect shapes)."""
    family = config.net_family()
    qspec = dict(config.quantizer)
    quantizer = QUANTIZERS.get(qspec.pop("type"))(**qspec)
    if hasattr(family, "bind_codebook_dim"):
        # a net that holds its own quant convs (MoVQ: its decoder is conditioned on the codes themselves)
        family.bind_codebook_dim(quantizer.codebook_dim)
    if family.uses_quant_conv:
        k = getattr(family, "quant_conv_kernel_size", 1)  # 1×1 unless the family says otherwise (VAR's are 3×3)
        quant_conv = nn.Conv2d(family.latent_channels, quantizer.codebook_dim, k, padding=k // 2)
        post_quant_conv = nn.Conv2d(quantizer.codebook_dim, family.latent_channels, k, padding=k // 2)
    else:
        if family.latent_channels != quantizer.codebook_dim:
            raise ValueError(
                f"the {config.net['type']} net has no quant_conv: its latent_channels ({family.latent_channels}) "
                f"must equal the quantizer's codebook_dim ({quantizer.codebook_dim})"
            )
        quant_conv, post_quant_conv = nn.Identity(), nn.Identity()
    return TokenizerModules(
        encoder=family.build_encoder(config.num_channels),
        quant_conv=quant_conv,
        quantizer=quantizer,
        post_quant_conv=post_quant_conv,
        decoder=family.build_decoder(config.num_channels),
        downsample_factor=family.downsample_factor,
    )

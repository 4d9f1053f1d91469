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
    quant_conv: nn.Conv2d
    quantizer: Quantizer
    post_quant_conv: nn.Conv2d
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
    return TokenizerModules(
        encoder=family.build_encoder(config.num_channels),
        quant_conv=nn.Conv2d(family.latent_channels, quantizer.codebook_dim, 1),
        quantizer=quantizer,
        post_quant_conv=nn.Conv2d(quantizer.codebook_dim, family.latent_channels, 1),
        decoder=family.build_decoder(config.num_channels),
        downsample_factor=family.downsample_factor,
    )

"""What a registered net family provides to the tokenizer."""

from __future__ import annotations

from torch import nn


class NetFamily:
    """A registered encoder/decoder family. Its ``__init__`` keyword arguments are the ``net`` config options.

    ``build_encoder(C)`` maps images (B, C, H, W) to latents (B, latent_channels, H/f, W/f);
    ``build_decoder(C)`` maps latents back to (B, C, H, W); f = ``downsample_factor``. The decoder module exposes
    ``last_layer`` (the weight whose gradient norms set the adaptive GAN weight).
    """

    registered_name: str = ""
    #: Options of the smallest sensible instance, used by the common tests and examples.
    tiny: dict = {}

    @property
    def latent_channels(self) -> int:
        raise NotImplementedError

    @property
    def downsample_factor(self) -> int:
        raise NotImplementedError

    @property
    def uses_quant_conv(self) -> bool:
        """Whether the tokenizer puts 1×1 ``quant_conv`` / ``post_quant_conv`` between the net and the quantizer.
        A family without them (Open-MAGVIT2's) returns ``False``: its latents are the quantizer's input and the
        quantized codes are its decoder's input, so ``latent_channels`` must equal the quantizer's ``codebook_dim``."""
        return True

    def build_encoder(self, in_channels: int) -> nn.Module:
        raise NotImplementedError

    def build_decoder(self, out_channels: int) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        """Raise ``ValueError`` naming the bad option when a normalised spec is invalid."""


def check_positive_ints(spec: dict, *names: str) -> None:
    for name in names:
        value = spec[name]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"net option {name!r} must be a positive integer, got {value!r}")

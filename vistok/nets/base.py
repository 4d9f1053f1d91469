"""What a registered net family provides to the tokenizer."""

from __future__ import annotations

from torch import nn

#: Pixel ranges a net can have been trained on: ``"signed"`` [-1, 1] (vistok's contract) or ``"unit"`` [0, 1] (the
#: net maps its input by (x + 1) / 2 and its output y by 2y - 1, so the tokenizer still takes and returns [-1, 1]).
PIXEL_RANGES = ("signed", "unit")


class NetFamily:
    """A registered encoder/decoder family. Its ``__init__`` keyword arguments are the ``net`` config options.

    ``build_encoder(C)`` maps images (B, C, H, W) to latents (B, latent_channels, H/f, W/f);
    ``build_decoder(C)`` maps latents back to (B, C, H, W); f = ``downsample_factor``. The decoder module exposes
    ``last_layer`` (the weight whose gradient norms set the adaptive GAN weight).
    """

    registered_name: str = ""
    #: Options of the smallest sensible instance, used by the common tests and examples.
    tiny: dict = {}
    #: ``"grid"``: the latent is (B, D, H/f, W/f), one token per position; ``"sequence"``: the encoder emits a fixed
    #: number of latent tokens (``num_latent_tokens``) as a (B, D, 1, L) latent (see :mod:`vistok.layouts`).
    latent_kind: str = "grid"
    num_latent_tokens: int | None = None

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

    # Checks several families share; each raises ValueError naming the family and the option.
    @classmethod
    def check_flags(cls, spec: dict, *names: str) -> None:
        """Each of ``names`` is ``True`` or ``False``."""
        for name in names:
            if not isinstance(spec[name], bool):
                raise ValueError(f"{cls.registered_name} {name} must be true or false, got {spec[name]!r}")

    @classmethod
    def check_dropout_and_norm_eps(cls, spec: dict) -> None:
        """``dropout`` (when the family has it) is a number in [0, 1); ``norm_eps`` (when it has one) is positive."""
        dropout = spec.get("dropout", 0.0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{cls.registered_name} dropout must be a number in [0, 1), got {dropout!r}")
        eps = spec.get("norm_eps", 1.0)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"{cls.registered_name} norm_eps must be a positive number, got {eps!r}")

    @classmethod
    def check_pixel_range(cls, spec: dict) -> None:
        """``pixel_range`` is one of :data:`PIXEL_RANGES`."""
        if spec["pixel_range"] not in PIXEL_RANGES:
            raise ValueError(
                f"{cls.registered_name} pixel_range must be one of {', '.join(repr(r) for r in PIXEL_RANGES)} "
                f"('signed': the network works on [-1, 1] pixels; 'unit': on [0, 1]), got {spec['pixel_range']!r}"
            )


class LevelledNetFamily(NetFamily):
    """A convolutional family built in levels of ``base_channels × channel_multiplier[i]`` channels, with one 2×
    resampling between consecutive levels (so f = 2^(levels − 1)) and GroupNorm of ``norm_groups`` groups.
    Subclasses set ``channel_multiplier`` (list) and ``latent_channels_`` in ``__init__``."""

    channel_multiplier: list[int]
    latent_channels_: int
    # the smallest build of a levelled family (f = 2, 8 latent channels) for the common tests; spread it, never mutate
    tiny = {
        "base_channels": 8,
        "channel_multiplier": [1, 2],
        "num_res_blocks": 1,
        "latent_channels": 8,
        "norm_groups": 4,
    }

    @property
    def latent_channels(self) -> int:
        return self.latent_channels_

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_multiplier) - 1)

    @classmethod
    def check_levels(cls, spec: dict) -> None:
        """``ValueError`` naming the option unless the channel counts are positive ints, ``channel_multiplier`` is a
        non-empty list of positive ints and every level's width divides into ``norm_groups`` groups."""
        check_positive_ints(spec, "base_channels", "num_res_blocks", "latent_channels", "norm_groups")
        mult = spec["channel_multiplier"]
        if (
            not isinstance(mult, list)
            or not mult
            or not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in mult)
        ):
            raise ValueError(
                f"{cls.registered_name} channel_multiplier must be a non-empty list of positive ints, got {mult!r}"
            )
        for m in mult:
            if (spec["base_channels"] * m) % spec["norm_groups"]:
                raise ValueError(
                    f"{cls.registered_name}: every level width base_channels*multiplier "
                    f"({spec['base_channels'] * m}) must be divisible by norm_groups ({spec['norm_groups']})"
                )


def check_positive_ints(spec: dict, *names: str) -> None:
    for name in names:
        value = spec[name]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"net option {name!r} must be a positive integer, got {value!r}")

"""The full tokenizer training objective: reconstruction + perceptual + quantizer terms + adversarial.

    generator:      L = w_rec·rec + w_lpips·LPIPS + w_q·(quantizer's weighted terms + b(step)·entropy_loss)
                        + λ·w_adv·g(D(x̂))
    discriminator:  L_D = d(D(x), D(x̂)) + w_lecam·R_LC          (adversarial terms only from ``adversarial_start`` on)

λ is Taming's adaptive weight (‖∇ nll‖ / ‖∇ g‖ at the decoder's last layer) when ``adaptive_weight`` is on,
else 1. b(step) is the entropy boost (:func:`~vistok.losses.schedules.entropy_boost_factor`, off by default) and
R_LC the LeCam regulariser (:mod:`vistok.losses.lecam`, off by default). Returned terms are detached floats for
logging, named ``*_loss`` / ``*_weight``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from .adversarial import (
    ADVERSARIAL_LOSSES,
    adaptive_generator_weight,
    adversarial_factor,
    discriminator_loss,
    generator_loss,
)
from .discriminator import NLayerDiscriminator
from .lecam import LeCamAnchors, lecam_penalty
from .perceptual import LPIPSLoss
from .reconstruction import RECONSTRUCTION_LOSSES, reconstruction_loss
from .schedules import entropy_boost_factor


@dataclass
class LossConfig:
    """Weights and kinds of every loss term (all JSON-native, so recipes and model cards can carry them)."""

    reconstruction: str = "l2"
    reconstruction_weight: float = 1.0
    perceptual_weight: float = 0.0
    perceptual_weights: str | None = None  # path to VGG16 weights for LPIPS (see vistok.losses.perceptual)
    quantizer_weight: float = 1.0  # multiplies the quantizer's own (already weighted) loss sum
    adversarial_weight: float = 0.0  # 0 disables the discriminator entirely
    adversarial_start: int = 0
    discriminator_loss: str = "hinge"
    generator_loss: str = "hinge"
    adaptive_weight: bool = True
    discriminator: dict = field(default_factory=lambda: {"base_channels": 64, "num_layers": 3, "norm": "batch"})
    lecam_weight: float = 0.0  # LeCam regulariser on the discriminator (vistok.losses.lecam); 0 = off
    lecam_decay: float = 0.999  # EMA decay of its real / fake logit anchors
    entropy_boost: float = 0.0  # the quantizer's entropy_loss weighs 1 + boost·max(0, 1 − step/steps); 0 = off
    entropy_boost_steps: int = 2000

    def __post_init__(self):
        if self.reconstruction not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"loss.reconstruction must be one of {list(RECONSTRUCTION_LOSSES)}, got {self.reconstruction!r}")
        for name in ("discriminator_loss", "generator_loss"):
            if getattr(self, name) not in ADVERSARIAL_LOSSES:
                raise ValueError(f"loss.{name} must be one of {list(ADVERSARIAL_LOSSES)}, got {getattr(self, name)!r}")
        for name in ("reconstruction_weight", "perceptual_weight", "quantizer_weight", "adversarial_weight",
                     "lecam_weight", "entropy_boost"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.lecam_decay < 1.0:
            raise ValueError(f"loss.lecam_decay must be in [0, 1), got {self.lecam_decay}")
        if self.entropy_boost_steps < 1:
            raise ValueError(f"loss.entropy_boost_steps must be >= 1, got {self.entropy_boost_steps}")
        if self.lecam_weight > 0 and self.adversarial_weight == 0:
            raise ValueError("loss.lecam_weight > 0 regularises the discriminator, which adversarial_weight 0 disables")
        allowed = {"base_channels", "num_layers", "norm"}
        unknown = set(self.discriminator) - allowed
        if unknown:
            raise ValueError(f"unknown loss.discriminator keys {sorted(unknown)}; valid: {sorted(allowed)}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LossOutput:
    """``loss``: the scalar to backpropagate; ``terms``: detached named values for logging."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


class TokenizerLoss(nn.Module):
    """Computes the generator (tokenizer) and discriminator objectives from a :class:`LossConfig`.

    Holds the frozen LPIPS network when ``perceptual_weight > 0`` (built from ``perceptual_weights`` unless a
    ``perceptual`` module ``(reconstruction, target) -> scalar`` is passed in); the discriminator is a separate module (build it
    with :meth:`build_discriminator`) so that it can have its own optimiser and distributed wrapper.
    """

    def __init__(self, config: LossConfig, perceptual: nn.Module | None = None):
        super().__init__()
        self.config = config
        if config.perceptual_weight > 0 and perceptual is None:
            perceptual = LPIPSLoss(config.perceptual_weights)
        self.perceptual = perceptual if config.perceptual_weight > 0 else None

    @property
    def uses_discriminator(self) -> bool:
        return self.config.adversarial_weight > 0

    def build_discriminator(self, input_channels: int = 3) -> NLayerDiscriminator:
        """The PatchGAN of ``config.discriminator``; with ``lecam_weight > 0`` it carries the LeCam anchors as its
        submodule ``lecam`` (buffers: saved and restored with the discriminator's state)."""
        discriminator = NLayerDiscriminator(input_channels=input_channels, **self.config.discriminator)
        if self.config.lecam_weight > 0:
            discriminator.lecam = LeCamAnchors(self.config.lecam_decay)
        return discriminator

    def adversarial_active(self, step: int) -> bool:
        return self.uses_discriminator and adversarial_factor(step, self.config.adversarial_start) > 0

    def generator_loss(
        self,
        pixel_values: torch.Tensor,
        output,
        step: int,
        last_layer: torch.Tensor | None = None,
        discriminator: nn.Module | None = None,
    ) -> LossOutput:
        """Tokenizer objective for one batch; ``output`` is the tokenizer's ``TokenizerOutput``.

        ``last_layer`` (``tok.get_last_layer()``) is needed for the adaptive weight; ``discriminator`` once the
        adversarial term is active (``step >= adversarial_start``).
        """
        cfg = self.config
        reconstruction = output.reconstruction
        terms: dict[str, torch.Tensor] = {}
        rec = reconstruction_loss(reconstruction.float(), pixel_values.float(), cfg.reconstruction)
        terms["reconstruction_loss"] = rec
        nll = cfg.reconstruction_weight * rec
        if self.perceptual is not None:
            perceptual = self.perceptual(reconstruction, pixel_values)
            terms["perceptual_loss"] = perceptual
            nll = nll + cfg.perceptual_weight * perceptual
        total = nll
        if output.loss is not None:
            total = total + cfg.quantizer_weight * output.loss
            terms["quantizer_loss"] = output.loss
        for name, value in (output.losses or {}).items():
            terms[name] = value
        boost = entropy_boost_factor(step, cfg.entropy_boost, cfg.entropy_boost_steps)
        if boost > 0:
            if "entropy_loss" not in (output.losses or {}):
                raise ValueError(
                    f"loss.entropy_boost {cfg.entropy_boost} boosts the quantizer's entropy_loss, but this quantizer "
                    f"returned only {sorted(output.losses or {})} (give it an entropy weight, or set entropy_boost 0)"
                )
            total = total + cfg.quantizer_weight * boost * output.losses["entropy_loss"]
            terms["entropy_boost_weight"] = torch.tensor(boost)
        if self.adversarial_active(step):
            if discriminator is None:
                raise ValueError(f"step {step} >= adversarial_start: a discriminator must be passed")
            g_loss = generator_loss(discriminator(reconstruction), cfg.generator_loss)
            weight = torch.tensor(1.0, device=g_loss.device)
            if cfg.adaptive_weight and torch.is_grad_enabled():
                if last_layer is None:
                    raise ValueError("adaptive_weight needs last_layer (the tokenizer's get_last_layer())")
                weight = adaptive_generator_weight(nll, g_loss, last_layer)
            total = total + weight * cfg.adversarial_weight * g_loss
            terms["generator_adversarial_loss"] = g_loss
            terms["adaptive_weight"] = weight
        terms["loss"] = total
        return LossOutput(loss=total, terms={k: v.detach().float() for k, v in terms.items()})

    def discriminator_loss(
        self, pixel_values: torch.Tensor, reconstruction: torch.Tensor, step: int, discriminator: nn.Module
    ) -> LossOutput:
        """Discriminator objective on real ``pixel_values`` vs. detached ``reconstruction``."""
        logits_real = discriminator(pixel_values.detach())
        logits_fake = discriminator(reconstruction.detach())
        factor = adversarial_factor(step, self.config.adversarial_start)
        loss = discriminator_loss(logits_real, logits_fake, self.config.discriminator_loss)
        terms = {"logits_real": logits_real.mean(), "logits_fake": logits_fake.mean()}
        if self.config.lecam_weight > 0:
            anchors = _lecam_anchors(discriminator)
            anchors.update(logits_real, logits_fake)  # first, as Open-MAGVIT2 does
            penalty = lecam_penalty(logits_real, logits_fake, anchors.real, anchors.fake)
            loss = loss + self.config.lecam_weight * penalty
            terms["lecam_loss"] = penalty
        loss = factor * loss
        terms["discriminator_loss"] = loss
        return LossOutput(loss=loss, terms={k: v.detach().float() for k, v in terms.items()})


def _lecam_anchors(discriminator: nn.Module) -> LeCamAnchors:
    """The LeCam anchors a discriminator from :meth:`TokenizerLoss.build_discriminator` carries (also through a
    DistributedDataParallel wrapper)."""
    anchors = getattr(getattr(discriminator, "module", discriminator), "lecam", None)
    if not isinstance(anchors, LeCamAnchors):
        raise ValueError(
            "loss.lecam_weight > 0 needs the discriminator built by TokenizerLoss.build_discriminator(), which "
            f"carries the LeCam anchors as `.lecam`; got a {type(discriminator).__name__} without them"
        )
    return anchors

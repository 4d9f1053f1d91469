"""Training losses: pixel reconstruction, LPIPS perceptual, PatchGAN adversarial, and the combined objective."""

from .adversarial import (
    ADVERSARIAL_LOSSES,
    adaptive_generator_weight,
    adversarial_factor,
    discriminator_loss,
    generator_loss,
)
from .discriminator import DISCRIMINATOR_NORMS, NLayerDiscriminator
from .objective import LossConfig, LossOutput, TokenizerLoss
from .perceptual import LPIPSLoss, PerceptualWeightsNotFoundError
from .reconstruction import RECONSTRUCTION_LOSSES, reconstruction_loss

__all__ = [
    "ADVERSARIAL_LOSSES",
    "DISCRIMINATOR_NORMS",
    "LPIPSLoss",
    "LossConfig",
    "LossOutput",
    "NLayerDiscriminator",
    "PerceptualWeightsNotFoundError",
    "RECONSTRUCTION_LOSSES",
    "TokenizerLoss",
    "adaptive_generator_weight",
    "adversarial_factor",
    "discriminator_loss",
    "generator_loss",
    "reconstruction_loss",
]

"""Training losses: pixel reconstruction, LPIPS perceptual, PatchGAN adversarial, LeCam regularisation, entropy boost,
and the combined objective."""

from .adversarial import (
    ADVERSARIAL_LOSSES,
    adaptive_generator_weight,
    adversarial_factor,
    discriminator_loss,
    generator_loss,
)
from .discriminator import DISCRIMINATOR_NORMS, NLayerDiscriminator
from .lecam import LeCamAnchors, lecam_penalty
from .objective import LossConfig, LossOutput, TokenizerLoss
from .perceptual import LPIPSLoss, PerceptualWeightsNotFoundError
from .reconstruction import RECONSTRUCTION_LOSSES, reconstruction_loss
from .schedules import entropy_boost_factor

__all__ = [
    "ADVERSARIAL_LOSSES",
    "DISCRIMINATOR_NORMS",
    "LPIPSLoss",
    "LeCamAnchors",
    "LossConfig",
    "LossOutput",
    "NLayerDiscriminator",
    "PerceptualWeightsNotFoundError",
    "RECONSTRUCTION_LOSSES",
    "TokenizerLoss",
    "adaptive_generator_weight",
    "adversarial_factor",
    "discriminator_loss",
    "entropy_boost_factor",
    "generator_loss",
    "lecam_penalty",
    "reconstruction_loss",
]

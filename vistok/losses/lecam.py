"""LeCam regularisation of the discriminator (Tseng et al., "Regularizing Generative Adversarial Networks under
Limited Data", CVPR 2021), in the form Open-MAGVIT2 trains with.

The discriminator's mean logits on real and on generated images are tracked as exponential moving averages
``α_R`` and ``α_F`` (the anchors), and the discriminator is penalised for pushing its outputs past the other
side's anchor::

    R_LC = E[relu(D(x) − α_F)²] + E[relu(α_R − D(x̂))²]

The ``relu`` is the paper's code and SEED-Voken's (``lecam_reg``): only outputs beyond the opposite anchor are
penalised. As upstream, the anchors start at 0, are updated with the current batch before the penalty is computed
(decay 0.999, no bias correction) and are kept per process (not averaged over data-parallel ranks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeCamAnchors(nn.Module):
    """The two anchors ``α_R`` (``real``) and ``α_F`` (``fake``): EMAs of the mean real / fake logits, float32 scalars.

    They are buffers, so they travel with the module they are attached to (vistok attaches them to the
    discriminator, whose state every training checkpoint saves: a resumed run continues from the same anchors).
    """

    def __init__(self, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"LeCam anchor decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("real", torch.zeros((), dtype=torch.float32))
        self.register_buffer("fake", torch.zeros((), dtype=torch.float32))

    @torch.no_grad()
    def update(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> None:
        """``α ← decay · α + (1 − decay) · mean(logits)`` for both anchors."""
        for anchor, logits in ((self.real, logits_real), (self.fake, logits_fake)):
            anchor.mul_(self.decay).add_((1.0 - self.decay) * logits.detach().float().mean())

    def extra_repr(self) -> str:
        return f"decay={self.decay}"


def lecam_penalty(
    logits_real: torch.Tensor, logits_fake: torch.Tensor, anchor_real: torch.Tensor, anchor_fake: torch.Tensor
) -> torch.Tensor:
    """``E[relu(D(x) − α_F)²] + E[relu(α_R − D(x̂))²]`` (a float32 scalar that backpropagates to the logits only)."""
    anchor_real, anchor_fake = anchor_real.detach(), anchor_fake.detach()
    return (
        F.relu(logits_real.float() - anchor_fake).pow(2).mean()
        + F.relu(anchor_real - logits_fake.float()).pow(2).mean()
    )

"""GAN objectives for tokenizer training: discriminator / generator losses, start step, adaptive weight."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ADVERSARIAL_LOSSES = ("hinge", "non_saturating", "non_saturating_per_image")


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown adversarial loss {kind!r}; valid: {list(ADVERSARIAL_LOSSES)}")


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Discriminator objective, averaged over patches and halved over the two terms (Taming's convention).

    hinge: ½(E[relu(1 − D(x))] + E[relu(1 + D(x̂))]); non_saturating: ½(E[softplus(−D(x))] + E[softplus(D(x̂))]).
    non_saturating_per_image (Open-MAGVIT2's ``non_saturate_discriminator_loss``): each image's patch logits are
    averaged first, m = mean_patches D, and the two terms are summed, not halved:
    E_i[softplus(−m(x_i))] + E_i[softplus(m(x̂_i))].
    """
    _check_kind(kind)
    if kind == "hinge":
        return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())
    if kind == "non_saturating_per_image":
        return F.softplus(-_per_image_mean(logits_real)).mean() + F.softplus(_per_image_mean(logits_fake)).mean()
    return 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())


def generator_loss(logits_fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Generator objective: hinge −E[D(x̂)]; non_saturating E[softplus(−D(x̂))] (= BCE against "real") over all
    patches; non_saturating_per_image E_i[softplus(−mean_patches D(x̂_i))] (Open-MAGVIT2's ``non_saturate_gen_loss``:
    the patch logits of each image are averaged before the cross-entropy)."""
    _check_kind(kind)
    if kind == "hinge":
        return -logits_fake.mean()
    if kind == "non_saturating_per_image":
        return F.softplus(-_per_image_mean(logits_fake)).mean()
    return F.softplus(-logits_fake).mean()


def _per_image_mean(logits: torch.Tensor) -> torch.Tensor:
    """(B, ...) patch logits → (B,) their mean per image."""
    if logits.ndim < 1 or logits.shape[0] == 0:
        raise ValueError(f"expected (B, ...) discriminator logits with B >= 1, got shape {tuple(logits.shape)}")
    return logits.reshape(logits.shape[0], -1).mean(dim=1)


def adversarial_factor(step: int, start_step: int) -> float:
    """1.0 once ``step >= start_step`` (the discriminator is on), else 0.0."""
    return 1.0 if step >= start_step else 0.0


def adaptive_generator_weight(
    nll_loss: torch.Tensor,
    generator_loss: torch.Tensor,
    last_layer: torch.Tensor,
    eps: float = 1e-4,
    max_weight: float = 1e4,
) -> torch.Tensor:
    """Taming's balance between reconstruction and adversarial gradients at the decoder's last layer:
    ‖∇_W nll‖ / (‖∇_W g‖ + eps), clamped to [0, max_weight] and detached (a scalar tensor).

    Both losses must still have their graphs (they are kept: ``retain_graph=True``).
    """
    if not last_layer.requires_grad:
        raise ValueError("last_layer does not require grad: pass the decoder's last weight (tok.get_last_layer())")
    nll_grads = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    g_grads = torch.autograd.grad(generator_loss, last_layer, retain_graph=True)[0]
    weight = torch.linalg.vector_norm(nll_grads.float()) / (torch.linalg.vector_norm(g_grads.float()) + eps)
    return torch.clamp(weight, 0.0, max_weight).detach()

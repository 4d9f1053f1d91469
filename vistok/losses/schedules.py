"""Step-dependent loss weights."""

from __future__ import annotations


def entropy_boost_factor(step: int, boost: float, boost_steps: int) -> float:
    """Extra multiple of the quantizer's entropy loss at optimiser step ``step``: ``boost · max(0, 1 − step /
    boost_steps)``, decaying linearly from ``boost`` at step 0 to 0 at ``boost_steps`` (the entropy term is then
    weighted ``1 + factor``). Open-MAGVIT2's ``codebook_enlarge_ratio`` / ``codebook_enlarge_steps``: a stronger
    push towards using the whole codebook early in training."""
    if boost < 0 or boost_steps < 1:
        raise ValueError(f"need entropy_boost >= 0 and entropy_boost_steps >= 1, got {boost} and {boost_steps}")
    return boost * max(0.0, 1.0 - step / boost_steps)

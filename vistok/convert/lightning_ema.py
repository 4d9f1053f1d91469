"""Lightning checkpoints with ``LitEma`` shadows (SEED-Voken's Open-MAGVIT2 and IBQ, SimVQ): pick the EMA weights.

Those projects train with ``LitEma(self)`` and evaluate inside ``ema_scope()``, so the released outputs come from
the EMA shadows, not from the raw parameters stored beside them. ``LitEma`` names each shadow ``model_ema.`` + the
parameter name with every '.' removed (``encoder.down.0.block.0.conv1.weight`` →
``model_ema.encoderdown0block0conv1weight``) and keeps one only for trainable parameters; the names are recovered
from the raw keys of the same state dict, as upstream's own loader does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from .safe_load import CheckpointError

EMA_PREFIX = "model_ema."
EMA_BOOKKEEPING = ("model_ema.decay", "model_ema.num_updates")


def lightning_state_dict(checkpoint: Any, what: str) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning training checkpoint; :class:`CheckpointError` naming ``what`` (e.g.
    ``"an Open-MAGVIT2"``) and what was found when ``checkpoint`` is not one."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"expected {what} Lightning checkpoint (a dict with 'state_dict'), found a {type(checkpoint).__name__}"
        )
    state_dict = checkpoint.get("state_dict")
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise CheckpointError(
            f"expected {what} Lightning checkpoint with a 'state_dict' entry; found top-level keys "
            f"{sorted(map(str, checkpoint))[:12]}"
        )
    return dict(state_dict)


def has_ema_shadows(state_dict: Mapping[str, Any]) -> bool:
    return any(k.startswith(EMA_PREFIX) and k not in EMA_BOOKKEEPING for k in state_dict)


def select_lightning_weights(
    state_dict: Mapping[str, torch.Tensor],
    keep: Callable[[str], bool],
    weights: str,
    *,
    without_shadow: Iterable[str] = (),
    what: str,
) -> tuple[dict[str, torch.Tensor], str]:
    """The tokenizer tensors (raw keys for which ``keep(key)`` holds) and which weights they are.

    Args:
        state_dict: a Lightning ``state_dict`` holding raw parameters and, possibly, ``model_ema.*`` shadows.
        keep: which raw keys belong to the tokenizer (e.g. not ``loss.*``).
        weights: ``"auto"`` (EMA when the file has shadows, else raw), ``"ema"`` or ``"raw"``.
        without_shadow: kept keys that ``LitEma`` never shadows (frozen tensors such as SimVQ's codebook); their
            stored value is used with EMA weights too.
        what: the format's name for messages (``"an IBQ"``).

    Returns ``({raw key: tensor}, "ema" | "raw")``. Raises :class:`CheckpointError` when EMA weights are asked for
    (or implied) and any kept key except ``without_shadow`` has no shadow, naming the first ones.
    """
    if weights not in ("auto", "ema", "raw"):
        raise CheckpointError(f"weights must be 'auto', 'ema' or 'raw' for {what} checkpoints, got {weights!r}")
    raw = {k: v for k, v in state_dict.items() if not k.startswith(EMA_PREFIX) and keep(k)}
    if not raw:
        raise CheckpointError(f"{what} checkpoint's state_dict holds no tokenizer tensors")
    if weights == "raw" or (weights == "auto" and not has_ema_shadows(state_dict)):
        return raw, "raw"
    if not has_ema_shadows(state_dict):
        raise CheckpointError(
            f"weights='ema' was asked for, but the checkpoint ({what} one) has no model_ema.* shadows (trained "
            "without use_ema); use weights='raw' (--weights raw)"
        )
    exempt = set(without_shadow)
    ema, missing = {}, []
    for key, value in raw.items():
        shadow = state_dict.get(EMA_PREFIX + key.replace(".", ""))
        if shadow is not None:
            if tuple(shadow.shape) != tuple(value.shape):
                raise CheckpointError(
                    f"{what} checkpoint: the EMA shadow of {key} has shape {tuple(shadow.shape)}, the raw tensor "
                    f"{tuple(value.shape)}"
                )
            ema[key] = shadow
        elif key in exempt:
            ema[key] = value
        else:
            missing.append(key)
    if missing:
        raise CheckpointError(
            f"{what} checkpoint has model_ema.* shadows but none for {len(missing)} tokenizer tensor(s) "
            f"({', '.join(missing[:4])}{', …' if len(missing) > 4 else ''}); its EMA weights are incomplete. "
            "Pass weights='raw' (--weights raw) to convert the raw training weights instead"
        )
    return ema, "ema"

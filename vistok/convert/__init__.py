"""Shared converter machinery: safe loading of upstream files, containers, shape inference and the state-dict
layouts several families share (Taming's, MAGVIT-v2's, the vqgan layout). Each upstream project's converter lives
in its family module (:mod:`vistok.families`); ``vistok.families.get_family(name).convert`` is the converter that
``vistok convert NAME`` runs. diffusers VQModel interop lives in ``vistok.diffusers_interop``.
"""

from .safe_load import CheckpointError, UnsafeCheckpointError, load_checkpoint

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_checkpoint"]

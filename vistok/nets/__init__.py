"""Registered encoder/decoder families. Importing this package registers every net in ``NETS``."""

from . import cosmos, magvit2, maskgit, movq, simple_cnn, titok, var, vqgan  # noqa: F401  (registration side effects)
from .base import NetFamily

__all__ = ["NetFamily"]

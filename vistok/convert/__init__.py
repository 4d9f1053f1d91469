"""Upstream checkpoint converters (LlamaGen, Taming); diffusers VQModel interop lives in ``vistok.diffusers_interop``.

Every converter loads the file safely (:func:`load_checkpoint`), renames the weights into vistok's ``vqgan``
layout, infers the architecture from the tensor shapes and returns a :class:`~vistok.VisTokenizer` whose
``config.metadata`` records origin, licence, paper, converter version and the origin's reported numbers.
"""

from .ibq import convert_ibq
from .janus import convert_janus
from .llamagen import convert_llamagen, llamagen_to_vistok
from .maskgit import convert_maskgit
from .open_magvit2 import convert_open_magvit2
from .origins import CONVERTER_VERSION
from .safe_load import CheckpointError, UnsafeCheckpointError, load_checkpoint
from .simvq import convert_simvq
from .taming import convert_taming, taming_to_vistok
from .titok import convert_titok
from .var import convert_var
from .vqgan_layout import infer_vqgan_config

CONVERTERS = {"llamagen": convert_llamagen, "taming": convert_taming, "janus": convert_janus, "ibq": convert_ibq, "open-magvit2": convert_open_magvit2, "simvq": convert_simvq, "maskgit": convert_maskgit, "titok": convert_titok, "var": convert_var}

__all__ = [
    "CONVERTERS",
    "CONVERTER_VERSION",
    "CheckpointError",
    "UnsafeCheckpointError",
    "convert_ibq",
    "convert_janus",
    "convert_llamagen",
    "convert_maskgit",
    "convert_open_magvit2",
    "convert_simvq",
    "convert_taming",
    "convert_titok",
    "convert_var",
    "infer_vqgan_config",
    "llamagen_to_vistok",
    "load_checkpoint",
    "taming_to_vistok",
]

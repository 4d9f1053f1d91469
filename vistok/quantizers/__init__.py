"""Registered quantizers. Importing this package registers every quantizer in ``QUANTIZERS``."""

from . import bsq, fsq, ibq, lfq, multiscale_bsq, simvq, var, vq  # noqa: F401  (registration side effects)
from .base import Quantizer
from .bsq import BinarySphericalQuantizer
from .fsq import FiniteScalarQuantizer
from .ibq import IndexBackpropQuantizer
from .lfq import LookupFreeQuantizer
from .multiscale_bsq import MultiScaleBinarySphericalQuantizer
from .simvq import SimVQQuantizer
from .var import MultiScaleVectorQuantizer
from .vq import VectorQuantizer

__all__ = ["Quantizer", "BinarySphericalQuantizer", "VectorQuantizer", "FiniteScalarQuantizer", "LookupFreeQuantizer", "SimVQQuantizer", "IndexBackpropQuantizer", "MultiScaleVectorQuantizer", "MultiScaleBinarySphericalQuantizer"]

"""Streaming reconstruction metrics: PSNR, SSIM, LPIPS, rFID and codebook usage.

Every metric is an accumulator (``update`` batch by batch, ``compute`` at the end) whose memory does not grow with
the number of images and whose state merges across processes (``sync``). Images are measured as saved: uint8.

>>> metrics = ReconstructionMetrics(codebook_size=tok.codebook_size)   # doctest: +SKIP
>>> for batch in loader:                                              # doctest: +SKIP
...     out = tok(batch["pixel_values"])
...     metrics.update(batch["pixel_values"], out.reconstruction, out.indices, batch["index"])
>>> metrics.sync(); results = metrics.compute()                       # doctest: +SKIP
"""

from .base import MeanOfPerImageValues, StreamingMetric
from .codebook import SEED_QUEUE_SIZE, CodebookUsage
from .fid import FID, GaussianFeatureStatistics, InceptionFeatures, build_inception, frechet_distance
from .images import to_uint8, uint8_to_signed, uint8_to_unit
from .lpips import LPIPS, build_lpips, build_lpips_vgg
from .plots import save_code_histogram
from .protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, SSIMConvention, get_protocol
from .psnr import PSNR, psnr_per_image
from .ssim import SSIM, ssim_per_image
from .suite import METRIC_NAMES, ReconstructionMetrics, load_backbones, metric_conventions
from .weights import INCEPTION_V3_FID, LPIPS_ALEX, LPIPS_VGG16, MissingWeightsError, resolve_weights

__all__ = [
    "CodebookUsage",
    "DEFAULT_PROTOCOL",
    "InceptionFeatures",
    "LPIPS_ALEX",
    "PROTOCOLS",
    "Protocol",
    "SSIMConvention",
    "build_lpips",
    "get_protocol",
    "FID",
    "GaussianFeatureStatistics",
    "INCEPTION_V3_FID",
    "LPIPS",
    "LPIPS_VGG16",
    "METRIC_NAMES",
    "MeanOfPerImageValues",
    "MissingWeightsError",
    "PSNR",
    "ReconstructionMetrics",
    "SEED_QUEUE_SIZE",
    "SSIM",
    "StreamingMetric",
    "build_inception",
    "build_lpips_vgg",
    "frechet_distance",
    "load_backbones",
    "metric_conventions",
    "psnr_per_image",
    "resolve_weights",
    "save_code_histogram",
    "ssim_per_image",
    "to_uint8",
    "uint8_to_signed",
    "uint8_to_unit",
]

"""🤗 evaluate module wrapping vistok's reconstruction metrics (PSNR, SSIM, LPIPS, rFID, codebook usage).

    import evaluate
    metric = evaluate.load("path/to/vistok/metrics/vistok_reconstruction")
    metric.add_batch(predictions=reconstructions, references=originals)   # PIL images or uint8 HWC arrays
    metric.compute(lpips_weights="vgg16-397923af.pth", inception_weights="pt_inception-2015-12-05-6726825d.pth")

The numbers are those of ``vistok evaluate`` (same code: :class:`vistok.metrics.ReconstructionMetrics`).
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np
import torch

from vistok.metrics import METRIC_NAMES, ReconstructionMetrics, metric_conventions

_DESCRIPTION = """Reconstruction quality of an image tokenizer (or any autoencoder): PSNR and SSIM (Gaussian window 11,
sigma 1.5, data range 1, on uint8 images scaled to [0, 1]), LPIPS (VGG), rFID (torch-fidelity's TF-Inception-v3
2048-d features of references vs predictions) and, when code indices are given, codebook usage (distinct codes
among the last 65,536 indices / codebook size), whole-split usage and perplexity. PSNR, SSIM and LPIPS are
averaged over images. LPIPS / rFID are skipped, with the reason and a how-to under "skipped", when their
pretrained backbones cannot be found offline."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: reconstructed images (PIL images or uint8 H x W x 3 arrays).
    references: the original images, same sizes as the predictions.
    indices (optional, "with_indices" config): each image's code indices, a 2-D (h x w) list of ints.
    codebook_size (int): required with indices.
    metrics (list of str): subset of psnr, ssim, lpips, rfid, codebook_usage (default: all available).
    lpips_weights / inception_weights (str): local weight files (see vistok.metrics.weights for the search order).
    allow_download (bool): try downloading missing backbones (default True; VISTOK_OFFLINE=1 disables).
    batch_size (int): images per forward pass (default 32). device (str): default "cuda" when available.
    queue_size (int): codebook-usage queue length (default 65536).
Returns:
    dict: psnr, ssim, lpips, rfid, codebook_usage, codebook_usage_split, perplexity (those computed), num_images,
    skipped (metric -> reason) and conventions.
Examples:
    >>> metric = evaluate.load("metrics/vistok_reconstruction")
    >>> results = metric.compute(predictions=[image_a], references=[image_a], metrics=["psnr", "ssim"])
"""

_CITATION = """@misc{vistok, title={vistok: discrete visual tokenizers for the Hugging Face ecosystem}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class VistokReconstruction(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        features = {"predictions": datasets.Image(), "references": datasets.Image()}
        if self.config_name == "with_indices":
            features["indices"] = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(features),
            reference_urls=[
                "https://github.com/toshas/torch-fidelity",
                "https://github.com/richzhang/PerceptualSimilarity",
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        indices=None,
        codebook_size: int | None = None,
        metrics=None,
        lpips_weights: str | None = None,
        inception_weights: str | None = None,
        allow_download: bool = True,
        batch_size: int = 32,
        device: str | None = None,
        queue_size: int = 65_536,
    ):
        if indices is not None and codebook_size is None:
            raise ValueError("codebook_size is required when indices are given")
        requested = tuple(metrics) if metrics is not None else METRIC_NAMES
        if indices is None:
            requested = tuple(name for name in requested if name != "codebook_usage")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        suite = ReconstructionMetrics(
            codebook_size=codebook_size,
            metrics=requested,
            lpips_weights=lpips_weights,
            inception_weights=inception_weights,
            device=device,
            allow_download=allow_download,
            queue_size=queue_size,
        )
        for start, stop in _same_size_runs(references, batch_size):
            original = _to_uint8_batch(references[start:stop])
            reconstruction = _to_uint8_batch(predictions[start:stop])
            codes = torch.as_tensor(np.asarray(indices[start:stop]), dtype=torch.int64) if indices else None
            suite.update(original, reconstruction, codes, torch.arange(start, stop))
        results = suite.compute()
        results.pop("codebook_histogram", None)
        results["conventions"] = metric_conventions(queue_size)
        return results


def _to_uint8_batch(images) -> torch.Tensor:
    arrays = [np.asarray(image.convert("RGB") if hasattr(image, "convert") else image) for image in images]
    batch = np.stack(arrays)
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 RGB images (H x W x 3), got {batch.dtype} arrays of shape {batch.shape[1:]}"
        )
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def _same_size_runs(images, batch_size: int):
    """(start, stop) ranges of at most ``batch_size`` consecutive images of the same size."""
    start = 0
    while start < len(images):
        size = _size(images[start])
        stop = start + 1
        while stop < len(images) and stop - start < batch_size and _size(images[stop]) == size:
            stop += 1
        yield start, stop
        start = stop


def _size(image) -> tuple[int, int]:
    return tuple(image.size) if hasattr(image, "convert") else tuple(np.asarray(image).shape[:2])

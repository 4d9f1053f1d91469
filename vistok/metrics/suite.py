"""All reconstruction metrics behind one streaming object, with missing pretrained backbones skipped, not fatal."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
import torch.distributed as dist

from .base import StreamingMetric, distributed_world
from .codebook import SEED_QUEUE_SIZE, CodebookUsage
from .fid import FID
from .images import check_images
from .lpips import LPIPS
from .protocols import Protocol, float_images, get_protocol, originals_to_uint8, reconstructions_to_uint8
from .psnr import PSNR
from .ssim import SSIM, SSIM_BORDER, SSIM_SIGMA, SSIM_WINDOW
from .weights import MissingWeightsError

METRIC_NAMES = ("psnr", "ssim", "lpips", "rfid", "codebook_usage")


class ReconstructionMetrics:
    """PSNR, SSIM, LPIPS, rFID and codebook usage over a stream of (original, reconstruction, indices) batches.

    Metrics whose pretrained backbone cannot be found (LPIPS's VGG16, rFID's Inception) are left out and listed
    in :attr:`skipped` with the reason and how to provide the weights; the others are still computed.
    ``lpips_network`` / ``inception_extractor`` accept already built modules instead of weight files.
    ``protocol`` (a :class:`~vistok.metrics.protocols.Protocol` or its name; default ``vistok``) fixes how images
    become uint8, which metrics see floats, SSIM's convention, PSNR's epsilon, LPIPS's network and the resize into
    Inception; ``rfid_reference`` replaces the originals as rFID's comparison set (see
    :func:`~vistok.metrics.protocols.load_rfid_reference`).
    """

    def __init__(
        self,
        codebook_size: int | None = None,
        metrics: tuple[str, ...] | list[str] = METRIC_NAMES,
        lpips_weights: str | os.PathLike | None = None,
        inception_weights: str | os.PathLike | None = None,
        device: torch.device | str | None = None,
        allow_download: bool = True,
        queue_size: int = SEED_QUEUE_SIZE,
        lpips_network: torch.nn.Module | None = None,
        inception_extractor: torch.nn.Module | None = None,
        skipped: dict[str, str] | None = None,
        protocol: Protocol | str = "vistok",
        rfid_reference: dict | None = None,
    ) -> None:
        """``skipped``: metrics already known to be unavailable, with the reason to report (see
        :func:`load_backbones`); they are not built."""
        unknown = sorted(set(metrics) - set(METRIC_NAMES))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; valid names: {', '.join(METRIC_NAMES)}")
        self.protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
        protocol = self.protocol
        self.queue_size = queue_size
        self.metrics: dict[str, StreamingMetric] = {}
        self.skipped: dict[str, str] = {
            name: reason for name, reason in (skipped or {}).items() if name in metrics
        }
        builders = {
            "psnr": lambda: PSNR(eps=protocol.psnr_eps),
            "ssim": lambda: SSIM(protocol.ssim),
            "lpips": lambda: LPIPS(lpips_weights, allow_download, device, network=lpips_network or (
                None if protocol.lpips_net == "vgg" else _build_lpips(protocol.lpips_net, lpips_weights,
                                                                       allow_download, device))),
            "rfid": lambda: FID(inception_weights, allow_download, device, extractor=inception_extractor,
                                resize=protocol.inception_resize, reference=rfid_reference),
            "codebook_usage": lambda: CodebookUsage(codebook_size, queue_size),
        }
        for name in METRIC_NAMES:
            if name not in metrics or name in self.skipped:
                continue
            if name == "codebook_usage" and codebook_size is None:
                self.skipped[name] = "no codebook_size given"
                continue
            try:
                self.metrics[name] = builders[name]()
            except MissingWeightsError as error:
                self.skipped[name] = str(error)
        self.num_images = 0

    def update(
        self,
        original: torch.Tensor,
        reconstruction: torch.Tensor,
        indices: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> None:
        """Add a batch.

        original, reconstruction: (B, C, H, W), either float pixel values in [-1, 1] (rounded to uint8 here, as
        a saved image would be) or uint8. indices: (B, h, w) codes for the usage statistics. positions: (B,)
        dataset indices giving the data order (see :class:`~vistok.metrics.CodebookUsage`).
        """
        check_images(original)
        check_images(reconstruction)
        pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name, metric in self.metrics.items():
            if name == "codebook_usage":
                if indices is not None:
                    metric.update(indices, positions)
                continue
            kind = self.protocol.input_kind(name)
            if kind not in pairs:
                pairs[kind] = self._images(original, reconstruction, kind)
            metric.update(*pairs[kind])
        self.num_images += original.shape[0]

    def _images(self, original: torch.Tensor, reconstruction: torch.Tensor, kind: str):
        """The (original, reconstruction) pair a metric of this input ``kind`` sees under the protocol."""
        if kind == "float":
            return (float_images(original) if original.dtype != torch.uint8 else _unit_to_signed(original),
                    float_images(reconstruction) if reconstruction.dtype != torch.uint8 else
                    _unit_to_signed(reconstruction))  # fmt: skip
        if original.dtype == torch.uint8:  # already saved images: only the reconstructions may need converting
            original_u8 = original
        else:
            original_u8 = originals_to_uint8(original, self.protocol)
        if reconstruction.dtype == torch.uint8:
            reconstruction_u8 = reconstruction
        else:
            reconstruction_u8 = reconstructions_to_uint8(reconstruction, self.protocol)
        return original_u8, reconstruction_u8

    def sync(self) -> None:
        """Merge every process's state (collective; all ranks must call it). No-op without a process group."""
        for metric in self.metrics.values():
            metric.sync()
        _, world = distributed_world()
        if world > 1:
            counts: list[int | None] = [None] * world
            dist.all_gather_object(counts, self.num_images)
            self.num_images = sum(counts)

    def compute(self) -> dict[str, Any]:
        """Every metric's numbers, ``num_images`` and ``skipped`` ({metric: reason and how to fix})."""
        results: dict[str, Any] = {"num_images": self.num_images}
        skipped = dict(self.skipped)
        for name, metric in self.metrics.items():
            if name == "codebook_usage" and metric.num_tokens == 0:
                skipped[name] = "no indices were passed to update()"
                continue
            if name == "rfid" and self.num_images < 2:
                skipped[name] = f"rFID needs at least 2 images, got {self.num_images}"
                continue
            results.update(metric.compute())
        results["skipped"] = skipped
        return results

    def conventions(self) -> dict[str, Any]:
        """How each number is defined, for reports (JSON-native)."""
        return metric_conventions(self.queue_size, self.protocol)


def load_backbones(
    metrics: tuple[str, ...] | list[str] = METRIC_NAMES,
    lpips_weights: str | os.PathLike | None = None,
    inception_weights: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    allow_download: bool = True,
    lpips_net: str = "vgg",
) -> tuple[dict[str, torch.nn.Module], dict[str, str]]:
    """Build the pretrained networks the requested metrics need, once (to share across several evaluations).

    Returns ``(networks, skipped)``: ``networks`` maps ``"lpips"`` / ``"rfid"`` to their module when available,
    ``skipped`` maps the others to the reason and how to provide their weights. Pass them to
    :class:`ReconstructionMetrics` as ``lpips_network=``, ``inception_extractor=`` and ``skipped=``.
    """
    from .fid import build_inception

    builders = {
        "lpips": lambda: _build_lpips(lpips_net, lpips_weights, allow_download, device),
        "rfid": lambda: build_inception(inception_weights, allow_download, device),
    }
    networks: dict[str, torch.nn.Module] = {}
    skipped: dict[str, str] = {}
    for name, build in builders.items():
        if name in metrics:
            try:
                networks[name] = build()
            except MissingWeightsError as error:
                skipped[name] = str(error)
    return networks, skipped


def _build_lpips(net, weights, allow_download, device):
    from .lpips import build_lpips

    return build_lpips(net, weights, allow_download, device)


def _unit_to_signed(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


def metric_conventions(queue_size: int = SEED_QUEUE_SIZE, protocol: Protocol | str | None = None) -> dict[str, Any]:
    """How each number is defined (JSON-native). Without a protocol, or under ``vistok`` / ``upstream``: vistok's
    conventions in full; under another protocol they are followed by ``protocol`` — every convention it fixes,
    which takes precedence (see :meth:`~vistok.metrics.protocols.Protocol.conventions`)."""
    conventions = _vistok_conventions(queue_size)
    if protocol is not None:
        protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
        conventions["protocol"] = protocol.conventions()
    return conventions


def _vistok_conventions(queue_size: int) -> dict[str, Any]:
    return {
        "images": "originals and reconstructions mapped from [-1, 1] to uint8 ((x + 1) * 127.5, rounded) before "
        "every metric, as a saved image would be",
        "averaging": "PSNR, SSIM and LPIPS are computed per image and averaged over images",
        "psnr": {"range": "[0, 1]", "data_range": 1.0, "mse_over": "channels and pixels of one image"},
        "ssim": {
            "implementation": f"pytorch-msssim {_version('pytorch-msssim')} ssim (separable Gaussian window)",
            "window": "gaussian",
            "window_size": SSIM_WINDOW,
            "sigma": SSIM_SIGMA,
            "data_range": 1.0,
            "k1": 0.01,
            "k2": 0.03,
            "covariance": "population",
            "border_excluded_pixels": SSIM_BORDER,
            "channels": "SSIM map averaged over channels and valid positions (scikit-image convention)",
        },
        "lpips": {"implementation": f"lpips {_version('lpips')}", "network": "vgg", "version": "0.1"},
        "rfid": {
            "feature_extractor": "torch-fidelity FeatureExtractorInceptionV3 (TF-Inception-v3 port, weights "
            "pt_inception-2015-12-05), 2048-d pool features, bilinear resize to 299 like TF1",
            "reference_set": "the originals of the evaluated images",
            "covariance": "unbiased",
            "trace_sqrt": "Tr((S1 S2)^1/2) as the sum of square roots of the eigenvalues of F1^T S2 F1, S1 = F1 F1^T "
            "(Cholesky, or eigh when singular); agrees with pytorch-fid's scipy.linalg.sqrtm (tested: 1e-9 relative on a "
            "closed-form case, 1e-6 on singular covariances)",
        },
        "codebook_usage": {
            "queue_size": queue_size,
            "definition": "distinct codes among the last queue_size indices (images in dataset order, raster order "
            "within an image) / codebook size",
            "codebook_usage_split": "distinct codes over all evaluated indices / codebook size",
            "perplexity": "exp(entropy in nats of the code histogram over all evaluated indices)",
        },
    }


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"

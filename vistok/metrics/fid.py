"""rFID: Fréchet distance between Inception features of originals and of their reconstructions.

Features are the 2048-d pool features of the standard TF-Inception-v3 port (torch-fidelity's
``FeatureExtractorInceptionV3``, weights ``pt_inception-2015-12-05``), which takes uint8 RGB at any size and
resizes to 299×299 with TensorFlow-compatible bilinear interpolation. :class:`InceptionFeatures` puts the other
resizes an evaluation protocol may name in front of the same network: pytorch-fid's bilinear ``F.interpolate`` on
[0, 1] floats, and clean-fid's per-channel PIL bicubic resize of float images. Statistics are kept as a running
float64 count, sum and sum of outer products, so memory is O(2048²) whatever the number of images; the distance is
computed once from the final mean and unbiased covariance (see :func:`frechet_distance`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from .base import StreamingMetric
from .images import check_pair, to_unit
from .weights import INCEPTION_V3_FID, MissingWeightsError, resolve_weights

INCEPTION_FEATURE = "2048"
INCEPTION_SIZE = 299
# torch-fidelity's FeatureExtractorInceptionV3.forward after its resize and normalisation, layer by layer.
INCEPTION_TRUNK = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a",
    "Mixed_7b", "Mixed_7c", "AvgPool",
)  # fmt: skip


def build_inception(
    weights: str | os.PathLike | None = None,
    allow_download: bool = True,
    device: torch.device | str | None = None,
) -> torch.nn.Module:
    """torch-fidelity's Inception-v3 feature extractor returning 2048-d pool features, loaded from ``weights``.

    Input: uint8 (B, 3, H, W); output of ``model(x)``: a 1-tuple holding a float32 (B, 2048) tensor.
    Raises :class:`~vistok.metrics.weights.MissingWeightsError` when the weights cannot be found or obtained.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = resolve_weights(INCEPTION_V3_FID, weights, allow_download=allow_download)
    try:
        model = FeatureExtractorInceptionV3(
            "inception-v3-compat", [INCEPTION_FEATURE], feature_extractor_weights_path=str(path)
        )
    except (RuntimeError, KeyError) as error:  # load_state_dict mismatch
        raise MissingWeightsError(
            f"{path} does not hold the torch-fidelity / pytorch-fid Inception-v3 weights: {error}"
        ) from error
    return model.to(device) if device is not None else model


def _is_torch_fidelity_inception(module: torch.nn.Module) -> bool:
    return all(hasattr(module, name) for name in INCEPTION_TRUNK)


def clean_fid_resize(images: np.ndarray) -> np.ndarray:
    """clean-fid's ``make_resizer("PIL", False, "bicubic", (299, 299))`` on (B, H, W, 3) images with values in
    [0, 255] (uint8 or float): each channel resized as a float ('F') PIL image with bicubic, clipped to [0, 255],
    float32 (B, 299, 299, 3) — no quantisation after resizing."""
    from PIL import Image

    out = np.empty((images.shape[0], INCEPTION_SIZE, INCEPTION_SIZE, 3), dtype=np.float32)
    for index, image in enumerate(images):
        for channel in range(3):
            plane = Image.fromarray(image[:, :, channel].astype(np.float32), mode="F")
            plane = plane.resize((INCEPTION_SIZE, INCEPTION_SIZE), resample=Image.Resampling.BICUBIC)
            out[index, :, :, channel] = np.asarray(plane).clip(0, 255)
    return out


class InceptionFeatures(torch.nn.Module):
    """2048-d features of torch-fidelity's TF-Inception port with images resized into it as a protocol says.

    ``resize``: ``tf1_bilinear`` (torch-fidelity's own TF1-compatible bilinear inside the network — uint8 input
    goes through the network's ``forward`` unchanged), ``torch_bilinear`` (pytorch-fid: ``F.interpolate`` bilinear,
    ``align_corners=False``, of [0, 1] floats, then ``2x - 1``) or ``clean_fid_bicubic`` (clean-fid: per-channel PIL
    bicubic of float images in [0, 255], then ``(x - 128) / 128``). Inputs are uint8 images, or float pixel values
    in [-1, 1] (unquantised, as SEED-Voken's FID sees reconstructions).
    """

    def __init__(self, network: torch.nn.Module, resize: str = "tf1_bilinear") -> None:
        super().__init__()
        if resize not in ("tf1_bilinear", "torch_bilinear", "clean_fid_bicubic"):
            raise ValueError(f"unknown Inception resize {resize!r}")
        self.network = network
        self.resize = resize

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.resize == "tf1_bilinear" and images.dtype == torch.uint8:
            out = self.network(images)
            return out[0] if isinstance(out, (tuple, list)) else out
        if not _is_torch_fidelity_inception(self.network):
            raise ValueError(
                f"the {self.resize} resize (or float input) needs torch-fidelity's FeatureExtractorInceptionV3, got "
                f"{type(self.network).__name__}"
            )
        parameter = next(self.network.parameters())
        x = self.normalized_input(images).to(device=parameter.device, dtype=parameter.dtype)
        for name in INCEPTION_TRUNK:
            x = getattr(self.network, name)(x)
        return torch.flatten(x, 1).to(torch.float32)

    def normalized_input(self, images: torch.Tensor) -> torch.Tensor:
        """The (B, 3, 299, 299) tensor the network's first convolution receives (float64)."""
        if self.resize == "torch_bilinear":
            unit = to_unit(images, torch.float64)
            resized = F.interpolate(unit, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
            return 2 * resized - 1
        levels = images.double() if images.dtype == torch.uint8 else (images.double() + 1) * 127.5
        if self.resize == "tf1_bilinear":
            from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

            resized = interpolate_bilinear_2d_like_tensorflow1x(
                levels, size=(INCEPTION_SIZE, INCEPTION_SIZE), align_corners=False
            )
        else:
            array = levels.permute(0, 2, 3, 1).cpu().numpy()
            resized = torch.from_numpy(clean_fid_resize(array)).permute(0, 3, 1, 2).double().to(images.device)
        return (resized - 128) / 128


class GaussianFeatureStatistics:
    """Running float64 count, sum and sum of outer products of feature vectors.

    ``dim`` may be left ``None``: the buffers are then sized by the first update (or merged state).
    """

    def __init__(self, dim: int | None = None, device: torch.device | str | None = None) -> None:
        self.dim = dim
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.sum: torch.Tensor | None = None
        self.outer: torch.Tensor | None = None
        if self.dim is not None:
            self._allocate(self.dim)

    def _allocate(self, dim: int) -> None:
        self.dim = dim
        self.sum = torch.zeros(dim, dtype=torch.float64, device=self.device)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64, device=self.device)

    def update(self, features: torch.Tensor) -> None:
        """Add a (N, dim) batch of feature vectors."""
        if features.ndim != 2 or (self.dim is not None and features.shape[1] != self.dim):
            raise ValueError(
                f"expected features of shape (N, {self.dim or 'dim'}), got {tuple(features.shape)}"
            )
        if self.sum is None:
            self._allocate(features.shape[1])
        features = features.detach().to(device=self.device, dtype=torch.float64)
        self.count += features.shape[0]
        self.sum += features.sum(dim=0)
        self.outer += features.T @ features

    def mean_and_covariance(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (dim,) and unbiased covariance (dim, dim) as float64 numpy arrays; needs at least 2 vectors."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        mean = self.sum / self.count
        covariance = (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)
        return mean.cpu().numpy(), covariance.cpu().numpy()

    def state(self) -> dict[str, Any]:
        if self.sum is None:
            return {"count": 0, "sum": None, "outer": None}
        return {"count": self.count, "sum": self.sum.cpu(), "outer": self.outer.cpu()}

    def merge_state(self, state: dict[str, Any]) -> None:
        if state["sum"] is None:
            return
        if self.sum is None:
            self._allocate(state["sum"].numel())
        if state["sum"].numel() != self.dim:
            raise ValueError(
                f"cannot merge {state['sum'].numel()}-d feature statistics into {self.dim}-d ones"
            )
        self.count += int(state["count"])
        self.sum += state["sum"].to(self.device)
        self.outer += state["outer"].to(self.device)


def frechet_distance(
    mean1: np.ndarray,
    covariance1: np.ndarray,
    mean2: np.ndarray,
    covariance2: np.ndarray,
    method: str = "eigh",
    eps: float = 1e-6,
) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2 Tr((Σ1 Σ2)^½) for two Gaussians (float64 numpy inputs).

    ``method="eigh"`` (default) uses Tr((Σ1 Σ2)^½) = Σ √λ(F1ᵀ Σ2 F1) for a factor Σ1 = F1 F1ᵀ (Cholesky, or
    an eigendecomposition when Σ1 is singular) and symmetric eigenvalues — exact for covariance matrices, stable
    when they are singular, and several times faster than a general matrix square root at 2048 dimensions. ``method="sqrtm"`` follows pytorch-fid literally: ``scipy.linalg.sqrtm``
    of Σ1 Σ2, retried with ``eps``·I added to both when not finite, negligible imaginary parts dropped.
    The two agree to ~1e-10 relative on real feature statistics.
    """
    mean1, mean2 = np.atleast_1d(mean1).astype(np.float64), np.atleast_1d(mean2).astype(np.float64)
    covariance1 = np.atleast_2d(covariance1).astype(np.float64)
    covariance2 = np.atleast_2d(covariance2).astype(np.float64)
    if mean1.shape != mean2.shape or covariance1.shape != covariance2.shape:
        raise ValueError(
            f"mismatched statistics: means {mean1.shape} vs {mean2.shape}, covariances {covariance1.shape} vs "
            f"{covariance2.shape}"
        )
    if method == "eigh":
        trace_root = _trace_sqrt_product_eigh(covariance1, covariance2)
    elif method == "sqrtm":
        trace_root = _trace_sqrt_product_sqrtm(covariance1, covariance2, eps)
    else:
        raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    diff = mean1 - mean2
    return float(diff @ diff + np.trace(covariance1) + np.trace(covariance2) - 2 * trace_root)


def _trace_sqrt_product_eigh(covariance1: np.ndarray, covariance2: np.ndarray) -> float:
    # Σ1 Σ2 is similar to F1ᵀ Σ2 F1 for any factor Σ1 = F1 F1ᵀ: Cholesky when Σ1 is positive definite (the usual
    # case with more images than feature dimensions), else the symmetric square root from an eigendecomposition.
    try:
        factor = scipy.linalg.cholesky(covariance1, lower=True)
    except np.linalg.LinAlgError:
        eigenvalues, eigenvectors = scipy.linalg.eigh(covariance1)
        factor = eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))
    product = factor.T @ covariance2 @ factor
    eigenvalues = scipy.linalg.eigh((product + product.T) / 2, eigvals_only=True)
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def _trace_sqrt_product_sqrtm(covariance1: np.ndarray, covariance2: np.ndarray, eps: float) -> float:
    root = scipy.linalg.sqrtm(covariance1 @ covariance2)
    if not np.isfinite(root).all():
        offset = np.eye(covariance1.shape[0]) * eps
        root = scipy.linalg.sqrtm((covariance1 + offset) @ (covariance2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            raise ValueError(f"matrix square root has a large imaginary part ({np.abs(root.imag).max():.3g})")
        root = root.real
    return float(np.trace(root))


class FID(StreamingMetric):
    """Reconstruction FID (rFID) between uint8 originals and reconstructions, in streaming form."""

    name = "rfid"

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        allow_download: bool = True,
        device: torch.device | str | None = None,
        extractor: torch.nn.Module | None = None,
        feature_dim: int | None = None,
        method: str = "eigh",
        resize: str = "tf1_bilinear",
        reference: dict[str, np.ndarray] | str | os.PathLike | None = None,
    ) -> None:
        """``extractor``: any module mapping uint8 (B, 3, H, W) to (B, feature_dim) features, or a tuple whose
        first item is that (default: :func:`build_inception` loaded from ``weights``); ``feature_dim`` is taken
        from the first batch unless given. ``method``: how :func:`frechet_distance` takes the matrix square root.
        ``resize``: how images enter Inception (:class:`InceptionFeatures`; other than ``tf1_bilinear`` it needs
        torch-fidelity's extractor). ``reference``: instead of the originals passed to :meth:`update`, compare with
        these (``{"images": (N, H, W, 3) uint8}`` or ``{"mu", "sigma"}``, or the path of an ``.npz`` holding either,
        read when the distance is computed; see :func:`vistok.metrics.protocols.load_rfid_reference`)."""
        self.method = method
        self.resize = resize
        self.reference = reference
        self.extractor = (
            extractor if extractor is not None else build_inception(weights, allow_download, device)
        )
        if resize != "tf1_bilinear" or _is_torch_fidelity_inception(self.extractor):
            self.extractor = InceptionFeatures(self.extractor, resize)
        parameter = next(self.extractor.parameters(), None)
        self.feature_device = parameter.device if parameter is not None else torch.device(device or "cpu")
        self.originals = GaussianFeatureStatistics(feature_dim, self.feature_device)
        self.reconstructions = GaussianFeatureStatistics(feature_dim, self.feature_device)

    def reset(self) -> None:
        self.originals.reset()
        self.reconstructions.reset()

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim) features of (B, 3, H, W) images (uint8, or float in [-1, 1])."""
        if images.shape[1] != 3:
            raise ValueError(f"rFID's Inception network needs RGB images (3 channels), got {images.shape[1]}")
        out = self.extractor(images.to(self.feature_device))
        return out[0] if isinstance(out, (tuple, list)) else out

    def update(self, original: torch.Tensor, reconstruction: torch.Tensor) -> None:
        """Add a batch of (B, 3, H, W) originals and reconstructions (uint8, or float in [-1, 1])."""
        check_pair(original, reconstruction, allow_float=True)
        if self.reference is None:
            self.originals.update(self.features(original))
        self.reconstructions.update(self.features(reconstruction))

    def reference_statistics(self, batch_size: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the comparison set: the originals seen, or the given reference."""
        if self.reference is None:
            return self.originals.mean_and_covariance()
        if not isinstance(self.reference, dict):
            from .protocols import load_rfid_reference

            self.reference = load_rfid_reference(self.reference)
        if "mu" in self.reference:
            return self.reference["mu"], self.reference["sigma"]
        images = self.reference["images"]
        statistics = GaussianFeatureStatistics(device=self.feature_device)
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).permute(0, 3, 1, 2)
            statistics.update(self.features(batch))
        return statistics.mean_and_covariance()

    def compute(self) -> dict[str, Any]:
        return {
            self.name: frechet_distance(
                *self.reference_statistics(),
                *self.reconstructions.mean_and_covariance(),
                method=self.method,
            )
        }

    def state(self) -> dict[str, Any]:
        return {"originals": self.originals.state(), "reconstructions": self.reconstructions.state()}

    def merge_state(self, state: dict[str, Any]) -> None:
        self.originals.merge_state(state["originals"])
        self.reconstructions.merge_state(state["reconstructions"])

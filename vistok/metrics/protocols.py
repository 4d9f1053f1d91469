"""Evaluation protocols as data: every convention that changes a reconstruction number, fixed in one place.

The same tokenizer gets different PSNR / SSIM / rFID under different projects' evaluation code, because each
project fixes, without writing it down: the split; how a photo becomes the square (or full-size) image the
tokenizer sees; how originals and reconstructions become the 8-bit images the metrics compare (rounded or
truncated, and which metrics see the unquantised floats instead); SSIM's window, covariance and data range; LPIPS's
network; how images are resized into Inception for rFID; and what the reconstructions are compared against.

A :class:`Protocol` names each of these; :data:`PROTOCOLS` holds vistok's own and those of the projects whose
numbers the zoo reports. ``vistok evaluate --protocol NAME`` measures under one, and the JSON report records
:meth:`Protocol.conventions` — every convention it fixed and the upstream files it follows. ``docs/evaluation.md``
documents them.

Protocols:

- ``vistok``: vistok's documented conventions on vistok's generic preprocessing (identical pixels for every
  tokenizer).
- ``upstream`` (``vistok evaluate``'s default): the same metric conventions, on the pixels each tokenizer's own
  upstream pipeline builds (the one its zoo entry states, recorded in ``config.metadata["preprocessing"]``); a
  tokenizer that records none gets the generic preprocessing.
- ``llamagen``: LlamaGen's ``reconstruction_vq_ddp.py`` / ``val_ddp.py`` (ADM's ``center_crop_arr``, skimage
  SSIM with ``data_range=2``, ADM's TF-Inception FID against the validation originals).
- ``torch-fidelity``: TiTok's / MaskBit's evaluator (torchvision Resize + CenterCrop, images truncated to uint8,
  torch-fidelity's Inception with TF1-compatible bilinear resize, MaskBit's SSIM and PSNR on clamped floats).
- ``clean-fid``: vistok's conventions with clean-fid's resize into Inception (PIL bicubic on float images).
- ``seed-voken``: SEED-Voken's ``evaluation_image.py`` (IBQ / Open-MAGVIT2's 256² numbers: the same metric
  conventions as ``original-resolution`` on albumentations' 256² centre crops).
- ``original-resolution``: SEED-Voken's ``evaluation_original_reso.py`` (full-size images padded to a multiple of
  16 and cropped back, pytorch-fid's Inception on float images, skimage SSIM, truncated uint8).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..preprocessing import Preprocessing

# ------------------------------------------------------------------------------------------- conventions
# How originals and reconstructions become 8-bit images (``to_uint8``). Both start as vistok pixel values in
# [-1, 1]; each rule reproduces the upstream's float arithmetic (float32) on its own value range:
#   round          ((x + 1) * 127.5).round() (half to even), clamped — vistok, as a saved PNG would be
#   half_up        clamp(127.5 * x + 128, 0, 255) cast to uint8 (truncation) — LlamaGen's reconstruction_vq_ddp.py
#   truncate_unit  clamp((x + 1) / 2, 0, 1) * 255 cast to uint8 — TiTok / MaskBit's evaluator, on [0, 1] images
#   truncate_signed ((clamp(x, -1, 1) + 1) / 2 * 255) cast to uint8 — SEED-Voken's evaluation_*.py
QUANTIZATIONS = ("round", "half_up", "truncate_unit", "truncate_signed")
# How the *originals* enter the upstream's float arithmetic before that conversion (from their exact uint8 k):
#   "uint8"       k itself (no float round trip)
#   "unit"        torchvision ToTensor: k / 255 in float32 (then Normalize(0.5, 0.5) for LlamaGen's [-1, 1])
#   "signed"      k / 127.5 - 1 in float64, cast to float32 (SEED-Voken's data/base.py): the truncation then turns
#                 95 of the 256 grey levels into k - 1 — SEED-Voken's PSNR / SSIM compare against those originals
ORIGINAL_RANGES = ("uint8", "unit", "signed")
ORIGINAL_RANGE_OF = {"round": "uint8", "half_up": "unit", "truncate_unit": "unit", "truncate_signed": "signed"}
INCEPTION_RESIZES = ("tf1_bilinear", "torch_bilinear", "clean_fid_bicubic")
IMAGE_SOURCES = ("generic", "upstream", "pipeline", "original")
METRIC_INPUTS = ("uint8", "float")


@dataclass(frozen=True)
class SSIMConvention:
    """How SSIM is computed (on images in [0, 1]; ``data_range`` is the ``L`` in ``C = (K L)²``).

    ``window``: ``gaussian`` (``size``, ``sigma``) or ``uniform`` (``size``); ``covariance``: ``population``
    (divide by N) or ``sample`` (N − 1, skimage's default); ``border``: ``valid`` (the mean over the positions whose
    window lies inside the image: Wang et al., skimage, pytorch-msssim) or ``reflect`` (the image padded by half a
    window with torch's ``reflect`` mode, mean over every pixel: MaskBit's evaluator).
    """

    window: str = "gaussian"
    size: int = 11
    sigma: float | None = 1.5
    covariance: str = "population"
    border: str = "valid"
    data_range: float = 1.0
    k1: float = 0.01
    k2: float = 0.03
    implementation: str = "pytorch-msssim"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


VISTOK_SSIM = SSIMConvention()
SKIMAGE_SSIM = SSIMConvention(window="uniform", size=7, sigma=None, covariance="sample", implementation="vistok")


@dataclass(frozen=True)
class Protocol:
    """One project's evaluation conventions (see the module docstring and ``docs/evaluation.md``).

    Attributes:
        name: what ``--protocol`` takes.
        summary: one line.
        follows: the upstream files (with the lines that matter) this protocol reproduces.
        split: the split it names (``None``: ``vistok evaluate``'s default, ``test``; a dataset preset maps it to
            its Hub split: ``imagenet256`` ``validation`` is ImageNet's 50,000 validation images).
        images: how a photo becomes the tokenizer's input — ``generic`` (vistok's: the dataset preset's crop, else
            ADM's centre crop), ``upstream`` (each tokenizer's recorded pipeline, else generic), ``pipeline`` (the
            fixed ``pipeline`` below, at the evaluation resolution) or ``original`` (full size, padded to a
            multiple of ``pad_multiple`` — or of the tokenizer's downsampling factor — and cropped back).
        pipeline: the fixed pipeline of ``images="pipeline"`` (its ``size`` follows the evaluation resolution).
        pad_multiple: ``images="original"``: pad to this multiple (``None``: the tokenizer's downsampling factor).
        pad_value: the pad value in [-1, 1] pixel values (0 = mid grey, SEED-Voken's).
        quantization: how originals and reconstructions become uint8 (``QUANTIZATIONS``; the originals first
            take the upstream's float route, ``ORIGINAL_RANGE_OF``).
        inputs: per metric (``psnr``, ``ssim``, ``lpips``, ``rfid``), whether it sees those uint8 images or the
            float images (reconstructions clamped to [-1, 1], unquantised).
        psnr_eps: added to the MSE before the log (MaskBit's 1e-10; 0 = an exact copy scores ``inf``).
        ssim: the SSIM convention.
        lpips_net: ``vgg`` or ``alex`` (the ``lpips`` package's v0.1 linear heads).
        inception_resize: how images are resized to Inception's 299² (``INCEPTION_RESIZES``): ``tf1_bilinear`` —
            torch-fidelity's TF1-compatible bilinear inside the network, what ADM's TF evaluator does;
            ``torch_bilinear`` — pytorch-fid's ``F.interpolate(bilinear, align_corners=False)`` on [0, 1] floats;
            ``clean_fid_bicubic`` — clean-fid's per-channel PIL bicubic resize of float images.
        reference: what the reconstructions are compared against (always their own originals, prepared the same
            way; never a generation reference batch).
        usage_key: which codebook-usage number the origin reports (``codebook_usage``: the seed's last-65,536-
            indices queue; ``codebook_usage_split``: distinct codes over the whole split).
        notes: what vistok does not reproduce, or where the upstream differs between its own scripts.
    """

    name: str
    summary: str
    follows: tuple[str, ...] = ()
    split: str | None = None
    images: str = "generic"
    pipeline: Preprocessing | None = None
    pad_multiple: int | None = None
    pad_value: float = 0.0
    quantization: str = "round"
    inputs: dict[str, str] = field(default_factory=lambda: dict.fromkeys(("psnr", "ssim", "lpips", "rfid"), "uint8"))
    psnr_eps: float = 0.0
    ssim: SSIMConvention = VISTOK_SSIM
    lpips_net: str = "vgg"
    inception_resize: str = "tf1_bilinear"
    reference: str = "the originals of the evaluated images, prepared and converted to uint8 the same way"
    usage_key: str = "codebook_usage"
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        checks = {
            "images": (self.images, IMAGE_SOURCES),
            "quantization": (self.quantization, QUANTIZATIONS),
            "lpips_net": (self.lpips_net, ("vgg", "alex")),
            "inception_resize": (self.inception_resize, INCEPTION_RESIZES),
            "usage_key": (self.usage_key, ("codebook_usage", "codebook_usage_split")),
        }
        for name, (value, valid) in checks.items():
            if value not in valid:
                raise ValueError(f"protocol {self.name!r}: {name} must be one of {', '.join(valid)}, got {value!r}")
        for metric, kind in self.inputs.items():
            if metric not in ("psnr", "ssim", "lpips", "rfid") or kind not in METRIC_INPUTS:
                raise ValueError(f"protocol {self.name!r}: inputs[{metric!r}] = {kind!r} is not valid")
        if (self.images == "pipeline") != (self.pipeline is not None):
            raise ValueError(f"protocol {self.name!r}: a pipeline is given exactly when images='pipeline'")

    def input_kind(self, metric: str) -> str:
        return self.inputs.get(metric, "uint8")

    def conventions(self) -> dict[str, Any]:
        """Every convention this protocol fixes, JSON-native (what a report records)."""
        return {
            "name": self.name,
            "summary": self.summary,
            "follows": list(self.follows),
            "split": self.split or "the --split given (default: test)",
            "images": self.images,
            "pipeline": self.pipeline.to_dict() if self.pipeline else None,
            "pad_multiple": self.pad_multiple,
            "pad_value": self.pad_value,
            "to_uint8": {"quantization": self.quantization,
                         "originals_enter_as": ORIGINAL_RANGE_OF[self.quantization]},
            "metric_inputs": dict(self.inputs),
            "psnr": {"data_range": 1.0, "eps": self.psnr_eps, "averaging": "per image, then the mean over images"},
            "ssim": self.ssim.to_dict(),
            "lpips": {"network": self.lpips_net, "version": "0.1", "implementation": "the lpips package"},
            "rfid": {"inception_resize": self.inception_resize, "features": "2048-d pool3 of TF-Inception-v3 "
                     "(pt_inception-2015-12-05 weights)", "reference": self.reference},
            "codebook_usage_reported_by_origin": self.usage_key,
            "notes": list(self.notes),
        }


# ADM's center_crop_arr (guided-diffusion image_datasets.py), which LlamaGen copies into dataset/augmentation.py.
ADM_CENTER_CROP = Preprocessing(256, filter="bicubic", size_rule="round", box_prehalve=True, crop_offset="floor",
                                follows="ADM center_crop_arr (LlamaGen dataset/augmentation.py)")
# 1d-tokenizer data/webdataset_reader.py eval transform: Resize(size, BICUBIC, antialias=True) + CenterCrop.
TORCHVISION_BICUBIC_CROP = Preprocessing(
    256, filter="bicubic", size_rule="truncate", crop_offset="round",
    follows="1d-tokenizer data/webdataset_reader.py (torchvision Resize BICUBIC + CenterCrop)",
)

# SEED-Voken src/IBQ/data/base.py ImagePaths: albumentations SmallestMaxSize (OpenCV linear) + CenterCrop.
ALBUMENTATIONS_CROP = Preprocessing(
    256, filter="cv2_linear", size_rule="round", crop_offset="floor",
    follows="SEED-Voken src/IBQ/data/base.py ImagePaths (albumentations SmallestMaxSize + CenterCrop)",
)

LLAMAGEN_URL = "https://github.com/FoundationVision/LlamaGen/blob/main"
TITOK_URL = "https://github.com/bytedance/1d-tokenizer/blob/main"
MASKBIT_URL = "https://github.com/markweberdev/maskbit/blob/main"
SEED_VOKEN_URL = "https://github.com/TencentARC/SEED-Voken/blob/main"
CLEAN_FID_URL = "https://github.com/GaParmar/clean-fid/blob/main"

PROTOCOLS: dict[str, Protocol] = {
    "vistok": Protocol(
        name="vistok",
        summary="vistok's documented conventions on vistok's generic preprocessing (identical pixels for every "
        "tokenizer)",
        follows=("docs/evaluation.md (vistok)", "vistok/data/transforms.py center_crop_adm"),
    ),
    "upstream": Protocol(
        name="upstream",
        summary="vistok's metric conventions on the pixels each tokenizer's own upstream pipeline builds "
        "(generic preprocessing for a tokenizer that records none)",
        follows=("vistok/preprocessing.py (each family's pipeline, recorded in config.metadata['preprocessing'])",),
        images="upstream",
    ),
    "llamagen": Protocol(
        name="llamagen",
        summary="LlamaGen: ADM centre crop, skimage SSIM (uniform 7x7, data_range 2), ADM's TF-Inception FID "
        "against the validation originals",
        follows=(
            f"{LLAMAGEN_URL}/tokenizer/tokenizer_image/reconstruction_vq_ddp.py (L90-94 transform, L126-143 "
            "uint8 conversion, PSNR and SSIM)",
            f"{LLAMAGEN_URL}/tokenizer/validation/val_ddp.py (L52-70 center_crop_arr, L131-135: the rFID reference "
            "is the validation images through the same crop)",
            f"{LLAMAGEN_URL}/evaluations/c2i/evaluator.py (ADM's TF Inception: resize_bilinear to 299 in the "
            "graph)",
        ),
        split="validation",
        images="pipeline",
        pipeline=ADM_CENTER_CROP,
        quantization="half_up",
        ssim=SSIMConvention(window="uniform", size=7, sigma=None, covariance="sample", data_range=2.0,
                            implementation="vistok (equals skimage.metrics.structural_similarity)"),
        notes=(
            "PSNR is skimage's peak_signal_noise_ratio(reconstruction, original): data range 1 inferred from the "
            "[0, 1] float images, per image.",
            "LlamaGen does not measure LPIPS; vistok's VGG LPIPS is reported.",
            "rFID: ADM's evaluator runs TensorFlow's Inception graph; vistok runs torch-fidelity's port of it "
            "with its TF1-compatible bilinear resize (the same computation, float32).",
            "LlamaGen does not report codebook usage.",
        ),
    ),
    "torch-fidelity": Protocol(
        name="torch-fidelity",
        summary="TiTok / MaskBit's evaluator: torchvision Resize+CenterCrop, uint8 by truncation, "
        "torch-fidelity's Inception (TF1 bilinear), SSIM on clamped floats with reflect padding",
        follows=(
            f"{TITOK_URL}/evaluator/evaluator.py (L136-160: (x * 255).to(torch.uint8) into "
            "torch-fidelity's FeatureExtractorInceptionV3)",
            f"{TITOK_URL}/evaluator/inception.py (TF1-compatible bilinear resize to 299)",
            f"{TITOK_URL}/data/webdataset_reader.py (eval transform: Resize BICUBIC + CenterCrop)",
            f"{MASKBIT_URL}/evaluator/evaluator.py (TokenizerEvaluator.update: PSNR with eps 1e-10, SSIM Gaussian "
            "11 / 1.5 with reflect padding, on [0, 1] floats)",
            f"{MASKBIT_URL}/scripts/eval_tokenizer.py (reconstructions clamped to [0, 1])",
        ),
        split="validation",
        images="pipeline",
        pipeline=TORCHVISION_BICUBIC_CROP,
        quantization="truncate_unit",
        inputs={"psnr": "float", "ssim": "float", "lpips": "float", "rfid": "uint8"},
        psnr_eps=1e-10,
        ssim=SSIMConvention(border="reflect", implementation="vistok (MaskBit's evaluator)"),
        usage_key="codebook_usage_split",
        notes=(
            "TiTok's train_utils.eval_reconstruction rounds reconstructions to multiples of 1/255 before the "
            "evaluator truncates them, so its rFID sees rounded images; MaskBit's scripts/eval_tokenizer.py does "
            "not. vistok follows MaskBit (truncation).",
            "MaskBit's tokenizer configs resize with bilinear, not bicubic: use --preprocessing upstream for a "
            "MaskBit entry's own pipeline.",
            "torch-fidelity's copy in TiTok / MaskBit runs Inception in float64; vistok in float32 (features agree "
            "to ~1e-6 relative).",
            "SEED-Voken's FID uses pytorch-fid's Inception on float images instead: see original-resolution.",
        ),
    ),
    "clean-fid": Protocol(
        name="clean-fid",
        summary="vistok's conventions with clean-fid's resize into Inception (per-channel PIL bicubic on float "
        "images, no quantisation after resizing)",
        follows=(
            f"{CLEAN_FID_URL}/cleanfid/resize.py (build_resizer('clean') = make_resizer('PIL', False, 'bicubic', "
            "(299, 299)))",
            f"{CLEAN_FID_URL}/cleanfid/inception_torchscript.py (InceptionV3W: (x - 128) / 128, no resize inside)",
        ),
        split="validation",
        inception_resize="clean_fid_bicubic",
        notes=("clean-fid runs its TorchScript export of the same TF-Inception weights; vistok runs torch-fidelity's "
               "port with clean-fid's resize in front.",),
    ),
    "seed-voken": Protocol(
        name="seed-voken",
        summary="SEED-Voken's evaluation_image.py (IBQ / Open-MAGVIT2 at 256): albumentations resize + centre crop, "
        "truncated uint8, skimage SSIM, AlexNet LPIPS and pytorch-fid's Inception on float images",
        follows=(
            f"{SEED_VOKEN_URL}/evaluation_image.py (the metric loop: clamp, LPIPS on [-1, 1] floats, pytorch-fid "
            "InceptionV3 on [0, 1] floats, (x * 255).to(uint8) for skimage PSNR / SSIM data_range 1.0)",
            f"{SEED_VOKEN_URL}/src/IBQ/data/base.py (ImagePaths: SmallestMaxSize + CenterCrop, image / 127.5 - 1)",
        ),
        split="validation",
        images="pipeline",
        pipeline=ALBUMENTATIONS_CROP,
        quantization="truncate_signed",
        inputs={"psnr": "uint8", "ssim": "uint8", "lpips": "float", "rfid": "float"},
        ssim=SSIMConvention(window="uniform", size=7, sigma=None, covariance="sample",
                            implementation="vistok (equals skimage.metrics.structural_similarity)"),
        lpips_net="alex",
        inception_resize="torch_bilinear",
        usage_key="codebook_usage_split",
        notes=(
            "evaluation_image.py prints LPIPS with AlexNet and with VGG; the AlexNet one is reported here.",
            "Open-MAGVIT2's data module frames with torchvision Resize (bilinear) instead of albumentations: "
            "--preprocessing upstream with an Open-MAGVIT2 entry uses its own.",
            "SEED-Voken averages PSNR and SSIM per batch, then over batches (equal to the mean over images when "
            "every batch is full).",
        ),
    ),
    "original-resolution": Protocol(
        name="original-resolution",
        summary="SEED-Voken: full-size validation images padded to a multiple of 16 (grey) and cropped back, "
        "pytorch-fid's Inception on float images, skimage SSIM, truncated uint8",
        follows=(
            f"{SEED_VOKEN_URL}/evaluation_original_reso.py (L150-178 pad_images / unpad_images, L232-262 the "
            "metrics)",
            f"{SEED_VOKEN_URL}/evaluation_image.py (LPIPS with AlexNet, loss_fn_alex)",
            "https://github.com/mseitzer/pytorch-fid/blob/master/src/pytorch_fid/inception.py (resize_input: "
            "F.interpolate bilinear to 299, normalize_input: 2x - 1)",
        ),
        split="validation",
        images="original",
        pad_multiple=16,
        pad_value=0.0,
        quantization="truncate_signed",
        inputs={"psnr": "uint8", "ssim": "uint8", "lpips": "float", "rfid": "float"},
        ssim=SSIMConvention(window="uniform", size=7, sigma=None, covariance="sample",
                            implementation="vistok (equals skimage.metrics.structural_similarity)"),
        lpips_net="alex",
        inception_resize="torch_bilinear",
        usage_key="codebook_usage_split",
        notes=(
            "Images of different sizes cannot be batched: one image per batch.",
            "SEED-Voken averages PSNR and SSIM per batch, then over batches; with one image per batch that is the "
            "mean over images.",
            "evaluation_original_reso.py does not compute LPIPS; evaluation_image.py's AlexNet LPIPS is reported.",
            "The padding multiple is 16 (SEED-Voken's); a tokenizer with another downsampling factor is padded to "
            "a multiple of both.",
        ),
    ),
}

DEFAULT_PROTOCOL = "upstream"


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; ``ValueError`` listing the valid names."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; valid protocols: {', '.join(PROTOCOLS)}") from None


def protocol_names() -> list[str]:
    return list(PROTOCOLS)


# ---------------------------------------------------------------------------------------- conversions
def exact_uint8(pixel_values: torch.Tensor) -> torch.Tensor:
    """vistok pixel values of a decoded image (``k / 127.5 - 1``) → the exact uint8 ``k`` (round to nearest)."""
    return ((pixel_values.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def originals_to_uint8(pixel_values: torch.Tensor, protocol: Protocol) -> torch.Tensor:
    """The 8-bit originals the protocol's uint8 metrics compare against: the exact grey levels ``k`` taken through
    the upstream's own float arithmetic (``ORIGINAL_RANGES``) and its conversion back to uint8."""
    k = exact_uint8(pixel_values)
    rule = protocol.quantization
    if rule == "round":
        return k
    if rule == "half_up":  # ToTensor, Normalize(0.5, 0.5), then clamp(127.5 x + 128)
        return _half_up((k.float() / 255.0 - 0.5) / 0.5)
    if rule == "truncate_unit":  # ToTensor, then (x * 255).to(uint8)
        return ((k.float() / 255.0).clamp(0, 1) * 255).to(torch.uint8)
    signed = torch.from_numpy((k.cpu().numpy().astype(np.float64) / 127.5 - 1.0).astype(np.float32)).to(k.device)
    return _truncate_signed(signed)


def reconstructions_to_uint8(reconstruction: torch.Tensor, protocol: Protocol) -> torch.Tensor:
    """Reconstructions (vistok pixel values in [-1, 1]) → the protocol's 8-bit images (``QUANTIZATIONS``)."""
    x = reconstruction.detach().float()
    rule = protocol.quantization
    if rule == "round":
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if rule == "half_up":
        return _half_up(x)
    if rule == "truncate_unit":  # the upstream decoder's [0, 1] output, clamped, times 255, truncated
        return (((x + 1) / 2).clamp(0, 1) * 255).to(torch.uint8)
    return _truncate_signed(x)


def _half_up(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(127.5 * x + 128.0, 0, 255).to(torch.uint8)


def _truncate_signed(x: torch.Tensor) -> torch.Tensor:
    return (((x.clamp(-1, 1) + 1) / 2) * 255).to(torch.uint8)


def float_images(pixel_values: torch.Tensor) -> torch.Tensor:
    """The float images a protocol's float metrics see: clamped to [-1, 1], unquantised (float32)."""
    return pixel_values.detach().float().clamp(-1, 1)


# ------------------------------------------------------------------------------------- rFID references
class GenerationReferenceError(ValueError):
    """An rFID reference that is a generation reference batch, not the originals of the evaluated images."""


def check_rfid_reference(path: str | Path) -> None:
    """Refuse a generation reference batch as an rFID reference, saying why (:class:`GenerationReferenceError`).

    rFID compares reconstructions with *their own originals*. ADM's reference batches (``VIRTUAL_imagenet256_
    labeled.npz`` and its siblings, which LlamaGen's GETTING_STARTED uses for gFID) hold statistics over the whole
    ImageNet *training* set (``mu`` / ``sigma``, plus the spatial ``mu_s`` / ``sigma_s`` of sFID) and 10,000 training
    images: measured against them, a perfect tokenizer still scores the train/validation gap, and the number is
    not comparable with any reported rFID.
    """
    path = Path(path)
    keys: set[str] = set()
    if path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
    generation = path.name.upper().startswith("VIRTUAL_") or {"mu_s", "sigma_s"} <= keys
    if generation:
        raise GenerationReferenceError(
            f"{path.name} is a generation reference batch (ADM's evaluator format: statistics over the whole ImageNet "
            "training set and 10,000 training images, for the FID of generated samples), not the originals of the "
            "images you reconstruct. rFID compares each reconstruction set with its own originals: against this batch "
            "even a perfect tokenizer scores the train/validation gap, and the number is comparable with no reported "
            "rFID. Leave --rfid-reference out (vistok uses the originals of the evaluated images, prepared the same "
            "way) or pass a batch made from the same split (LlamaGen's tokenizer/validation/val_ddp.py writes one)."
        )


def load_rfid_reference(path: str | Path) -> dict[str, np.ndarray]:
    """An rFID reference file: an ``.npz`` with ``arr_0`` (N, H, W, 3) uint8 images (LlamaGen's ``val_ddp.py``,
    ADM's sample-batch format) or precomputed ``mu`` and ``sigma`` (pytorch-fid / clean-fid statistics, which must
    come from the same Inception and resize). Generation reference batches are refused (:func:`check_rfid_reference`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--rfid-reference {path} is not a file")
    check_rfid_reference(path)
    if path.suffix != ".npz":
        raise ValueError(f"--rfid-reference must be an .npz file (arr_0 images, or mu and sigma); got {path.name}")
    with np.load(path, allow_pickle=False) as data:
        if "arr_0" in data.files:
            images = data["arr_0"]
            if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
                raise ValueError(f"{path.name}: arr_0 must be (N, H, W, 3) uint8 images, got {images.shape} "
                                 f"{images.dtype}")
            return {"images": images}
        if {"mu", "sigma"} <= set(data.files):
            return {"mu": data["mu"].astype(np.float64), "sigma": data["sigma"].astype(np.float64)}
    raise ValueError(f"{path.name} holds neither arr_0 images nor mu and sigma statistics")

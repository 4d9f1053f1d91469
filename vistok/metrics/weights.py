"""Finding the pretrained backbones that LPIPS and rFID need, with an actionable error when they are missing.

Resolution order for each backbone (first hit wins):

1. an explicit file path (``lpips_weights=`` / ``--lpips-weights``, ``inception_weights=`` / ``--inception-weights``);
2. an environment variable (``VISTOK_LPIPS_VGG_WEIGHTS``, ``VISTOK_INCEPTION_WEIGHTS``);
3. the torch hub cache where torchvision / torch-fidelity / pytorch-fid store them
   (``torch.hub.get_dir()/checkpoints/<file name>``, which honours ``TORCH_HOME``);
4. a download from the upstream URL into that cache, unless downloads are disabled
   (``allow_download=False``, ``VISTOK_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``).

When none succeeds, :class:`MissingWeightsError` says what is missing and every way to provide it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub
import torch


@dataclass(frozen=True)
class BackboneWeights:
    """Where one pretrained backbone comes from and where vistok looks for it."""

    description: str
    url: str
    cache_filenames: tuple[str, ...]
    env_var: str
    option: str  # the CLI option / keyword argument that takes an explicit path


LPIPS_VGG16 = BackboneWeights(
    description="VGG16 ImageNet backbone of LPIPS (torchvision's vgg16 IMAGENET1K_V1 state dict)",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    cache_filenames=("vgg16-397923af.pth",),
    env_var="VISTOK_LPIPS_VGG_WEIGHTS",
    option="--lpips-weights / lpips_weights=",
)

LPIPS_ALEX = BackboneWeights(
    description="AlexNet ImageNet backbone of LPIPS-Alex (torchvision's alexnet IMAGENET1K_V1 state dict)",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    cache_filenames=("alexnet-owt-7be5be79.pth",),
    env_var="VISTOK_LPIPS_ALEX_WEIGHTS",
    option="--lpips-weights / lpips_weights=",
)

INCEPTION_V3_FID = BackboneWeights(
    description="TF-Inception-v3 (2015-12-05) port used for FID by torch-fidelity and pytorch-fid",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    # torch-fidelity's file and pytorch-fid's file hold the same parameters under the same names.
    cache_filenames=("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
    env_var="VISTOK_INCEPTION_WEIGHTS",
    option="--inception-weights / inception_weights=",
)


class MissingWeightsError(FileNotFoundError):
    """A pretrained backbone could not be found or downloaded; the message says how to provide it."""


def hub_checkpoint_dir() -> Path:
    """The folder torchvision and torch-fidelity download checkpoints into (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def downloads_disabled() -> bool:
    """``VISTOK_OFFLINE`` is set, or huggingface_hub is in offline mode (``HF_HUB_OFFLINE``, read its own way)."""
    vistok_offline = os.environ.get("VISTOK_OFFLINE", "").strip().lower() in ("1", "true", "yes")
    return vistok_offline or huggingface_hub.is_offline_mode()


def how_to_provide(spec: BackboneWeights) -> str:
    """A multi-line instruction listing every way to give vistok this backbone's weights."""
    cache = hub_checkpoint_dir() / spec.cache_filenames[0]
    return (
        f"Download {spec.url} on a machine with internet access, then either\n"
        f"  - pass the file with {spec.option}FILE,\n"
        f"  - set the environment variable {spec.env_var}=FILE, or\n"
        f"  - copy it to {cache} (the torch hub cache; set TORCH_HOME to move it)."
    )


def resolve_weights(
    spec: BackboneWeights, explicit: str | os.PathLike | None = None, allow_download: bool = True
) -> Path:
    """Return a local file holding ``spec``'s weights, following the order in the module docstring.

    An explicit path or environment variable that names a missing file is an error (never silently skipped).
    Raises :class:`MissingWeightsError` with a how-to when no source works.
    """
    for source, value in (
        (spec.option.split(" ")[0], explicit),
        (spec.env_var, os.environ.get(spec.env_var)),
    ):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise MissingWeightsError(
                    f"{spec.description}: {source} points to {path}, which is not a file.\n{how_to_provide(spec)}"
                )
            return path
    for name in spec.cache_filenames:
        cached = hub_checkpoint_dir() / name
        if cached.is_file():
            return cached
    if not allow_download or downloads_disabled():
        raise MissingWeightsError(
            f"{spec.description} not found locally and downloads are disabled.\n{how_to_provide(spec)}"
        )
    target = hub_checkpoint_dir() / spec.cache_filenames[0]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(
            spec.url, str(target), hash_prefix=_hash_prefix(spec.cache_filenames[0])
        )
    except Exception as error:  # network errors come in many types (URLError, OSError, HTTPError …)
        raise MissingWeightsError(
            f"{spec.description} not found locally and the download failed ({type(error).__name__}: {error}).\n"
            f"{how_to_provide(spec)}"
        ) from error
    return target


def _hash_prefix(filename: str) -> str | None:
    """The sha256 prefix that torch hub file names carry after the last dash (``vgg16-397923af.pth``)."""
    stem = filename.rsplit(".", 1)[0]
    prefix = stem.rsplit("-", 1)[-1]
    return prefix if len(prefix) >= 6 and all(c in "0123456789abcdef" for c in prefix) else None

"""Facts about the upstream projects vistok converts from, and the metadata a conversion writes into the config.

Reported numbers are copied from the upstream papers / READMEs (see ``shared/reference/README.md``) and are always
labelled "reported by origin": vistok did not measure them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONVERTER_VERSION = "1.0"

IMAGENET = {
    "dataset": "ImageNet 256x256 validation",
    "dataset_id": "ILSVRC/imagenet-1k",
    "split": "validation",
}


@dataclass(frozen=True)
class Origin:
    """An upstream project: where it lives, its licence, paper and citation."""

    name: str
    url: str
    license: str
    paper_title: str
    paper_authors: str
    paper_venue: str
    paper_url: str
    citation: str

    def metadata(self) -> dict[str, Any]:
        return {
            "origin": {"name": self.name, "url": self.url},
            "license": self.license,
            "paper": {
                "title": self.paper_title,
                "authors": self.paper_authors,
                "venue": self.paper_venue,
                "url": self.paper_url,
            },
            "citation": self.citation,
        }


@dataclass(frozen=True)
class Release:
    """A published checkpoint family: the architecture that identifies it and the numbers its authors report."""

    origin: Origin
    name: str
    checkpoints: tuple[str, ...]
    channel_multiplier: tuple[int, ...]
    codebook: tuple[int, int]
    reported_metrics: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    # Reported numbers belong to these checkpoint files only (e.g. the c2i tokenizer, not the t2i one).
    metrics_checkpoints: tuple[str, ...] = ()

    def matches(self, net: dict[str, Any], codebook_size: int, codebook_dim: int) -> bool:
        return (
            tuple(net["channel_multiplier"]) == self.channel_multiplier
            and net["base_channels"] == 128
            and net["latent_channels"] == 256
            and (codebook_size, codebook_dim) == self.codebook
        )


LLAMAGEN = Origin(
    name="LlamaGen",
    url="https://github.com/FoundationVision/LlamaGen",
    license="mit",
    paper_title="Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation",
    paper_authors="Peize Sun, Yi Jiang, Shoufa Chen, Shilong Zhang, Bingyue Peng, Ping Luo, Zehuan Yuan",
    paper_venue="arXiv:2406.06525 (2024)",
    paper_url="https://arxiv.org/abs/2406.06525",
    citation="""@article{sun2024autoregressive,
  title={Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation},
  author={Sun, Peize and Jiang, Yi and Chen, Shoufa and Zhang, Shilong and Peng, Bingyue and Luo, Ping and Yuan, Zehuan},
  journal={arXiv preprint arXiv:2406.06525},
  year={2024}
}""",
)

TAMING = Origin(
    name="Taming Transformers",
    url="https://github.com/CompVis/taming-transformers",
    license="mit",
    paper_title="Taming Transformers for High-Resolution Image Synthesis",
    paper_authors="Patrick Esser, Robin Rombach, Björn Ommer",
    paper_venue="CVPR 2021",
    paper_url="https://arxiv.org/abs/2012.09841",
    citation="""@inproceedings{esser2021taming,
  title={Taming Transformers for High-Resolution Image Synthesis},
  author={Esser, Patrick and Rombach, Robin and Ommer, Bj{\\"o}rn},
  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages={12873--12883},
  year={2021}
}""",
)


def _reported(metric: str, value: float, source: str, source_url: str, **extra: Any) -> dict[str, Any]:
    return {"metric": metric, "value": value, **IMAGENET, "source": source, "source_url": source_url, **extra}


RELEASES: tuple[Release, ...] = (
    Release(
        LLAMAGEN,
        "VQ-16",
        ("vq_ds16_c2i.pt", "vq_ds16_t2i.pt"),
        (1, 1, 2, 2, 4),
        (16384, 8),
        (
            _reported("rfid", 2.19, "LlamaGen paper / README", LLAMAGEN.paper_url),
            _reported("psnr", 20.79, "LlamaGen paper / README", LLAMAGEN.paper_url),
            _reported(
                "ssim",
                0.675,
                "LlamaGen paper / README",
                LLAMAGEN.paper_url,
                note="SSIM computed with data_range 2",
            ),
        ),
        metrics_checkpoints=("vq_ds16_c2i.pt",),
    ),
    Release(
        LLAMAGEN,
        "VQ-8",
        ("vq_ds8_c2i.pt",),
        (1, 2, 2, 4),
        (16384, 8),
        (_reported("rfid", 0.59, "LlamaGen README", LLAMAGEN.url),),
        metrics_checkpoints=("vq_ds8_c2i.pt",),
    ),
    Release(
        TAMING,
        "VQGAN ImageNet f16-1024",
        ("vqgan_imagenet_f16_1024 last.ckpt",),
        (1, 1, 2, 2, 4),
        (1024, 256),
        (_reported("rfid", 7.94, "Taming paper", TAMING.paper_url),),
    ),
    Release(
        TAMING,
        "VQGAN ImageNet f16-16384",
        ("vqgan_imagenet_f16_16384 last.ckpt",),
        (1, 1, 2, 2, 4),
        (16384, 256),
        (_reported("rfid", 4.98, "Taming README", TAMING.url),),
    ),
)


def find_release(
    origin: Origin, net: dict[str, Any], codebook_size: int, codebook_dim: int
) -> Release | None:
    """The published release of ``origin`` whose architecture equals the inferred one, if any."""
    for release in RELEASES:
        if release.origin is origin and release.matches(net, codebook_size, codebook_dim):
            return release
    return None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def conversion_metadata(
    origin: Origin,
    converter: str,
    inferred: dict[str, Any],
    checkpoint: str | Path | None = None,
    weights: str | None = None,
    extra_origin: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """``config.metadata`` for a converted tokenizer: origin (project, release, file, sha256, which weights),
    licence, paper, citation, converter name and version, and — when the architecture is a known release and the
    file name does not point to a different checkpoint of it — that release's numbers, labelled as reported.
    ``notes`` (assumptions the converter made) are recorded under ``converter.notes``."""
    from .. import __version__

    meta = origin.metadata()
    meta["origin"].update(extra_origin or {})
    if weights is not None:
        meta["origin"]["weights"] = weights
    if checkpoint is not None:
        meta["origin"]["checkpoint_file"] = Path(checkpoint).name
        meta["origin"]["checkpoint_sha256"] = file_sha256(checkpoint)
    meta["converter"] = {"name": converter, "version": CONVERTER_VERSION, "vistok_version": __version__}
    if notes:
        meta["converter"]["notes"] = list(notes)
    release = find_release(origin, inferred["net"], inferred["codebook_size"], inferred["codebook_dim"])
    if release is not None:
        meta["origin"]["release"] = release.name
        meta["origin"]["release_checkpoints"] = list(release.checkpoints)
        name = Path(checkpoint).name if checkpoint is not None else None
        applies = not release.metrics_checkpoints or name is None or name in release.metrics_checkpoints
        if release.reported_metrics and applies:
            meta["reported_metrics"] = [
                {**m, "applies_to": f"{origin.name} {release.name} as released by its authors"}
                for m in release.reported_metrics
            ]
    return meta

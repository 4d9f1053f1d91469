"""The records that describe an upstream project (:class:`Origin`, :class:`Release`, reported numbers) and the
metadata a conversion writes into the config. The projects themselves are defined in their family modules
(:mod:`vistok.families`).

Reported numbers are copied from the upstream papers / READMEs (see ``shared/reference/README.md``) and are always
labelled "reported by origin": vistok did not measure them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGENET = {
    "dataset": "ImageNet 256x256 validation",
    "dataset_id": "ILSVRC/imagenet-1k",
    "split": "validation",
}
IMAGENET_128 = {**IMAGENET, "dataset": "ImageNet 128x128 validation"}


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
            tuple(net.get("channel_multiplier", ())) == self.channel_multiplier
            and net.get("base_channels") == 128
            and net.get("latent_channels") == 256
            and (codebook_size, codebook_dim) == self.codebook
        )


SEED_VOKEN_URL = "https://github.com/TencentARC/SEED-Voken"


def reported_metric(
    metric: str, value: float, source: str, source_url: str, *, dataset: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """One number an upstream project reports (rendered as "reported by origin"), on ImageNet 256 val unless
    ``dataset`` says otherwise."""
    return {"metric": metric, "value": value, **(dataset or IMAGENET), "source": source, "source_url": source_url, **extra}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

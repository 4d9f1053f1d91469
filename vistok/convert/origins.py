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


SEED_VOKEN_URL = "https://github.com/TencentARC/SEED-Voken"

OPEN_MAGVIT2 = Origin(
    name="Open-MAGVIT2",
    url=SEED_VOKEN_URL,
    license="apache-2.0",
    paper_title="Open-MAGVIT2: An Open-Source Project Toward Democratizing Auto-regressive Visual Generation",
    paper_authors="Zhuoyan Luo, Fengyuan Shi, Yixiao Ge, Yujiu Yang, Limin Wang, Ying Shan",
    paper_venue="arXiv:2409.04410 (2024)",
    paper_url="https://arxiv.org/abs/2409.04410",
    citation="""@article{luo2024open,
  title={Open-MAGVIT2: An Open-Source Project Toward Democratizing Auto-regressive Visual Generation},
  author={Luo, Zhuoyan and Shi, Fengyuan and Ge, Yixiao and Yang, Yujiu and Wang, Limin and Shan, Ying},
  journal={arXiv preprint arXiv:2409.04410},
  year={2024}
}""",
)

IBQ = Origin(
    name="IBQ",
    url=SEED_VOKEN_URL,
    license="apache-2.0",
    paper_title="Taming Scalable Visual Tokenizer for Autoregressive Image Generation",
    paper_authors="Fengyuan Shi, Zhuoyan Luo, Yixiao Ge, Yujiu Yang, Ying Shan, Limin Wang",
    paper_venue="arXiv:2412.02692 (2024)",
    paper_url="https://arxiv.org/abs/2412.02692",
    citation="""@article{shi2024taming,
  title={Taming Scalable Visual Tokenizer for Autoregressive Image Generation},
  author={Shi, Fengyuan and Luo, Zhuoyan and Ge, Yixiao and Yang, Yujiu and Shan, Ying and Wang, Limin},
  journal={arXiv preprint arXiv:2412.02692},
  year={2024}
}""",
)

SIMVQ = Origin(
    name="SimVQ",
    url="https://github.com/youngsheen/SimVQ",
    license="mit",
    paper_title="Addressing Representation Collapse in Vector Quantized Models with One Linear Layer",
    paper_authors="Yongxin Zhu, Bocheng Li, Yifei Xin, Linli Xu",
    paper_venue="arXiv:2411.02038 (2024)",
    paper_url="https://arxiv.org/abs/2411.02038",
    citation="""@article{zhu2024addressing,
  title={Addressing Representation Collapse in Vector Quantized Models with One Linear Layer},
  author={Zhu, Yongxin and Li, Bocheng and Xin, Yifei and Xu, Linli},
  journal={arXiv preprint arXiv:2411.02038},
  year={2024}
}""",
)

# VAR (FoundationVision/VAR): MIT (its LICENSE and README); weights on the Hub in FoundationVision/var.
VAR = Origin(
    name="VAR",
    url="https://github.com/FoundationVision/VAR",
    license="mit",
    paper_title="Visual Autoregressive Modeling: Scalable Image Generation via Next-Scale Prediction",
    paper_authors="Keyu Tian, Yi Jiang, Zehuan Yuan, Bingyue Peng, Liwei Wang",
    paper_venue="NeurIPS 2024",
    paper_url="https://arxiv.org/abs/2404.02905",
    citation="""@inproceedings{tian2024visual,
  title={Visual Autoregressive Modeling: Scalable Image Generation via Next-Scale Prediction},
  author={Tian, Keyu and Jiang, Yi and Yuan, Zehuan and Peng, Bingyue and Wang, Liwei},
  booktitle={Advances in Neural Information Processing Systems (NeurIPS)},
  year={2024}
}""",
)

# MaskGIT's VQGAN (google-research/maskgit, JAX) as the PyTorch port the TiTok authors released in
# bytedance/1d-tokenizer (modeling/modules/maskgit_vqgan.py, Apache 2.0 file headers) and on the Hub in
# fun-research/TiTok (model card: license apache-2.0). The 1d-tokenizer README adds that its models were trained on
# ImageNet only and are for research purposes.
MASKGIT = Origin(
    name="MaskGIT-VQGAN",
    url="https://github.com/bytedance/1d-tokenizer",
    license="apache-2.0",
    paper_title="MaskGIT: Masked Generative Image Transformer",
    paper_authors="Huiwen Chang, Han Zhang, Lu Jiang, Ce Liu, William T. Freeman",
    paper_venue="CVPR 2022",
    paper_url="https://arxiv.org/abs/2202.04200",
    citation="""@inproceedings{chang2022maskgit,
  title={MaskGIT: Masked Generative Image Transformer},
  author={Chang, Huiwen and Zhang, Han and Jiang, Lu and Liu, Ce and Freeman, William T.},
  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2022}
}""",
)

# TiTok (bytedance/1d-tokenizer): Apache 2.0 (file headers of modeling/titok.py; the Hub repos' mixin model cards say
# license apache-2.0). The README adds that its models were trained on ImageNet only and are for research purposes.
TITOK = Origin(
    name="TiTok",
    url="https://github.com/bytedance/1d-tokenizer",
    license="apache-2.0",
    paper_title="An Image is Worth 32 Tokens for Reconstruction and Generation",
    paper_authors="Qihang Yu, Mark Weber, Xueqing Deng, Xiaohui Shen, Daniel Cremers, Liang-Chieh Chen",
    paper_venue="NeurIPS 2024",
    paper_url="https://arxiv.org/abs/2406.07550",
    citation="""@inproceedings{yu2024an,
  title={An Image is Worth 32 Tokens for Reconstruction and Generation},
  author={Yu, Qihang and Weber, Mark and Deng, Xueqing and Shen, Xiaohui and Cremers, Daniel and Chen, Liang-Chieh},
  booktitle={Advances in Neural Information Processing Systems (NeurIPS)},
  year={2024}
}""",
)

# Janus's code is MIT, but the weights are under the DeepSeek Model License (use-based restrictions): not permissive.
JANUS = Origin(
    name="Janus-Pro",
    url="https://github.com/deepseek-ai/Janus",
    license="other",
    paper_title="Janus-Pro: Unified Multimodal Understanding and Generation with Data and Model Scaling",
    paper_authors="Xiaokang Chen, Zhiyu Wu, Xingchao Liu, Zizheng Pan, Wen Liu, Zhenda Xie, Xingkai Yu, Chong Ruan",
    paper_venue="arXiv:2501.17811 (2025)",
    paper_url="https://arxiv.org/abs/2501.17811",
    citation="""@article{chen2025janus,
  title={Janus-Pro: Unified Multimodal Understanding and Generation with Data and Model Scaling},
  author={Chen, Xiaokang and Wu, Zhiyu and Liu, Xingchao and Pan, Zizheng and Liu, Wen and Xie, Zhenda and Yu, Xingkai and Ruan, Chong},
  journal={arXiv preprint arXiv:2501.17811},
  year={2025}
}""",
)


def reported_metric(
    metric: str, value: float, source: str, source_url: str, *, dataset: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """One number an upstream project reports (rendered as "reported by origin"), on ImageNet 256 val unless
    ``dataset`` says otherwise."""
    return {"metric": metric, "value": value, **(dataset or IMAGENET), "source": source, "source_url": source_url, **extra}


def _reported(metric: str, value: float, source: str, source_url: str, **extra: Any) -> dict[str, Any]:
    return reported_metric(metric, value, source, source_url, **extra)


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
    from ..version import __version__

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


def release_named(origin: Origin, name: str) -> Release:
    """The catalogued release ``name`` of ``origin`` (e.g. LlamaGen ``"VQ-16"``)."""
    for release in RELEASES:
        if release.origin is origin and release.name == name:
            return release
    raise KeyError(f"no {origin.name} release named {name!r}")

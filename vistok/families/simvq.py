"""SimVQ image tokenizers (youngsheen/SimVQ ``taming.models.vq.VQModel`` Lightning ``.ckpt`` files) → vistok.

SimVQ's encoder / decoder is Open-MAGVIT2's improved model without adaptive group norms (vistok ``magvit2`` net
with ``adaptive_norm=False``); its quantizer is a frozen random codebook ``quantize.embedding.weight`` (K, D) seen
through a learned ``nn.Linear`` ``quantize.embedding_proj`` (with bias): codes ``Q = E·Wᵀ + b``, nearest code by
squared L2 — vistok's ``simvq`` with ``projection_bias=True``. Key map: ``quantize.embedding.weight`` →
``quantizer.frozen_codebook``, ``quantize.embedding_proj.*`` → ``quantizer.codebook_proj.*``; ``encoder.*`` /
``decoder.*`` unchanged; ``loss.*`` dropped.

Weights: upstream evaluates inside ``ema_scope()``, so the default is the EMA shadows; the frozen codebook is not
trainable and so has no shadow — it is taken as stored, and the projection comes from its shadows
(:mod:`.lightning_ema`). Decoding indices uses the projected codes (upstream's ``get_codebook_entry`` returns the
unprojected rows, which the decoder was never trained on).

The files store no hyper-parameters; the architecture comes from the tensor shapes. The release ships LightningCLI's
``config.yaml`` next to each checkpoint (``size128/config.yaml``); when one is found beside the file (or in a
direct subfolder) it supplies what shapes cannot tell — the resolution and the quantizer loss options — and its
architecture is cross-checked against the shapes, which win.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..convert.lightning_ema import lightning_state_dict, select_lightning_weights
from ..convert.magvit2_layout import infer_magvit2_net, load_converted
from ..convert.origins import IMAGENET_128, Origin, reported_metric
from ..convert.safe_load import CheckpointError, load_checkpoint
from ..preprocessing import Preprocessing
from ..registry import Preset
from .base import conversion_metadata, register_family
from .records import MIT, ZooEntry

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
# configs/imagenet_simvq_128_B.yaml: the improved conv net without adaptive norms and SimVQ(beta 0.25, legacy False)
# — the frozen codebook seen through nn.Linear with bias; loss commit_weight 1.0.
SIMVQ_PAPER = "Zhu et al., Addressing Representation Collapse in Vector Quantized Models with One Linear Layer (2024)"
SIMVQ_QUANTIZER_OPTIONS = {"commitment_weight": 0.25, "codebook_weight": 1.0, "projection_bias": True}
SIMVQ_CODEBOOK_SIZES = (1024, 8192, 65536, 262144)


def _preset(size: int) -> Preset:
    return Preset(
        name=f"simvq-imagenet128-{size}",
        description=f"SimVQ 128_B (MAGVIT-v2 conv net, no adaptive norm), 128px → 16x16 tokens, codebook {size} x 128",
        config={
            "image_size": 128,
            "net": {
                "type": "magvit2",
                "base_channels": 128,
                "channel_multiplier": [1, 2, 2, 4],
                "num_res_blocks": 2,
                "latent_channels": 128,
                "adaptive_norm": False,
            },
            "quantizer": {"type": "simvq", "codebook_size": size, "codebook_dim": 128, **SIMVQ_QUANTIZER_OPTIONS},
        },
        source=f"{SIMVQ_PAPER}; SimVQ configs/imagenet_simvq_128_B.yaml (n_e {size})",
        tags=("imagenet128",),
    )


WHAT = "a SimVQ"
DEFAULT_IMAGE_SIZE = 128  # every released SimVQ image tokenizer is ImageNet 128x128
TOKENIZER_PREFIXES = ("encoder.", "decoder.", "quantize.")
FROZEN_CODEBOOK = "quantize.embedding.weight"
KEY_MAP = {
    FROZEN_CODEBOOK: "quantizer.frozen_codebook",
    "quantize.embedding_proj.weight": "quantizer.codebook_proj.weight",
    "quantize.embedding_proj.bias": "quantizer.codebook_proj.bias",
}
# configs/imagenet_simvq_128_B.yaml: SimVQ(beta=0.25, legacy=False), lossconfig commit_weight 1.0.
DEFAULT_BETA, DEFAULT_LEGACY, DEFAULT_COMMIT_WEIGHT = 0.25, False, 1.0
README_URL = "https://github.com/youngsheen/SimVQ"
# Hub folder → (codebook size, numbers of the SimVQ README's Table 1, ImageNet 128x128 50k val, 16x16 tokens).
REPORTED: dict[str, tuple[int, dict[str, float]]] = {
    "simvq_1k": (1024, {"codebook_usage": 1.0, "rfid": 3.67, "lpips": 0.16, "psnr": 22.34, "ssim": 0.708}),
    "simvq_8k": (8192, {"codebook_usage": 1.0, "rfid": 2.98, "lpips": 0.14, "psnr": 23.23, "ssim": 0.747}),
    "simvq_65k": (65536, {"codebook_usage": 1.0, "rfid": 2.24, "lpips": 0.12, "psnr": 24.15, "ssim": 0.784}),
    "simvq_262k": (
        262144,
        {"codebook_usage": 1.0, "rfid": 1.99, "lpips": 0.11, "psnr": 24.68, "ssim": 0.803},
    ),
}


def _protocol(metric: str) -> dict[str, str]:
    """SimVQ's evaluation.py is SEED-Voken's evaluation_image.py, except that its PSNR is of the whole batch."""
    if metric != "psnr":
        return {"protocol": "seed-voken"}
    return {"protocol": "unknown", "protocol_note": "evaluation.py: psnr_loss(rgb_gt, rgb_restored) on the whole batch "
            "of 64 images (one pooled MSE), which no vistok protocol computes"}


def reported_metrics(folder: str) -> tuple[dict[str, Any], ...]:
    """The SimVQ README's numbers for the release in Hub folder ``vq_log/<folder>`` (SSIM given there ×100)."""
    return tuple(
        reported_metric(metric, value, "SimVQ README, Table 1", README_URL, dataset=IMAGENET_128, **_protocol(metric))
        for metric, value in REPORTED[folder][1].items()
    )


def simvq_to_vistok(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Rename SimVQ tokenizer tensors (``encoder.*``, ``decoder.*``, ``quantize.*``) into vistok's keys; raises
    :class:`CheckpointError` for quantizer tensors SimVQ does not have."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("quantize."):
            if key not in KEY_MAP:
                raise CheckpointError(
                    f"unexpected SimVQ quantizer tensor {key!r}; expected {sorted(KEY_MAP)}"
                )
            out[KEY_MAP[key]] = value
        else:
            out[key] = value
    return out


def refuse_other_layouts(state_dict: dict[str, Any]) -> None:
    """:class:`CheckpointError` saying what the checkpoint is instead, unless it has SimVQ's layout."""
    keys = list(state_dict)
    missing = [k for k in KEY_MAP if k not in state_dict]
    if missing:
        if not any(k.startswith("quantize.") for k in keys) and any(
            k.startswith("decoder.adaptive.") for k in keys
        ):
            hint = "an Open-MAGVIT2 (LFQ) checkpoint: convert it with `vistok convert open-magvit2`"
        elif FROZEN_CODEBOOK in state_dict:
            hint = "a VQ model with a plain learned codebook (Taming VQGAN or IBQ), not SimVQ"
        else:
            hint = f"a state dict starting with {', '.join(keys[:4])}"
        raise CheckpointError(
            f"this is not a SimVQ checkpoint (no {', '.join(missing)}): it looks like {hint}. SimVQ checkpoints "
            "hold quantize.embedding.weight and quantize.embedding_proj.{weight,bias}"
        )
    if any(k.startswith(("encoder.mid.", "quant_conv.")) for k in keys):
        raise CheckpointError(
            "this SimVQ-like checkpoint has a Taming-style encoder (encoder.mid.* / quant_conv.*), not the "
            "improved model SimVQ's image tokenizers use; vistok cannot convert it"
        )


def find_config_file(checkpoint: Path) -> Path | None:
    """The LightningCLI ``config.yaml`` beside ``checkpoint`` or in one of its direct subfolders (the release
    layout ``vq_log/<run>/size128/config.yaml``), or ``None``. Several candidates: :class:`CheckpointError`
    (which one belongs to the checkpoint cannot be told)."""
    folder = checkpoint.parent
    candidates = [folder / "config.yaml"] if (folder / "config.yaml").is_file() else []
    candidates += sorted(p for p in folder.glob("*/config.yaml") if p.is_file())
    if len(candidates) > 1:
        raise CheckpointError(
            f"found several LightningCLI configs beside {checkpoint.name} ({', '.join(map(str, candidates))}); "
            "pass the right one as config_file"
        )
    return candidates[0] if candidates else None


def read_config(path: Path) -> dict[str, Any]:
    """``{"ddconfig", "quantizer", "commit_weight", "image_size"}`` from a SimVQ LightningCLI config (missing
    entries left out); :class:`CheckpointError` when it is not one."""
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(f"cannot read the SimVQ config {str(path)!r}: {err}") from err
    model = loaded.get("model") if isinstance(loaded, dict) else None
    init_args = model.get("init_args") if isinstance(model, dict) else None
    if not isinstance(init_args, dict) or not isinstance(init_args.get("ddconfig"), dict):
        raise CheckpointError(
            f"{str(path)!r} is not a SimVQ LightningCLI config: expected model.init_args.ddconfig"
        )
    out: dict[str, Any] = {"ddconfig": init_args["ddconfig"]}
    quant = init_args.get("quantconfig")
    if isinstance(quant, dict):
        if "SimVQ" not in str(quant.get("target", "")):
            raise CheckpointError(f"{str(path)!r} configures quantizer {quant.get('target')!r}, not SimVQ")
        out["quantizer"] = quant.get("params") or {}
    loss = init_args.get("lossconfig")
    if isinstance(loss, dict) and isinstance(loss.get("params"), dict) and "commit_weight" in loss["params"]:
        out["commit_weight"] = loss["params"]["commit_weight"]
    resolution = init_args["ddconfig"].get("resolution")
    if isinstance(resolution, int) and not isinstance(resolution, bool):
        out["image_size"] = resolution
    return out


def _check_config(config: dict[str, Any], net: dict[str, Any], codebook: tuple[int, int]) -> list[str]:
    """Notes for every architecture value of ``config`` that differs from the tensors'."""
    dd, quant = config["ddconfig"], config.get("quantizer", {})
    expected = {
        "ch": net["base_channels"],
        "ch_mult": net["channel_multiplier"],
        "num_res_blocks": net["num_res_blocks"],
        "z_channels": net["latent_channels"],
    }
    notes = []
    for name, actual in expected.items():
        if name in dd and (list(dd[name]) if name == "ch_mult" else dd[name]) != actual:
            notes.append(
                f"config.yaml says {name}={dd[name]!r} but the tensors give {actual!r}; the tensors win"
            )
    for name, actual in (("n_e", codebook[0]), ("e_dim", codebook[1])):
        if name in quant and quant[name] != actual:
            notes.append(
                f"config.yaml says {name}={quant[name]!r} but the codebook tensor gives {actual}; the tensors win"
            )
    return notes


def quantizer_loss_options(beta: float, legacy: bool, commit_weight: float) -> dict[str, float]:
    """vistok ``simvq`` loss weights for SimVQ's ``beta`` / ``legacy`` and the loss config's ``commit_weight``
    (which scales SimVQ's whole quantizer loss). Taming's convention: ``legacy=False`` puts β on the commitment
    term ``||z − sg(q)||²``, ``legacy=True`` on the codebook term ``||sg(z) − q||²``."""
    commitment, codebook = (1.0, beta) if legacy else (beta, 1.0)
    return {"commitment_weight": commit_weight * commitment, "codebook_weight": commit_weight * codebook}


# The zoo: the ImageNet 128x128 tokenizers in the Hub repo youngsheen/SimVQ (the README links it as zyx123/SimVQ, the
# account's earlier name), folders vq_log/simvq_{1k,8k,65k,262k}, each a Lightning .ckpt plus LightningCLI's
# size128/config.yaml. Only the 262k checkpoint's file name is known (the README's evaluation command); the other
# three folders' file names could not be confirmed, so their entries say where the files are instead of guessing.
REPO = "youngsheen/SimVQ"
NOTES = (
    "Converted from the EMA weights (model_ema.*), which upstream's evaluation uses; the frozen random codebook "
    "has no EMA copy and is taken as stored.",
    "decode(indices) uses the projected codebook E·Wᵀ + b; SimVQ's own get_codebook_entry returns the unprojected "
    "rows, which the decoder was never trained on.",
    "The preset's architecture is configs/imagenet_simvq_128_B.yaml (the 1k run); the README changes only the "
    "codebook size for the others. A file that differs still loads, with a warning.",
)
KNOWN_FILES = {"simvq_262k": "epoch=49-step=250250.ckpt"}  # the README's evaluation command


def _entry(folder: str) -> ZooEntry:
    size = REPORTED[folder][0]
    common = dict(
        name=f"simvq-imagenet128-{size}",
        description=f"SimVQ 128_B, 128px → 16x16 tokens, codebook {size} x 128, ImageNet",
        origin=SIMVQ,
        license=MIT,
        converter="simvq",
        image_size=128,
        preset=f"simvq-imagenet128-{size}",
        reported_metrics=reported_metrics(folder),
    )
    if folder in KNOWN_FILES:
        return ZooEntry(
            **common,
            repo_id=REPO,
            filenames=(f"vq_log/{folder}/{KNOWN_FILES[folder]}",),
            companion_files=(f"vq_log/{folder}/size128/config.yaml",),
            notes=NOTES,
        )
    return ZooEntry(
        **common,
        manual_download=(
            f"The checkpoint's file name in https://huggingface.co/{REPO}/tree/main/vq_log/{folder} could not be "
            "confirmed, so the zoo does not fetch it. Download that folder's .ckpt and its size128/config.yaml "
            f"(keeping the layout), then run `vistok convert simvq <file>.ckpt simvq-imagenet128-{size}` and load "
            f"the folder with VisTokenizer.from_pretrained('simvq-imagenet128-{size}')."
        ),
        notes=(*NOTES, "Not fetched automatically: the checkpoint's file name in the Hub folder is unconfirmed."),
    )


def _preprocessing(size: int) -> Preprocessing:
    return Preprocessing(size, filter="bilinear", size_rule="truncate", crop_offset="round",
                         follows="SimVQ taming/data/base.py ImagePaths (torchvision Resize + CenterCrop)")

@register_family(
    "simvq",
    origin=SIMVQ,
    summary="SimVQ (youngsheen/SimVQ): Lightning .ckpt, with its LightningCLI config.yaml when found beside it",
    weights_help="auto (= the EMA shadows when the file has them, else raw), ema or raw",
    presets=tuple(_preset(size) for size in SIMVQ_CODEBOOK_SIZES),
    entries=tuple(_entry(folder) for folder in REPORTED),
    preprocessing=_preprocessing,
)
def convert_simvq(
    checkpoint: str | os.PathLike,
    *,
    weights: str = "auto",
    image_size: int | None = None,
    trust_checkpoint: bool = False,
    config_file: str | os.PathLike | None = None,
):
    """Convert a SimVQ image-tokenizer Lightning checkpoint into a :class:`~vistok.VisTokenizer` (eval mode).

    Args:
        checkpoint: the ``.ckpt`` file (e.g. ``vq_log/simvq_262k/epoch=49-step=250250.ckpt``).
        weights: ``"auto"`` (EMA shadows when present, as upstream evaluates; else raw), ``"ema"`` or ``"raw"``.
        image_size: native resolution recorded in the config; default the config's ``resolution``, else 128.
        trust_checkpoint: allow arbitrary unpickling (only for files from a trusted source).
        config_file: the run's LightningCLI ``config.yaml``; default the one beside the checkpoint or in a direct
            subfolder, if any. It supplies the resolution and loss options; the architecture follows the shapes.

    Raises :class:`CheckpointError` for files that are not SimVQ Lightning checkpoints (naming what they look
    like) and when EMA weights are asked for but missing.
    """
    path = Path(checkpoint)
    loaded = load_checkpoint(path, trust_checkpoint=trust_checkpoint)
    state_dict = lightning_state_dict(loaded, WHAT)
    refuse_other_layouts(state_dict)
    selected, which = select_lightning_weights(
        state_dict,
        lambda key: key.startswith(TOKENIZER_PREFIXES),
        weights,
        without_shadow=(FROZEN_CODEBOOK,),
        what=WHAT,
    )
    inferred = infer_magvit2_net(selected)
    net = inferred["net"]
    if net["adaptive_norm"]:
        raise CheckpointError(
            "this checkpoint's decoder has adaptive group norms (decoder.adaptive.*), which SimVQ's improved model "
            "does not have; vistok cannot tell how its quantized codes drive them"
        )
    net.update(quant_conv=False)
    codebook = tuple(selected[FROZEN_CODEBOOK].shape)
    proj = tuple(selected["quantize.embedding_proj.weight"].shape)
    if len(codebook) != 2 or proj != (codebook[1], codebook[1]) or codebook[1] != net["latent_channels"]:
        raise CheckpointError(
            f"SimVQ codebook {codebook} and projection {proj} do not fit the encoder's {net['latent_channels']} "
            "latent channels (expected (K, D), (D, D) and D = latent channels)"
        )

    notes = [
        f"weights: {'EMA shadows for encoder, decoder and projection (model_ema.*), as upstream evaluates under ema_scope(); the frozen codebook has no shadow and is taken as stored' if which == 'ema' else 'the raw training weights (no EMA)'}",
        "decode(indices) uses the projected codebook E·Wᵀ + b (upstream's get_codebook_entry returns the unprojected "
        "rows, which the decoder was never trained on)",
        f"GroupNorm groups: {net['norm_groups']} assumed (upstream's; shapes do not tell)",
    ]
    config_path = Path(config_file) if config_file is not None else find_config_file(path)
    config: dict[str, Any] = {}
    if config_path is not None:
        try:
            config = read_config(config_path)
        except CheckpointError as err:
            if config_file is not None:
                raise
            notes.append(f"ignored {config_path.name} found beside the checkpoint: {err}")
            config_path = None
        else:
            notes += _check_config(config, net, codebook)
    params = config.get("quantizer", {})
    beta = params.get("beta", DEFAULT_BETA)
    legacy = params.get("legacy", DEFAULT_LEGACY)
    commit_weight = config.get("commit_weight", DEFAULT_COMMIT_WEIGHT)
    if config_path is None:
        notes.append(
            f"no config.yaml found: beta={DEFAULT_BETA}, legacy={DEFAULT_LEGACY} and commit_weight="
            f"{DEFAULT_COMMIT_WEIGHT} assumed (configs/imagenet_simvq_128_B.yaml)"
        )
    quantizer = {
        "type": "simvq",
        "codebook_size": codebook[0],
        "codebook_dim": codebook[1],
        "projection_bias": True,
        **quantizer_loss_options(float(beta), bool(legacy), float(commit_weight)),
    }
    size = image_size or config.get("image_size")
    if size is None:
        size = DEFAULT_IMAGE_SIZE
        notes.append(f"image_size {size} assumed (SimVQ's image releases are ImageNet 128x128)")

    extra: dict[str, Any] = {
        "dropped_entries": sorted(
            {k.split(".")[0] + ".*" for k in state_dict} - {"encoder.*", "decoder.*", "quantize.*"}
        )
    }
    if config_path is not None:
        extra["config_file"] = (
            config_path.name
            if config_path.parent == path.parent
            else f"{config_path.parent.name}/{config_path.name}"
        )
    for key in ("global_step", "epoch"):
        if isinstance(loaded.get(key), int):
            extra[f"training_{key}"] = loaded[key]
    summary = {"net": net, "codebook_size": codebook[0], "codebook_dim": codebook[1]}
    metadata = conversion_metadata(SIMVQ, "simvq", summary, path, which, extra, notes)
    folder = path.parent.name
    if folder in REPORTED and REPORTED[folder][0] == codebook[0]:
        metadata["origin"]["release"] = folder
        metadata["reported_metrics"] = [
            {**m, "applies_to": f"SimVQ vq_log/{folder} as released by its authors"}
            for m in reported_metrics(folder)
        ]
    config_kwargs = {
        "image_size": size,
        "num_channels": inferred["num_channels"],
        "net": net,
        "quantizer": quantizer,
        "source": f"converted from SimVQ ({path.name})",
        "metadata": metadata,
    }
    return load_converted(simvq_to_vistok(selected), config_kwargs, "SimVQ")

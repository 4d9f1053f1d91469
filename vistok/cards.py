"""Model cards rendered from the metadata that lives with the weights (``config.json``), never written by hand.

``render_model_card(tok_or_config, metrics)`` fills ``vistok/templates/model_card.md`` (linked from ``model_cards/template.md``): usage snippet, tokens per image,
architecture and quantizer summary, a metrics table whose every row names its source ("measured by vistok evaluate"
or "reported by origin"), origin, licence and citation, plus ``model-index`` metadata when there are metrics.

Metadata keys read from ``config.metadata`` (all optional): ``origin``, ``license``, ``paper``, ``citation``,
``converter``, ``reported_metrics`` (list of ``{metric, value, dataset, dataset_id, split, source, note}``),
``evaluation`` (a ``vistok evaluate`` result dict, or a list of them), ``training`` (free-form dict), ``preset``,
``hub_repo``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .architecture import build_modules
from .configuration import VisTokenizerConfig
from .registry import QUANTIZERS

DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md"
VISTOK_LICENSE = "apache-2.0"
MEASURED = "measured by vistok evaluate"
REPORTED = "reported by origin"
# The comment every card rendered from the packaged template carries (since the first template): a README.md that has
# it was written by vistok and is re-rendered when the weights change; any other README.md is the user's.
CARD_MARKER = "<!-- Rendered by `vistok card` from the metadata stored with the weights"

# metric key → (display name, model-index metric type, format)
METRICS: dict[str, tuple[str, str, str]] = {
    "psnr": ("PSNR (dB) ↑", "psnr", "{:.2f}"),
    "ssim": ("SSIM ↑", "ssim", "{:.4f}"),
    "lpips": ("LPIPS (VGG) ↓", "lpips", "{:.4f}"),
    "rfid": ("rFID ↓", "fid", "{:.2f}"),
    "codebook_usage": ("Codebook usage ↑", "codebook_usage", "{:.2%}"),
    "codebook_usage_split": ("Codebook usage, whole split ↑", "codebook_usage", "{:.2%}"),
    "perplexity": ("Code perplexity", "perplexity", "{:.1f}"),
}


def render_model_card(
    tok_or_config: Any,
    metrics: dict[str, Any] | list[dict[str, Any]] | None = None,
    *,
    repo_id: str | None = None,
    template_path: str | Path | None = None,
) -> ModelCard:
    """A :class:`huggingface_hub.ModelCard` for a tokenizer or its config.

    Args:
        tok_or_config: a :class:`~vistok.VisTokenizer` or :class:`~vistok.VisTokenizerConfig`.
        metrics: numbers measured by ``vistok evaluate`` — the result dict of
            :meth:`~vistok.metrics.ReconstructionMetrics.compute` (``psnr``, ``ssim``, ``lpips``, ``rfid``,
            ``codebook_usage``, …) with optional context keys ``dataset``, ``dataset_id``, ``split``,
            ``image_size``; or a list of such dicts. When ``None``, ``config.metadata["evaluation"]`` is used.
        repo_id: Hub repo id for the usage snippet (default ``metadata["hub_repo"]`` or a placeholder).
        template_path: Jinja template (default: the packaged ``vistok/templates/model_card.md``).
    """
    config, model = _config_and_model(tok_or_config)
    meta = dict(config.metadata or {})
    measured = _as_list(metrics if metrics is not None else meta.get("evaluation"))
    # Reported numbers describe this model's weights only when the weights come from that origin (not for a preset
    # that merely shares an upstream architecture): only then do they enter the model-index.
    rows, eval_results, notes = _metric_rows(
        measured, meta.get("reported_metrics") or [], bool(meta.get("origin"))
    )
    name = _model_name(config, meta, repo_id)
    license_id = meta.get("license") or VISTOK_LICENSE
    card_data = ModelCardData(
        library_name="vistok",
        license=license_id,
        tags=_tags(config, meta),
        model_name=name if eval_results else None,
        eval_results=eval_results or None,
        datasets=sorted({r.dataset_type for r in eval_results if "/" in r.dataset_type}) or None,
    )
    template = Path(template_path) if template_path else DEFAULT_TEMPLATE
    if not template.is_file():
        raise FileNotFoundError(
            f"model card template {str(template)!r} not found; pass template_path= (the packaged template is "
            "vistok/templates/model_card.md)"
        )
    card = ModelCard.from_template(
        card_data,
        template_path=str(template),
        title=name,
        description=_description(config, meta),
        status=_status(meta),
        usage=_usage(config, meta, repo_id),
        diffusers_usage=_diffusers_usage(config),
        tokens=_tokens(config),
        architecture=_architecture(config, model),
        quantizer=_quantizer(config),
        metrics=rows,
        metric_notes=notes,
        origin=_origin(meta),
        training=_training(meta),
        license_text=_license_text(meta, license_id),
        citation=meta.get("citation"),
    )
    # Optional template sections leave runs of blank lines; the template has no code block that needs them.
    return ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))


def is_vistok_card(path: str | Path) -> bool:
    """Whether the file ``path`` is a model card vistok rendered (it carries :data:`CARD_MARKER`); ``False`` for a
    missing, unreadable or hand-written file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 20)
    except OSError:
        return False
    return CARD_MARKER in head


# ------------------------------------------------------------------------------------------------ inputs
def _config_and_model(tok_or_config: Any):
    if isinstance(tok_or_config, VisTokenizerConfig):
        return tok_or_config, None
    config = getattr(tok_or_config, "config", None)
    if isinstance(tok_or_config, torch.nn.Module) and isinstance(config, VisTokenizerConfig):
        return config, tok_or_config  # a VisTokenizer
    raise TypeError(
        f"render_model_card expects a VisTokenizer or VisTokenizerConfig, got {type(tok_or_config).__name__}"
    )


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return [dict(v) for v in value]
    raise TypeError(
        f"metrics must be a dict of metric values or a list of such dicts, got {type(value).__name__}"
    )


def _model_name(config, meta: dict[str, Any], repo_id: str | None) -> str:
    if repo_id or meta.get("hub_repo"):
        return (repo_id or meta["hub_repo"]).split("/")[-1]
    origin = meta.get("origin") or {}
    if origin.get("release"):
        return f"vistok {origin['name']} {origin['release']}"
    if origin.get("name"):
        return f"vistok conversion of {origin['name']} {origin.get('checkpoint_file', '')}".strip()
    return config.preset or (meta.get("preset") or {}).get("name") or "vistok tokenizer"


# ------------------------------------------------------------------------------------------------ sections
def _description(config, meta: dict[str, Any]) -> str:
    preset = meta.get("preset") or {}
    f = config.downsample_factor
    kind = {"vq": "vector-quantised", "fsq": "FSQ", "lfq": "lookup-free (LFQ)", "simvq": "SimVQ"}.get(
        config.quantizer["type"], config.quantizer["type"]
    )
    layout = config.token_layout
    shape = (
        f"a {config.latent_size}×{config.latent_size} grid of tokens (downsampling ×{f})"
        if layout.kind == "grid"
        else layout.describe(config.latent_hw)
    )
    text = (
        f"A discrete image tokenizer ({config.net['type']} encoder/decoder, {kind} codes) that turns "
        f"{config.image_size}×{config.image_size} images into {shape} and back, packaged for the vistok library."
    )
    if preset.get("description"):
        text += f" Preset `{preset['name']}`: {preset['description']}."
    if config.source:
        text += f"\n\nSource: {config.source}."
    return text


def _status(meta: dict[str, Any]) -> str | None:
    preset = meta.get("preset")
    if preset and not meta.get("origin") and not meta.get("training"):
        recipe = (
            f" with `accelerate launch training/train.py --config {preset['training']}`"
            if preset.get("training")
            else ""
        )
        return (
            "This card describes a **preset architecture**: `create_tokenizer` builds it with random weights. "
            f"Train it{recipe}"
            + (", or convert the upstream weights (see Origin)." if preset.get("upstream") else ".")
        )
    return None


def _usage(config, meta: dict[str, Any], repo_id: str | None) -> str:
    size = config.image_size
    k = vocabulary_size(config)
    preset = meta.get("preset") or {}
    zoo = meta.get("zoo") or {}
    if zoo and zoo.get("repo_id") and not repo_id and not meta.get("hub_repo"):
        load = (
            f'import vistok\n\ntok = vistok.create_tokenizer("{zoo["name"]}", pretrained=True)  '
            "# downloads the original files, converts them once, caches; eval mode"
        )
    elif preset and not meta.get("origin") and not repo_id and not meta.get("hub_repo"):
        load = f'import vistok\n\ntok = vistok.create_tokenizer("{preset["name"]}").eval()  # random weights'
    else:
        where = repo_id or meta.get("hub_repo") or "path/to/this/folder-or-repo"
        load = (
            f'from vistok import VisTokenizer\n\ntok = VisTokenizer.from_pretrained("{where}")  # eval mode'
        )
    return (
        f"import torch\n{load}\n"
        f"pixel_values = torch.rand(1, {config.num_channels}, {size}, {size}) * 2 - 1  # images in [-1, 1]\n"
        "with torch.no_grad():\n"
        f"    ids = tok.encode(pixel_values).indices  # {_indices_shape(config)} int64 {_index_range(k)}\n"
        f"    images = tok.decode(ids)  # (1, {config.num_channels}, {size}, {size}), nominally in [-1, 1]"
    )


def _index_range(codebook_size: int) -> str:
    # 2^64 codes (Infinity d64) do not fit int64's range: each id holds the token's 64 bits, the top bit as the sign
    if codebook_size > 2**63:
        return "holding each token's 64 bits (the most significant bit is int64's sign bit)"
    return f"in [0, {codebook_size})"


def _indices_shape(config) -> str:
    layout = config.token_layout
    if layout.kind == "sequence":
        return f"(1, {layout.length})"
    if layout.kind == "multiscale":
        return "[" + ", ".join(f"(1, {p}, {p})" for p in layout.patch_nums) + "]"
    return f"(1, {config.latent_size}, {config.latent_size})"


def _diffusers_usage(config) -> str | None:
    if config.net["type"] != "vqgan" or config.quantizer["type"] != "vq":
        return None
    return 'vq_model = tok.to_diffusers()  # diffusers.VQModel\nvq_model.save_pretrained("vqvae")'


def vocabulary_size(config) -> int:
    """The number of codes of ``config``'s quantizer (built on the meta device: no memory)."""
    spec = dict(config.quantizer)
    cls = QUANTIZERS.get(spec.pop("type"))
    with torch.device("meta"):
        return cls(**spec).codebook_size


def _tokens(config) -> dict[str, Any]:
    layout = config.token_layout
    count = config.tokens_per_image()
    k = vocabulary_size(config)
    size = f"{config.num_channels}×{config.image_size}×{config.image_size}"
    return {
        "input": size
        + (
            " (this size only: the position embeddings are fixed)"
            if layout.kind == "sequence"
            else " (this size only: the finest scale fixes the latent size)"
            if layout.kind == "multiscale"
            else f" (any size divisible by {config.downsample_factor} works)"
        ),
        "grid": layout.describe(config.latent_hw),
        "count": count,
        "vocabulary": f"{k:,} codes ({math.log2(k):.2f} bits per token)",
        "bits": f"{count * math.log2(k):,.0f}",
    }


def _architecture(config, model) -> list[tuple[str, str]]:
    family = config.net_family()
    # Options left at None mean "the net's default": show the value the net actually uses.
    net = {k: getattr(family, k, v) if v is None else v for k, v in config.net.items() if k != "type"}
    rows = [("Net", f"`{config.net['type']}`")]
    rows += [(name.replace("_", " ").capitalize(), f"`{value}`") for name, value in net.items()]
    rows.append(("Downsample factor", str(config.downsample_factor)))
    rows.append(("Parameters", f"{_num_parameters(config, model):,}"))
    return rows


def _num_parameters(config, model) -> int:
    if model is None:
        with torch.device("meta"):
            return build_modules(config).num_parameters()
    return sum(p.numel() for p in model.parameters())


def _quantizer(config) -> list[tuple[str, str]]:
    return [("Type", f"`{config.quantizer['type']}`")] + [
        (name.replace("_", " ").capitalize(), f"`{value}`")
        for name, value in config.quantizer.items()
        if name != "type"
    ]


def _metric_rows(measured: list[dict[str, Any]], reported: list[dict[str, Any]], index_reported: bool):
    rows, results, notes = [], [], []
    for run in measured:
        data = _data_label(run)
        if run.get("num_images"):
            data += f", {run['num_images']:,} images"
        for key, (label, metric_type, fmt) in METRICS.items():
            value = run.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"name": label, "value": fmt.format(value), "data": data,
                             "source": MEASURED + (f" (protocol {run['protocol']})" if run.get("protocol") else "")})
                results.append(_eval_result(run, metric_type, label, value, None, None))
        for key, reason in (run.get("skipped") or {}).items():
            notes.append(f"{METRICS.get(key, (key,))[0]} not measured: {reason}")
    for entry in reported:
        key = entry.get("metric")
        label, metric_type, fmt = METRICS.get(key, (str(key), str(key), "{}"))
        value = entry.get("value")
        shown = fmt.format(value) if isinstance(value, (int, float)) else str(value)
        if entry.get("note"):
            shown += f" ({entry['note']})"
        # which evaluation conventions produced the number (docs/evaluation.md): numbers of one protocol compare
        said = [entry["source"]] if entry.get("source") else []
        if "protocol" in entry:
            said.append(f"protocol {entry['protocol']}" + (
                f": {entry['protocol_note']}" if entry.get("protocol_note") else ""))
        source = f"{REPORTED} ({'; '.join(said)})" if said else REPORTED
        rows.append({"name": label, "value": shown, "data": _data_label(entry), "source": source})
        source_name = (
            f"{REPORTED}: {entry['source']}" if entry.get("source") and entry.get("source_url") else None
        )
        if index_reported:
            results.append(
                _eval_result(entry, metric_type, label, value, source_name, entry.get("source_url"))
            )
        if entry.get("applies_to") and entry["applies_to"] not in " ".join(notes):
            notes.append(f"Numbers {REPORTED} refer to {entry['applies_to']}; vistok did not measure them.")
    return rows, [r for r in results if r is not None], notes


def _data_label(entry: dict[str, Any]) -> str:
    label = entry.get("dataset") or "unspecified data"
    if entry.get("split") and entry["split"] not in label:
        label += f" ({entry['split']})"
    if entry.get("image_size") and str(entry["image_size"]) not in label:
        label += f", {entry['image_size']}px"
    return label


def _eval_result(entry, metric_type, label, value, source_name, source_url) -> EvalResult | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return EvalResult(
        task_type="image-to-image",
        task_name="Image reconstruction",
        dataset_type=entry.get("dataset_id") or entry.get("dataset") or "unspecified",
        dataset_name=entry.get("dataset") or "unspecified",
        dataset_split=entry.get("split"),
        metric_type=metric_type,
        metric_name=label.rstrip(" ↑↓"),
        metric_value=float(value),
        source_name=source_name,
        source_url=source_url,
    )


def _origin(meta: dict[str, Any]) -> list[tuple[str, str]]:
    origin = meta.get("origin") or (meta.get("preset") or {}).get("upstream") or {}
    if not origin:
        return []
    rows = [
        ("Project", f"[{origin['name']}]({origin['url']})" if origin.get("url") else origin.get("name", ""))
    ]
    if origin.get("release"):
        rows.append(("Release", origin["release"]))
    zoo = meta.get("zoo") or {}
    if zoo.get("repo_id"):
        files = ", ".join(f"`{f}`" for f in zoo.get("files", []))
        rows.append(("Original files", f"[{zoo['repo_id']}](https://huggingface.co/{zoo['repo_id']}): {files}"))
        if zoo.get("commit"):
            rows.append(("Upstream commit", f"`{zoo['commit']}`"))
    if zoo.get("manual_download"):
        rows.append(("Original files", zoo["manual_download"]))
    rows += [("Note", note) for note in zoo.get("notes", [])]
    if zoo.get("model_ids"):
        rows.append(("Model vocabulary ids", zoo["model_ids"] + " (tok.to_model_ids / vistok tokenize --model-ids)"))
    if meta.get("preprocessing") or meta.get("preprocessing_note"):
        from .families.catalogue import describe_preprocessing
        from .preprocessing import Preprocessing

        pipeline = Preprocessing.from_dict(meta["preprocessing"]) if meta.get("preprocessing") else None
        rows.append(("Preprocessing", describe_preprocessing(pipeline, meta.get("preprocessing_note", ""))))
    if origin.get("release_checkpoints"):
        rows.append(("Upstream checkpoint files", ", ".join(f"`{c}`" for c in origin["release_checkpoints"])))
    if origin.get("checkpoint_file"):
        rows.append(
            ("Converted file", f"`{origin['checkpoint_file']}` (sha256 `{origin.get('checkpoint_sha256')}`)")
        )
    if origin.get("weights"):
        rows.append(("Weights used", f"`{origin['weights']}`"))
    if origin.get("convert_command"):
        rows.append(("Convert with", f"`{origin['convert_command']}`"))
    paper = meta.get("paper") or {}
    if paper:
        rows.append(
            (
                "Paper",
                f"[{paper.get('title')}]({paper.get('url')}), {paper.get('authors')}, {paper.get('venue')}",
            )
        )
    converter = meta.get("converter") or {}
    if converter:
        rows.append(
            (
                "Converter",
                f"`vistok convert {converter.get('name')}` "
                + (f"code {converter['code']}" if converter.get("code") else f"version {converter.get('version')}")
                + f" (vistok {converter.get('vistok_version')})",
            )
        )
        rows += [("Conversion note", note) for note in converter.get("notes", [])]
    if origin.get("dropped_entries"):
        rows.append(("Dropped from the checkpoint", ", ".join(f"`{d}`" for d in origin["dropped_entries"])))
    return rows


def _training(meta: dict[str, Any]) -> list[str]:
    training = meta.get("training")
    preset = meta.get("preset") or {}
    lines = []
    if isinstance(training, Mapping):
        lines += [f"{key}: {value}" for key, value in training.items()]
    if preset.get("training") and not meta.get("origin"):
        lines.append(f"recipe: `{preset['training']}`")
    return lines


def _license_text(meta: dict[str, Any], license_id: str) -> str:
    origin = meta.get("origin") or {}
    licence = (meta.get("zoo") or {}).get("license")
    if licence:
        text = (
            f"The weights come from {origin.get('name', 'their authors')} and keep their licence: "
            f"[{licence['name']}]({licence['url']})."
        )
        if not licence.get("permissive", True):
            text += " **Not a permissive licence**: it restricts how the weights may be used; read it before use."
        return text + " vistok's code is Apache-2.0."
    if meta.get("license") and origin.get("name"):
        return (
            f"The weights come from {origin['name']} and keep its licence: `{license_id}`. "
            "vistok's code is Apache-2.0."
        )
    if meta.get("license"):
        return f"`{license_id}`."
    return f"`{license_id}` (vistok's licence). Check the licence of any data the weights were trained on."


def _tags(config, meta: dict[str, Any]) -> list[str]:
    tags = ["vistok", "image-tokenizer", config.net["type"], config.quantizer["type"]]
    origin = (meta.get("origin") or {}).get("name")
    if origin:
        tags.append(origin.lower().replace(" ", "-"))
    return tags

"""Recording evaluation results with a local model folder: metadata, a JSON sidecar and the model card.

Following "metadata lives with the weights; cards are rendered from it", :func:`record_evaluation`

1. merges the full report into ``eval_results.json`` (keyed by dataset, split and resolution);
2. merges a compact summary into ``config.json``'s ``metadata["evaluation"]`` (the list the card renderer reads);
3. re-renders ``README.md`` with :func:`vistok.cards.render_model_card` (its ``model-index`` metadata carries the
   numbers), the one card renderer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..cards import render_model_card
from .report import json_safe, write_json

SIDECAR = "eval_results.json"
SUMMARY_KEYS = (
    "psnr",
    "ssim",
    "lpips",
    "rfid",
    "codebook_usage",
    "codebook_usage_split",
    "perplexity",
    "num_images",
)


def evaluation_key(summary: dict[str, Any]) -> str:
    """Which stored evaluation a new one replaces: same dataset, split, resolution and metric conventions (the
    ``vistok`` and ``upstream`` protocols share vistok's; any other protocol is kept apart)."""
    key = f"{summary.get('dataset_id') or summary.get('dataset')}:{summary.get('split')}:{summary.get('image_size')}"
    protocol = summary.get("protocol")
    return key if protocol in (None, "vistok", "upstream") else f"{key}:{protocol}"


def card_summary(results: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The compact dict stored in ``metadata["evaluation"]``: scalar metrics, context, one-line skip reasons."""
    summary = {key: results[key] for key in SUMMARY_KEYS if key in results}
    summary.update(context)
    summary["skipped"] = {
        name: reason.splitlines()[0] for name, reason in (results.get("skipped") or {}).items()
    }
    return json_safe(summary)


def record_evaluation(
    model_dir: str | Path, tok: Any, summary: dict[str, Any], report: dict[str, Any]
) -> list[Path]:
    """Store one evaluation with the model in ``model_dir`` (see the module docstring); returns the files written.

    ``summary``: from :func:`card_summary`. ``report``: the full per-model report (histogram included).
    """
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{model_dir} is not a model folder (no config.json); --update-card needs one"
        )
    key = evaluation_key(summary)

    sidecar = model_dir / SIDECAR
    stored = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    stored[key] = report
    written = [write_json(stored, sidecar)]

    config = json.loads(config_path.read_text())
    metadata = dict(config.get("metadata") or {})
    evaluations = [e for e in _as_list(metadata.get("evaluation")) if evaluation_key(e) != key]
    metadata["evaluation"] = [*evaluations, summary]
    config["metadata"] = metadata
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    written.append(config_path)
    tok.config.metadata = metadata

    written.append(_write_card(model_dir, tok))
    return written


def _as_list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return [value] if isinstance(value, dict) else list(value)


def _write_card(model_dir: Path, tok: Any) -> Path:
    card_path = model_dir / "README.md"
    render_model_card(tok).save(card_path)
    return card_path

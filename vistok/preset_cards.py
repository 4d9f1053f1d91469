"""Model-card metadata for presets: description, source and recipe, and for presets that share an upstream
release's architecture that release's origin, paper, citation and reported numbers (rendered by
:func:`vistok.cards.render_model_card`; ``vistok card --all-presets`` writes ``model_cards/``)."""

from __future__ import annotations

from typing import Any

from .configuration import VisTokenizerConfig
from .convert.origins import LLAMAGEN, TAMING, find_release
from .registry import PRESETS


def preset_card_config(name: str):
    """The config of preset ``name`` with card metadata (description, source, recipe, and for presets that mirror
    an upstream release: that release's origin, paper, citation and reported numbers)."""
    preset = PRESETS.get(name)
    config = VisTokenizerConfig(**preset.config, preset=name, source=preset.source)
    meta: dict[str, Any] = {
        "preset": {
            "name": name,
            "description": preset.description,
            "training": preset.training,
            "tags": list(preset.tags),
        }
    }
    if config.net["type"] == "vqgan" and config.quantizer["type"] == "vq":
        for origin_name in ("llamagen", "taming"):
            if origin_name in name:
                release = _release_for(origin_name, config)
                if release is not None:
                    upstream, extra = _release_metadata(release, origin_name)
                    meta["preset"]["upstream"] = upstream
                    meta.update(extra)
    config.metadata = meta
    return config


def _release_for(origin_name: str, config):
    origin = {"llamagen": LLAMAGEN, "taming": TAMING}[origin_name]
    q = config.quantizer
    return find_release(origin, config.net, q["codebook_size"], q["codebook_dim"])


def _release_metadata(release, origin_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    base = release.origin.metadata()
    upstream = dict(base["origin"])
    upstream["release"] = release.name
    upstream["release_checkpoints"] = list(release.checkpoints)
    upstream["convert_command"] = f"vistok convert {origin_name} <upstream checkpoint> <output folder>"
    meta: dict[str, Any] = {"paper": base["paper"], "citation": base["citation"]}
    meta["reported_metrics"] = [
        {
            **m,
            "applies_to": f"the upstream {release.origin.name} {release.name} weights (this preset only shares "
            "their architecture)",
        }
        for m in release.reported_metrics
    ]
    return upstream, meta

"""Model-card metadata for presets: description, source and recipe, and for presets that share an upstream
release's architecture that release's origin, paper, citation and reported numbers (rendered by
:func:`vistok.cards.render_model_card`; ``vistok card --all-presets`` writes ``model_cards/``)."""

from __future__ import annotations

from typing import Any

from .configuration import VisTokenizerConfig
from .families import all_families
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
    for family in all_families():  # the family that registered the preset, and its release of that architecture
        if any(p.name == name for p in family.presets):
            q = config.quantizer
            release = next(
                (r for r in family.releases if r.matches(config.net, q.get("codebook_size"), q.get("codebook_dim"))),
                None,
            )
            if release is not None:
                upstream, extra = _release_metadata(release, family.name)
                meta["preset"]["upstream"] = upstream
                meta.update(extra)
    config.metadata = meta
    return config


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

"""pyproject.toml: each dependency floor covers the newest API of that dependency which vistok's code calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# (text in the sources, distribution, first release that has it, where that version comes from). The versions are
# upstream's, not vistok's: PyTorch's documentation and changelog, and transformers' released wheels.
# activation_checkpointing_enable (new in transformers 5.23) is not listed: the trainer falls back to its older
# name, gradient_checkpointing_enable, on earlier 5.x releases.
API_FLOORS = [
    ("torch.accelerator.", "torch", "2.6", "torch.accelerator is new in PyTorch 2.6 (pytorch/pytorch#132204)"),
    (
        "image_processing_backends",
        "transformers",
        "5.4",
        "transformers.image_processing_backends (PilBackend): absent from transformers 5.3.0, present in 5.4.0",
    ),
]


def _floors() -> dict[str, Version]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        lower = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
        if lower:
            floors[requirement.name.lower()] = max(lower)
    return floors


def _sources() -> dict[Path, str]:
    files = [*(ROOT / "vistok").rglob("*.py"), *(ROOT / "training").rglob("*.py")]
    return {path: path.read_text(encoding="utf-8") for path in files}


def test_dependency_floors_cover_the_apis_vistok_calls():
    floors, sources = _floors(), _sources()
    for needle, distribution, first, why in API_FLOORS:
        users = sorted(str(p.relative_to(ROOT)) for p, text in sources.items() if needle in text)
        if not users:
            continue  # no longer called: the entry only documents history
        assert distribution in floors, f"pyproject.toml states no floor for {distribution} ({needle} in {users})"
        assert floors[distribution] >= Version(first), (
            f"pyproject.toml says {distribution}>={floors[distribution]} but {users[0]} uses {needle!r}: {why}"
        )

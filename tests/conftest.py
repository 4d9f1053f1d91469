"""Shared fixtures. Everything runs offline on CPU."""

from __future__ import annotations

import os

import pytest
import torch

pytest_plugins = ["tests.training_support"]  # the training tests' shared fixtures

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def no_weight_downloads(monkeypatch, tmp_path):
    """Backbone weights (LPIPS VGG, FID Inception) come only from what a test provides: no network, no user cache."""
    from vistok.metrics import INCEPTION_V3_FID, LPIPS_VGG16

    monkeypatch.setenv("VISTOK_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(LPIPS_VGG16.env_var, raising=False)
    monkeypatch.delenv(INCEPTION_V3_FID.env_var, raising=False)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty, offline Hugging Face cache and vistok cache for this test; returns the HF cache folder (fill it
    with ``tests.hub_cache.add_to_hub_cache``)."""
    import huggingface_hub

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("VISTOK_CACHE", str(tmp_path / "vistok"))
    return cache


@pytest.fixture
def hub_reachable_but_watched(monkeypatch):
    """Offline mode off (as for a user), and every name lookup recorded and refused: a name that reaches the
    network shows up in the returned list (and would go through huggingface_hub's retries)."""
    import socket

    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    lookups = []

    def refuse(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return lookups

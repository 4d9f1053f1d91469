"""The MaskGIT-VQGAN zoo entry, offline: the tiny reference state dict sits in a local Hugging Face cache under the
real repo id and file name (``fun-research/TiTok``, ``maskgit-vqgan-imagenet-f16-256.bin``), and both entry points
give upstream's indices and reconstruction."""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path

import pytest
import torch

import vistok
from vistok.families import FAMILIES
from vistok.zoo import ZooArchitectureWarning, get_entry

from .hub_cache import add_to_hub_cache

DATA = Path(__file__).parent / "data"
REPO = "fun-research/TiTok"
FILE = "maskgit-vqgan-imagenet-f16-256.bin"
NAME = "maskgit-vqgan-imagenet256-f16"


def _check_parity(tok: vistok.VisTokenizer) -> None:
    expected = torch.load(DATA / "maskgit_tiny_expected.pt", weights_only=True)
    assert not tok.training and tok.config.net["pixel_range"] == "unit"
    with torch.no_grad():
        indices = tok.encode(2 * expected["input"] - 1).indices  # upstream takes [0, 1], vistok [-1, 1]
        reconstruction = (tok.decode(indices) + 1) / 2
    assert torch.equal(indices.reshape(3, 64), expected["indices"])
    assert (reconstruction - expected["reconstruction_unclamped"]).abs().max() < 1e-4
    assert (reconstruction.clamp(0, 1) - expected["reconstruction"]).abs().max() < 1e-4


def test_entry_names_the_published_file_licence_and_reported_number():
    entry = get_entry(NAME)
    # README_RAR.md: hf_hub_download(repo_id="fun-research/TiTok", filename="maskgit-vqgan-imagenet-f16-256.bin").
    assert (entry.repo_id, entry.filenames, entry.converter, entry.image_size) == (REPO, (FILE,), "maskgit", 256)
    assert entry.license.id == "apache-2.0" and entry.license.permissive
    # google-research/maskgit README: ImageNet 256 tokenizer, 2.28 (reconstruction).
    assert entry.reported("rfid") == 2.28 and "JAX" in entry.reported_metrics[0]["note"]
    preset = vistok.PRESETS.get(entry.preset).config
    assert preset["net"]["type"] == "maskgit" and preset["net"]["pixel_range"] == "unit"
    assert (preset["quantizer"]["codebook_size"], preset["quantizer"]["codebook_dim"]) == (1024, 256)


def test_both_entry_points_load_with_parity_and_the_second_load_converts_nothing(hub, monkeypatch):
    add_to_hub_cache(hub, REPO, {FILE: DATA / "maskgit_tiny.bin"})
    # The tiny reference is not the released architecture: the zoo says so and loads it as the file describes.
    with pytest.warns(ZooArchitectureWarning, match=r"net.base_channels: catalogue 128, file 32"):
        first = vistok.create_tokenizer(NAME, pretrained=True)
    _check_parity(first)
    meta = first.config.metadata
    assert meta["zoo"]["name"] == NAME and meta["zoo"]["repo_id"] == REPO
    assert meta["origin"]["checkpoint_file"] == FILE and meta["license"] == "apache-2.0"
    assert "reported_metrics" not in meta  # a tiny stand-in, not the measured release

    def refuse(*args, **kwargs):
        raise AssertionError("the second load unpickled or converted")

    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooArchitectureWarning)
        patch.setattr(torch, "load", refuse)
        patch.setattr(pickle, "Unpickler", refuse)
        patch.setitem(FAMILIES, "maskgit", dataclasses.replace(FAMILIES["maskgit"], convert=refuse))
        second = vistok.VisTokenizer.from_pretrained(NAME)
    _check_parity(second)

"""IBQ's zoo entries: loaded from a Hub cache holding upstream's tiny reference checkpoint under the real repo ids
and file names (offline), through both entry points, with parity on upstream's EMA outputs."""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path

import huggingface_hub
import pytest
import torch

import vistok
from vistok import convert as convert_module
from vistok.families import FAMILIES
from vistok.zoo import ZooArchitectureWarning, get_entry

from .hub_cache import add_to_hub_cache

DATA = Path(__file__).parent / "data"
SIZES = (1024, 8192, 16384, 262144)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("VISTOK_CACHE", str(tmp_path / "vistok"))
    return cache


def _check_parity(tok):
    expected = torch.load(DATA / "ibq_tiny_expected.pt", weights_only=True)
    assert not tok.training and tok.config.quantizer["type"] == "ibq"
    with torch.no_grad():
        indices = tok.encode(expected["input"]).indices
        reconstruction = tok.decode(indices)
    assert torch.equal(indices, expected["indices"])
    assert (reconstruction - expected["reconstruction"]).abs().max() < 1e-4


def test_entries_name_the_published_files_licence_and_reported_numbers():
    # SEED-Voken docs/IBQ.md: checkpoint links and its table (rFID, LPIPS, codebook utilisation).
    table = {1024: (2.24, 0.2580, 0.99), 8192: (1.87, 0.2437, 0.98), 16384: (1.37, 0.2235, 0.96),
             262144: (1.00, 0.2030, 0.84)}
    for size in SIZES:
        entry = get_entry(f"ibq-imagenet256-{size}")
        assert (entry.repo_id, entry.filenames) == (f"TencentARC/IBQ-Tokenizer-{size}", (f"imagenet256_{size}.ckpt",))
        assert entry.license.id == "apache-2.0" and entry.converter == "ibq" and entry.image_size == 256
        assert (entry.reported("rfid"), entry.reported("lpips"), entry.reported("codebook_usage")) == table[size]
        assert vistok.PRESETS.get(entry.preset).config["quantizer"]["codebook_size"] == size


@pytest.mark.parametrize("size", [16384, 262144])
def test_both_entry_points_load_with_parity_and_the_second_load_converts_nothing(hub, monkeypatch, size):
    repo = f"TencentARC/IBQ-Tokenizer-{size}"
    add_to_hub_cache(hub, repo, {f"imagenet256_{size}.ckpt": DATA / "ibq_tiny.ckpt"})
    with pytest.warns(ZooArchitectureWarning, match=r"net.base_channels: catalogue 128, file 32"):
        first = vistok.create_tokenizer(f"ibq-imagenet256-{size}", pretrained=True)
    _check_parity(first)
    assert first.config.metadata["origin"]["weights"] == "ema"

    def refuse(*args, **kwargs):
        raise AssertionError("the second load unpickled or converted")

    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooArchitectureWarning)
        patch.setattr(torch, "load", refuse)
        patch.setattr(pickle, "Unpickler", refuse)
        patch.setitem(FAMILIES, "ibq", dataclasses.replace(FAMILIES["ibq"], convert=refuse))
        second = vistok.VisTokenizer.from_pretrained(repo)
    _check_parity(second)


def test_an_entry_file_without_ema_weights_is_refused(hub, tmp_path):
    checkpoint = torch.load(DATA / "ibq_tiny.ckpt", weights_only=True)
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("model_ema.")}
    path = tmp_path / "no_ema.ckpt"
    torch.save(checkpoint, path)
    add_to_hub_cache(hub, "TencentARC/IBQ-Tokenizer-1024", {"imagenet256_1024.ckpt": path})
    with pytest.raises(ValueError, match=r"no model_ema") as raised, warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooArchitectureWarning)
        vistok.create_tokenizer("ibq-imagenet256-1024", pretrained=True)
    assert isinstance(raised.value, convert_module.CheckpointError)


# The text-to-image pretrained releases: docs/IBQ.md's checkpoint links and its ImageNet ("In1k") columns.
PRETRAIN = {16384: (2.06, 22.01, 0.61), 262144: (1.53, 22.69, 0.64)}


def test_pretrain_entries_name_the_published_files_and_reported_numbers():
    for size, numbers in PRETRAIN.items():
        entry = get_entry(f"ibq-pretrain256-{size}")
        assert entry.repo_id == f"TencentARC/IBQ-Tokenizer-{size}-Pretrain"
        assert entry.filenames == (f"IBQ_pretrain_{size}.ckpt",)
        assert entry.license.id == "apache-2.0" and entry.converter == "ibq" and entry.image_size == 256
        assert (entry.reported("rfid"), entry.reported("psnr"), entry.reported("ssim")) == numbers
        # the pretraining config's network (the ImageNet one, tests/test_zoo_pretrain.py); the file's shapes still decide
        assert entry.preset == f"ibqgan-pretrain256-{size}"
        assert "weights" not in entry.converter_options  # EMA when present (unconfirmed for these files)


@pytest.mark.parametrize("size", sorted(PRETRAIN))
def test_pretrain_entries_load_offline_from_the_real_repo_ids(hub, monkeypatch, size):
    repo = f"TencentARC/IBQ-Tokenizer-{size}-Pretrain"
    add_to_hub_cache(hub, repo, {f"IBQ_pretrain_{size}.ckpt": DATA / "ibq_tiny.ckpt"})
    with pytest.warns(ZooArchitectureWarning, match=r"net.base_channels: catalogue 128, file 32"):
        first = vistok.create_tokenizer(f"ibq-pretrain256-{size}", pretrained=True)  # a tiny stand-in: loaded as is
    _check_parity(first)
    meta = first.config.metadata
    assert meta["origin"]["weights"] == "ema" and meta["zoo"]["repo_id"] == repo
    assert meta["origin"]["checkpoint_file"] == f"IBQ_pretrain_{size}.ckpt"

    def refuse(*args, **kwargs):
        raise AssertionError("the second load unpickled or converted")

    with monkeypatch.context() as patch, pytest.warns(ZooArchitectureWarning):  # the cache holds the tiny stand-in
        patch.setattr(torch, "load", refuse)
        patch.setattr(pickle, "Unpickler", refuse)
        patch.setitem(FAMILIES, "ibq", dataclasses.replace(FAMILIES["ibq"], convert=refuse))
        second = vistok.VisTokenizer.from_pretrained(repo)
    _check_parity(second)

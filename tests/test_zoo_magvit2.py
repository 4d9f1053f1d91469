"""The Open-MAGVIT2 and SimVQ zoo entries, offline: the reference checkpoints sit in a local Hugging Face cache
under the real repo ids and file names, and both entry points give upstream's indices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vistok
from vistok.zoo import ZooArchitectureWarning, get_entry

from .hub_cache import add_to_hub_cache

DATA = Path(__file__).parent / "data"
OPEN_MAGVIT2_REPO = "TencentARC/Open-MAGVIT2-Tokenizer-256-resolution"
SIMVQ_REPO = "youngsheen/SimVQ"
SIMVQ_262K = "vq_log/simvq_262k/epoch=49-step=250250.ckpt"


def _check(tok, expected_file: str) -> None:
    expected = torch.load(DATA / expected_file, weights_only=True)
    with torch.no_grad():
        encoded = tok.encode(expected["input"])
        assert torch.equal(encoded.indices, expected["indices"])
        reconstruction = tok.decode(encoded.indices)
    assert (reconstruction - expected["reconstruction"]).abs().max() < 1e-4


def test_open_magvit2_loads_through_the_zoo_name_and_the_repo_id(hub):
    add_to_hub_cache(hub, OPEN_MAGVIT2_REPO, {"imagenet_256_L.ckpt": DATA / "magvit2_tiny.ckpt"})
    # The tiny reference file is not the 256_L architecture: the zoo says so and loads it as the file describes.
    with pytest.warns(ZooArchitectureWarning, match="net.base_channels: catalogue 128, file 32"):
        tok = vistok.create_tokenizer("lfqgan-magvit2-imagenet256-L", pretrained=True)
    _check(tok, "magvit2_tiny_expected.pt")
    assert tok.config.quantizer["bit_order"] == "lsb_first"
    assert tok.config.metadata["zoo"]["name"] == "lfqgan-magvit2-imagenet256-L"
    with pytest.warns(ZooArchitectureWarning):
        _check(vistok.VisTokenizer.from_pretrained(OPEN_MAGVIT2_REPO), "magvit2_tiny_expected.pt")


def test_simvq_262k_loads_with_its_config_companion(hub):
    add_to_hub_cache(
        hub,
        SIMVQ_REPO,
        {SIMVQ_262K: DATA / "simvq_tiny.ckpt", "vq_log/simvq_262k/size128/config.yaml": DATA / "simvq_tiny_config.yaml"},
    )
    with pytest.warns(ZooArchitectureWarning, match="quantizer.codebook_size: catalogue 262144, file 256"):
        tok = vistok.create_tokenizer("simvq-imagenet128-262144", pretrained=True)
    _check(tok, "simvq_tiny_expected.pt")
    assert tok.config.metadata["origin"]["config_file"] == "size128/config.yaml"
    assert tok.config.image_size == 128  # the entry's resolution wins over the config's


def test_entries_point_at_confirmed_files_only():
    entry = get_entry("lfqgan-magvit2-imagenet256-L")
    assert (entry.repo_id, entry.filenames) == (OPEN_MAGVIT2_REPO, ("imagenet_256_L.ckpt",))
    assert entry.license.id == "apache-2.0" and entry.reported("rfid") == 1.17 and entry.reported("psnr") == 21.90
    assert get_entry("lfqgan-magvit2-imagenet128-L").reported_metrics[0]["dataset"] == "ImageNet 128x128 validation"
    for size, bits in ((16384, 14), (262144, 18)):
        pretrain = get_entry(f"lfqgan-magvit2-pretrain256-{size}")
        assert pretrain.repo_id == f"TencentARC/Open-MAGVIT2-Tokenizer-{size}-Pretrain"
        assert pretrain.filenames == (f"pretrain256_{size}.ckpt",) and f"2^{bits}" in pretrain.description
    assert get_entry("simvq-imagenet128-262144").license.id == "mit"
    assert get_entry("simvq-imagenet128-262144").reported("rfid") == 1.99
    for size in (1024, 8192, 65536):  # their checkpoint file names are not confirmed: no guessed Hub file
        entry = get_entry(f"simvq-imagenet128-{size}")
        assert not entry.on_hub and "could not be confirmed" in entry.manual_download
        assert entry.reported("rfid") is not None


@pytest.mark.parametrize(
    "name", ["lfqgan-magvit2-imagenet256-L", "lfqgan-magvit2-imagenet128-L", "simvq-imagenet128-262144"]
)
def test_presets_have_the_catalogued_shapes(name):
    with torch.device("meta"):
        tok = vistok.create_tokenizer(name)
    expected = {
        "lfqgan-magvit2-imagenet256-L": (256, 16, 2**18),
        "lfqgan-magvit2-imagenet128-L": (128, 8, 2**18),
        "simvq-imagenet128-262144": (128, 8, 262144),
    }[name]
    assert (tok.config.image_size, tok.downsample_factor, tok.codebook_size) == expected
    assert tok.config.image_size // tok.downsample_factor == 16  # 16x16 tokens, as the releases report

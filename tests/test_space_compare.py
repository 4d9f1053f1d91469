"""The Space's Compare tab without a browser: up to four tokenizers on one image (run_compare), and the /compare
API through gradio_client on the app served in this process."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from vistok import VisTokenizer, VisTokenizerConfig
from vistok.metrics.testing import save_random_vgg16_weights

ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = ROOT / "spaces" / "vistok-demo"
PHOTO = SPACE_DIR / "examples" / "chelsea.jpg"
sys.path.insert(0, str(SPACE_DIR))

from vistok_space.compare import MAX_COMPARED, LPIPSScorer, run_compare  # noqa: E402
from vistok_space.pipeline import run_request  # noqa: E402
from vistok_space.tokenizers import TokenizerCache, TokenizerPolicy  # noqa: E402


@pytest.fixture(scope="module")
def second(tmp_path_factory) -> str:
    """A small random grid tokenizer folder (f8, 512 codes): a second, different tokenizer to compare with."""
    folder = tmp_path_factory.mktemp("second") / "tiny-f8"
    torch.manual_seed(0)
    VisTokenizer(VisTokenizerConfig(
        image_size=64, net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 1, "num_downsamples": 3},
        quantizer={"type": "vq", "codebook_size": 512, "codebook_dim": 4},
    )).save_pretrained(folder)  # fmt: skip
    return str(folder)


@pytest.fixture(scope="module")
def cache(second) -> TokenizerCache:
    return TokenizerCache(policy=TokenizerPolicy.from_environment(tokenizers=[second], allow_any=False))


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    save_random_vgg16_weights(path)
    return path


def test_two_tokenizers_side_by_side_equal_the_reconstruct_tab(cache, second, vgg_file, monkeypatch):
    monkeypatch.setenv("VISTOK_LPIPS_VGG_WEIGHTS", str(vgg_file))
    result = run_compare(str(PHOTO), ["vistok/default", second], "128", cache, LPIPSScorer(allow_download=False))
    assert result.status.startswith("**Compared** 2 of 2"), result.status
    assert [e.name for e in result.entries] == ["vistok/default", second]
    single = run_request(str(PHOTO), "vistok/default", "128", cache)
    default, other = result.entries
    assert default.metrics["psnr_db"] == single.metrics["psnr_db"]  # the same preparation and measurement
    assert default.metrics["tokens_per_image"] == 32 * 32 and other.metrics["tokens_per_image"] == 16 * 16
    for entry in result.entries:
        assert entry.reconstruction.size == entry.original.size == entry.token_map.size == (128, 128)
        assert isinstance(entry.metrics["lpips"], float) and entry.metrics["lpips"] >= 0
        assert "PSNR" in entry.summary() and "tokens" in entry.summary()
    assert result.table.count("\n| `") == 2 and "LPIPS" in result.table and "Token maps" in result.table
    assert [m["tokenizer"] for m in result.metrics()] == ["vistok/default", second]


def test_lpips_without_weights_is_explained(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("VISTOK_LPIPS_VGG_WEIGHTS", raising=False)
    result = run_compare(str(PHOTO), ["vistok/default"], "128", cache, LPIPSScorer(allow_download=False))
    assert result.entries[0].metrics["lpips"] is None
    assert "LPIPS is not available here" in result.status and "| n/a |" in result.table


def test_choices_are_checked_and_a_bad_name_does_not_stop_the_others(cache):
    too_many = ["vistok/default"] * 2 + [f"x{i}" for i in range(MAX_COMPARED)]
    assert "pick at most 4" in run_compare(str(PHOTO), too_many, "128", cache).status
    assert "pick one to 4" in run_compare(str(PHOTO), [], "128", cache).status
    result = run_compare(str(PHOTO), "vistok/default, /etc", "128", cache)  # the API's comma-separated form
    assert len(result.entries) == 1 and "not one of the tokenizers this Space serves" in result.status
    bad = run_compare(b"not an image", ["vistok/default"], "128", cache)
    assert bad.status.startswith("**Could not compare:**") and not bad.entries


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_compare_api(second, monkeypatch):
    from gradio_client import Client, handle_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = importlib.util.spec_from_file_location("vistok_space_app_compare", SPACE_DIR / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    demo = app.build_demo(tokenizers=[second], allow_any_tokenizer=False)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        outputs = client.predict(handle_file(str(PHOTO)), ["vistok/default", second], "128", api_name="/compare")
    finally:
        demo.close()
    status, original, table, *slots, metrics = outputs
    assert status.startswith("**Compared** 2 of 2"), status
    assert Image.open(original).size == (128, 128) and "vistok/default" in table
    assert len(slots) == 3 * MAX_COMPARED  # the panels' visibility is not part of the API's answer
    for index in range(2):
        reconstruction, token_map, numbers = slots[3 * index : 3 * index + 3]
        assert Image.open(reconstruction).size == Image.open(token_map).size == (128, 128)
        assert "PSNR" in numbers
    assert [m["tokenizer"] for m in metrics] == ["vistok/default", second]

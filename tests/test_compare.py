"""`vistok compare`: several tokenizers on the same images under one protocol — table, grid, rate-distortion plot —
with the bundled default and a zoo entry from a local Hub cache, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hub_cache import add_to_hub_cache
from vistok.cli import main as vistok_main

DATA = Path(__file__).parent / "data"
LLAMAGEN_REPO = "FoundationVision/LlamaGen"
COMMON = ["--dataset", "samples", "--num-samples", "3", "--image-size", "64", "--metrics", "psnr,ssim,codebook_usage",
          "--num-workers", "0"]  # fmt: skip


@pytest.fixture
def llamagen_cached(hub, no_weight_downloads):
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    return hub


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_compare_writes_table_grid_and_plot_and_matches_evaluate(llamagen_cached, tmp_path, capsys):
    out = tmp_path / "compare"
    assert vistok_main(["compare", "--model", "vistok/default", "--zoo", "all", *COMMON, "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "comparing" in captured.err  # the progress bar
    report = json.loads((out / "comparison.json").read_text())
    names = [row["model"] for row in report["table"]]
    assert names == ["vistok/default", "vqgan-llamagen-vq16"]  # --zoo all: the cached entry
    assert report["protocol"] == "vistok" and report["conventions"]["protocol"]["name"] == "vistok"
    for row in report["table"]:
        assert row["tokens_per_image"] > 0 and row["bits_per_image"] > row["tokens_per_image"]
        assert row["codebook_size"] > 0 and row["num_parameters"] > 0 and row["num_images"] == 3
        assert row["encode_images_per_second"] > 0 and row["decode_images_per_second"] > 0
        assert row["lpips"] is None and row["rfid"] is None  # not requested here
    markdown = (out / "comparison.md").read_text()
    for text in ("| Model", "Tokens", "Bits", "Codebook", "PSNR↑", "Enc img/s", "Params", "vqgan-llamagen-vq16",
                 "grid.png", "rate_distortion.png"):  # fmt: skip
        assert text in markdown, text
    assert markdown.split("\n| Model")[1].splitlines()[0] in captured.out  # the same table printed
    for png in ("grid.png", "rate_distortion.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # the same images under the same protocol: vistok evaluate's PSNR
    for row in report["table"]:
        output = tmp_path / f"{row['model'].replace('/', '_')}.json"
        assert vistok_main(["evaluate", "--model", row["model"], "--protocol", "vistok", *COMMON,
                            "--output", str(output)]) == 0  # fmt: skip
        evaluated = json.loads(output.read_text())["models"][0]["results"]
        assert row["psnr"] == pytest.approx(evaluated["psnr"], rel=1e-12), row["model"]
        assert row["ssim"] == pytest.approx(evaluated["ssim"], rel=1e-9), row["model"]


def test_compare_needs_a_tokenizer(hub, tmp_path):
    with pytest.raises(SystemExit, match="at least one tokenizer"):
        vistok_main(["compare", "--dataset", "samples", "--output", str(tmp_path)])
    with pytest.raises(SystemExit, match="no zoo entry in the local cache"):
        vistok_main(["compare", "--zoo", "all", "--dataset", "samples", "--output", str(tmp_path)])


def test_compare_refuses_a_resolution_a_model_cannot_take(tmp_path):
    with pytest.raises(SystemExit, match="multiple of 4"):
        vistok_main(["compare", "--model", "vistok/default", "--dataset", "samples", "--image-size", "66",
                     "--output", str(tmp_path)])  # fmt: skip


def test_compare_refuses_a_sequence_tokenizer_at_another_size(tmp_path):
    from vistok.families import get_family

    tok = get_family("titok").convert(str(DATA / "titok_tiny"), num_heads=2)
    tok.save_pretrained(tmp_path / "titok")
    size = tok.config.image_size
    with pytest.raises(SystemExit, match=f"for one image size only, not {2 * size} px"):
        vistok_main(["compare", "--model", str(tmp_path / "titok"), "--dataset", "samples",
                     "--image-size", str(2 * size), "--output", str(tmp_path / "out")])  # fmt: skip

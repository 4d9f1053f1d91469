"""`vistok evaluate` end to end on the bundled `samples` photos with a tiny random tokenizer, offline."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vistok import VisTokenizer, VisTokenizerConfig
from vistok.cli import main as vistok_main
from vistok.metrics.testing import save_random_inception_weights, save_random_vgg16_weights

REPO_ROOT = Path(__file__).resolve().parent.parent
NUM_IMAGES = 5  # odd: the two processes get unequal shards


@pytest.fixture(autouse=True)
def _offline(no_weight_downloads):
    """Every test here runs without network or the user's weight caches."""


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny random tokenizer folder and random LPIPS / Inception backbone files."""
    root = tmp_path_factory.mktemp("evaluate_assets")
    torch.manual_seed(0)
    config = VisTokenizerConfig(
        image_size=32,
        net={"type": "simple_cnn", "hidden_channels": 32, "num_res_blocks": 1},
        quantizer={"type": "vq", "codebook_size": 64, "codebook_dim": 4},
    )
    VisTokenizer(config).save_pretrained(root / "tiny")
    save_random_vgg16_weights(root / "vgg16.pth")
    save_random_inception_weights(root / "inception.pth")
    return root


def _common_args(assets: Path, output: Path) -> list[str]:
    return [
        "--model", str(assets / "tiny"),
        "--dataset", "samples",
        "--split", "test",
        "--num-samples", str(NUM_IMAGES),
        "--batch-size", "2",
        "--num-workers", "0",
        "--lpips-weights", str(assets / "vgg16.pth"),
        "--inception-weights", str(assets / "inception.pth"),
        "--output", str(output),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def single_process_run(assets, tmp_path_factory):
    """One in-process `vistok evaluate` run with every metric, reconstructions saved and the card updated."""
    out = tmp_path_factory.mktemp("single")
    card_model = out / "tiny-card"
    VisTokenizer.from_pretrained(assets / "tiny").save_pretrained(card_model)
    args = _common_args(assets, out / "report.json")
    args[1] = str(card_model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VISTOK_OFFLINE", "1")
        exit_code = vistok_main(["evaluate", *args, "--save-dir", str(out / "recs"), "--update-card"])
    assert exit_code == 0
    return out, card_model


def test_report_has_every_number_and_convention(single_process_run, capsys):
    out, card_model = single_process_run
    report = json.loads((out / "report.json").read_text())
    assert report["vistok_version"] and report["num_processes"] == 1
    assert (
        report["conventions"]["ssim"]["window_size"] == 11
        and report["conventions"]["ssim"]["data_range"] == 1
    )
    assert "Inception" in report["conventions"]["rfid"]["feature_extractor"]
    (model,) = report["models"]
    assert model["config"]["codebook_size"] == 64 and model["config"]["downsample_factor"] == 4
    assert model["config"]["tokens"] == [8, 8] and model["dataset"]["image_size"] == 32
    results = model["results"]
    assert results["num_images"] == NUM_IMAGES and results["skipped"] == {}
    for key in ("psnr", "ssim", "lpips", "rfid", "codebook_usage", "codebook_usage_split", "perplexity"):
        assert isinstance(results[key], float) and math.isfinite(results[key]), key
    assert sum(results["codebook_histogram"]) == NUM_IMAGES * 8 * 8
    assert results["codebook_queue_tokens"] == NUM_IMAGES * 8 * 8
    assert Path(model["histogram_png"]).read_bytes()[:4] == b"\x89PNG"
    assert len(list((out / "recs").rglob("*.png"))) == NUM_IMAGES


def test_token_grid_is_that_of_the_evaluated_resolution(assets, tmp_path):
    """At an --image-size other than the model's native 32 px, the report's grid is the one the model produced
    (it reported the native 8×8 for 48-px images that give 12×12 tokens)."""
    args = _common_args(assets, tmp_path / "report.json")
    assert vistok_main(["evaluate", *args, "--image-size", "48", "--metrics", "psnr,codebook_usage"]) == 0
    (model,) = json.loads((tmp_path / "report.json").read_text())["models"]
    tok = VisTokenizer.from_pretrained(assets / "tiny").eval()
    with torch.no_grad():
        grid = list(tok.encode(torch.zeros(1, 3, 48, 48)).indices.shape[-2:])
    assert grid == [12, 12]
    assert model["config"]["tokens"] == grid
    assert model["config"]["image_size"] == model["dataset"]["image_size"] == 48
    assert model["config"]["native_image_size"] == 32
    assert sum(model["results"]["codebook_histogram"]) == NUM_IMAGES * 12 * 12


def test_reconstructions_and_metrics_are_those_of_the_model(single_process_run, assets):
    """Recompute PSNR from the saved PNGs and the dataset: the report's number is the mean over those images."""
    import numpy as np
    from PIL import Image

    from vistok.data import build_dataset
    from vistok.metrics import psnr_per_image, to_uint8

    out, _ = single_process_run
    dataset = build_dataset("samples", "test", image_size=32, num_samples=NUM_IMAGES)
    originals = to_uint8(torch.stack([dataset[i]["pixel_values"] for i in range(NUM_IMAGES)]))
    pngs = sorted((out / "recs").rglob("*.png"))
    saved = torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in pngs])).permute(0, 3, 1, 2)
    tok = VisTokenizer.from_pretrained(assets / "tiny")
    with torch.no_grad():
        expected = to_uint8(tok(originals.float() / 127.5 - 1).reconstruction)
    assert (saved.int() - expected.int()).abs().max() <= 1  # batch composition may flip a rounding
    report = json.loads((out / "report.json").read_text())
    psnr = report["models"][0]["results"]["psnr"]
    assert psnr == pytest.approx(float(psnr_per_image(originals, saved).double().mean()), abs=1e-3)


def test_update_card_stores_numbers_with_the_model(single_process_run):
    from huggingface_hub import ModelCard

    out, card_model = single_process_run
    config = json.loads((card_model / "config.json").read_text())
    (evaluation,) = config["metadata"]["evaluation"]
    assert evaluation["split"] == "test" and evaluation["num_images"] == NUM_IMAGES
    assert "codebook_histogram" not in evaluation
    sidecar = json.loads((card_model / "eval_results.json").read_text())
    assert len(sidecar) == 1 and "codebook_histogram" in next(iter(sidecar.values()))["results"]
    card = ModelCard.load(card_model / "README.md")
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics["psnr"] == pytest.approx(evaluation["psnr"])
    assert {"ssim", "lpips", "codebook_usage"} <= set(metrics)
    VisTokenizer.from_pretrained(card_model)  # the folder still loads


def test_recording_the_same_evaluation_twice_replaces_it(assets, tmp_path):
    from vistok.metrics.model_card import card_summary, record_evaluation

    folder = tmp_path / "model"
    tok = VisTokenizer.from_pretrained(assets / "tiny")
    tok.save_pretrained(folder)
    context = {"dataset": "samples", "dataset_id": "samples", "split": "test", "image_size": 32}
    for psnr in (20.0, 21.5):
        summary = card_summary(
            {"psnr": psnr, "num_images": 4, "skipped": {"rfid": "no weights\nhow to"}}, context
        )
        record_evaluation(folder, tok, summary, {"results": {"psnr": psnr}})
    other = card_summary({"psnr": 30.0, "num_images": 4}, {**context, "split": "train"})
    record_evaluation(folder, tok, other, {"results": {"psnr": 30.0}})
    evaluations = json.loads((folder / "config.json").read_text())["metadata"]["evaluation"]
    assert [(e["split"], e["psnr"]) for e in evaluations] == [("test", 21.5), ("train", 30.0)]
    assert evaluations[0]["skipped"] == {"rfid": "no weights"}
    assert len(json.loads((folder / "eval_results.json").read_text())) == 2


@pytest.mark.parametrize(
    "metrics",
    [
        "psnr,ssim,lpips,codebook_usage",
        # rFID's state merge under a real process group is covered quickly in test_metrics (small extractor)
        pytest.param("psnr,ssim,lpips,rfid,codebook_usage", marks=pytest.mark.slow),
    ],
)
def test_two_processes_equal_one_process(single_process_run, assets, tmp_path, metrics):
    out, _ = single_process_run
    output = tmp_path / "report.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "-m", "vistok.evaluate", *_common_args(assets, output), "--device", "cpu", "--metrics", metrics,
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "PSNR↑" in completed.stdout and completed.stdout.count("| " + str(assets / "tiny")) == 1
    multi = json.loads(output.read_text())
    single = json.loads((out / "report.json").read_text())
    assert multi["num_processes"] == 2
    one, two = single["models"][0]["results"], multi["models"][0]["results"]
    for key in ("num_images", "codebook_histogram", "codebook_usage", "codebook_usage_split", "perplexity"):
        assert two[key] == one[key], key
    for key in ("psnr", "ssim", "lpips", "rfid"):  # float noise from different batch compositions only
        if key in metrics:
            assert two[key] == pytest.approx(one[key], rel=1e-5), key


def test_missing_backbones_are_skipped_with_a_how_to(assets, tmp_path, capsys):
    args = _common_args(assets, tmp_path / "report.json")
    for option in ("--lpips-weights", "--inception-weights"):
        position = args.index(option)
        del args[position : position + 2]
    assert vistok_main(["evaluate", *args, "--metrics", "psnr,ssim,lpips,rfid"]) == 0
    printed = capsys.readouterr().out
    assert "—" in printed and "Skipped lpips" in printed and "VISTOK_INCEPTION_WEIGHTS" in printed
    results = json.loads((tmp_path / "report.json").read_text())["models"][0]["results"]
    assert set(results["skipped"]) == {"lpips", "rfid"} and "--lpips-weights" in results["skipped"]["lpips"]
    assert results["psnr"] > 0 and 0 < results["ssim"] < 1 and "codebook_usage" not in results


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--image-size", "30"], "multiple of 4"),
        (["--metrics", "psnr,fid"], "unknown metric"),
        (["--batch-size", "0"], "must be positive"),
    ],
)
def test_bad_requests_fail_before_any_work(assets, tmp_path, extra, message):
    args = _common_args(assets, tmp_path / "report.json")
    with pytest.raises(SystemExit, match=message):
        vistok_main(["evaluate", *args, *extra])
    assert not (tmp_path / "report.json").exists()


def test_models_that_cannot_be_evaluated_are_rejected_up_front(assets, tmp_path):
    grey = tmp_path / "grey"
    VisTokenizer(
        VisTokenizerConfig(image_size=32, num_channels=1, net={"type": "simple_cnn", "hidden_channels": 8})
    ).save_pretrained(grey)
    base = ["evaluate", "--dataset", "samples", "--output", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit, match="1-channel"):
        vistok_main([*base, "--model", str(assets / "tiny"), "--model", str(grey)])
    with pytest.raises(SystemExit, match="is a vistok preset"):
        vistok_main([*base, "--model", "vqvae-celeba64-vq-d4"])
    with pytest.raises(SystemExit, match="HF_HUB_OFFLINE"):
        vistok_main([*base, "--model", "some-org/not-cached"])
    assert not (tmp_path / "r.json").exists()


def test_evaluate_module_loads_from_the_repository(monkeypatch, tmp_path):
    """`evaluate.load("<repo>/metrics/vistok_reconstruction")` works offline and matches vistok.metrics."""
    import evaluate
    import numpy as np
    import skimage.data
    from skimage.transform import resize

    from vistok.metrics import psnr_per_image, ssim_per_image

    monkeypatch.setattr(evaluate.config, "HF_MODULES_CACHE", tmp_path / "modules")
    rng = np.random.default_rng(0)
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    originals = [(resize(p, (40, 48), anti_aliasing=True) * 255).round().astype(np.uint8) for p in photos]
    reconstructions = [
        np.clip(o + rng.normal(0, 8, o.shape), 0, 255).round().astype(np.uint8) for o in originals
    ]
    codes = [rng.integers(0, 16, (5, 6)).tolist() for _ in originals]

    metric = evaluate.load(
        str(REPO_ROOT / "metrics" / "vistok_reconstruction"), "with_indices", keep_in_memory=True
    )
    for start in (0, 2):  # streamed in two batches, as evaluate users do
        metric.add_batch(
            predictions=reconstructions[start : start + 2],
            references=originals[start : start + 2],
            indices=codes[start : start + 2],
        )
    results = metric.compute(
        codebook_size=16, metrics=["psnr", "ssim", "lpips", "codebook_usage"], allow_download=False
    )

    as_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # noqa: E731
    expected_psnr = psnr_per_image(as_tensor(originals), as_tensor(reconstructions)).double().mean()
    expected_ssim = ssim_per_image(as_tensor(originals), as_tensor(reconstructions)).double().mean()
    assert results["num_images"] == 3
    assert results["psnr"] == pytest.approx(float(expected_psnr), rel=1e-9)
    assert results["ssim"] == pytest.approx(float(expected_ssim), rel=1e-5)  # float32 SSIM maps
    assert results["codebook_usage"] == len(np.unique(codes)) / 16
    assert "VISTOK_LPIPS_VGG_WEIGHTS" in results["skipped"]["lpips"]
    assert results["conventions"]["ssim"]["sigma"] == 1.5


def test_bundled_default_reports_the_grid_of_each_evaluated_resolution():
    """The committed eval_results.json of vistok/default: each report's grid is its resolution / downsample factor
    (the 256-px report once said 16×16), and the histogram counts exactly that many tokens per image."""
    reports = json.loads((REPO_ROOT / "vistok" / "pretrained" / "default" / "eval_results.json").read_text())
    assert {report["dataset"]["image_size"] for report in reports.values()} == {64, 256}
    for report in reports.values():
        side = report["dataset"]["image_size"] // report["config"]["downsample_factor"]
        assert report["config"]["tokens"] == [side, side]
        results = report["results"]
        assert sum(results["codebook_histogram"]) == results["num_images"] * side * side


@pytest.mark.filterwarnings("ignore:bf16 inference on a CPU without native bfloat16")
def test_bf16_evaluation_runs_the_fast_path_and_records_it(single_process_run, assets, tmp_path):
    """`--dtype bf16` reconstructs through bfloat16 weights (other pixels than float32, close PSNR) and the
    report says which inference mode produced the numbers."""
    out32, _ = single_process_run
    args = _common_args(assets, tmp_path / "report.json")
    assert vistok_main(["evaluate", *args, "--metrics", "psnr", "--dtype", "bf16", "--save-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())["models"][0]["results"]
    reference = json.loads((out32 / "report.json").read_text())["models"][0]["results"]
    assert report["inference"] == {"dtype": "bf16", "compile": False}
    assert reference["inference"] == {"dtype": "float32", "compile": False}
    assert report["psnr"] == pytest.approx(reference["psnr"], abs=0.5) and report["psnr"] != reference["psnr"]


@pytest.mark.parametrize("family", ["titok", "var"])
def test_sequence_and_multiscale_tokenizers_evaluate(tmp_path, family):
    """`vistok evaluate` on a 1-D (TiTok) and a multi-scale (VAR) tokenizer: codebook usage counts every token of
    every scale, and the report describes the layout instead of a grid."""
    from vistok.families import get_family

    data = Path(__file__).parent / "data"
    if family == "titok":
        tok = get_family("titok").convert(str(data / "titok_tiny"), num_heads=2)
        layout, tokens = {"layout": "sequence", "length": 16}, 16
    else:
        tok = get_family("var").convert(str(data / "var_tiny.pth"), patch_nums=[1, 2, 3, 4])
        layout, tokens = {"layout": "multiscale", "scales": [[1, 1], [2, 2], [3, 3], [4, 4]]}, 30
    tok.save_pretrained(tmp_path / family)
    report_path = tmp_path / "report.json"
    args = ["evaluate", "--model", str(tmp_path / family), "--dataset", "samples", "--split", "test",
            "--num-samples", "3", "--batch-size", "2", "--metrics", "psnr,codebook_usage", "--output", str(report_path)]
    assert vistok_main(args) == 0
    model = json.loads(report_path.read_text())["models"][0]
    assert model["config"]["token_layout"] == layout and model["config"]["tokens_per_image"] == tokens
    assert model["config"]["tokens"] is None
    assert model["results"]["codebook_tokens"] == 3 * tokens  # every token of the three images was counted


def _folder_args(assets: Path, folder: Path, output: Path) -> list[str]:
    return ["evaluate", "--model", str(assets / "tiny"), "--dataset", str(folder), "--metrics", "psnr,ssim",
            "--batch-size", "2", "--num-workers", "2", "--output", str(output)]  # fmt: skip


def test_a_folder_with_no_readable_image_is_refused_with_a_message(assets, tmp_path):
    """Three files that are not images (read in DataLoader worker processes): a message naming them, no report."""
    folder = tmp_path / "broken" / "x"
    folder.mkdir(parents=True)
    for k in range(3):
        (folder / f"b{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(SystemExit) as info:
        vistok_main(_folder_args(assets, tmp_path / "broken", tmp_path / "r.json"))
    message = str(info.value.code)
    assert message.startswith("vistok evaluate: none of the 3 images of ") and "could be used" in message
    assert all(f"b{k}.png" in message for k in range(3)) and "cannot identify image file" in message
    assert not (tmp_path / "r.json").exists()


def test_skipped_files_are_named_with_their_reasons(assets, tmp_path, capsys):
    folder = tmp_path / "mixed" / "x"
    folder.mkdir(parents=True)
    for k in range(3):
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    (folder / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    Image.new("RGB", (1, 250_000), (9, 9, 9)).save(folder / "thin.png")  # 2 KB; 32 × 8,000,000 px once resized
    assert vistok_main(_folder_args(assets, tmp_path / "mixed", tmp_path / "r.json")) == 0
    printed = capsys.readouterr().out
    assert "Skipped 2 of 5 images that could not be used:" in printed
    assert "\n  x/cut.png: UnidentifiedImageError: cannot identify image file" in printed
    assert "\n  x/thin.png: The image is 1×250000 pixels, 250,000 times as tall as it is wide" in printed
    results = json.loads((tmp_path / "r.json").read_text())["models"][0]["results"]
    assert results["num_images"] == 3 and results["num_skipped"] == 2
    assert [Path(s["file"]).name for s in results["skipped_images"]] == ["cut.png", "thin.png"]

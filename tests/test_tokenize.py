"""`vistok tokenize`: token datasets of the sample photos and image folders, offline, on CPU, with tiny tokenizers.

Every expected value comes from running the tokenizer itself (``tok.encode``) on the images the dataset pipeline
prepares, batched as the contract says (shards of ``--shard-size`` images, batches inside a shard), or from an
independent implementation (torchvision's ten-crop, the layouts' own ``flatten``, numpy's integer ranges).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import tiny_tokenizer
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.cli import main as vistok_main
from vistok.data import build_dataset
from vistok.layouts import GridLayout, MultiScaleLayout, SequenceLayout
from vistok.tokenize import read_layout, read_manifest, rows_to_indices, token_storage_dtype, tokenize_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _one_thread():
    """Same kernels in this process as in the subprocess runs (OMP_NUM_THREADS=1), and fair to a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random grid tokenizer (32 px → 8×8 tokens, codebook 64) saved with save_pretrained."""
    torch.manual_seed(0)
    config = VisTokenizerConfig(
        image_size=32,
        net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 1},
        quantizer={"type": "vq", "codebook_size": 64, "codebook_dim": 4},
    )
    path = tmp_path_factory.mktemp("tok") / "tiny"
    VisTokenizer(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """cat/ and dog/ images of assorted sizes and modes, and one corrupt file (position 3 of the split)."""
    root = tmp_path_factory.mktemp("images") / "pets"
    rng = np.random.default_rng(0)
    sizes = {"cat": [(40, 52), (64, 48), (33, 33)], "dog": [(50, 70), (45, 45)]}
    for label, shapes in sizes.items():
        (root / label).mkdir(parents=True)
        for k, (w, h) in enumerate(shapes):
            pixels = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
            Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR).save(root / label / f"{label}{k}.png")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return root


def _tokenize(tok_dir, dataset, output, *extra: str, split="test") -> None:
    code = vistok_main([
        "tokenize", "--model", str(tok_dir), "--dataset", str(dataset), "--split", split, "--output", str(output),
        "--num-workers", "0", "--no-progress", *extra,
    ])  # fmt: skip
    assert code == 0


def _expected_rows(tok, pixel_values: torch.Tensor, shard_size: int, batch_size: int, flip_both: bool):
    """tok.encode on the contract's batches (inside shards; each image then its mirror), flattened row-major."""
    rows = []
    for shard_start in range(0, len(pixel_values), shard_size):
        shard = pixel_values[shard_start : shard_start + shard_size]
        for start in range(0, len(shard), batch_size):
            x = shard[start : start + batch_size]
            if flip_both:
                x = torch.stack([x, x.flip(-1)], dim=1).flatten(0, 1)
            with torch.no_grad():
                indices = tok.encode(x).indices
            rows.append(indices.reshape(len(x), -1))
    return torch.cat(rows)


# ---------------------------------------------------------------------------------------------- end to end
def test_sample_photos_rows_decode_to_exactly_the_tokenizers_own_output(tiny_dir, tmp_path):
    out = tmp_path / "tokens"
    _tokenize(tiny_dir, "samples", out, "--num-samples", "7", "--shard-size", "3", "--batch-size", "2",
              "--flip", "both")  # fmt: skip
    ds = datasets.load_from_disk(str(out))
    assert ds.num_rows == 14
    assert ds["index"] == [i for i in range(7) for _ in range(2)]
    assert ds["flip"] == [False, True] * 7 and set(ds["crop"]) == {"full"}
    assert ds.features["indices"].feature.dtype == "uint8"  # codebook 64
    assert ds.features["indices"].length == 64  # 8×8 grid

    tok = VisTokenizer.from_pretrained(tiny_dir).eval()
    images = build_dataset("samples", "test", image_size=32, num_samples=7)
    pixels = torch.stack([images[i]["pixel_values"] for i in range(7)])
    expected = _expected_rows(tok, pixels, shard_size=3, batch_size=2, flip_both=True)
    stored = torch.tensor(ds["indices"])
    assert torch.equal(stored, expected)

    layout = read_layout(out)
    assert layout == {"layout": "grid", "shape": [8, 8]}
    indices = rows_to_indices(ds[0:6]["indices"], layout)
    with torch.no_grad():
        own = tok.encode(torch.stack([pixels[0], pixels[0].flip(-1), pixels[1], pixels[1].flip(-1), pixels[2],
                                      pixels[2].flip(-1)])).indices  # fmt: skip
        assert torch.equal(tok.decode(indices), tok.decode(own))

    as_arrow = datasets.load_dataset("arrow", data_files=str(out / "shards" / "*.arrow"), split="train")
    assert as_arrow.to_dict() == ds.to_dict()  # the shards alone, in file-name order, are the same dataset

    manifest = read_manifest(out)
    assert manifest["counts"] == {"num_positions": 7, "num_images": 7, "num_skipped": 0, "num_rows": 14}
    assert [s["num_rows"] for s in manifest["shards"]] == [6, 6, 2]
    card = (out / "README.md").read_text()
    for text in (str(tiny_dir), manifest["tokenizer"]["weights_sha256"], "resolution 32 px", "flips: both",
                 "vistok 0.1.0", "8×8 grid", "`uint8`"):  # fmt: skip
        assert text in card, text
    assert not (out / ".vistok").exists()


def test_image_folder_keeps_labels_and_file_names_and_counts_the_corrupt_image(tiny_dir, image_folder, tmp_path):
    out = tmp_path / "pets"
    _tokenize(tiny_dir, image_folder, out, "--split", "train", "--shard-size", "4", "--batch-size", "3")
    ds = datasets.load_from_disk(str(out))
    files = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*.png"))
    readable = [f for f in files if "broken" not in f]
    assert sorted(ds["file_name"]) == readable
    label_names = ds.features["label"].names
    assert [label_names[label] for label in ds["label"]] == [f.split("/")[0] for f in ds["file_name"]]
    manifest = read_manifest(out)
    assert manifest["counts"]["num_skipped"] == 1 and manifest["counts"]["num_images"] == len(readable)

    # the rows are those of the images vistok's evaluation pipeline prepares, in split order, corrupt one left out
    tok = VisTokenizer.from_pretrained(tiny_dir).eval()
    images = build_dataset(str(image_folder), "train", image_size=32)
    samples = [images[i] for i in range(len(images))]
    kept = [s for s in samples if isinstance(s, dict)]  # a SkippedSample stands for the corrupt image
    assert ds["index"] == [s["index"] for s in kept]
    expected = []
    for shard_start in range(0, len(samples), 4):
        for start in range(shard_start, min(shard_start + 4, len(samples)), 3):
            batch = [s["pixel_values"] for s in samples[start : min(start + 3, shard_start + 4)] if isinstance(s, dict)]
            if batch:  # a batch of only the corrupt image yields no rows
                with torch.no_grad():
                    expected.append(tok.encode(torch.stack(batch)).indices.flatten(1))
    assert torch.equal(torch.tensor(ds["indices"]), torch.cat(expected))


def test_a_very_thin_image_is_skipped_counted_and_named(tiny_dir, image_folder, tmp_path, caplog):
    """A 1×250,000 PNG of 2 KB would become 32 × 8,000,000 px: skipped from its header, named; the run and a
    --resume of the folder finish."""
    import shutil

    folder = tmp_path / "pets"
    shutil.copytree(image_folder, folder)
    Image.new("RGB", (1, 250_000), (200, 30, 30)).save(folder / "cat" / "thin.png")
    out = tmp_path / "tokens"
    with caplog.at_level("WARNING", logger="vistok.data.datasets"):
        _tokenize(tiny_dir, folder, out, "--shard-size", "3", split="train")
    assert re.search(r"skipped \S*cat/thin\.png \(sample \d\): The image is 1×250000 pixels, 250,000 times as tall "
                     r"as it is wide.*crop it nearer to a square", caplog.text)  # fmt: skip
    counts = read_manifest(out)["counts"]
    assert counts["num_skipped"] == 2 and counts["num_images"] == 5  # thin.png and broken.png
    _tokenize(tiny_dir, folder, out, "--shard-size", "3", "--resume", split="train")  # complete: nothing to redo


def test_a_stream_writes_the_same_dataset_as_the_map_style_split(tiny_dir, image_folder, tmp_path):
    _tokenize(tiny_dir, image_folder, tmp_path / "map", "--split", "train", "--shard-size", "2", "--batch-size", "2")
    _tokenize(tiny_dir, image_folder, tmp_path / "stream", "--split", "train", "--shard-size", "2", "--batch-size",
              "2", "--streaming")  # fmt: skip
    _tokenize(tiny_dir, image_folder, tmp_path / "workers", "--split", "train", "--shard-size", "2", "--batch-size",
              "2", "--num-workers", "2")  # two DataLoader workers interleave their shards' batches  # fmt: skip
    one = datasets.load_from_disk(str(tmp_path / "map")).to_dict()
    two = datasets.load_from_disk(str(tmp_path / "stream")).to_dict()
    assert one == two == datasets.load_from_disk(str(tmp_path / "workers")).to_dict()
    assert read_manifest(tmp_path / "stream")["counts"] == read_manifest(tmp_path / "map")["counts"]


def test_ten_crop_with_flips_matches_torchvision_ten_crop(tiny_dir, tmp_path):
    from torchvision.transforms.functional import ten_crop

    from vistok.data import pil_to_pixel_values
    from vistok.data.samples import SampleCropsDataset

    out = tmp_path / "ten"
    _tokenize(tiny_dir, "samples", out, "--num-samples", "2", "--ten-crop", "--flip", "both", "--batch-size", "1")
    ds = datasets.load_from_disk(str(out))
    assert ds.num_rows == 20
    names = ["top_left", "top_right", "bottom_left", "bottom_right", "center"]
    assert ds["crop"][:10] == names * 2 and ds["flip"][:10] == [False] * 5 + [True] * 5

    tok = VisTokenizer.from_pretrained(tiny_dir).eval()
    source = SampleCropsDataset("test", image_size=35)  # LlamaGen: int(1.1 · 32)
    for image in range(2):
        crops = ten_crop(source.crop(image), 32)  # five crops, then five crops of the mirror image
        x = torch.stack([pil_to_pixel_values(c) for c in crops])
        with torch.no_grad():
            expected = tok.encode(x).indices.flatten(1)
        assert torch.equal(torch.tensor(ds["indices"][10 * image : 10 * image + 10]), expected)


@pytest.mark.parametrize("kind", ["sequence", "multiscale"])
def test_sequence_and_multiscale_tokens_round_trip(kind, tmp_path):
    torch.manual_seed(0)
    tok = tiny_tokenizer("vq", "titok") if kind == "sequence" else tiny_tokenizer("multiscale_vq", "simple_cnn")
    tok.eval().save_pretrained(tmp_path / "tok")
    size = tok.config.image_size
    result = tokenize_dataset(str(tmp_path / "tok"), "samples", tmp_path / "out", split="test", num_samples=3,
                              shard_size=2, batch_size=2)  # fmt: skip
    assert result["token_layout"]["layout"] == kind
    ds = datasets.load_from_disk(str(tmp_path / "out"))
    images = build_dataset("samples", "test", image_size=size, num_samples=3)
    pixels = torch.stack([images[i]["pixel_values"] for i in range(3)])
    with torch.no_grad():
        own = [tok.encode(pixels[:2]).indices, tok.encode(pixels[2:]).indices]
        restored = [rows_to_indices(ds[0:2]["indices"], read_layout(tmp_path / "out")),
                    rows_to_indices(ds[2:3]["indices"], read_layout(tmp_path / "out"))]  # fmt: skip
        for got, want in zip(restored, own, strict=True):
            if kind == "sequence":
                assert got.shape == want.shape == (len(want), tok.token_layout.length)
                assert torch.equal(got, want)
            else:
                assert [g.shape for g in got] == [w.shape for w in want]
                assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
            assert torch.equal(tok.decode(got), tok.decode(want))


# ---------------------------------------------------------------------------------------- several processes
def test_two_processes_write_the_same_dataset_as_one(tiny_dir, tmp_path):
    common = ["--num-samples", "9", "--shard-size", "2", "--batch-size", "2", "--flip", "both"]
    _tokenize(tiny_dir, "samples", tmp_path / "one", *common)
    args = ["--model", str(tiny_dir), "--dataset", "samples", "--split", "test", *common, "--num-workers", "1",
            "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "vistok.tokenize", *args, "--device", "cpu", "--output", str(tmp_path / "two"),
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stderr.count("Wrote 18 rows") == 1  # the main process reports once
    one, two = (datasets.load_from_disk(str(tmp_path / name)) for name in ("one", "two"))
    assert two.to_dict() == one.to_dict()
    shards = read_manifest(tmp_path / "two")["shards"]
    assert [s["sha256"] for s in shards] == [s["sha256"] for s in read_manifest(tmp_path / "one")["shards"]]


_KILLED_RUN = """
import os, signal, sys
import vistok.tokenize.store as store
real, arrows = store.atomic_write_bytes, []
def dying(path, data):
    if path.suffix == ".arrow":
        arrows.append(path)
        if len(arrows) == 3:  # half of the third shard's file is on disk when the process is killed
            path.with_name(f".{path.name}.tmp-{os.getpid()}").write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    real(path, data)
store.atomic_write_bytes = dying
from vistok.tokenize.command import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_run_resumes_to_the_uninterrupted_result(tiny_dir, tmp_path):
    args = ["--dataset", "samples", "--split", "test", "--num-samples", "11", "--shard-size", "2", "--batch-size",
            "2", "--flip", "both"]  # fmt: skip
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-c", _KILLED_RUN, "--model", str(tiny_dir), *args, "--output", str(out),
               "--num-workers", "0", "--no-progress", "--device", "cpu"]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == -signal.SIGKILL, completed.stderr[-3000:]
    written = sorted(p.name for p in (out / "shards").glob("shard-*.arrow"))
    assert written == ["shard-000000.arrow", "shard-000001.arrow"]
    with pytest.raises(FileNotFoundError):  # a half-written dataset never looks complete
        datasets.load_from_disk(str(out))
    with pytest.raises(SystemExit, match="add --resume"):
        _tokenize(tiny_dir, "samples", out, *args[2:])
    before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("shard-*.arrow")}

    _tokenize(tiny_dir, "samples", out, *args[2:], "--resume")
    _tokenize(tiny_dir, "samples", tmp_path / "straight", *args[2:])
    resumed = datasets.load_from_disk(str(out)).to_dict()
    assert resumed == datasets.load_from_disk(str(tmp_path / "straight")).to_dict()
    pairs = list(zip(resumed["index"], resumed["flip"], strict=True))
    assert sorted(pairs) == [(i, f) for i in range(11) for f in (False, True)]  # each once, none missing
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("shard-00000[01].arrow")} == before
    assert not list((out / "shards").glob(".*"))  # the partial file is gone
    assert read_manifest(out)["counts"]["num_rows"] == 22


def test_ctrl_c_prints_one_line_with_the_resume_command_and_exits_130(tiny_dir, tmp_path):
    """SIGINT, as Ctrl-C sends it, to `python -m vistok.tokenize` once its first shard is on disk: no traceback, one
    line naming the shards kept and the exact command that finishes the run, exit status 130; that command does."""
    import shlex
    import time

    args = ["--dataset", "samples", "--split", "test", "--num-samples", "200", "--shard-size", "2",
            "--batch-size", "2"]  # fmt: skip
    out = tmp_path / "interrupted"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "vistok.tokenize", "--model", str(tiny_dir), *args, "--output", str(out),
               "--num-workers", "0", "--no-progress", "--device", "cpu"]  # fmt: skip
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (out / ".vistok" / "shard-000000.json").exists() and child.poll() is None:  # shard 0 is finished
        assert time.monotonic() < deadline, "the first shard never appeared"
        time.sleep(0.005)
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    interrupted = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(interrupted) == 1 and interrupted[0] == stderr.rstrip().splitlines()[-1]
    kept = len(list((out / "shards").glob("shard-*.arrow")))
    assert 1 <= kept < 100  # stopped part-way
    match = re.fullmatch(r"vistok tokenize: interrupted; (\d+) finished shard\(s\) are kept in (.+): finish the run "
                         r"with `(vistok tokenize .*)`", interrupted[0])  # fmt: skip
    assert match and int(match.group(1)) >= 1 and match.group(2) == str(out), interrupted[0]
    words = shlex.split(match.group(3))
    assert "--resume" in words and words[:2] == ["vistok", "tokenize"]
    assert vistok_main(words[1:]) == 0  # the command as printed finishes the run
    _tokenize(tiny_dir, "samples", tmp_path / "straight", *args[2:])
    assert datasets.load_from_disk(str(out)).to_dict() == datasets.load_from_disk(str(tmp_path / "straight")).to_dict()


# ------------------------------------------------------------------------------------------------ bad input
def test_existing_outputs_are_never_replaced_silently(tiny_dir, tmp_path):
    out = tmp_path / "tokens"
    _tokenize(tiny_dir, "samples", out, "--num-samples", "2")
    first = read_manifest(out)
    with pytest.raises(SystemExit, match="already holds a complete token dataset.*--resume.*--overwrite"):
        _tokenize(tiny_dir, "samples", out, "--num-samples", "2")
    _tokenize(tiny_dir, "samples", out, "--num-samples", "2", "--resume")  # complete: nothing to do
    assert read_manifest(out) == first

    other = tmp_path / "other"
    torch.manual_seed(1)
    VisTokenizer(VisTokenizer.from_pretrained(tiny_dir).config).save_pretrained(other)
    with pytest.raises(SystemExit, match="different tokenizer, settings or split content.*tokenizer_weights_sha256"):
        _tokenize(other, "samples", out, "--num-samples", "2", "--resume")
    with pytest.raises(SystemExit, match="different tokenizer, settings or split content.*flip"):
        _tokenize(tiny_dir, "samples", out, "--num-samples", "2", "--flip", "both", "--resume")
    _tokenize(other, "samples", out, "--num-samples", "2", "--overwrite")
    assert read_manifest(out)["tokenizer"]["name"] == str(other)

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not a token dataset written by `vistok tokenize`"):
        _tokenize(tiny_dir, "samples", foreign, "--num-samples", "2", "--overwrite")
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("options", "flags", "message"),
    [
        ({"--dataset": "./no/such/folder"}, [], "does not exist. Accepted datasets"),
        ({"--dataset": "sampels"}, [], "not one of vistok's dataset names.*did you mean 'samples'\\?"),
        ({"--output": "{file}/sub"}, [], "cannot write to --output"),
        ({}, ["--resume"], "holds no run to resume"),
        ({}, ["--resume", "--overwrite"], "contradict"),
        ({"--image-size": "18"}, [], "not a multiple of the tokenizer's downsample factor 4"),
        ({"--columns": "label"}, [], "'samples' crops have no columns"),
        ({"--image-column": "img"}, [], "'samples'.*has no columns: image_column='img'"),
        ({}, ["--streaming"], "'samples'.*cannot be streamed.*drop --streaming"),
        ({"--batch-size": "0"}, [], "--batch-size must be a positive integer"),
        ({"--model": "{preset}"}, [], "is a (vistok )?preset"),
        ({"--model": "./missing-model"}, [], "missing-model"),
    ],
)
def test_bad_inputs_get_a_message_and_leave_no_dataset(tiny_dir, tmp_path, options, flags, message):
    from vistok import PRESETS

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = {"--model": str(tiny_dir), "--dataset": "samples", "--output": str(tmp_path / "out"),
            "--split": "test", "--num-samples": "2", "--num-workers": "0"}  # fmt: skip
    args.update({k: v.format(file=blocker, preset=PRESETS.names()[0]) for k, v in options.items()})
    with pytest.raises(SystemExit, match=message):
        vistok_main(["tokenize", *[x for kv in args.items() for x in kv], "--no-progress", *flags])
    assert not (tmp_path / "out" / "state.json").exists()


def test_column_and_image_size_errors_name_the_choices(tiny_dir, image_folder, tmp_path):
    with pytest.raises(SystemExit, match=r"'species' is not a column.*columns: \['image', 'label'\]"):
        _tokenize(tiny_dir, image_folder, tmp_path / "a", "--split", "train", "--columns", "species")
    torch.manual_seed(0)
    tiny_tokenizer("vq", "titok").save_pretrained(tmp_path / "titok")
    with pytest.raises(SystemExit, match="--image-size must be 16"):
        _tokenize(tmp_path / "titok", "samples", tmp_path / "b", "--image-size", "32")


def test_push_to_hub_without_network_keeps_the_dataset_and_says_how_to_upload(tiny_dir, tmp_path,
                                                                             hub_reachable_but_watched):
    """Name resolution fails as without network (the real client and transport): one message, dataset kept."""
    out = tmp_path / "tokens"
    with pytest.raises(SystemExit, match=r"Hub is unreachable \(.*no network in this test.*complete in .*"
                       r"`hf upload me/tokens .*tokens --repo-type dataset`"):
        _tokenize(tiny_dir, "samples", out, "--num-samples", "2", "--push-to-hub", "me/tokens")
    assert datasets.load_from_disk(str(out)).num_rows == 2
    assert hub_reachable_but_watched  # the upload was really attempted


def test_push_to_hub_offline_explains_how_to_upload_later(tiny_dir, tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "tokens"
    with pytest.raises(SystemExit, match=r"unreachable.*complete in .*hf upload me/tokens .* --repo-type dataset"):
        _tokenize(tiny_dir, "samples", out, "--num-samples", "2", "--push-to-hub", "me/tokens")
    assert datasets.load_from_disk(str(out)).num_rows == 2  # the dataset itself is finished
    # asking again for the finished dataset uploads it (or says why it cannot), never ignores --push-to-hub
    with pytest.raises(SystemExit, match=r"unreachable.*complete in .*hf upload me/tokens"):
        _tokenize(tiny_dir, "samples", out, "--num-samples", "2", "--resume", "--push-to-hub", "me/tokens")
    uploads = []
    monkeypatch.setattr("vistok.tokenize.api.push_dataset_to_hub", lambda folder, repo: uploads.append((folder, repo)))
    _tokenize(tiny_dir, "samples", out, "--num-samples", "2", "--resume", "--push-to-hub", "me/tokens")
    assert uploads == [(out, "me/tokens")]


# ------------------------------------------------------------------------------------------------- helpers
def test_storage_dtype_is_the_smallest_that_holds_every_id():
    for size in (2, 255, 256, 257, 16_384, 65_536, 65_537, 262_144, 2**32, 2**32 + 1):
        name = token_storage_dtype(size)
        fits = [t for t in ("uint8", "uint16", "uint32", "int64") if np.iinfo(t).max >= size - 1]
        assert name == fits[0], size
    with pytest.raises(ValueError, match="positive int"):
        token_storage_dtype(0)


@pytest.mark.parametrize(
    ("layout", "latent_hw"),
    [(GridLayout(), (3, 5)), (SequenceLayout(7), (1, 7)), (MultiScaleLayout((1, 2, 4)), (4, 4))],
)
def test_rows_to_indices_inverts_the_layouts_flatten(layout, latent_hw):
    g = torch.Generator().manual_seed(0)
    if isinstance(layout, MultiScaleLayout):
        indices = [torch.randint(0, 100, (2, p, p), generator=g) for p in layout.patch_nums]
    else:
        indices = torch.randint(0, 100, (2, *latent_hw) if layout.kind == "grid" else (2, layout.length), generator=g)
    rows = layout.flatten(indices).numpy().astype(np.uint16)
    back = rows_to_indices(rows.tolist(), layout.spec(latent_hw))
    if isinstance(indices, list):
        assert all(torch.equal(b, i) and b.dtype == torch.int64 for b, i in zip(back, indices, strict=True))
    else:
        assert torch.equal(back, indices) and back.dtype == torch.int64
    single = rows_to_indices(rows[0], layout.spec(latent_hw))  # one row → a batch of one
    assert (single[0] if isinstance(single, list) else single).shape[0] == 1
    with pytest.raises(ValueError, match=f"N = {rows.shape[1]} tokens"):
        rows_to_indices(rows[:, :-1], layout.spec(latent_hw))


def test_manifest_records_layout_dtype_and_preprocessing(tiny_dir, tmp_path):
    _tokenize(tiny_dir, "samples", tmp_path / "t", "--num-samples", "1", "--image-size", "48")
    manifest = json.loads((tmp_path / "t" / "vistok_tokens.json").read_text())
    assert manifest["token_layout"] == {"layout": "grid", "shape": [12, 12]}  # 48 px / 4
    assert manifest["preprocessing"]["image_size"] == 48 and manifest["token_dtype"] == "uint8"
    assert manifest["tokenizer"]["config"]["quantizer"]["codebook_size"] == 64


@pytest.mark.filterwarnings("ignore:bf16 inference on a CPU without native bfloat16")
def test_bf16_and_compile_options_reach_the_encoder(tiny_dir, tmp_path, monkeypatch):
    from vistok.inference import fast_inference

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: compiled.append(fn.__name__) or fn)
    _tokenize(tiny_dir, "samples", tmp_path / "t", "--num-samples", "3", "--dtype", "bf16", "--compile")
    manifest = read_manifest(tmp_path / "t")
    assert manifest["inference"] == {"dtype": "bf16", "compile": True} and manifest["identity"]["dtype"] == "bf16"
    assert compiled == ["_encode_latent", "_decode_codes"]
    tok = VisTokenizer.from_pretrained(tiny_dir).eval()
    images = build_dataset("samples", "test", image_size=32, num_samples=3)
    x = torch.stack([images[i]["pixel_values"] for i in range(3)])
    expected = fast_inference(tok, "bf16").encode(x).flatten(1)
    assert torch.equal(torch.tensor(datasets.load_from_disk(str(tmp_path / "t"))["indices"]), expected)


# ------------------------------------------------------------------------------------- unfinished folders
def _unfinished_run(tiny_dir, dataset, out, *extra, split="test"):
    """A run that tokenized every shard and stopped before the merge, as a crash there leaves it."""
    from vistok.tokenize.store import TokenStore

    class Crash(BaseException):
        """Not an error vistok turns into a message (as it does Ctrl-C): the process simply stops here."""

    def crash(self, *args, **kwargs):
        raise Crash

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TokenStore, "finalize", crash)
        with pytest.raises(Crash):
            _tokenize(tiny_dir, dataset, out, *extra, split=split)
    assert list((out / "shards").glob("shard-*.arrow")) and not (out / "state.json").exists()


def test_a_second_run_into_a_folder_in_use_is_refused_and_changes_nothing(tiny_dir, tmp_path):
    from vistok.tokenize.store import TokenStore

    args = ["--num-samples", "5", "--shard-size", "2"]
    out = tmp_path / "busy"
    _unfinished_run(tiny_dir, "samples", out, *args)
    running = TokenStore(out)
    running.prepare("resume", {})  # another run holds the folder from here on
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file())
    for flag in ("--resume", "--overwrite"):
        with pytest.raises(SystemExit, match=rf"another `vistok tokenize` run \(pid {os.getpid()} on .*\) is writing"):
            _tokenize(tiny_dir, "samples", out, *args, flag)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()) == before
    running.release()  # that run ended (a killed process drops its lock the same way)
    _tokenize(tiny_dir, "samples", out, *args, "--resume")
    _tokenize(tiny_dir, "samples", tmp_path / "straight", *args)
    assert datasets.load_from_disk(str(out)).to_dict() == datasets.load_from_disk(str(tmp_path / "straight")).to_dict()


def test_resume_redoes_a_damaged_shard(tiny_dir, tmp_path):
    args = ["--num-samples", "6", "--shard-size", "2"]
    out = tmp_path / "damaged"
    _unfinished_run(tiny_dir, "samples", out, *args)
    shard = out / "shards" / "shard-000001.arrow"
    data = bytearray(shard.read_bytes())
    data[-40] ^= 0xFF  # same size, one byte flipped inside the token values
    shard.write_bytes(bytes(data))
    _tokenize(tiny_dir, "samples", out, *args, "--resume")
    _tokenize(tiny_dir, "samples", tmp_path / "straight", *args)
    assert shard.read_bytes() == (tmp_path / "straight" / "shards" / shard.name).read_bytes()
    assert datasets.load_from_disk(str(out)).to_dict() == datasets.load_from_disk(str(tmp_path / "straight")).to_dict()


def test_a_split_that_changed_since_the_crash_is_not_resumed_into(tiny_dir, image_folder, tmp_path):
    import shutil

    folder = tmp_path / "pets"
    shutil.copytree(image_folder, folder)
    out = tmp_path / "tokens"
    _unfinished_run(tiny_dir, folder, out, "--shard-size", "2", split="train")
    Image.new("RGB", (40, 40), (10, 200, 30)).save(folder / "cat" / "cat9.png")
    with pytest.raises(SystemExit, match="different tokenizer, settings or split content.*num_images: 6 there, 7 now"):
        _tokenize(tiny_dir, folder, out, "--shard-size", "2", "--resume", split="train")
    with pytest.raises(FileNotFoundError):
        datasets.load_from_disk(str(out))


def test_a_folder_whose_images_were_replaced_is_not_resumed_into(tiny_dir, image_folder, tmp_path):
    """Same file names, same count, other pictures: the old shards are not kept beside rows of the new images."""
    import shutil

    folder = tmp_path / "pets"
    shutil.copytree(image_folder, folder)
    out = tmp_path / "tokens"
    _unfinished_run(tiny_dir, folder, out, "--shard-size", "2", split="train")
    rng = np.random.default_rng(1)
    for path in sorted(folder.rglob("*.png")):
        if path.name != "broken.png":
            with Image.open(path) as image:
                width, height = image.size
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    with pytest.raises(SystemExit, match=r"split_content: '6 files, sha256 .*' there, '6 files, sha256 .*' now"):
        _tokenize(tiny_dir, folder, out, "--shard-size", "2", "--resume", split="train")
    _tokenize(tiny_dir, folder, out, "--shard-size", "2", "--overwrite", split="train")
    _tokenize(tiny_dir, folder, tmp_path / "fresh", "--shard-size", "2", split="train")
    assert datasets.load_from_disk(str(out)).to_dict() == datasets.load_from_disk(str(tmp_path / "fresh")).to_dict()


def test_resume_with_the_same_weights_and_another_bit_order_is_refused(tmp_path):
    """LFQ's bit order changes every token and no weight: the config is part of what the folder's tokens are."""
    from vistok.tokenize.runner import weights_sha256

    torch.manual_seed(0)
    msb = tiny_tokenizer("lfq").eval()
    lsb = tiny_tokenizer("lfq", bit_order="lsb_first").eval()
    lsb.load_state_dict(msb.state_dict())
    assert weights_sha256(lsb) == weights_sha256(msb)
    x = build_dataset("samples", "test", image_size=msb.config.image_size, num_samples=1)[0]["pixel_values"][None]
    with torch.no_grad():
        assert not torch.equal(msb.encode(x).indices, lsb.encode(x).indices)
    msb.save_pretrained(tmp_path / "msb")
    lsb.save_pretrained(tmp_path / "lsb")
    out = tmp_path / "tokens"
    args = ["--num-samples", "4", "--shard-size", "2"]
    _unfinished_run(tmp_path / "msb", "samples", out, *args)
    with pytest.raises(SystemExit, match="different tokenizer, settings or split content.*tokenizer_config_sha256"):
        _tokenize(tmp_path / "lsb", "samples", out, *args, "--resume")
    _tokenize(tmp_path / "msb", "samples", out, *args, "--resume")  # the same tokenizer finishes it
    assert read_manifest(out)["tokenizer"]["config"]["quantizer"]["bit_order"] == "msb_first"


def test_resume_of_a_complete_folder_checks_its_shards_and_redoes_a_damaged_one(tiny_dir, tmp_path):
    args = ["--num-samples", "6", "--shard-size", "2"]
    out = tmp_path / "tokens"
    _tokenize(tiny_dir, "samples", out, *args)
    before = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*"))
    with pytest.raises(SystemExit, match="already holds a complete token dataset"):
        _tokenize(tiny_dir, "samples", out, *args)
    _tokenize(tiny_dir, "samples", out, *args, "--resume")  # intact: nothing is rewritten, nothing is left behind
    assert sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*")) == before

    shard = out / "shards" / "shard-000001.arrow"
    data = bytearray(shard.read_bytes())
    data[-40] ^= 0xFF  # same size, one byte flipped inside the token values
    shard.write_bytes(bytes(data))
    _tokenize(tiny_dir, "samples", out, *args, "--resume")
    _tokenize(tiny_dir, "samples", tmp_path / "straight", *args)
    assert shard.read_bytes() == (tmp_path / "straight" / "shards" / shard.name).read_bytes()
    assert datasets.load_from_disk(str(out)).to_dict() == datasets.load_from_disk(str(tmp_path / "straight")).to_dict()
    assert read_manifest(out)["shards"] == read_manifest(tmp_path / "straight")["shards"]
    assert not (out / ".vistok").exists()


_HOLD_THE_FOLDER = (
    "import sys\n"
    "from vistok.tokenize.store import TokenStore\n"
    "store = TokenStore(sys.argv[1])\n"
    "store.acquire()\n"
    "print('holding', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_a_run_is_refused_while_another_process_holds_the_folder(tiny_dir, tmp_path):
    """Whatever the folder holds and whatever is asked, a run never decides about a folder another process holds;
    the holder's lock goes away with it, however it ends."""
    out = tmp_path / "tokens"
    args = ["--num-samples", "2"]
    _tokenize(tiny_dir, "samples", out, *args)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_THE_FOLDER, str(out)], cwd=REPO_ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "holding"
        before = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*")
                        if p.is_file() and ".vistok" not in p.parts)  # fmt: skip
        for flags in ([], ["--resume"], ["--overwrite"]):
            with pytest.raises(SystemExit, match=rf"another `vistok tokenize` run \(pid {holder.pid} on .*\) is writing"):
                _tokenize(tiny_dir, "samples", out, *args, *flags)
        after = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*")
                       if p.is_file() and ".vistok" not in p.parts)  # fmt: skip
        assert after == before
    finally:
        holder.kill()  # SIGKILL: the holder cannot clean up; the operating system drops its lock
        holder.wait(timeout=60)
    _tokenize(tiny_dir, "samples", out, *args, "--overwrite")
    assert datasets.load_from_disk(str(out)).num_rows == 2 and not (out / ".vistok").exists()


_KILLED_IN_FINALIZE = """
import os, signal, sys
import vistok.tokenize.store as store
real = store.atomic_write_bytes
def dying(path, data):
    real(path, data)
    if path.name == "state.json":  # the folder is complete; the progress files are not removed yet
        os.kill(os.getpid(), signal.SIGKILL)
store.atomic_write_bytes = dying
from vistok.tokenize.command import main
sys.exit(main(sys.argv[1:]))
"""


def _killed_in_finalize(tiny_dir, out, args) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-c", _KILLED_IN_FINALIZE, "--model", str(tiny_dir), "--dataset", "samples", "--split",
               "test", *args, "--output", str(out), "--num-workers", "0", "--no-progress", "--device", "cpu"]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == -signal.SIGKILL, completed.stderr[-3000:]
    assert (out / "state.json").is_file() and (out / ".vistok" / "job.json").is_file()  # as the kill left it


@pytest.mark.parametrize("flags", [[], ["--resume"]], ids=["plain-run", "resume"])
def test_progress_files_left_by_a_kill_in_finalize_are_removed_by_the_next_run(tiny_dir, tmp_path, flags):
    args = ["--num-samples", "4", "--shard-size", "2"]
    out = tmp_path / "tokens"
    _killed_in_finalize(tiny_dir, out, args)
    assert datasets.load_from_disk(str(out)).num_rows == 4  # complete despite the kill
    if flags:
        _tokenize(tiny_dir, "samples", out, *args, *flags)
    else:
        with pytest.raises(SystemExit, match="already holds a complete token dataset"):
            _tokenize(tiny_dir, "samples", out, *args)
    assert not (out / ".vistok").exists()
    assert datasets.load_from_disk(str(out)).num_rows == 4


def test_verify_names_a_damaged_shard_and_the_command_that_redoes_it(tiny_dir, tmp_path, capsys):
    import shlex

    args = ["--num-samples", "6", "--shard-size", "2", "--flip", "both"]
    out = tmp_path / "tokens"
    _tokenize(tiny_dir, "samples", out, *args)
    capsys.readouterr()
    assert vistok_main(["tokenize", "--verify", str(out)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{out}: intact — 3 shard(s) match the sha256 recorded in the manifest, and datasets.load_from_disk reads "
        "its 12 rows."
    )
    shard = out / "shards" / "shard-000001.arrow"
    intact = shard.read_bytes()
    data = bytearray(intact)
    data[-40] ^= 0xFF  # same size, one byte flipped inside the token values: loading does not notice
    shard.write_bytes(bytes(data))
    assert datasets.load_from_disk(str(out)).num_rows == 12
    assert vistok_main(["tokenize", "--verify", str(out)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == (f"vistok tokenize --verify: {shard} is damaged: its sha256 differs from the one recorded in "
                        "vistok_tokens.json")  # fmt: skip
    command = re.fullmatch(r"vistok tokenize --verify: redo it with `(.*)` \(only damaged shards are tokenized "
                           r"again\)", lines[1]).group(1)  # fmt: skip
    assert vistok_main(shlex.split(command)[1:]) == 0  # the printed command repairs the folder
    assert shard.read_bytes() == intact
    assert vistok_main(["tokenize", "--verify", str(out)]) == 0

    (out / "shards" / "shard-000002.arrow").unlink()
    assert vistok_main(["tokenize", "--verify", str(out)]) == 1
    assert f"{out / 'shards' / 'shard-000002.arrow'} is missing" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--verify checks the folder it names and takes no --model"):
        vistok_main(["tokenize", "--verify", str(out), "--model", str(tiny_dir)])
    with pytest.raises(SystemExit, match="required: --model, --dataset, --output"):
        vistok_main(["tokenize"])


def test_verify_command_for_an_image_folder_continues_its_run(tiny_dir, image_folder, tmp_path, capsys):
    """The printed command carries what decides the run (columns, image column, split, size…): --resume accepts it."""
    import shlex

    out = tmp_path / "tokens"
    _tokenize(tiny_dir, image_folder, out, "--shard-size", "2", "--image-size", "24", split="validation")
    shard = out / "shards" / "shard-000000.arrow"
    intact = shard.read_bytes()
    shard.write_bytes(intact[:-8] + bytes(8))
    assert vistok_main(["tokenize", "--verify", str(out)]) == 1
    command = re.search(r"redo it with `(.*)`", capsys.readouterr().err).group(1)
    assert "--columns label,file_name" in command and "--split validation" in command
    assert vistok_main(shlex.split(command)[1:]) == 0
    assert shard.read_bytes() == intact


def test_verify_of_an_unfinished_run_says_to_resume_it(tiny_dir, tmp_path):
    out = tmp_path / "tokens"
    _unfinished_run(tiny_dir, "samples", out, "--num-samples", "4", "--shard-size", "2")
    with pytest.raises(SystemExit, match="is an unfinished `vistok tokenize` run.*with --resume"):
        vistok_main(["tokenize", "--verify", str(out)])
    with pytest.raises(SystemExit, match="holds no token dataset written by `vistok tokenize`"):
        vistok_main(["tokenize", "--verify", str(tmp_path)])


def test_finalize_refuses_shards_that_do_not_cover_their_positions(tmp_path):
    import pyarrow as pa

    from vistok.tokenize.source import ShardPlan
    from vistok.tokenize.store import IncompleteOutputError, TokenStore

    store = TokenStore(tmp_path / "t")
    store.prepare("start", {"identity": {}})
    features = datasets.Features({"index": datasets.Value("int64")})
    store.write_shard(0, pa.table({"index": [0, 1]}), {"positions": [0, 2], "num_images": 2, "num_skipped": 0})
    store.write_shard(1, pa.table({"index": [2]}), {"positions": [2, 3], "num_images": 1, "num_skipped": 0})
    with pytest.raises(IncompleteOutputError, match=r"shard 1 holds positions \[2, 3\].*not \[2, 4\)"):
        store.finalize(ShardPlan(2, 4), features, {}, "", "")
    assert not (tmp_path / "t" / "state.json").exists()
    manifest = store.finalize(ShardPlan(2, 3), features, {}, "", "")
    assert [s["positions"] for s in manifest["shards"]] == [[0, 2], [2, 3]]


def test_nothing_readable_is_not_a_finished_dataset(tiny_dir, image_folder, tmp_path):
    broken = tmp_path / "broken"
    (broken / "x").mkdir(parents=True)
    for k in range(3):
        (broken / "x" / f"b{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    out = tmp_path / "tokens"
    with pytest.raises(SystemExit, match=r"none of the 3 images .* could be read .* left unfinished"):
        _tokenize(tiny_dir, broken, out, split="train")
    with pytest.raises(FileNotFoundError):
        datasets.load_from_disk(str(out))
    with pytest.raises(SystemExit, match=r"image_column 'label' .* is a ClassLabel column .*not images"):
        _tokenize(tiny_dir, image_folder, tmp_path / "labels", "--image-column", "label", split="train")


def test_the_split_actually_read_is_recorded(tiny_dir, image_folder, tmp_path):
    out = tmp_path / "tokens"
    _tokenize(tiny_dir, image_folder, out, split="validation")  # a plain folder has one split: train
    dataset = read_manifest(out)["dataset"]
    assert (dataset["split"], dataset["split_requested"]) == ("train", "validation")
    card = (out / "README.md").read_text()
    assert "# Tokens of " in card and "[train]" in card and "asked for `validation`" in card


def test_a_main_process_that_stops_stops_every_process(tiny_dir, tmp_path):
    """The main process refuses the folder (another run holds it): the other process exits too, with the reason,
    instead of waiting forever at the next barrier."""
    from vistok.tokenize.store import TokenStore

    args = ["--num-samples", "5", "--shard-size", "2"]
    out = tmp_path / "busy"
    _unfinished_run(tiny_dir, "samples", out, *args)
    running = TokenStore(out)
    running.prepare("resume", {})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "vistok.tokenize", "--model", str(tiny_dir), "--dataset", "samples", "--split", "test", *args,
        "--num-workers", "0", "--no-progress", "--device", "cpu", "--output", str(out), "--resume",
    ]  # fmt: skip
    try:
        completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        running.release()
    assert completed.returncode != 0
    assert "another `vistok tokenize` run" in completed.stderr
    assert "the main process stopped: OutputError: another `vistok tokenize` run" in completed.stderr


def test_overwrite_replaces_the_run_and_keeps_files_the_user_added(tiny_dir, tmp_path):
    """--overwrite of a finished token folder removes what the earlier run wrote, not the user's notes (issue 26.2)."""
    out = tmp_path / "tokens"
    _tokenize(tiny_dir, "samples", out, "--num-samples", "3", "--shard-size", "2")
    (out / "notes.txt").write_text("my notes")
    (out / "analysis").mkdir()
    (out / "analysis" / "plot.png").write_bytes(b"\x89PNG")
    (out / "shards" / "keep-me.txt").write_text("mine too")
    _tokenize(tiny_dir, "samples", out, "--num-samples", "2", "--shard-size", "2", "--overwrite")
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "analysis" / "plot.png").read_bytes() == b"\x89PNG"
    assert (out / "shards" / "keep-me.txt").read_text() == "mine too"
    assert datasets.load_from_disk(str(out)).num_rows == 2
    assert sorted(p.name for p in (out / "shards").glob("shard-*")) == ["shard-000000.arrow"]


def test_verify_command_carries_model_ids_and_generic_preprocessing(tiny_dir, image_folder, tmp_path, capsys):
    """A run made with --model-ids, or --preprocessing generic by a tokenizer that records an upstream pipeline,
    is redone by the printed command (both are part of the run's identity, so --resume refuses a command without)."""
    import shlex

    from vistok.preprocessing import Preprocessing

    tok = VisTokenizer.from_pretrained(tiny_dir)
    tok.config.metadata = {**(tok.config.metadata or {}),
                           "model_ids": {"kind": "offset", "offset": 1000, "model": "a test model"},
                           "preprocessing": Preprocessing(32, filter="bilinear").to_dict()}  # fmt: skip
    tok.save_pretrained(tmp_path / "with-records")
    out = tmp_path / "tokens"
    _tokenize(tmp_path / "with-records", image_folder, out, "--shard-size", "2", "--model-ids",
              "--preprocessing", "generic")  # fmt: skip
    shard = out / "shards" / "shard-000000.arrow"
    intact = shard.read_bytes()
    shard.write_bytes(intact[:-8] + bytes(8))
    assert vistok_main(["tokenize", "--verify", str(out)]) == 1
    command = re.search(r"redo it with `(.*)`", capsys.readouterr().err).group(1)
    assert "--model-ids" in command and "--preprocessing generic" in command
    assert vistok_main(shlex.split(command)[1:]) == 0
    assert shard.read_bytes() == intact

"""The `vistok` command line: a fast top-level help, verbatim command descriptions, and `vistok reconstruct`."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import vistok_cli
from vistok import VisTokenizer, VisTokenizerImageProcessor
from vistok.cli import COMMANDS, build_command_parser, main
from vistok.commands.reconstruct import reconstruct_image
from vistok.data.preparation import prepare_image

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_top_level_help_imports_no_heavy_module():
    """`vistok --help` must not import torch / transformers / vistok (seconds each). Checked in a fresh process
    through the console script's entry point as pyproject.toml declares it, by what is in sys.modules afterwards
    (not by a wall-clock time, which a loaded machine would make flaky)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["vistok"].split(":")
    code = (
        "import contextlib, importlib, io, json, sys\n"
        f"entry = getattr(importlib.import_module({module!r}), {function!r})\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    status = entry(['--help'])\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'vistok', 'numpy', 'PIL') if m in sys.modules)\n"
        "print(json.dumps({'status': status, 'heavy': heavy, 'help': out.getvalue()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout)
    assert report["status"] == 0
    assert report["heavy"] == []
    for name in vistok_cli.COMMANDS:
        assert name in report["help"]


@pytest.mark.parametrize("name", list(vistok_cli.COMMANDS))
def test_command_summary_is_the_module_docstring_first_line(name):
    command = vistok_cli.COMMANDS[name]
    doc = importlib.import_module(command.module).__doc__
    assert command.summary == doc.strip().splitlines()[0]


@pytest.mark.parametrize("name", list(vistok_cli.COMMANDS))
def test_command_help_keeps_the_docstring_lines(name, capsys):
    """Every line of the command's docstring (examples included) is a line of its --help, not reflowed."""
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    help_lines = {line.rstrip() for line in capsys.readouterr().out.splitlines()}
    doc = importlib.import_module(vistok_cli.COMMANDS[name].module).__doc__.strip()
    for line in doc.splitlines():
        assert line.rstrip() in help_lines


def test_evaluate_help_prints_one_example_per_line(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    examples = [line for line in out.splitlines() if line.lstrip().startswith("vistok evaluate --model")]
    assert len(examples) == 3  # as the module docstring writes them
    assert all(line.count("vistok evaluate") == 1 for line in examples)


def test_unknown_command_is_an_error_naming_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reconstrct"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown command 'reconstrct'" in err and "reconstruct" in err


def test_no_arguments_prints_the_command_list(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in vistok_cli.COMMANDS:
        assert name in out


# ---------------------------------------------------------------------------------------- vistok reconstruct
def _write_photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A smooth gradient plus noise: something between flat (PSNR inf) and pure noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _printed_psnr(line: str) -> float:
    return float(re.search(r"PSNR (\S+) dB", line).group(1))


def test_reconstruct_psnr_is_psnr_of_the_rounded_images(tmp_path, capsys):
    """The PSNR `vistok reconstruct` prints is that of the saved uint8 reconstruction against the uint8 crop,
    computed here with scikit-image; the function behind it agrees to float64 precision."""
    photo = _write_photo(tmp_path / "photo.png", 90, 70)
    out_dir = tmp_path / "out"
    assert main(["reconstruct", str(photo), "--image-size", "32", "--output-dir", str(out_dir)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if "PSNR" in line]
    assert len(printed) == 1

    tok = VisTokenizer.from_pretrained("vistok/default").eval()
    processor = VisTokenizerImageProcessor(image_size=32)
    pixels = processor(Image.open(photo).convert("RGB"), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        reconstruction = tok(pixels).reconstruction
    as_uint8 = lambda t: np.round((t[0].permute(1, 2, 0).numpy().clip(-1, 1) + 1) * 127.5).astype(np.uint8)  # noqa: E731
    original_u8, reconstruction_u8 = as_uint8(pixels), as_uint8(reconstruction)
    expected = peak_signal_noise_ratio(original_u8, reconstruction_u8, data_range=255)
    unrounded = 10 * np.log10(4 / np.mean((reconstruction.clamp(-1, 1) - pixels).double().numpy() ** 2))
    assert abs(unrounded - expected) > 1e-3  # the un-rounded variant differs (0.004 dB here): the test tells them apart

    np.testing.assert_array_equal(np.asarray(Image.open(out_dir / "photo_reconstruction.png")), reconstruction_u8)
    assert _printed_psnr(printed[0]) == pytest.approx(expected, abs=0.005)
    # the shared preparation (vistok.data.preparation, the Space's) crops this PNG as the image processor does
    prepared = prepare_image(Image.open(photo).convert("RGB"), 32, tok.downsample_factor)
    result = reconstruct_image(tok, prepared.image)
    assert result.psnr == pytest.approx(expected, rel=0, abs=1e-5)  # torchmetrics' float32 log(10): ~1e-6 dB


def test_reconstruct_says_which_size_it_used(tmp_path, capsys):
    photo = _write_photo(tmp_path / "wide.png", 120, 80)
    assert main(["reconstruct", str(photo), "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "64×64 px (the model's native resolution; --image-size changes it)" in out
    assert "giving 16×16 grid (256 tokens)" in out and "wide.png (120×80 px): 256 tokens" in out
    assert Image.open(tmp_path / "wide_reconstruction.png").size == (64, 64)

    with pytest.raises(SystemExit, match="already exist .*wide_reconstruction.png.*pass --overwrite"):
        main(["reconstruct", str(photo), "--output-dir", str(tmp_path), "--image-size", "48"])
    assert Image.open(tmp_path / "wide_reconstruction.png").size == (64, 64)  # the earlier output is kept

    assert main(["reconstruct", str(photo), "--output-dir", str(tmp_path), "--image-size", "48", "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "48×48 px (--image-size)" in out and "12×12 grid (144 tokens)" in out
    assert Image.open(tmp_path / "wide_reconstruction.png").size == (48, 48)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("255", "--image-size must be a multiple of 4, the downsample factor of vistok/default; got 255: use 252 or 256"),
        ("2", "got 2: use 4"),
        ("0", "--image-size must be positive, got 0"),
    ],
)
def test_reconstruct_rejects_an_invalid_image_size(tmp_path, size, message):
    photo = _write_photo(tmp_path / "photo.png", 40, 40)
    with pytest.raises(SystemExit) as exit_info:
        main(["reconstruct", str(photo), "--image-size", size, "--output-dir", str(tmp_path / "out")])
    assert message in str(exit_info.value.code)
    assert not (tmp_path / "out").exists()


def test_reconstruct_skips_unreadable_files_and_fails_at_the_end(tmp_path, capsys):
    first = _write_photo(tmp_path / "first.png", 64, 64, seed=1)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated")
    missing = tmp_path / "missing.jpg"
    last = _write_photo(tmp_path / "last.png", 64, 64, seed=2)
    out_dir = tmp_path / "out"
    status = main(["reconstruct", str(first), str(corrupt), str(missing), str(last), "--output-dir", str(out_dir)])
    assert status == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in out_dir.iterdir()) == ["first_reconstruction.png", "last_reconstruction.png"]
    assert f"{corrupt}: skipped, not a readable image" in captured.err
    assert f"{missing}: skipped, not a readable image" in captured.err
    assert f"2 of 4 file(s) failed: {corrupt}, {missing}" in captured.err
    assert captured.out.count("PSNR") == 2


def test_reconstruct_refuses_inputs_that_would_overwrite_each_other(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = _write_photo(tmp_path / "a" / "x.png", 32, 32)
    two = _write_photo(tmp_path / "b" / "x.png", 32, 32)
    with pytest.raises(SystemExit, match="would both be written to"):
        main(["reconstruct", str(one), str(two), "--output-dir", str(tmp_path / "out")])


def test_reconstruct_reports_an_output_it_cannot_write_as_such(tmp_path, capsys):
    """A failed write is an output error, not "not a readable image", and the other files still go through."""
    good = _write_photo(tmp_path / "good.png", 32, 32, seed=3)
    blocked = _write_photo(tmp_path / "blocked.png", 32, 32, seed=4)
    out_dir = tmp_path / "out"
    (out_dir / "blocked_reconstruction.png").mkdir(parents=True)  # a folder where the file should go
    status = main(["reconstruct", str(good), str(blocked), "--output-dir", str(out_dir), "--overwrite"])
    captured = capsys.readouterr()
    assert status == 1
    assert f"{blocked}: reconstruction not written to {out_dir / 'blocked_reconstruction.png'}" in captured.err
    assert "not a readable image" not in captured.err
    assert (out_dir / "good_reconstruction.png").is_file()
    assert not [p.name for p in out_dir.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_reconstructions_get_the_users_umask(tmp_path, umask, mode):
    """A reconstruction is written like any file the user creates (0666 less the umask), not 0600."""
    photo = _write_photo(tmp_path / "photo.png", 40, 40)
    previous = os.umask(umask)
    try:
        assert main(["reconstruct", str(photo), "--output-dir", str(tmp_path / "out")]) == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "out" / "photo_reconstruction.png").stat().st_mode & 0o777 == mode


def test_reconstruct_refuses_an_image_smaller_than_one_token_and_says_when_it_upscales(tmp_path, capsys):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (3, 3), (10, 20, 30)).save(tiny)
    small = _write_photo(tmp_path / "small.png", 40, 30)
    out_dir = tmp_path / "out"
    assert main(["reconstruct", str(tiny), str(small), "--image-size", "128", "--output-dir", str(out_dir)]) == 1
    captured = capsys.readouterr()
    assert (f"{tiny}: skipped. The image is 3×3 pixels, smaller than one token of this tokenizer (4×4 pixels); use "
            "an image at least 4 pixels wide and high.") in captured.err  # fmt: skip
    assert not (out_dir / "tiny_reconstruction.png").exists()
    assert "  - Upscaled from 40×30 to 171×128 (shorter side to 128 px) — expect a blurry original." in captured.out


_PEAK_MEMORY = """
import resource, runpy, sys
sys.argv = ["vistok", *sys.argv[1:]]
try:
    runpy.run_module("vistok.cli", run_name="__main__")
finally:
    print(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB", file=sys.stderr)
"""


def test_reconstruct_decodes_a_huge_jpeg_at_a_reduced_scale_without_pil_warnings(tmp_path):
    """12000×12000 (144 megapixels, above PIL's decompression-bomb warning): decoded at 1/8 scale, so the run peaks
    far below the 432 MB of the decoded photo alone; a notice instead of PIL's raw DecompressionBombWarning."""
    big = tmp_path / "big.jpg"
    Image.linear_gradient("L").resize((12000, 12000)).convert("RGB").save(big, quality=70)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run([sys.executable, "-c", _PEAK_MEMORY, "reconstruct", str(big), "--output-dir",
                                str(tmp_path / "out")], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "DecompressionBombWarning" not in completed.stderr and "decompression bomb" not in completed.stderr
    assert "big.jpg (12000×12000 px)" in completed.stdout
    assert "  - Large image (144.0 megapixels) downscaled from 12000×12000 to 64×64 (shorter side to 64 px)." in (
        completed.stdout
    )
    small = tmp_path / "small.jpg"
    Image.linear_gradient("L").resize((640, 640)).convert("RGB").save(small, quality=70)
    baseline = subprocess.run([sys.executable, "-c", _PEAK_MEMORY, "reconstruct", str(small), "--output-dir",
                               str(tmp_path / "out")], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    peak, small_peak = (int(re.search(r"peak (\d+) MiB", run.stderr).group(1)) for run in (completed, baseline))
    assert peak - small_peak < 150, (peak, small_peak)  # the whole photo decoded would be 412 MiB more


# ---------------------------------------------------------------------------------------- one spelling of options
OLD_OUTPUT_SPELLINGS = {"--save-dir", "--output_dir", "--out"}
# commands that write a folder: --output-dir, with --output (the spelling tokenize and compare had) as an alias
FOLDER_COMMANDS = {"tokenize", "compare", "reconstruct"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_output_options_are_spelled_one_way_and_the_old_spellings_still_work(command):
    """The folder a command writes is --output-dir, a single file it writes is --output (card, evaluate's report);
    the spellings used before (--save-dir, tokenize's and compare's --output) stay accepted as aliases only."""
    parser, _ = build_command_parser(command)
    options = {}
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        canonical, *aliases = action.option_strings
        options[canonical] = action
        assert canonical not in OLD_OUTPUT_SPELLINGS, (command, action.option_strings)
        for alias in aliases:
            assert alias in OLD_OUTPUT_SPELLINGS | {"--output"} or alias.replace("_", "-") == canonical, (command, alias)
    if command in FOLDER_COMMANDS:
        assert "--output-dir" in options, command


def test_old_and_new_spellings_parse_to_the_same_option():
    for command, new, old, required in (
        ("compare", "--output-dir", "--output", []),
        ("evaluate", "--reconstructions-dir", "--save-dir", ["--model", "m"]),
        ("tokenize", "--output-dir", "--output", ["--model", "m", "--dataset", "d"]),
    ):
        parser, _ = build_command_parser(command)
        assert vars(parser.parse_args([*required, new, "x"])) == vars(parser.parse_args([*required, old, "x"]))


def test_train_py_takes_the_dashed_spellings_of_its_shorthands():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from trainkit.config import parse_overrides

    dashed = parse_overrides(["--output-dir", "runs/a", "--max-steps", "5", "--batch-size", "2"])
    assert dashed == parse_overrides(["--output_dir", "runs/a", "--max_steps", "5", "--batch_size", "2"])
    assert dashed == [("output.dir", "runs/a"), ("train.max_steps", 5), ("train.batch_size", 2)]


def test_a_prefix_of_an_option_is_refused_as_unknown_not_as_ambiguous(capsys):
    """Options are spelled out: `--out` (a prefix of both --output-dir and its alias --output) is an unknown option."""
    for command in ("tokenize", "compare"):
        with pytest.raises(SystemExit):
            main([command, "--model", "m", "--dataset", "d", "--out", "x"])
        err = capsys.readouterr().err
        assert "unrecognized arguments: --out x" in err and "ambiguous" not in err, err

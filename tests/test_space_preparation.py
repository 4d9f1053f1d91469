"""One preparation path (vistok.data.preparation): `vistok reconstruct` and the Space turn a file into the same
pixels, say the same things about it and measure the same PSNR; both refuse what neither can use."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vistok.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = ROOT / "spaces" / "vistok-demo"
sys.path.insert(0, str(SPACE_DIR))

from vistok_space.pipeline import run_request  # noqa: E402
from vistok_space.tokenizers import TokenizerCache, TokenizerPolicy  # noqa: E402


@pytest.fixture(scope="module")
def cache() -> TokenizerCache:
    return TokenizerCache(policy=TokenizerPolicy.from_environment())  # serves vistok/default, the CLI's default


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth gradient plus noise, like a photo's mix of flat and detailed areas."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).round().astype(np.uint8))


def _files(folder: Path) -> dict[str, Path]:
    """A large JPEG (decoded at a reduced scale) and one file of each mode the Space converts with a notice."""
    photo = _photo(1000, 760)
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))  # transparent at the top, opaque at the bottom
    files = {"photo.jpg": photo, "grey.png": photo.convert("L"), "rgba.png": rgba, "cmyk.jpg": photo.convert("CMYK")}
    paths = {}
    for name, image in files.items():
        image.save(folder / name, quality=90) if name.endswith(".jpg") else image.save(folder / name)
        paths[name] = folder / name
    Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257).save(folder / "deep.png")  # 16-bit
    paths["deep.png"] = folder / "deep.png"
    frames = [_photo(300, 200, seed) for seed in range(3)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    paths["anim.gif"] = folder / "anim.gif"
    return paths


def _cli_lines(out: str, path: Path) -> tuple[str, list[str]]:
    """The result line of ``path`` and the notices listed under it."""
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"{path} ("))
    notices = []
    for line in lines[first + 1 :]:
        if not line.startswith("  - "):
            break
        notices.append(line[4:])
    return lines[first], notices


def test_the_cli_and_the_space_prepare_and_measure_a_file_alike(cache, tmp_path, capsys):
    files = _files(tmp_path)
    out_dir = tmp_path / "out"
    assert main(["reconstruct", *map(str, files.values()), "--image-size", "128", "--output-dir", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    for name, path in files.items():
        line, cli_notices = _cli_lines(printed, path)
        result = run_request(str(path), "vistok/default", "128", cache)
        assert result.ok, result.status
        space_notices = [line[2:] for line in result.status.splitlines()[1:]]
        assert cli_notices == space_notices, name
        assert cli_notices  # every one of these files is converted, resized or cropped: the user is told
        assert re.search(r"PSNR (\S+) dB", line).group(1) == f"{result.metrics['psnr_db']:.2f}", name
        saved = np.asarray(Image.open(out_dir / f"{path.stem}_reconstruction.png"))
        np.testing.assert_array_equal(saved, np.asarray(result.reconstruction), err_msg=name)
    assert any("Converted a grayscale image" in n for n in _cli_lines(printed, files["grey.png"])[1])
    assert any("16-bit grayscale" in n for n in _cli_lines(printed, files["deep.png"])[1])
    assert any("composited over white" in n for n in _cli_lines(printed, files["rgba.png"])[1])
    assert any("CMYK" in n for n in _cli_lines(printed, files["cmyk.jpg"])[1])
    assert any("Animated image (3 frames)" in n for n in _cli_lines(printed, files["anim.gif"])[1])
    assert "photo.jpg (1000×760 px)" in printed  # the file's own size, not that of its reduced-scale decoding


def test_a_very_thin_image_is_refused_by_both_before_it_is_resized(cache, tmp_path, capsys):
    """A 1×250,000 PNG (a few KB) would be resized to 8 × 2,000,000 px (or 128 × 32,000,000 in the Space)."""
    path = tmp_path / "thin.png"
    Image.new("RGB", (1, 250_000), (200, 30, 30)).save(path)
    assert path.stat().st_size < 4000
    assert main(["reconstruct", str(path), "--image-size", "8", "--output-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{path}: skipped. The image is 1×250000 pixels, 250,000 times as tall as it is wide" in err
    assert "crop it nearer to a square" in err
    result = run_request(str(path), "vistok/default", "128", cache)
    assert not result.ok and "The image is 1×250000 pixels, 250,000 times as tall as it is wide" in result.status

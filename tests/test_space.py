"""The Gradio Space (spaces/vistok-demo): its functions directly, then the running app through gradio_client.

The server is started with the README's command (``python spaces/vistok-demo/app.py``) on a free port as soon as
this module runs, so its start-up overlaps the direct tests.
"""

from __future__ import annotations

import io
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vistok
from vistok.layouts import GridLayout, MultiScaleLayout, SequenceLayout

ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = ROOT / "spaces" / "vistok-demo"
EXAMPLES = SPACE_DIR / "examples"
sys.path.insert(0, str(SPACE_DIR))

from vistok_space import pipeline  # noqa: E402
from vistok_space.analysis import Reconstruction, measure, reconstruct  # noqa: E402
from vistok_space.inputs import MAX_ORIGINAL_SIDE, open_upload  # noqa: E402
from vistok_space.pipeline import run_request  # noqa: E402
from vistok_space.tokenizers import TokenizerCache, TokenizerPolicy, default_tokenizer_name  # noqa: E402
from vistok_space.visuals import (  # noqa: E402
    ERROR_COLORMAP,
    TOKEN_COLORMAP,
    _palette,
    code_histogram_figure,
    error_map_image,
    token_map_image,
    token_picture,
)

SERVER_START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def any_tokenizer() -> TokenizerPolicy:
    """What a local run with --allow-any-tokenizer serves: any name, folder or Hub repo id typed in (the default
    policy, the bundled tokenizers and the owner's list only, is tested in test_space_policy.py)."""
    return TokenizerPolicy.from_environment(allow_any=True)


@pytest.fixture(scope="module")
def cache() -> TokenizerCache:
    return TokenizerCache(policy=any_tokenizer())


@pytest.fixture(scope="module")
def default(cache) -> vistok.VisTokenizer:
    return cache.get(default_tokenizer_name())


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


# ------------------------------------------------------------------------------------- reconstruction, metrics
def test_default_tokenizer_is_the_bundled_one_and_loads_offline():
    assert default_tokenizer_name() == "vistok/default" or os.environ.get("VISTOK_SPACE_TOKENIZER")
    folder = Path(vistok.__file__).parent / "pretrained" / "default"
    tok = vistok.VisTokenizer.from_pretrained("vistok/default")
    assert not tok.training
    held_out = [
        e for e in tok.config.metadata["evaluation"] if e["dataset_id"] == "samples" and e["split"] == "test"
    ]
    assert held_out and all(e["psnr"] > 20 for e in held_out), (
        "the bundled default must carry its measured metrics"
    )
    assert (folder / "model.safetensors").stat().st_size < 8e6 and (folder / "README.md").is_file()


def test_example_reconstruction_and_its_numbers(cache, default):
    result = run_request(str(EXAMPLES / "chelsea.jpg"), default_tokenizer_name(), "256", cache)
    assert result.ok, result.status
    assert "Traceback" not in result.status
    assert result.original.size == result.reconstruction.size == (256, 256)
    assert result.token_map.size == result.error_map.size == (256, 256)
    metrics = result.metrics
    original, reconstruction = pixels(result.original) / 255, pixels(result.reconstruction) / 255

    # PSNR and SSIM agree with independent implementations on the saved images.
    assert metrics["psnr_db"] == pytest.approx(
        10 * math.log10(1 / np.mean((original - reconstruction) ** 2)), abs=1e-3
    )
    from skimage.metrics import structural_similarity

    expected_ssim = structural_similarity(
        original, reconstruction, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0,
    )  # fmt: skip
    assert metrics["ssim"] == pytest.approx(expected_ssim, abs=2e-3)
    # The bundled tokenizer is trained: far better than a random one (~15 dB) on a photo it never saw.
    assert metrics["psnr_db"] > 20

    f, k = default.downsample_factor, default.codebook_size
    tokens = (256 // f) ** 2
    assert metrics["tokens_per_image"] == tokens and metrics["token_grid"] == [256 // f, 256 // f]
    assert metrics["bits_per_image"] == pytest.approx(tokens * math.log2(k))
    assert metrics["compression_ratio"] == pytest.approx(256 * 256 * 24 / (tokens * math.log2(k)))

    # Codebook usage and the token map agree with the tokenizer's own indices for the same image.
    x = torch.from_numpy(pixels(result.original)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.inference_mode():
        ids = default.encode(x).indices[0]
    assert metrics["codes_used"] == ids.unique().numel()
    assert metrics["codebook_usage"] == pytest.approx(ids.unique().numel() / k)
    expected_colour = _palette(TOKEN_COLORMAP)[round(int(ids[0, 0]) * 255 / (k - 1))]
    assert tuple(np.asarray(result.token_map)[0, 0]) == tuple(expected_colour)
    assert "PSNR" in result.metrics_table and "Bits per image" in result.metrics_table


@pytest.mark.parametrize("resolution", ["128", "512", "original"])
def test_resolution_options(cache, default, resolution):
    result = run_request(str(EXAMPLES / "chelsea.jpg"), default_tokenizer_name(), resolution, cache)
    assert result.ok, result.status
    f = default.downsample_factor
    if resolution == "original":  # 451 × 300 keeps its aspect, cropped to whole tokens
        assert result.original.size == (451 - 451 % f, 300 - 300 % f)
        assert "Centre-cropped" in result.status
    else:
        assert result.original.size == (int(resolution),) * 2


def test_reconstruct_and_measure_on_a_pixel_exact_copy():
    """measure() reports an exact round trip as PSNR None (∞), SSIM 1 and usage of a single code."""

    class Identity(torch.nn.Module):
        codebook_size = 4
        token_layout = GridLayout()

        def forward(self, x):
            return vistok.TokenizerOutput(reconstruction=x, indices=torch.zeros(1, 2, 2, dtype=torch.int64))

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    metrics = measure(reconstruct(Identity(), image))
    assert metrics["psnr_db"] is None and metrics["ssim"] == pytest.approx(1.0)
    assert metrics["codes_used"] == 1 and metrics["perplexity"] == pytest.approx(1.0)
    assert metrics["bits_per_image"] == 4 * 2 and metrics["compression_ratio"] == 16 * 16 * 24 / 8


def test_token_pictures_follow_the_layout():
    """A grid is drawn at the image's size, a sequence as a strip of L cells, multi-scale tokens as one map per scale
    above the image decoded after that scale."""
    blank = torch.zeros(3, 32, 32, dtype=torch.uint8)
    grid = Reconstruction(blank, blank, torch.arange(16).reshape(4, 4), 16, 0.0)
    assert token_picture(grid, (32, 32)).size == (32, 32)
    strip = Reconstruction(blank, blank, torch.arange(8), 8, 0.0, layout=SequenceLayout(8))
    picture = np.asarray(token_picture(strip, (64, 64)))
    assert picture.shape[:2] == (16, 64)
    assert (picture[0, 0] == _palette(TOKEN_COLORMAP)[0]).all() and (picture[0, -1] == _palette(TOKEN_COLORMAP)[255]).all()
    scales = [torch.zeros(1, 1, dtype=torch.int64), torch.full((2, 2), 3)]
    steps = [torch.zeros(3, 32, 32, dtype=torch.uint8), torch.full((3, 32, 32), 255, dtype=torch.uint8)]
    multi = Reconstruction(blank, blank, scales, 4, 0.0, layout=MultiScaleLayout((1, 2)), per_scale=steps)
    picture = np.asarray(token_picture(multi, (68, 68)))
    side = (68 - 4) // 2
    assert picture.shape[:2] == (2 * side + 4, 2 * side + 4)
    assert (picture[side + 4 + 5, side + 4 + 5] == 255).all()  # the image after both scales: white
    assert (picture[side + 4 + 5, 5] == 0).all()  # after the first scale: black
    assert (picture[5, side + 4 + 5] == _palette(TOKEN_COLORMAP)[255]).all()  # code 3 of K = 4
    metrics = measure(multi)
    assert metrics["tokens_per_image"] == 5 and metrics["token_grid"] is None
    assert metrics["token_layout"] == "2 scales, 1×1 … 2×2"


# ------------------------------------------------------------------------------------------------ bad input
def _save(image: Image.Image, path: Path, **kwargs) -> str:
    image.save(path, **kwargs)
    return str(path)


def _gradient(size=(64, 48)) -> Image.Image:
    x = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :, None].repeat(size[1], 0)
    return Image.fromarray(np.concatenate([x, x[:, ::-1], np.full_like(x, 90)], axis=-1))


def test_animated_gif_uses_the_first_frame(cache, default, tmp_path):
    colours = [(220, 30, 30), (30, 220, 30), (30, 30, 220)]
    frames = [Image.new("RGB", (64, 64), c) for c in colours]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = run_request(str(path), default_tokenizer_name(), "128", cache)
    assert result.ok, result.status
    assert "Animated image (3 frames)" in result.status and "palette" in result.status
    assert np.allclose(pixels(result.original).mean(axis=(0, 1)), colours[0], atol=6)


@pytest.mark.parametrize(
    ("mode", "expected_notice", "expected_rgb"),
    [
        ("P", "palette", None),
        ("L", "grayscale", None),
        ("RGBA", "composited over white", (255, 255, 255)),
        ("LA", "composited over white", (255, 255, 255)),
        ("I;16", "16-bit grayscale", (128, 128, 128)),
        ("CMYK", "CMYK", None),
    ],
)
def test_unusual_image_modes_are_converted(cache, default, tmp_path, mode, expected_notice, expected_rgb):
    if mode == "RGBA":
        image = Image.new("RGBA", (40, 40), (10, 200, 10, 0))  # fully transparent
    elif mode == "LA":
        image = Image.new("LA", (40, 40), (0, 0))
    elif mode == "I;16":
        image = Image.fromarray(np.full((40, 40), 32896, dtype=np.uint16))  # 32896 / 257 = 128
    else:
        image = _gradient().convert(mode)
    assert image.mode == mode
    path = _save(image, tmp_path / ("img.jpg" if mode == "CMYK" else "img.png"))
    result = run_request(path, default_tokenizer_name(), "128", cache)
    assert result.ok, result.status
    assert expected_notice in result.status
    original = pixels(result.original)
    if expected_rgb is not None:
        assert np.allclose(original, expected_rgb, atol=1)
    if mode in ("L", "I;16"):
        assert np.array_equal(original[..., 0], original[..., 1])


def test_huge_image_is_downscaled_with_a_notice(cache, default, tmp_path):
    path = _save(_gradient((6000, 4000)), tmp_path / "huge.jpg", quality=80)
    result = run_request(path, default_tokenizer_name(), "original", cache)
    assert result.ok, result.status
    assert "Large image (24.0 megapixels) downscaled from 6000×4000" in result.status
    assert max(result.original.size) <= MAX_ORIGINAL_SIDE


def test_exif_rotation_is_applied(tmp_path):
    image = _gradient((64, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = _save(image, tmp_path / "rotated.jpg", exif=exif)
    decoded = open_upload(path)
    assert decoded.image.size == (32, 64) and decoded.original_size == (32, 64)
    assert any("EXIF" in notice for notice in decoded.notices)


@pytest.mark.parametrize(
    ("make_upload", "message"),
    [
        (lambda tmp: None, "No image"),
        (lambda tmp: _write(tmp / "notes.txt", b"this is not an image"), "not an image this demo can read"),
        (lambda tmp: _write(tmp / "cut.png", _png_bytes(noisy=True)[:2000]), "damaged or truncated"),
        (lambda tmp: str(tmp / "gone.png"), "missing"),
        (lambda tmp: _save(Image.new("RGB", (3, 3)), tmp / "tiny.png"), "smaller than one token"),
        (lambda tmp: "data:image/png;base64,@@@", "not an image this demo can read"),
    ],
    ids=["none", "text-file", "truncated", "missing-file", "smaller-than-patch", "bad-data-url"],
)
def test_bad_uploads_give_a_message_not_a_traceback(cache, default, tmp_path, make_upload, message):
    result = run_request(make_upload(tmp_path), default_tokenizer_name(), "256", cache)
    assert not result.ok
    assert message in result.status and "Traceback" not in result.status
    assert result.status.startswith("**Could not run:**")


def test_decompression_bomb_is_refused(cache, default, tmp_path, monkeypatch):
    path = _save(_gradient((100, 100)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    result = run_request(path, default_tokenizer_name(), "256", cache)
    assert not result.ok and "too large to decode safely" in result.status


def test_data_url_upload(cache, default):
    import base64

    url = "data:image/png;base64," + base64.b64encode(_png_bytes()).decode()
    result = run_request(url, default_tokenizer_name(), "128", cache)
    assert result.ok, result.status


def test_bad_options_give_messages(cache, default):
    photo = str(EXAMPLES / "coffee.jpg")
    assert "Unknown resolution '300'" in run_request(photo, default_tokenizer_name(), "300", cache).status
    assert "No tokenizer chosen" in run_request(photo, "  ", "256", cache).status


def test_unloadable_tokenizer_is_reported_and_the_default_keeps_working(cache, default, tmp_path):
    photo = str(EXAMPLES / "coffee.jpg")
    for name in (
        "nobody/no-such-tokenizer",
        str(tmp_path),
    ):  # a Hub id that is not cached; a folder without one
        start = time.perf_counter()
        result = run_request(photo, name, "256", cache)
        assert not result.ok
        assert "Could not load" in result.status and "still works" in result.status
        assert time.perf_counter() - start < 30  # offline: no minute-long Hub retries holding up the queue
    assert run_request(photo, default_tokenizer_name(), "256", cache).ok


def test_zoo_tokenizers_are_offered_after_the_bundled_default():
    from vistok_space.tokenizers import tokenizer_choices

    choices = tokenizer_choices(any_tokenizer())  # every zoo entry; a Space offers the ones its owner lists
    assert choices[0] == (default_tokenizer_name(), default_tokenizer_name())
    labels = dict((value, label) for label, value in choices)
    for row in vistok.list_pretrained():
        if row["source"].startswith("not on the Hub"):
            assert row["name"] not in labels  # converted by hand: `vistok zoo info` says how
            continue
        label = labels[row["name"]]
        assert row["license"] in label
        if "tokens_per_image" in row:  # the entry names the architecture it expects
            assert f"{row['tokens_per_image']} tokens" in label and f"{row['codebook_size']:,} codes" in label
            assert "weights ≥" in label
    # LlamaGen VQ-16 has 71,883,403 parameters (shared/reference: llamagen_vq16_state_dict_spec.json)
    assert "weights ≥ 288 MB" in labels["vqgan-llamagen-vq16"]


def test_a_zoo_tokenizer_loads_on_first_use_and_offline_says_how_to_prefetch(hub):
    from tests.hub_cache import add_to_hub_cache

    cache = TokenizerCache(policy=TokenizerPolicy.from_environment(tokenizers="vqgan-llamagen-vq16,vqgan-llamagen-vq8"))
    add_to_hub_cache(
        hub, "FoundationVision/LlamaGen", {"vq_ds16_c2i.pt": ROOT / "tests" / "data" / "llamagen_tiny.pt"}
    )
    photo = str(EXAMPLES / "coffee.jpg")
    result = run_request(photo, "vqgan-llamagen-vq16", "128", cache)
    assert result.ok, result.status
    assert result.metrics["token_grid"] == [32, 32] and result.metrics["codebook_size"] == 512
    # framed as LlamaGen's own code frames it (the pixels `vistok reconstruct` and `vistok tokenize` use)
    from vistok.data.preparation import decode_image, open_image_file, prepare_image, recorded_pipeline

    pipeline = recorded_pipeline(cache.get("vqgan-llamagen-vq16").config)
    assert pipeline is not None and pipeline.box_prehalve
    assert f"Framed as the tokenizer's upstream project does: {pipeline.at(128).describe()}." in result.status
    expected = prepare_image(decode_image(open_image_file(photo)).image, 128, 16, pipeline=pipeline).image
    assert np.array_equal(np.asarray(result.original), np.asarray(expected))
    missing = run_request(photo, "vqgan-llamagen-vq8", "128", cache)
    assert not missing.ok
    assert "vqgan-llamagen-vq8" in missing.status and "vistok zoo download vqgan-llamagen-vq8" in missing.status
    assert "still works" in missing.status


def test_a_local_tokenizer_folder_typed_in_works(cache, default, tmp_path):
    config = vistok.VisTokenizerConfig(
        image_size=32,
        net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 0, "num_downsamples": 3},
        quantizer={"type": "vq", "codebook_size": 32, "codebook_dim": 4, "l2_norm": True},
    )
    vistok.VisTokenizer(config).save_pretrained(tmp_path / "mine")
    result = run_request(str(EXAMPLES / "coins.png"), str(tmp_path / "mine"), "128", cache)
    assert result.ok, result.status
    assert result.metrics["token_grid"] == [16, 16] and result.metrics["codebook_size"] == 32
    assert "grayscale" in result.status


def test_unexpected_failures_are_logged_not_shown(cache, default, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "reconstruct", explode)
    result = run_request(str(EXAMPLES / "coffee.jpg"), default_tokenizer_name(), "256", cache)
    assert not result.ok and "RuntimeError: boom" in result.status and "Traceback" not in result.status
    assert "Traceback" in caplog.text  # the server log keeps the details


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _png_bytes(noisy: bool = False) -> bytes:
    image = _gradient()
    if noisy:  # incompressible, so that a prefix really is a truncated file
        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- pictures
def test_token_map_colours_follow_the_ids():
    picture = np.asarray(token_map_image(torch.tensor([[0, 9]]), 10, (4, 2)))
    assert picture.shape == (2, 4, 3)
    assert tuple(picture[0, 0]) == tuple(_palette(TOKEN_COLORMAP)[0])  # id 0: first colour, 2 × 2 pixel cell
    assert tuple(picture[1, 3]) == tuple(_palette(TOKEN_COLORMAP)[255])  # id K−1: last colour


def test_error_map_scale():
    original = torch.full((3, 2, 2), 100, dtype=torch.uint8)
    reconstructed = original.clone()
    reconstructed[:, 0, 0] = 200  # error 100 ≥ the scale's top
    picture = np.asarray(error_map_image(original, reconstructed))
    assert tuple(picture[0, 0]) == tuple(_palette(ERROR_COLORMAP)[255])
    assert tuple(picture[1, 1]) == tuple(_palette(ERROR_COLORMAP)[0])


def test_code_histogram_figure_counts_codes():
    figure = code_histogram_figure(torch.tensor([1, 5]), torch.tensor([2, 1]), 8)
    assert figure.axes[0].get_title(loc="left") == "Tokens per code: 2 of 8 codes used"
    heights = sorted(float(segment[1, 1]) for segment in figure.axes[0].collections[0].get_segments())
    assert heights == [1.0, 2.0]  # code 5 once, code 1 twice


def test_code_histogram_text_is_inside_the_figure_and_overlaps_nothing():
    """Title, axis labels and tick labels of the 64,000-code histogram: each inside the figure, none on another,
    the title above the plotting area (the Space shows the figure without a label of its own)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    figure = code_histogram_figure(torch.tensor([0, 31_999, 63_999]), torch.tensor([3, 150, 1]), 64_000)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = figure.axes[0]
    # Tick labels exist for ticks just outside the view limits too; matplotlib does not draw those.
    tick_labels = {
        label: (axis.get_view_interval(), label.get_position()[0 if axis is axes.xaxis else 1])
        for axis in (axes.xaxis, axes.yaxis)
        for label in axis.get_ticklabels()
    }
    drawn_ticks = {
        label for label, ((low, high), at) in tick_labels.items() if min(low, high) <= at <= max(low, high)
    }
    texts = [
        t
        for t in figure.findobj(Text)
        if t.get_visible() and t.get_text().strip() and (t not in tick_labels or t in drawn_ticks)
    ]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    by_text = dict(boxes)
    assert {"Tokens per code: 3 of 64,000 codes used", "code index", "tokens"} <= set(by_text)
    figure_box = figure.bbox
    for text, box in boxes:
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1, text
        assert figure_box.y0 <= box.y0 and box.y1 <= figure_box.y1, text
    for i, (first, first_box) in enumerate(boxes):
        for second, second_box in boxes[i + 1 :]:
            assert not first_box.overlaps(second_box), (first, second)
    assert len(drawn_ticks) >= 4, "both axes need numbers"
    assert by_text["Tokens per code: 3 of 64,000 codes used"].y0 >= axes.bbox.y1


# ---------------------------------------------------------------------------------------------- examples
def _photo_fingerprint(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float64)


def test_examples_say_truly_which_photos_the_default_was_trained_on(default):
    """The page's two example galleries ("never saw in training" / "trained on") match the pixels: an example is
    listed as a training photo exactly when it is one of the photos of vistok's `samples` train split, which the
    bundled default was trained on (its config says so)."""
    from vistok.data.samples import load_photos

    app = _load_app()
    training = default.config.metadata["training"]
    assert training["dataset"] == "samples (split train)"
    train_photos = [_photo_fingerprint(photo) for photo in load_photos("train")]
    on_disk = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    assert sorted(app.UNSEEN_EXAMPLES + app.TRAINING_EXAMPLES) == on_disk
    assert not set(app.UNSEEN_EXAMPLES) & set(app.TRAINING_EXAMPLES)
    for name in on_disk:
        with Image.open(EXAMPLES / name) as image:
            fingerprint = _photo_fingerprint(image)
        # Same photo re-encoded as JPEG: well under 1 level of 255 apart at 64 × 64; different photos: over 50.
        seen = any(np.abs(fingerprint - photo).mean() < 4 for photo in train_photos)
        assert seen == (name in app.TRAINING_EXAMPLES), name
    assert app.UNSEEN_EXAMPLES and app.TRAINING_EXAMPLES
    sources = (EXAMPLES / "SOURCES.md").read_text()
    assert all(f"`{name}`" in sources for name in on_disk), "every example needs its source and licence"


def test_the_new_unseen_example_reconstructs(cache, default):
    result = run_request(str(EXAMPLES / "immunohistochemistry.jpg"), default_tokenizer_name(), "256", cache)
    assert result.ok, result.status
    assert result.original.size == (256, 256) and result.metrics["psnr_db"] > 20


def _load_app():
    """spaces/vistok-demo/app.py as a module (it is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("vistok_space_app_for_tests", SPACE_DIR / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    return app


# ----------------------------------------------------------------------------------- the running app
@pytest.fixture(scope="module", autouse=True)
def space_server(tmp_path_factory):
    """``python spaces/vistok-demo/app.py`` on a free port (GRADIO_SERVER_PORT), started when the module starts."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("space") / "server.log"
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(SPACE_DIR / "app.py")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield {"url": f"http://127.0.0.1:{port}/", "process": process, "log": log_path}
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def space_url(space_server) -> str:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if space_server["process"].poll() is not None:
            pytest.fail(f"the Space exited during start-up:\n{space_server['log'].read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(space_server["url"], timeout=2) as response:
                if response.status == 200:
                    return space_server["url"]
        except OSError:
            time.sleep(0.5)
    pytest.fail(
        f"the Space did not answer within {SERVER_START_TIMEOUT_S} s:\n{space_server['log'].read_text()[-3000:]}"
    )


def _client_reconstruct(url: str, photo: Path, resolution: str):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    return client.predict(
        handle_file(str(photo)), default_tokenizer_name(), resolution, api_name="/reconstruct"
    )


def test_client_upload_returns_a_reconstruction(space_url):
    original, reconstruction, token_map, error_map, histogram, table, status, metrics = _client_reconstruct(
        space_url, EXAMPLES / "chelsea.jpg", "256"
    )
    assert status.startswith("**Reconstructed**"), status
    assert Image.open(reconstruction).size == Image.open(original).size == (256, 256)
    assert Image.open(token_map).size == Image.open(error_map).size == (256, 256)
    assert metrics["psnr_db"] > 20 and "PSNR" in table
    assert histogram["type"] == "matplotlib"


def test_client_bad_upload_gets_a_message(space_url, tmp_path):
    outputs = _client_reconstruct(space_url, Path(_write(tmp_path / "notes.png", b"not a png at all")), "256")
    assert outputs[1] is None and "not an image this demo can read" in outputs[6]


def test_eight_concurrent_clients_all_get_their_answers(space_url):
    photos = [EXAMPLES / name for name in ("chelsea.jpg", "coffee.jpg", "astronaut.jpg", "coins.png")] * 2
    resolutions = ["128", "256"] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda job: _client_reconstruct(space_url, *job), zip(photos, resolutions, strict=True))
        )
    for answer, resolution in zip(answers, resolutions, strict=True):
        assert answer[6].startswith("**Reconstructed**"), answer[6]
        assert Image.open(answer[1]).size == (int(resolution),) * 2


def test_client_cannot_load_an_unlisted_name_or_a_server_path(space_url):
    """The running Space (no --allow-any-tokenizer) refuses, over its API too, what its menu does not offer."""
    from gradio_client import Client, handle_file

    client = Client(space_url, verbose=False)
    for name in ("/etc", str(ROOT / "vistok" / "pretrained" / "default"), "vqgan-llamagen-vq8"):
        with pytest.raises(Exception, match="not in the list of choices") as err:
            client.predict(handle_file(str(EXAMPLES / "coffee.jpg")), name, "256", api_name="/reconstruct")
        assert "Traceback" not in str(err.value)


def test_measure_allocates_nothing_codebook_sized_for_a_huge_codebook():
    """A 2^40-code tokenizer's image: counting its codes must not build a 2^40-entry histogram (8.8 TB)."""
    indices = torch.tensor([[3, 2**40 - 1], [3, 7]])
    result = Reconstruction(
        original=torch.zeros(3, 8, 8, dtype=torch.uint8), reconstructed=torch.zeros(3, 8, 8, dtype=torch.uint8),
        indices=indices, codebook_size=2**40, seconds=0.0,
    )
    codes, counts = result.code_counts()
    assert codes.tolist() == [3, 7, 2**40 - 1] and counts.tolist() == [2, 1, 1]


@pytest.mark.parametrize("family", ["titok", "var"])
def test_sequence_and_multiscale_tokenizers_run_in_the_space(tmp_path, family):
    """A 1-D (TiTok) and a multi-scale (VAR) tokenizer: the image is prepared at the one size they accept, whatever
    resolution is chosen, and the token picture and metrics follow their layout."""
    from vistok.families import get_family

    data = ROOT / "tests" / "data"
    if family == "titok":
        tok = get_family("titok").convert(str(data / "titok_tiny"), num_heads=2)
    else:
        tok = get_family("var").convert(str(data / "var_tiny.pth"), patch_nums=[1, 2, 3, 4])
    tok.save_pretrained(tmp_path / family)
    result = run_request(str(EXAMPLES / "coffee.jpg"), str(tmp_path / family), "256", TokenizerCache(policy=any_tokenizer()))
    assert result.ok, result.status
    assert "works at 32×32 px only" in result.status
    assert result.original.size == (32, 32) and result.metrics["token_grid"] is None
    if family == "titok":
        assert result.metrics["tokens_per_image"] == 16 and result.metrics["token_layout"] == "1-D sequence"
        assert result.token_map.size[1] < result.token_map.size[0]  # a strip
    else:
        assert result.metrics["tokens_per_image"] == 1 + 4 + 9 + 16
        assert result.metrics["token_layout"] == "4 scales, 1×1 … 4×4"
        assert result.token_map.size[1] > result.token_map.size[0] // 4  # maps over per-scale images


def test_output_images_are_cached_atomically_so_identical_concurrent_answers_download_whole(tmp_path, monkeypatch):
    """Gradio names a cached output image by its bytes' hash and rewrites it in place (truncating first): with two
    identical answers at once (two visitors, one example) a download could end early. The Space's cache writer
    renames a complete file over the target, so a reader racing a writer of the same image always reads all of it
    (gradio's own writer gives short reads in this loop)."""
    import importlib.util
    import threading

    from gradio import processing_utils
    from vistok_space.gradio_cache import save_pil_to_cache_atomically

    monkeypatch.setattr(processing_utils, "save_pil_to_cache", processing_utils.save_pil_to_cache)  # restored after
    spec = importlib.util.spec_from_file_location("vistok_space_app_cache", SPACE_DIR / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    app.build_demo()  # installs the writer

    assert processing_utils.save_pil_to_cache is save_pil_to_cache_atomically
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    path = Path(processing_utils.save_pil_to_cache(image, str(tmp_path)))
    assert path.read_bytes() == processing_utils.encode_pil_to_bytes(image, "webp")
    whole, stop, short = path.stat().st_size, threading.Event(), []

    def rewrite():
        while not stop.is_set():
            processing_utils.save_pil_to_cache(image, str(tmp_path))

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        short = [n for n in (len(path.read_bytes()) for _ in range(3000)) if n != whole]
    finally:
        stop.set()
        writer.join()
    assert not short
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind

"""Each zoo entry's image processor builds the pixels of its upstream project's own pipeline (issue 24).

The expected pixels (``upstream_preprocessing_A.pt``) were made by running each project's data code on two full-size
photos; the single operations are also checked against torchvision, the library most upstream pipelines call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from transformers import AutoImageProcessor

import vistok
from tests.hub_cache import add_to_hub_cache
from vistok.families import all_entries, entry_preprocessing
from vistok.preprocessing import Preprocessing, preprocess

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "preprocessing" / "upstream_preprocessing_A.pt"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def reference() -> dict:
    if not REFERENCE.is_file():
        pytest.fail(f"the reference pixels are missing: {REFERENCE}")
    return torch.load(REFERENCE, weights_only=True)


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    return [Image.fromarray(skimage.data.astronaut()), Image.fromarray(skimage.data.coffee())]


def _as_uint8(pixel_values: torch.Tensor) -> torch.Tensor:
    return ((pixel_values + 1) * 127.5).round().to(torch.uint8)


@pytest.mark.parametrize(
    "family", ["ibq", "janus", "llamagen", "magvit2", "simvq", "var", "titok_bl64", "maskgit"]
)
def test_the_entry_processor_builds_the_upstream_pixels_with_no_weights_in_the_cache(family, reference, photos, hub):
    """AutoImageProcessor of the zoo name and of the repo id, in an empty offline Hub cache: upstream's pixels."""
    expected = reference[family]
    names = [expected["zoo_name"]]
    if len([e for e in all_entries() if e.repo_id == expected["repo_id"]]) == 1:
        names.append(expected["repo_id"])
    for name in names:
        processor = AutoImageProcessor.from_pretrained(name)
        got = _as_uint8(processor(photos, return_tensors="pt")["pixel_values"])
        assert got.shape == expected["pixels_uint8"].shape, name
        difference = (got.int() - expected["pixels_uint8"].int()).abs()
        assert difference.max() <= 1 and difference.float().mean() <= 0.01, (name, difference.max(), difference.float().mean())
    assert not any(hub.iterdir())  # nothing was downloaded (offline, and nothing needed)


def _sample_photos() -> list[Image.Image]:
    from sklearn.datasets import load_sample_images

    images = [Image.fromarray(a) for a in load_sample_images().images]  # 427×640 china, flower
    images.append(Image.fromarray(skimage.data.chelsea()))  # 451×300: odd margins
    images.append(Image.fromarray(skimage.data.rocket()))  # 427×640
    return images


@pytest.mark.parametrize(("filter_", "mode"), [("bicubic", "BICUBIC"), ("bilinear", "BILINEAR"), ("lanczos", "LANCZOS")])
@pytest.mark.parametrize("size", [64, 97, 256])
def test_torchvision_style_resize_and_crop_equal_torchvision(filter_, mode, size):
    """``size_rule="truncate"`` + ``crop_offset="round"`` is torchvision's Resize + CenterCrop on PIL images."""
    from torchvision import transforms as T

    reference = T.Compose([T.Resize(size, interpolation=getattr(T.InterpolationMode, mode)), T.CenterCrop(size)])
    pipeline = Preprocessing(size, filter=filter_, size_rule="truncate", crop_offset="round")
    for image in _sample_photos():
        assert np.array_equal(preprocess(image, pipeline), np.asarray(reference(image.convert("RGB"))))


@pytest.mark.parametrize("size", [64, 256])
def test_opencv_linear_resize_is_opencv(size):
    """``cv2_linear`` + ``round`` is albumentations' SmallestMaxSize (cv2.INTER_LINEAR, Python rounding) + CenterCrop."""
    import cv2

    pipeline = Preprocessing(size, filter="cv2_linear", size_rule="round", crop_offset="floor")
    for image in _sample_photos():
        array = np.asarray(image.convert("RGB"))
        h, w = array.shape[:2]
        scale = size / min(h, w)
        resized = cv2.resize(array, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
        assert np.array_equal(preprocess(image, pipeline), resized[top : top + size, left : left + size])


@pytest.mark.parametrize("size", [64, 512])
def test_kandinsky_entry_stretches_as_diffusers_vae_image_processor_does(size):
    """movq-kandinsky22's pipeline is diffusers' Kandinsky 2.2 img2img processor (bicubic, reducing_gap 1, both
    sides straight to the size), checked against diffusers' own VaeImageProcessor on real photos."""
    from diffusers.image_processor import VaeImageProcessor

    reference = VaeImageProcessor(vae_scale_factor=8, vae_latent_channels=4, resample="bicubic", reducing_gap=1)
    pipeline = entry_preprocessing(vistok.families.get_entry("movq-kandinsky22")).at(size)
    assert pipeline.framing == "resize" and pipeline.reducing_gap == 1
    for image in _sample_photos():
        expected = reference.preprocess(image.convert("RGB"), height=size, width=size)  # [-1, 1], float32
        got = torch.from_numpy(np.array(preprocess(image, pipeline))).permute(2, 0, 1).float() / 255 * 2 - 1
        assert torch.allclose(got, expected[0], atol=1e-6)
    assert "reducing_gap 1; aspect ratio not kept" in pipeline.describe()


def test_amused_entry_resizes_and_crops_as_torchvision_does_in_its_training_script():
    """aMUSEd's train_amused.py: torchvision Resize (bilinear) then a crop (taken at the centre: CenterCrop)."""
    from torchvision import transforms as T

    pipeline = entry_preprocessing(vistok.families.get_entry("vqgan-amused-256"))
    reference = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(256)])
    for image in _sample_photos():
        assert np.array_equal(preprocess(image, pipeline), np.asarray(reference(image.convert("RGB"))))


def test_reducing_gap_is_pillows_and_refused_where_it_cannot_apply():
    image = _sample_photos()[0]
    pipeline = Preprocessing(100, filter="bicubic", framing="resize", reducing_gap=2.0)
    expected = np.asarray(image.resize((100, 100), Image.Resampling.BICUBIC, reducing_gap=2.0))
    assert np.array_equal(preprocess(image, pipeline), expected)
    assert not np.array_equal(preprocess(image, Preprocessing(100, framing="resize")), expected)
    with pytest.raises(ValueError, match="reducing_gap is a Pillow option"):
        Preprocessing(64, filter="cv2_linear", reducing_gap=1.0)
    with pytest.raises(ValueError, match="reducing_gap must be >= 1"):
        Preprocessing(64, reducing_gap=0.5)
    with pytest.raises(ValueError, match="framing must be one of center_crop, pad_square, resize"):
        Preprocessing(64, framing="stretch")


def test_pad_to_square_keeps_the_whole_image_on_a_grey_canvas():
    image = Image.new("RGB", (300, 100), (10, 200, 30))
    pipeline = Preprocessing(120, resize_edge="longest", size_rule="ratio_truncate", framing="pad_square")
    out = preprocess(image, pipeline)
    assert out.shape == (120, 120, 3)
    assert (out[:40] == 127).all() and (out[80:] == 127).all()  # 40 rows of fill above and below
    assert (out[40:80] == (10, 200, 30)).all()


def test_a_conversion_records_its_pipeline_and_the_folder_processor_runs_it(hub, photos, reference, tmp_path):
    """The converted cache folder (and save_pretrained of it) carry the entry's preprocessor_config.json."""
    add_to_hub_cache(hub, "FoundationVision/LlamaGen", {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    with pytest.warns(vistok.ZooArchitectureWarning):
        tok = vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True)
    assert tok.config.metadata["preprocessing"] == entry_preprocessing(vistok.families.get_entry("vqgan-llamagen-vq16")).to_dict()
    tok.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "preprocessor_config.json").read_text())
    assert saved["preprocessing"]["box_prehalve"] is True
    processor = AutoImageProcessor.from_pretrained(tmp_path / "saved")
    got = _as_uint8(processor(photos, return_tensors="pt")["pixel_values"])
    assert torch.equal(got, reference["llamagen"]["pixels_uint8"])


def test_generic_processor_is_unchanged_and_options_of_an_upstream_pipeline_are_refused(photos):
    generic = vistok.VisTokenizerImageProcessor(image_size=64)
    assert generic.preprocessing is None
    assert generic(photos[0], return_tensors="pt")["pixel_values"].shape == (1, 3, 64, 64)
    upstream = AutoImageProcessor.from_pretrained("var-vqvae-imagenet256-f16")
    with pytest.raises(TypeError, match="upstream pipeline .*LANCZOS|upstream pipeline .*lanczos"):
        upstream(photos[0], size={"shortest_edge": 128})
    with pytest.raises(ValueError, match="filter must be one of"):
        Preprocessing(64, filter="nearest")


def test_every_entry_states_its_preprocessing_in_zoo_info(capsys):
    from vistok.cli import main

    assert main(["zoo", "info", "vqgan-janus-pro-1b"]) == 0
    assert "preprocessing: longest side to 384 (bicubic), pad to a 384² square with (127, 127, 127)" in capsys.readouterr().out


def test_vistok_tokenize_frames_the_photos_as_the_upstream_project_does(hub, reference, tmp_path, monkeypatch):
    """`vistok tokenize --model <zoo entry>` on a folder of the reference photos encodes exactly upstream's pixels
    (the images the encoder receives are recorded); --preprocessing generic records that it used the dataset's crop."""
    from vistok.cli import main
    from vistok.inference import FastTokenizer

    add_to_hub_cache(hub, "FoundationVision/LlamaGen", {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(skimage.data.astronaut()).save(folder / "a_astronaut.png")
    Image.fromarray(skimage.data.coffee()).save(folder / "b_coffee.png")
    encoded = []
    original = FastTokenizer.encode
    monkeypatch.setattr(FastTokenizer, "encode", lambda self, x: encoded.append(x.clone()) or original(self, x))
    out = tmp_path / "tokens"
    with pytest.warns(vistok.ZooArchitectureWarning):
        assert main(["tokenize", "--model", "vqgan-llamagen-vq16", "--dataset", str(folder), "--split", "train",
                     "--output", str(out), "--num-workers", "0", "--no-progress"]) == 0
    assert torch.equal(_as_uint8(torch.cat(encoded)), reference["llamagen"]["pixels_uint8"])
    manifest = json.loads((out / "vistok_tokens.json").read_text())
    assert manifest["identity"]["preprocessing"]["box_prehalve"] is True
    assert manifest["preprocessing"]["crop"].startswith("upstream: BOX halvings")

    generic = tmp_path / "generic"
    with pytest.warns(vistok.ZooArchitectureWarning):
        assert main(["tokenize", "--model", "vqgan-llamagen-vq16", "--dataset", str(folder), "--split", "train",
                     "--output", str(generic), "--num-workers", "0", "--no-progress", "--preprocessing", "generic"]) == 0
    assert json.loads((generic / "vistok_tokens.json").read_text())["identity"]["preprocessing"] == "generic"


def test_reconstruct_frames_a_photo_as_the_upstream_project_does(hub, reference, photos, tmp_path, capsys):
    """`vistok reconstruct --model <zoo entry>` tokenizes upstream's pixels (LlamaGen's ADM crop of the full-size
    PNG); `--preprocessing generic` says it used vistok's framing instead."""
    from vistok.cli import main
    from vistok.commands.reconstruct import reconstruct_image
    from vistok.data.preparation import prepare_image, recorded_pipeline

    add_to_hub_cache(hub, "FoundationVision/LlamaGen", {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    with pytest.warns(vistok.ZooArchitectureWarning):
        tok = vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True).eval()
    expected_pixels = reference["llamagen"]["pixels_uint8"][0]  # the astronaut, as LlamaGen's own code frames it
    size = expected_pixels.shape[-1]
    prepared = prepare_image(photos[0], size, tok.downsample_factor, pipeline=recorded_pipeline(tok.config))
    assert torch.equal(torch.from_numpy(np.array(prepared.image)).permute(2, 0, 1), expected_pixels)
    assert prepared.notices[0].startswith("Framed as the tokenizer's upstream project does: BOX halvings")
    expected = reconstruct_image(tok, Image.fromarray(expected_pixels.permute(1, 2, 0).numpy()))

    photo = tmp_path / "astronaut.png"
    photos[0].save(photo)
    with pytest.warns(vistok.ZooArchitectureWarning):
        assert main(["reconstruct", str(photo), "--model", "vqgan-llamagen-vq16", "--image-size", str(size),
                     "--output-dir", str(tmp_path / "upstream")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "framed as its upstream project does (BOX halvings" in out
    assert f"PSNR {expected.psnr:.2f} dB" in out
    with pytest.warns(vistok.ZooArchitectureWarning):
        assert main(["reconstruct", str(photo), "--model", "vqgan-llamagen-vq16", "--image-size", str(size),
                     "--output-dir", str(tmp_path / "generic"), "--preprocessing", "generic"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "(--preprocessing generic)" in out and "Framed as" not in out


def test_an_upstream_framing_decodes_the_whole_photo_unless_it_is_huge():
    """JPEG draft decoding changes pixels: with an upstream pipeline only a photo above LARGE_IMAGE_PIXELS is decoded
    at a reduced scale (memory first), and the notice says its pixels may then differ."""
    from vistok.data.preparation import LARGE_IMAGE_PIXELS, draft_side, prepare_image

    pipeline = entry_preprocessing(vistok.families.get_entry("var-vqvae-imagenet256-f16"))  # 288 then crop 256
    small, huge = Image.new("RGB", (640, 480)), Image.new("RGB", (5000, 4000))
    assert huge.width * huge.height > LARGE_IMAGE_PIXELS
    assert draft_side(small, 256) == 256 and draft_side(small, "original") == 512
    assert draft_side(small, 256, pipeline) is None and draft_side(huge, 256, pipeline) == 576
    prepared = prepare_image(Image.new("RGB", (720, 576)), 256, 16, original_size=(5000, 4000), pipeline=pipeline)
    assert prepared.image.size == (256, 256)
    assert any("decoded at a reduced scale (720×576)" in notice for notice in prepared.notices)
    upscaled = prepare_image(Image.new("RGB", (200, 150)), 256, 16, pipeline=pipeline)
    assert any(notice.startswith("Upscaled from 200×150") for notice in upscaled.notices)


def test_every_zoo_entry_states_its_upstream_preprocessing_or_why_none_applies(capsys):
    """A pipeline for every family whose upstream frames a fixed size; a note for those that work at each image's own
    size (Emu3, Cosmos), shown by `vistok zoo info` and on the card instead of a silent generic crop."""
    from vistok.cards import render_model_card
    from vistok.cli import main
    from vistok.families.catalogue import entry_preprocessing_note
    from vistok.zoo.cards import zoo_card_config

    for entry in all_entries():
        assert entry_preprocessing(entry) is not None or entry_preprocessing_note(entry), entry.name
    for name, words in (("movq-emu3", "smart_resize"), ("cosmos-di16x16", "zero-padded")):
        assert main(["zoo", "info", name]) == 0
        line = next(line for line in capsys.readouterr().out.splitlines() if "preprocessing:" in line)
        assert "vistok generic" in line and "upstream instead: " in line and words in line, line
        card = str(render_model_card(zoo_card_config(name)))
        assert "upstream instead:" in card and words in card


def test_docs_zoo_lists_each_familys_preprocessing_as_zoo_info_prints_it():
    from vistok.families.catalogue import describe_preprocessing, entry_preprocessing_note

    text = (Path(__file__).resolve().parents[1] / "docs" / "zoo.md").read_text()
    first: dict[str, object] = {}
    for entry in all_entries():
        first.setdefault(entry.converter, entry)
    for family, entry in first.items():
        line = describe_preprocessing(entry_preprocessing(entry), entry_preprocessing_note(entry))
        assert f"| {family} | `{entry.name}` ({entry.image_size} px) | {line} |" in text, family


def test_a_stretching_pipeline_says_so_and_a_broken_record_is_named(tmp_path):
    from vistok.data.preparation import prepare_image, recorded_pipeline

    pipeline = entry_preprocessing(vistok.families.get_entry("movq-kandinsky22")).at(32)
    prepared = prepare_image(Image.new("RGB", (67, 45)), 32, 8, pipeline=pipeline)
    assert prepared.image.size == (32, 32)
    assert prepared.notices[1] == "Stretched from 67×45 to 32×32: the upstream pipeline does not keep the aspect ratio."
    assert not any(n.startswith("Upscaled") for n in prepared.notices)  # both sides shrink
    config = vistok.VisTokenizerConfig(image_size=32, metadata={"preprocessing": {"size": 32, "filter": "sinc"}})
    with pytest.raises(ValueError, match=r"records a preprocessing pipeline vistok cannot read .*filter must be one of"):
        recorded_pipeline(config)


def test_a_transparent_image_reaches_a_drop_alpha_pipeline_as_pil_convert_makes_it(tmp_path):
    """Upstream pipelines that `Image.open(p).convert("RGB")` keep the colour under transparent pixels; vistok
    tokenize's data path gives them the same pixels (its generic crop still composites over white)."""
    from vistok.data.datasets import _make_sample
    from vistok.data.transforms import ImageTransform, UpstreamCrop

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (48, 40, 4), dtype=np.uint8)
    pixels[..., 3] = rng.choice([0, 128, 255], (48, 40))
    Image.fromarray(pixels, "RGBA").save(tmp_path / "t.png")
    pipeline = entry_preprocessing(vistok.families.get_entry("var-vqvae-imagenet256-f16")).at(32)
    assert pipeline.alpha == "drop"
    sample = _make_sample(str(tmp_path / "t.png"), 0, ImageTransform(UpstreamCrop(pipeline), 32), 0, 0)
    got = ((sample["pixel_values"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(got, preprocess(Image.open(tmp_path / "t.png").convert("RGB"), pipeline))


def _upstream_rgb_oracle(image: Image.Image, alpha: str) -> Image.Image:
    """What upstream loaders do: `.convert("RGB")`, or Chameleon's _whiten_transparency (float64 blend, truncated)."""
    import warnings

    if alpha == "white" and image.mode != "RGB":
        rgba = np.asarray(image.convert("RGBA")).astype(np.float64)
        if (rgba[..., 3] < 255).any():
            a = rgba[..., 3:] / 255.0
            return Image.fromarray(((1 - a) * 255 + a * rgba[..., :3]).astype(np.uint8))
    with warnings.catch_warnings():  # PIL's palette advice (upstream ignores it; vistok must not print it)
        warnings.simplefilter("ignore")
        return image.convert("RGB")


def _odd_images(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (40, 36), dtype=np.uint8)
    grey[::3] = 7
    rgba = rng.integers(0, 256, (40, 36, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    palette = Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).quantize(16)
    paths = {"grey_trns": folder / "grey_trns.png", "opaque_rgba": folder / "opaque_rgba.png",
             "grey16": folder / "grey16.png", "palette_alpha": folder / "palette_alpha.png"}  # fmt: skip
    Image.fromarray(grey, "L").save(paths["grey_trns"], transparency=7)
    Image.fromarray(rgba, "RGBA").save(paths["opaque_rgba"])
    Image.fromarray((rng.integers(0, 65536, (40, 36))).astype(np.uint16)).save(paths["grey16"])
    palette.save(paths["palette_alpha"], transparency=bytes([0, 128] + [255] * 14))
    return paths


@pytest.mark.parametrize("alpha", ["drop", "white"])
def test_every_entry_point_makes_an_odd_image_rgb_as_the_upstream_loader_does(alpha, tmp_path, recwarn):
    """A grey PNG with a tRNS key, an opaque RGBA, 16-bit grey and a palette with alpha bytes reach an upstream
    pipeline in their own mode: tokenize's data path and reconstruct / the Space's preparation give what upstream's
    own `.convert("RGB")` (or Chameleon's whitening) gives, as the entry's image processor does; no PIL warning."""
    from vistok.data.datasets import _make_sample
    from vistok.data.preparation import decode_image, prepare_image
    from vistok.data.transforms import ImageTransform, UpstreamCrop

    pipeline = Preprocessing(16, filter="lanczos", size_rule="round", alpha=alpha)
    processor = vistok.VisTokenizerImageProcessor(preprocessing=pipeline)
    for name, path in _odd_images(tmp_path).items():
        want = preprocess(_upstream_rgb_oracle(Image.open(path), alpha), pipeline)
        sample = _make_sample(str(path), 0, ImageTransform(UpstreamCrop(pipeline), 16), 0, 0)
        assert np.array_equal(((sample["pixel_values"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy(), want), name
        decoded = decode_image(Image.open(path), keep_mode=True)
        prepared = prepare_image(decoded.image, 16, 8, original_size=decoded.original_size, pipeline=pipeline)
        assert np.array_equal(np.asarray(prepared.image), want), name
        processed = processor(Image.open(path), return_tensors="pt")["pixel_values"][0]
        assert np.array_equal(((processed + 1) * 127.5).round().byte().permute(1, 2, 0).numpy(), want), name
        transparent = [n for n in prepared.notices if "transparent" in n]
        assert bool(transparent) == (name in ("grey_trns", "palette_alpha")), (name, prepared.notices)
    assert not [w for w in recwarn if "Palette images with Transparency" in str(w.message)]

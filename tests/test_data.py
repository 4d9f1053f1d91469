"""vistok.data: crops, mode conversion, the bundled samples, local 🤗 datasets, corrupt images, offline errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vistok.data import (
    DatasetUnavailableError,
    build_dataloader,
    build_dataset,
    celeba_seed_crop,
    center_crop_adm,
    collate_images,
    open_image,
    random_crop_adm,
    to_rgb,
)
from vistok.data.images import UnreadableImageError
from vistok.data.samples import HELD_OUT_PHOTOS, TRAIN_PHOTOS, SampleCropsDataset
from vistok.data.transforms import sample_rng


@pytest.fixture(autouse=True)
def _isolated_datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets-cache"))


def coordinate_image(width: int, height: int) -> Image.Image:
    """R = x, G = y (mod 256), B = 0: lets a test read back where a crop came from."""
    ys, xs = np.mgrid[0:height, 0:width]
    array = np.stack([xs % 256, ys % 256, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    return Image.fromarray(array)


# ------------------------------------------------------------------------------------------------ transforms
def test_celeba_crop_takes_the_seed_box_of_a_178x218_image():
    image = coordinate_image(178, 218)
    crop = np.asarray(celeba_seed_crop(image, size=128))
    assert crop.shape == (128, 128, 3)
    assert tuple(crop[0, 0, :2]) == (89 - 64, 121 - 64)
    assert tuple(crop[-1, -1, :2]) == (89 + 63, 121 + 63)

    small = np.asarray(celeba_seed_crop(image, size=64)).astype(float)
    assert small.shape == (64, 64, 3)
    # Each output pixel averages a 2×2 block: its x coordinate is 25 + 2i + 0.5.
    np.testing.assert_allclose(small[10, :, 0], 25 + 2 * np.arange(64) + 0.5, atol=1.0)
    np.testing.assert_allclose(small[:, 10, 1], 57 + 2 * np.arange(64) + 0.5, atol=1.0)


def test_celeba_crop_rejects_images_too_small_for_the_box():
    with pytest.raises(ValueError, match="178x218"):
        celeba_seed_crop(coordinate_image(100, 100))


def test_adm_crops_give_square_images_and_random_crop_is_seeded():
    image = coordinate_image(300, 200)
    assert center_crop_adm(image, 64).size == (64, 64)
    big = coordinate_image(1200, 900)
    assert center_crop_adm(big, 256).size == (256, 256)
    a = np.asarray(random_crop_adm(image, 64, sample_rng(0, 0, 5)))
    b = np.asarray(random_crop_adm(image, 64, sample_rng(0, 0, 5)))
    c = np.asarray(random_crop_adm(image, 64, sample_rng(0, 0, 6)))
    assert a.shape == (64, 64, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --------------------------------------------------------------------------------------- mode conversion
@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "YCbCr"])
def test_to_rgb_converts_every_mode(mode):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8))
    converted = to_rgb(base.convert(mode))
    assert converted.mode == "RGB" and converted.size == (20, 16)


def test_to_rgb_composites_transparency_on_white():
    rgba = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    opaque = Image.new("RGBA", (4, 4), (10, 20, 30, 255))
    assert to_rgb(opaque).getpixel((0, 0)) == (10, 20, 30)


def test_to_rgb_rescales_16_bit_instead_of_clipping():
    array = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    image = Image.fromarray(array)
    assert image.mode.startswith("I;16")
    assert [to_rgb(image).getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (100, 100, 100), (255, 255, 255)]


def test_open_image_reads_bytes_dicts_paths_and_rejects_garbage(tmp_path):
    buffer = io.BytesIO()
    Image.new("L", (8, 6), 128).save(buffer, format="PNG")
    png = buffer.getvalue()
    path = tmp_path / "a.png"
    path.write_bytes(png)
    for value in (png, {"bytes": png, "path": None}, {"bytes": None, "path": str(path)}, str(path)):
        image = open_image(value)
        assert image.mode == "RGB" and image.size == (8, 6)
    assert open_image(np.zeros((3, 5, 7), dtype=np.float32)).size == (7, 5)
    for bad in (b"not an image", png[: len(png) // 2], None, {"bytes": None, "path": None}, 3.5):
        with pytest.raises(UnreadableImageError):
            open_image(bad)


# ---------------------------------------------------------------------------------------------- samples
def test_samples_items_are_pixel_values_in_range_with_index():
    ds = build_dataset("samples", "train", image_size=32, num_samples=8)
    item = ds[3]
    assert set(item) == {"pixel_values", "index"} and item["index"] == 3
    assert item["pixel_values"].shape == (3, 32, 32) and item["pixel_values"].dtype == torch.float32
    assert -1.0 <= item["pixel_values"].min() and item["pixel_values"].max() <= 1.0
    assert len(ds) == 8
    with pytest.raises(IndexError):
        ds[8]


def test_samples_are_deterministic_per_seed():
    a = build_dataset("samples", "train", image_size=32, num_samples=4, seed=1)
    b = build_dataset("samples", "train", image_size=32, num_samples=4, seed=1)
    c = build_dataset("samples", "train", image_size=32, num_samples=4, seed=2)
    assert torch.equal(a[0]["pixel_values"], b[0]["pixel_values"])
    assert not torch.equal(a[0]["pixel_values"], c[0]["pixel_values"])


def test_samples_held_out_split_uses_other_photos():
    assert set(TRAIN_PHOTOS).isdisjoint(HELD_OUT_PHOTOS)
    train = SampleCropsDataset("train", 32)
    test = SampleCropsDataset("test", 32)
    assert len(train.photos) == len(TRAIN_PHOTOS) and len(test.photos) == len(HELD_OUT_PHOTOS)
    train_pixels = {photo.tobytes() for photo in train.photos}
    assert not any(photo.tobytes() in train_pixels for photo in test.photos)
    assert SampleCropsDataset("validation", 32).split == "test"
    with pytest.raises(ValueError, match="valid splits"):
        SampleCropsDataset("bogus", 32)


def test_training_flips_vary_with_epoch_and_are_true_mirror_images():
    ds = build_dataset("samples", "train", image_size=32, train=True, num_samples=16)
    first = [ds[i]["pixel_values"] for i in range(16)]
    ds.set_epoch(1)
    second = [ds[i]["pixel_values"] for i in range(16)]
    changed = [i for i in range(16) if not torch.equal(first[i], second[i])]
    assert changed, "no crop was flipped differently between epochs"
    for i in changed:
        assert torch.equal(first[i], second[i].flip(-1))
    no_flip = build_dataset("samples", "train", image_size=32, train=True, num_samples=4, hflip=False)
    no_flip.set_epoch(1)
    eval_ds = build_dataset("samples", "train", image_size=32, num_samples=4)
    assert all(torch.equal(no_flip[i]["pixel_values"], eval_ds[i]["pixel_values"]) for i in range(4))


# --------------------------------------------------------------------------------------- local 🤗 datasets
@pytest.fixture
def image_folder(tmp_path):
    """train/ with 6 images in odd modes + one corrupt file, test/ with 2 images."""
    rng = np.random.default_rng(0)
    root = tmp_path / "folder"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    rgb = Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8))
    rgb.save(root / "train" / "0_rgb.png")
    rgb.convert("L").save(root / "train" / "1_l.png")
    rgb.convert("LA").save(root / "train" / "2_la.png")
    rgb.convert("P").save(root / "train" / "3_p.png")
    rgb.convert("RGBA").save(root / "train" / "4_rgba.png")
    rgb.convert("CMYK").save(root / "train" / "5_cmyk.jpg")
    (root / "train" / "6_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)).save(root / "test" / f"{i}.png")
    return root


@pytest.mark.parametrize("streaming", [False, True])
def test_image_folder_converts_modes_and_skips_corrupt_files(image_folder, streaming):
    ds = build_dataset(str(image_folder), "train", image_size=32, train=True, streaming=streaming)
    batches = list(build_dataloader(ds, batch_size=4))
    pixel_values = torch.cat([b["pixel_values"] for b in batches])
    indices = torch.cat([b["index"] for b in batches])
    assert pixel_values.shape == (6, 3, 32, 32)
    assert sum(b["num_skipped"] for b in batches) == 1
    assert len(set(indices.tolist())) == 6 and set(indices.tolist()) <= set(range(7))
    assert pixel_values.min() >= -1 and pixel_values.max() <= 1


def test_image_folder_split_and_worker_processes_count_skips(image_folder):
    test = build_dataset(str(image_folder), "test", image_size=32)
    assert len(test) == 2 and test[1]["index"] == 1
    with pytest.raises(ValueError, match="available splits"):
        build_dataset(str(image_folder), "validation", image_size=32)
    train = build_dataset(str(image_folder), "train", image_size=32)
    batches = list(build_dataloader(train, batch_size=2, num_workers=2))
    assert sum(b["num_skipped"] for b in batches) == 1
    assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == [0, 1, 2, 3, 4, 5]


def _faces_dataset(n: int, column: str = "photo"):
    import datasets

    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)) for _ in range(n)]
    features = datasets.Features({column: datasets.Image(), "label": datasets.Value("int64")})
    return datasets.Dataset.from_dict({column: images, "label": list(range(n))}, features=features)


def test_save_to_disk_dataset_detects_the_image_column_and_keeps_order(tmp_path):
    import datasets

    reference = _faces_dataset(5)
    datasets.DatasetDict({"train": reference, "test": _faces_dataset(3)}).save_to_disk(str(tmp_path / "dd"))
    ds = build_dataset(str(tmp_path / "dd"), "train", image_size=64, num_samples=4)
    assert len(ds) == 4 and ds[2]["index"] == 2
    expected = np.asarray(center_crop_adm(reference[2]["photo"].convert("RGB"), 64))
    want = torch.from_numpy(expected.copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(ds[2]["pixel_values"], want)
    with pytest.raises(ValueError, match="columns"):
        build_dataset(str(tmp_path / "dd"), "train", image_size=64, image_column="nope")


def test_parquet_file_with_explicit_column(tmp_path):
    path = tmp_path / "faces.parquet"
    _faces_dataset(3, column="picture").to_parquet(str(path))
    ds = build_dataset(str(path), "train", image_size=32, image_column="picture")
    assert len(ds) == 3 and ds[0]["pixel_values"].shape == (3, 32, 32)


def test_collate_drops_none_and_handles_empty_batches():
    item = {"pixel_values": torch.zeros(3, 4, 4), "index": 7}
    batch = collate_images([None, item, None])
    assert batch["pixel_values"].shape == (1, 3, 4, 4) and batch["index"].tolist() == [7]
    assert batch["num_skipped"] == 2
    empty = collate_images([None])
    assert empty["pixel_values"].numel() == 0 and empty["num_skipped"] == 1


# ------------------------------------------------------------------------------------------------- errors
def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="valid splits"):
        build_dataset("celeba64", "bogus", image_size=64)
    with pytest.raises(ValueError, match="image_size"):
        build_dataset("samples", "train", image_size=0)
    with pytest.raises(FileNotFoundError, match=r"'\./does/not/exist' does not exist.*`samples`.*`celeba64`.*Hub"):
        build_dataset("./does/not/exist", "train", image_size=32)
    with pytest.raises(ValueError, match=r"'samples'.*cannot be streamed: drop --streaming.*--data.streaming false"):
        build_dataset("samples", "train", image_size=32, streaming=True)
    with pytest.raises(ValueError, match=r"'samples'.*has no columns: image_column='img'"):
        build_dataset("samples", "train", image_size=32, image_column="img")


def test_offline_hub_dataset_names_the_dataset_and_the_alternatives(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # conftest sets HF_HUB_OFFLINE=1 as well
    with pytest.raises(DatasetUnavailableError) as info:
        build_dataset("celeba64", "test", image_size=64)
    message = str(info.value)
    assert "flwrlabs/celeba" in message and "celeba64" in message
    assert "--dataset samples" in message and "local image folder" in message
    with pytest.raises(DatasetUnavailableError, match="gated"):
        build_dataset("imagenet256", "validation", image_size=256, streaming=True)


def test_a_mistyped_dataset_name_gets_a_suggestion(monkeypatch):
    """`sampels` is no Hub dataset this machine can load and no vistok name: the message names the close one."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DatasetUnavailableError, match=r"'sampels'.*did you mean 'samples'\?") as info:
        build_dataset("sampels", "test", image_size=32)
    assert len(str(info.value).splitlines()) == 1  # one cause, one remedy: not the offline how-to
    with pytest.raises(DatasetUnavailableError, match=r"did you mean 'celeba64'\?"):
        build_dataset("celeba46", "test", image_size=64)
    with pytest.raises(DatasetUnavailableError) as info:  # nothing close: the usual explanation, no guess
        build_dataset("someone/faces", "test", image_size=64)
    assert "did you mean" not in str(info.value)


def test_skipped_samples_name_their_file_and_reason_across_worker_processes(image_folder):
    from vistok.data import SkippedSample

    ds = build_dataset(str(image_folder), "train", image_size=32)
    batches = list(build_dataloader(ds, batch_size=2, num_workers=2))
    skipped = [s for b in batches for s in b["skipped"]]
    assert len(skipped) == 1 and isinstance(skipped[0], SkippedSample)
    assert skipped[0].file.endswith("6_corrupt.jpg") and "cannot identify image file" in skipped[0].reason
    assert ds[skipped[0].index] == skipped[0]


def test_a_very_thin_image_is_refused_from_its_header_before_decoding(tmp_path):
    """1×250,000 px: refused by its size alone — the pixel data here is cut short, and the thin refusal still comes
    first, so nothing was decoded (or resized)."""
    from vistok.data import ImageInputError

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (250_000, 1, 3), dtype=np.uint8)).save(buffer, "PNG")
    path = tmp_path / "thin.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageInputError, match=r"1×250000 pixels, 250,000 times as tall as it is wide.*64:1"):
        open_image(str(path))
    assert open_image(Image.new("RGB", (640, 10))).size == (640, 10)  # 64:1 is still taken
    with pytest.raises(ImageInputError, match="641×10 pixels, 64.1 times as wide as it is tall"):
        open_image(Image.new("RGB", (641, 10)))

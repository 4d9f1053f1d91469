"""Evaluation protocols (vistok.metrics.protocols, `vistok evaluate --protocol`): each convention against the
reference package that implements it (scikit-image, torchvision, torch-fidelity, pytorch-fid, clean-fid) or, where
the upstream is a script, against its formula; reports record the protocol; generation reference batches are
refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from vistok import VisTokenizer, VisTokenizerConfig
from vistok.cli import main as vistok_main
from vistok.metrics import PROTOCOLS, build_inception, get_protocol, psnr_per_image, ssim_per_image
from vistok.metrics.fid import FID, InceptionFeatures, clean_fid_resize
from vistok.metrics.protocols import (
    ADM_CENTER_CROP,
    SKIMAGE_SSIM,
    TORCHVISION_BICUBIC_CROP,
    GenerationReferenceError,
    SSIMConvention,
    check_rfid_reference,
    originals_to_uint8,
    reconstructions_to_uint8,
)
from vistok.metrics.testing import (
    save_random_alexnet_weights,
    save_random_inception_weights,
    save_random_vgg16_weights,
)
from vistok.preprocessing import preprocess


@pytest.fixture(autouse=True)
def _offline(no_weight_downloads):
    """No network, no user weight caches."""


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "inception.pth"
    save_random_inception_weights(path)
    return path


@pytest.fixture(scope="module")
def photos():
    from vistok.data.samples import load_photos

    return load_photos("test") + load_photos("train")[:2]


def _pairs(seed: int = 0, shape=(3, 3, 40, 36)):
    generator = torch.Generator().manual_seed(seed)
    original = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    noise = torch.randint(-40, 41, shape, generator=generator)
    distorted = (original.int() + noise).clamp(0, 255).to(torch.uint8)
    return original, distorted


# ------------------------------------------------------------------------------------- protocols as data
def test_every_protocol_is_complete_data():
    assert {"vistok", "upstream", "llamagen", "torch-fidelity", "clean-fid", "original-resolution"} <= set(PROTOCOLS)
    for protocol in PROTOCOLS.values():
        conventions = json.loads(json.dumps(protocol.conventions()))
        for key in ("split", "images", "to_uint8", "ssim", "lpips", "rfid", "follows"):
            assert key in conventions, (protocol.name, key)
        assert conventions["ssim"]["data_range"] in (1.0, 2.0)
        assert conventions["lpips"]["network"] in ("vgg", "alex")
        assert "reference" in conventions["rfid"] and conventions["rfid"]["inception_resize"]
        assert protocol.follows, protocol.name
    with pytest.raises(ValueError, match="valid protocols: vistok"):
        get_protocol("llamagen-ish")


# ----------------------------------------------------------------------------------------- uint8 rules
def test_uint8_conversions_are_the_upstream_formulas():
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2.4 - 1.2  # beyond [-1, 1] too
    expected = {
        "vistok": ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8),
        # LlamaGen reconstruction_vq_ddp.py: torch.clamp(127.5 * samples + 128.0, 0, 255) ... dtype=torch.uint8
        "llamagen": torch.clamp(127.5 * x + 128.0, 0, 255).to(torch.uint8),
        # MaskBit eval_tokenizer.py clamps the [0, 1] output; evaluator.py: (fake_images * 255).to(torch.uint8)
        "torch-fidelity": (torch.clamp((x + 1) / 2, 0.0, 1.0) * 255).to(torch.uint8),
        # SEED-Voken: clamp(-1, 1), (x + 1) / 2, (x * 255.0).to(dtype=torch.uint8)
        "original-resolution": (((x.clamp(-1, 1) + 1) / 2) * 255.0).to(torch.uint8),
    }
    for name, want in expected.items():
        assert torch.equal(reconstructions_to_uint8(x, get_protocol(name)), want), name


def test_originals_take_the_upstream_float_route():
    """LlamaGen and TiTok / MaskBit recover every grey level; SEED-Voken's float32 (k / 127.5 - 1) route truncates
    95 of the 256 levels to k - 1 — the originals its PSNR and SSIM compare against."""
    k = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    pixels = k.float() / 127.5 - 1
    for name in ("vistok", "upstream", "llamagen", "torch-fidelity", "clean-fid"):
        assert torch.equal(originals_to_uint8(pixels, get_protocol(name)), k), name
    seed = originals_to_uint8(pixels, get_protocol("original-resolution"))
    # data/base.py: (image / 127.5 - 1.0).astype(np.float32); evaluation_original_reso.py: ((x + 1) / 2 * 255).uint8
    upstream = torch.from_numpy((np.arange(256) / 127.5 - 1.0).astype(np.float32))
    upstream = (((upstream + 1) / 2) * 255.0).to(torch.uint8)
    assert torch.equal(seed[0, 0].flatten(), upstream)
    assert int((seed[0, 0].flatten() != k[0, 0].flatten()).sum()) == 95


# ----------------------------------------------------------------------------------------- PSNR / SSIM
def test_psnr_equals_scikit_image_and_maskbits_formula():
    original, distorted = _pairs()
    for i in range(len(original)):
        want = sk_psnr(original[i].permute(1, 2, 0).numpy() / 255.0, distorted[i].permute(1, 2, 0).numpy() / 255.0)
        assert float(psnr_per_image(original[i : i + 1], distorted[i : i + 1])) == pytest.approx(want, abs=1e-9)
    # MaskBit evaluator.py: 10 * log10(data_range ** 2 / (mse + 1e-10)) on float images in [0, 1]
    a, b = original.double() / 255, distorted.double() / 255
    want = 10 * torch.log10(1 / ((a - b).pow(2).mean(dim=(1, 2, 3)) + 1e-10))
    got = psnr_per_image(original.float() / 127.5 - 1, distorted.float() / 127.5 - 1, eps=1e-10)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("protocol", ["llamagen", "original-resolution"])
def test_skimage_ssim_conventions_equal_scikit_image(protocol):
    """LlamaGen: structural_similarity(..., data_range=2.0, channel_axis=-1); SEED-Voken: data_range=1.0 — both
    with skimage's defaults (uniform 7×7 window, sample covariance)."""
    convention = get_protocol(protocol).ssim
    original, distorted = _pairs(1)
    got = ssim_per_image(original, distorted, convention)
    for i in range(len(original)):
        want = sk_ssim(distorted[i].permute(1, 2, 0).numpy() / 255.0, original[i].permute(1, 2, 0).numpy() / 255.0,
                       data_range=convention.data_range, channel_axis=-1)  # fmt: skip
        assert float(got[i]) == pytest.approx(want, abs=1e-10)


def test_vistok_ssim_equals_scikit_image_gaussian():
    original, distorted = _pairs(2)
    got = ssim_per_image(original, distorted)
    for i in range(len(original)):
        want = sk_ssim(distorted[i].permute(1, 2, 0).numpy() / 255.0, original[i].permute(1, 2, 0).numpy() / 255.0,
                       data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                       use_sample_covariance=False)  # fmt: skip
        assert float(got[i]) == pytest.approx(want, abs=2e-5)
    # vistok's own implementation of the same convention agrees with pytorch-msssim's
    same = SSIMConvention(implementation="vistok")
    torch.testing.assert_close(ssim_per_image(original, distorted, same), got.double(), rtol=0, atol=2e-5)


def test_maskbit_ssim_is_its_reflect_padded_formula():
    """MaskBit evaluator.py: Gaussian 11 / 1.5, F.pad(mode='reflect') by 5, SSIM map averaged over every pixel —
    checked against scipy.ndimage.correlate with mode='mirror' (torch's reflect) and the same kernel."""
    from scipy.ndimage import correlate

    convention = get_protocol("torch-fidelity").ssim
    original, distorted = _pairs(3, shape=(2, 3, 24, 20))
    x, y = original.double().numpy() / 255, distorted.double().numpy() / 255
    offsets = np.arange(11) - 5.0
    g = np.exp(-0.5 * (offsets / 1.5) ** 2)
    g /= g.sum()
    window = np.outer(g, g)

    def blur(a):
        return correlate(a, window, mode="mirror")

    c1, c2 = 0.01**2, 0.03**2
    for i in range(2):
        values = []
        for c in range(3):
            a, b = x[i, c], y[i, c]
            mu_a, mu_b = blur(a), blur(b)
            va, vb, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
            values.append(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2)))
        got = ssim_per_image(original[i : i + 1].float() / 127.5 - 1, distorted[i : i + 1].float() / 127.5 - 1,
                             convention)  # fmt: skip
        assert float(got) == pytest.approx(float(np.mean(values)), abs=1e-6)


# ------------------------------------------------------------------------------------------ framings
def test_llamagen_framing_is_adms_center_crop_arr(photos):
    """LlamaGen tokenizer/validation/val_ddp.py center_crop_arr (ADM's), copied as the formula."""

    def center_crop_arr(pil_image, image_size):
        while min(*pil_image.size) >= 2 * image_size:
            pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
        scale = image_size / min(*pil_image.size)
        pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
        arr = np.array(pil_image)
        crop_y = (arr.shape[0] - image_size) // 2
        crop_x = (arr.shape[1] - image_size) // 2
        return arr[crop_y : crop_y + image_size, crop_x : crop_x + image_size]

    assert get_protocol("llamagen").pipeline == ADM_CENTER_CROP
    for photo in photos:
        for size in (64, 256):
            assert np.array_equal(preprocess(photo, ADM_CENTER_CROP.at(size)), center_crop_arr(photo, size))


def test_torch_fidelity_framing_is_torchvisions_resize_and_center_crop(photos):
    from torchvision import transforms

    assert get_protocol("torch-fidelity").pipeline == TORCHVISION_BICUBIC_CROP
    for photo in photos:
        for size in (64, 256):
            pipeline = transforms.Compose([
                transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC, antialias=True),
                transforms.CenterCrop(size),
            ])  # fmt: skip
            want = np.asarray(pipeline(photo))
            got = preprocess(photo, TORCHVISION_BICUBIC_CROP.at(size))
            assert np.abs(got.astype(int) - want.astype(int)).max() == 0


# ------------------------------------------------------------------------------------- Inception resizes
def test_clean_fid_resize_equals_clean_fid():
    from cleanfid.resize import build_resizer

    resizer = build_resizer("clean")
    images = np.random.default_rng(0).integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    got = clean_fid_resize(images)
    for i in range(2):
        np.testing.assert_array_equal(got[i], resizer(images[i]))


def test_tf1_bilinear_path_equals_torch_fidelitys_forward(inception_file):
    """The float front end + trunk reproduce torch-fidelity's own forward on the same uint8 images."""
    network = build_inception(inception_file)
    images = torch.randint(0, 256, (2, 3, 40, 52), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    direct = InceptionFeatures(network, "tf1_bilinear")(images)  # the network's forward
    via_float = InceptionFeatures(network, "tf1_bilinear")(images.float() / 127.5 - 1)  # the trunk path
    torch.testing.assert_close(via_float, direct, rtol=1e-4, atol=1e-4)


def test_torch_bilinear_path_equals_pytorch_fid(inception_file, monkeypatch):
    """pytorch-fid's InceptionV3([2048 block]) — resize_input, normalize_input, its FID blocks — loaded with the same
    (random) weights gives the features of vistok's torch_bilinear front end on torch-fidelity's trunk."""
    import pytorch_fid.inception as pytorch_fid_inception

    state = torch.load(inception_file, map_location="cpu", weights_only=True)
    monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: state)
    reference = pytorch_fid_inception.InceptionV3([3]).eval()
    images = torch.rand(2, 3, 45, 38, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = reference(images)[0].flatten(1)
    got = InceptionFeatures(build_inception(inception_file), "torch_bilinear")(images * 2 - 1)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


def test_torch_fidelity_fid_equals_torch_fidelitys_calculate_metrics(inception_file, tmp_path):
    import torch_fidelity

    generator = torch.Generator().manual_seed(6)
    originals = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=generator)
    recs = (originals.int() + torch.randint(-30, 31, originals.shape, generator=generator)).clamp(0, 255)
    recs = recs.to(torch.uint8)
    for name, batch in (("a", originals), ("b", recs)):
        (tmp_path / name).mkdir()
        for i, image in enumerate(batch):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / name / f"{i:03d}.png")
    want = torch_fidelity.calculate_metrics(
        input1=str(tmp_path / "a"), input2=str(tmp_path / "b"), fid=True, cuda=False, verbose=False,
        feature_extractor_weights_path=str(inception_file), cache=False, save_cpu_ram=True,
    )["frechet_inception_distance"]  # fmt: skip
    metric = FID(extractor=build_inception(inception_file), resize="tf1_bilinear", method="sqrtm")
    metric.update(originals, recs)
    assert metric.compute()["rfid"] == pytest.approx(want, rel=1e-3)


def test_lpips_alexnet_backbone_loads_from_a_torchvision_file(tmp_path):
    import lpips

    from vistok.metrics import build_lpips

    save_random_alexnet_weights(tmp_path / "alexnet.pth")
    model = build_lpips("alex", tmp_path / "alexnet.pth")
    state = torch.load(tmp_path / "alexnet.pth", weights_only=True)
    reference = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    for name, param in reference.net.named_parameters():
        slice_name, index, kind = name.split(".")
        param.data.copy_(state[f"features.{index}.{kind}"])
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(a, b), reference(a, b))


# --------------------------------------------------------------------------------- rFID references
def test_a_generation_reference_batch_is_refused_with_the_reason(tmp_path):
    virtual = tmp_path / "VIRTUAL_imagenet256_labeled.npz"
    np.savez(virtual, arr_0=np.zeros((2, 8, 8, 3), np.uint8), mu=np.zeros(4), sigma=np.eye(4))
    with pytest.raises(GenerationReferenceError, match="generation reference batch.*training set"):
        check_rfid_reference(virtual)
    renamed = tmp_path / "reference.npz"  # ADM's format, whatever its name: spatial sFID statistics
    np.savez(renamed, arr_0=np.zeros((2, 8, 8, 3), np.uint8), mu=np.zeros(4), sigma=np.eye(4),
             mu_s=np.zeros(4), sigma_s=np.eye(4))  # fmt: skip
    with pytest.raises(GenerationReferenceError):
        check_rfid_reference(renamed)
    check_rfid_reference(tmp_path / "val_imagenet.npz")  # LlamaGen's val_ddp.py output name: fine


# ------------------------------------------------------------------------------------- vistok evaluate
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny random tokenizer, one that records an upstream pipeline, random backbones, and photos of odd sizes."""
    root = tmp_path_factory.mktemp("protocol_assets")
    torch.manual_seed(0)
    config = VisTokenizerConfig(
        image_size=32,
        net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 1},
        quantizer={"type": "vq", "codebook_size": 64, "codebook_dim": 4},
    )
    tok = VisTokenizer(config)
    tok.save_pretrained(root / "tiny")
    tok.config.metadata = {**(tok.config.metadata or {}), "preprocessing": TORCHVISION_BICUBIC_CROP.at(32).to_dict()}
    tok.save_pretrained(root / "tiny-upstream")
    save_random_vgg16_weights(root / "vgg16.pth")
    save_random_alexnet_weights(root / "alexnet.pth")
    save_random_inception_weights(root / "inception.pth")
    from vistok.data.samples import load_photos

    photos = root / "photos"
    photos.mkdir()
    for i, (photo, size) in enumerate(zip(load_photos("test") * 2, [(50, 37), (41, 64), (70, 45), (33, 33)],
                                          strict=False)):  # fmt: skip
        photo.resize(size, Image.Resampling.BICUBIC).save(photos / f"{i}.png")
    return root


def _evaluate(assets, tmp_path, *extra, model="tiny", dataset=None, lpips="vgg16.pth"):
    output = tmp_path / "report.json"
    args = [
        "evaluate", "--model", str(assets / model), "--dataset", dataset or str(assets / "photos"),
        "--batch-size", "2", "--num-workers", "0", "--lpips-weights", str(assets / lpips),
        "--inception-weights", str(assets / "inception.pth"), "--output", str(output), *extra,
    ]  # fmt: skip
    assert vistok_main(args) == 0
    return json.loads(output.read_text())


def test_llamagen_protocol_end_to_end_equals_its_formulas(assets, tmp_path):
    """Under --protocol llamagen the report's PSNR and SSIM are scikit-image's on LlamaGen's uint8 images: the ADM
    crop of each photo, the reconstructions saved with LlamaGen's conversion."""
    report = _evaluate(assets, tmp_path, "--protocol", "llamagen", "--split", "train", "--save-dir",
                       str(tmp_path / "recs"), "--metrics", "psnr,ssim,codebook_usage")  # fmt: skip
    assert report["protocol"] == "llamagen"
    assert report["conventions"]["protocol"]["ssim"]["data_range"] == 2.0
    assert report["conventions"]["protocol"]["ssim"]["window"] == "uniform"
    (model,) = report["models"]
    assert model["images"]["source"] == "pipeline" and model["images"]["pipeline"]["box_prehalve"]
    assert model["dataset"]["protocol"] == "llamagen"
    photos = sorted((assets / "photos").glob("*.png"))
    recs = sorted((tmp_path / "recs").rglob("*.png"))
    psnrs, ssims = [], []
    for photo, rec in zip(photos, recs, strict=True):
        original = preprocess(Image.open(photo), ADM_CENTER_CROP.at(32)).astype(np.float32) / 255
        restored = np.asarray(Image.open(rec)).astype(np.float32) / 255
        psnrs.append(sk_psnr(restored, original))
        ssims.append(sk_ssim(restored, original, data_range=2.0, channel_axis=-1))
    results = model["results"]
    assert results["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-4)
    assert results["ssim"] == pytest.approx(np.mean(ssims), abs=1e-5)
    assert results["tokens_per_image"] == 64 and results["bits_per_image"] == 64 * 6


def test_upstream_is_the_default_and_generic_preprocessing_is_one_option(assets, tmp_path):
    report = _evaluate(assets, tmp_path, "--split", "train", "--metrics", "psnr", model="tiny-upstream")
    assert report["protocol"] == "upstream"
    images = report["models"][0]["images"]
    assert images["source"] == "upstream" and images["pipeline"]["crop_offset"] == "round"
    generic = _evaluate(assets, tmp_path, "--split", "train", "--metrics", "psnr", "--preprocessing", "generic",
                        model="tiny-upstream")  # fmt: skip
    assert generic["preprocessing_override"] == "generic" and generic["models"][0]["images"]["source"] == "generic"
    plain = _evaluate(assets, tmp_path, "--split", "train", "--metrics", "psnr")  # records no pipeline
    assert plain["models"][0]["images"]["source"] == "generic" and "records no upstream" in (
        plain["models"][0]["images"]["note"])


def test_original_resolution_pads_each_image_and_measures_it_whole(assets, tmp_path):
    report = _evaluate(assets, tmp_path, "--protocol", "original-resolution", "--split", "train", "--metrics",
                       "psnr,ssim,lpips,codebook_usage", lpips="alexnet.pth")  # fmt: skip
    (model,) = report["models"]
    assert model["images"]["source"] == "original" and model["images"]["pad_multiple"] == 16
    assert model["config"]["image_size"] == "original"
    sizes = [Image.open(p).size for p in sorted((assets / "photos").glob("*.png"))]
    tokens = [math.ceil(w / 16) * 16 // 4 * (math.ceil(h / 16) * 16 // 4) for w, h in sizes]
    assert model["results"]["tokens_per_image"] == pytest.approx(np.mean(tokens))
    assert report["conventions"]["protocol"]["lpips"]["network"] == "alex"
    for key in ("psnr", "ssim", "lpips"):  # rFID's float path: test_every_protocol_computes_every_metric
        assert math.isfinite(model["results"][key]), key


@pytest.fixture(scope="module")
def networks(assets):
    from vistok.metrics import build_lpips

    return {
        "vgg": build_lpips("vgg", assets / "vgg16.pth"),
        "alex": build_lpips("alex", assets / "alexnet.pth"),
        "inception": build_inception(assets / "inception.pth"),
    }


def test_every_protocol_computes_every_metric(networks):
    from vistok.metrics import ReconstructionMetrics

    """Every protocol's metrics compute; rFID once per resize into Inception (Inception costs seconds per image on
    a CPU)."""
    original, distorted = _pairs(7, shape=(2, 3, 32, 32))
    original, distorted = original.float() / 127.5 - 1, distorted.float() / 127.5 - 1
    resizes_done = set()
    for name, protocol in PROTOCOLS.items():
        wanted = ["psnr", "ssim", "lpips", "codebook_usage"]
        if protocol.inception_resize not in resizes_done:
            wanted.append("rfid")
            resizes_done.add(protocol.inception_resize)
        metrics = ReconstructionMetrics(
            codebook_size=16, metrics=wanted, protocol=name, lpips_network=networks[protocol.lpips_net],
            inception_extractor=networks["inception"],
        )  # fmt: skip
        metrics.update(original, distorted, torch.randint(0, 16, (2, 64)), torch.arange(2))
        results = metrics.compute()
        assert all(math.isfinite(results[k]) for k in wanted if k != "codebook_usage"), name
        assert results["skipped"] == {} and metrics.conventions()["protocol"]["name"] == name
    assert resizes_done == {"tf1_bilinear", "torch_bilinear", "clean_fid_bicubic"}


def test_rfid_reference_of_the_same_originals_gives_the_same_rfid(networks, tmp_path):
    from vistok.metrics import ReconstructionMetrics

    original, distorted = _pairs(8, shape=(2, 3, 32, 32))
    np.savez(tmp_path / "val.npz", arr_0=original.permute(0, 2, 3, 1).numpy())
    values = []
    for reference in (None, tmp_path / "val.npz"):
        metrics = ReconstructionMetrics(metrics=("rfid",), protocol="vistok", rfid_reference=reference,
                                        inception_extractor=networks["inception"])  # fmt: skip
        metrics.update(original, distorted)
        values.append(metrics.compute()["rfid"])
    assert values[1] == pytest.approx(values[0], rel=1e-6)


def test_evaluate_refuses_a_generation_reference_batch(assets, tmp_path):
    virtual = tmp_path / "VIRTUAL_imagenet256_labeled.npz"
    np.savez(virtual, arr_0=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(SystemExit, match="generation reference batch"):
        _evaluate(assets, tmp_path, "--rfid-reference", str(virtual), dataset="samples")


def test_skimage_ssim_convention_object_is_the_default_window():
    assert SKIMAGE_SSIM.size == 7 and SKIMAGE_SSIM.covariance == "sample"


def test_a_card_keeps_evaluations_under_other_protocols_apart():
    from vistok.metrics.model_card import evaluation_key

    base = {"dataset_id": "ILSVRC/imagenet-1k", "split": "validation", "image_size": 256}
    assert evaluation_key(base) == evaluation_key({**base, "protocol": "upstream"}) == evaluation_key(
        {**base, "protocol": "vistok"})
    assert evaluation_key({**base, "protocol": "llamagen"}) != evaluation_key(base)

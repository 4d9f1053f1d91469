"""vistok.metrics: agreement with reference implementations, streaming/merging semantics, offline weights."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy.stats
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim
from skimage.transform import resize

from vistok.metrics import (
    FID,
    INCEPTION_V3_FID,
    LPIPS,
    LPIPS_VGG16,
    PSNR,
    SSIM,
    CodebookUsage,
    GaussianFeatureStatistics,
    MissingWeightsError,
    ReconstructionMetrics,
    build_inception,
    build_lpips_vgg,
    frechet_distance,
    psnr_per_image,
    resolve_weights,
    save_code_histogram,
    ssim_per_image,
    to_uint8,
)
from vistok.metrics.testing import save_random_inception_weights, save_random_vgg16_weights


@pytest.fixture(autouse=True)
def _no_downloads(no_weight_downloads):
    """Every test here runs without network or the user's weight caches."""


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "vgg16-random.pth"
    save_random_vgg16_weights(path)
    return path


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "inception-random.pth"
    save_random_inception_weights(path)
    return path


def _photo_pairs():
    """(original, distorted) uint8 HWC pairs: real photos and random noise images, distorted by noise."""
    rng = np.random.default_rng(0)
    photos = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    photos = [(resize(p, (64, 80), anti_aliasing=True) * 255).round().astype(np.uint8) for p in photos]
    photos += [rng.integers(0, 256, (64, 80, 3), dtype=np.uint8) for _ in range(2)]
    pairs = []
    for i, photo in enumerate(photos):
        noisy = np.clip(photo + rng.normal(0, 4 + 6 * i, photo.shape), 0, 255).round().astype(np.uint8)
        pairs.append((photo, noisy))
    return pairs


def _to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def test_to_uint8_rounds_and_clamps():
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0 / 255, 1.0, 2.0]).view(1, 1, 1, 6)
    assert to_uint8(x).flatten().tolist() == [0, 0, 128, 128, 255, 255]  # 127.5 rounds half to even
    with pytest.raises(TypeError, match="floating-point"):
        to_uint8(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        to_uint8(torch.zeros(3, 4, 4))


def test_psnr_and_ssim_match_scikit_image():
    pairs = _photo_pairs()
    original, distorted = _to_tensor([p[0] for p in pairs]), _to_tensor([p[1] for p in pairs])
    expected_psnr = [sk_psnr(o / 255, d / 255, data_range=1) for o, d in pairs]
    expected_ssim = [
        sk_ssim(
            o / 255,
            d / 255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=2,
        )
        for o, d in pairs
    ]
    np.testing.assert_allclose(psnr_per_image(original, distorted).numpy(), expected_psnr, rtol=0, atol=1e-4)
    np.testing.assert_allclose(ssim_per_image(original, distorted).numpy(), expected_ssim, rtol=0, atol=1e-4)
    assert len(set(np.round(expected_ssim, 3))) == len(pairs)  # the cases really differ

    # streaming in uneven batches gives the mean over images
    psnr, ssim = PSNR(), SSIM()
    for chunk in (slice(0, 2), slice(2, 5)):
        psnr.update(original[chunk], distorted[chunk])
        ssim.update(original[chunk], distorted[chunk])
    assert psnr.compute()["psnr"] == pytest.approx(np.mean(expected_psnr), abs=1e-4)
    assert ssim.compute()["ssim"] == pytest.approx(np.mean(expected_ssim), abs=1e-4)


def test_ssim_equals_torchmetrics_map_without_its_padded_border():
    from torchmetrics.functional.image import structural_similarity_index_measure

    pairs = _photo_pairs()
    original, distorted = _to_tensor([p[0] for p in pairs]), _to_tensor([p[1] for p in pairs])
    _, ssim_map = structural_similarity_index_measure(
        distorted.float() / 255,
        original.float() / 255,
        sigma=1.5,
        data_range=1.0,
        reduction="none",
        return_full_image=True,
    )
    expected = ssim_map[..., 5:-5, 5:-5].flatten(1).mean(1)
    torch.testing.assert_close(ssim_per_image(original, distorted), expected, rtol=0, atol=1e-5)


def test_pixel_metrics_validate_input():
    a = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ValueError, match="same shape"):
        psnr_per_image(a, a[:1])
    with pytest.raises(TypeError, match="same dtype"):  # uint8, or float pixel values (a protocol's), not mixed
        ssim_per_image(a, a.float())
    with pytest.raises(TypeError, match="uint8"):
        ssim_per_image(a.long(), a.long())
    with pytest.raises(ValueError, match="larger than 10 pixels"):
        ssim_per_image(a[..., :8, :8], a[..., :8, :8])
    with pytest.raises(ValueError, match="before any update"):
        PSNR().compute()


def test_frechet_distance_closed_form_for_commuting_gaussians():
    rng = np.random.default_rng(1)
    dim = 6
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    variances1, variances2 = rng.uniform(0.2, 3, dim), rng.uniform(0.2, 3, dim)
    cov1 = rotation @ np.diag(variances1) @ rotation.T
    cov2 = rotation @ np.diag(variances2) @ rotation.T
    mean1, mean2 = rng.normal(size=dim), rng.normal(size=dim)
    closed_form = np.sum((mean1 - mean2) ** 2) + np.sum(
        variances1 + variances2 - 2 * np.sqrt(variances1 * variances2)
    )
    assert frechet_distance(mean1, cov1, mean2, cov2) == pytest.approx(closed_form, rel=1e-9)
    assert frechet_distance(mean1, cov1, mean2, cov2, method="sqrtm") == pytest.approx(closed_form, rel=1e-9)
    assert frechet_distance(mean1, cov1, mean1, cov1) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(mean1, cov1, mean2[:3], cov2)
    with pytest.raises(ValueError, match="'eigh' or 'sqrtm'"):
        frechet_distance(mean1, cov1, mean2, cov2, method="svd")


def test_eigh_and_sqrtm_agree_on_singular_covariances():
    """Fewer samples than dimensions (as with small evaluation sets): both square-root methods still agree."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(30, 64)), rng.normal(size=(40, 64)) * 1.3 + 0.2
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
    eigh = frechet_distance(*stats[0], *stats[1], method="eigh")
    sqrtm = frechet_distance(*stats[0], *stats[1], method="sqrtm")
    assert eigh == pytest.approx(sqrtm, rel=1e-6)


def test_streaming_feature_statistics_match_numpy_and_merge():
    rng = np.random.default_rng(2)
    features = rng.normal(loc=3.0, scale=2.0, size=(500, 8)) @ rng.normal(size=(8, 8))
    whole = GaussianFeatureStatistics(8)
    part_a, part_b = GaussianFeatureStatistics(8), GaussianFeatureStatistics(8)
    for start in range(0, 500, 64):
        whole.update(torch.from_numpy(features[start : start + 64]))
    part_a.update(torch.from_numpy(features[:123]))
    part_b.update(torch.from_numpy(features[123:]))
    part_a.merge_state(part_b.state())
    for stats in (whole, part_a):
        mean, cov = stats.mean_and_covariance()
        np.testing.assert_allclose(mean, features.mean(0), rtol=1e-12)
        np.testing.assert_allclose(cov, np.cov(features, rowvar=False), rtol=1e-10, atol=1e-10)
    # FID of a set against itself is ~0; against a shifted copy it is the squared shift.
    mean, cov = whole.mean_and_covariance()
    assert frechet_distance(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(mean, cov, mean + 0.5, cov) == pytest.approx(8 * 0.25, rel=1e-6)


def test_streaming_fid_of_sampled_gaussians_approaches_closed_form():
    rng = np.random.default_rng(3)
    dim, count = 4, 20000
    std1, std2 = np.array([1.0, 2.0, 0.5, 1.5]), np.array([1.5, 1.0, 0.5, 3.0])
    shift = np.array([1.0, 0.0, -1.0, 0.5])
    closed_form = np.sum(shift**2) + np.sum((std1 - std2) ** 2)
    metric = FID(extractor=torch.nn.Identity(), feature_dim=dim)
    metric.originals.update(torch.from_numpy(rng.normal(size=(count, dim)) * std1))
    metric.reconstructions.update(torch.from_numpy(rng.normal(size=(count, dim)) * std2 + shift))
    assert metric.compute()["rfid"] == pytest.approx(closed_form, rel=0.05)


def _reference_queue_usage(batches, codebook_size, queue_size):
    """The seed's definition, literally: a FIFO queue fed with each batch's flattened indices."""
    queue = torch.zeros(0, dtype=torch.int64)
    for batch in batches:
        queue = torch.cat([queue, batch.flatten()])[-queue_size:]
    return torch.unique(queue).numel() / codebook_size


@pytest.mark.parametrize("queue_size", [1, 50, 100, 10_000])
def test_codebook_usage_queue_matches_the_fifo_definition(queue_size):
    generator = torch.Generator().manual_seed(queue_size)
    codebook_size = 64
    # early images use all codes, late images only a few: the queue must see only the late ones
    batches = [torch.randint(0, codebook_size, (5, 3, 3), generator=generator) for _ in range(4)]
    batches += [torch.randint(0, 7, (b, 3, 3), generator=generator) for b in (3, 4, 1)]
    metric = CodebookUsage(codebook_size, queue_size=queue_size)
    for batch in batches:
        metric.update(batch)
    result = metric.compute()
    everything = torch.cat([b.flatten() for b in batches])
    assert result["codebook_usage"] == _reference_queue_usage(batches, codebook_size, queue_size)
    assert result["codebook_queue_tokens"] == min(queue_size, everything.numel())
    assert result["codebook_histogram"] == torch.bincount(everything, minlength=codebook_size).tolist()
    assert result["codebook_usage_split"] == torch.unique(everything).numel() / codebook_size
    counts = np.bincount(everything.numpy(), minlength=codebook_size)
    assert result["perplexity"] == pytest.approx(math.exp(scipy.stats.entropy(counts)), rel=1e-12)
    # memory stays bounded: at most the images that can reach the queue plus one batch
    assert metric.tokens.numel() <= queue_size + 9 + 5 * 9


def test_codebook_usage_merges_shards_in_data_order():
    generator = torch.Generator().manual_seed(0)
    indices = torch.randint(0, 32, (40, 2, 2), generator=generator)
    indices[30:] = torch.randint(0, 4, (10, 2, 2), generator=generator)
    single = CodebookUsage(32, queue_size=30)
    for start in range(0, 40, 8):
        single.update(indices[start : start + 8])
    # three "processes" with a shuffled assignment of images, each fed in its own order
    permutation = torch.randperm(40, generator=generator)
    shards = [CodebookUsage(32, queue_size=30) for _ in range(3)]
    for rank, shard in enumerate(shards):
        positions = permutation[rank::3]
        for start in range(0, positions.numel(), 5):
            chunk = positions[start : start + 5]
            shard.update(indices[chunk], chunk)
    merged = CodebookUsage(32, queue_size=30)
    for shard in shards:
        merged.merge_state(shard.state())
    assert merged.compute() == single.compute()
    assert torch.equal(merged.queue(), indices.flatten()[-30:])


def test_codebook_usage_rejects_bad_input():
    metric = CodebookUsage(8)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        metric.update(torch.tensor([[8]]))
    with pytest.raises(TypeError, match="integer"):
        metric.update(torch.zeros(1, 2, 2))
    metric.update(torch.zeros(2, 2, 2, dtype=torch.long), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="added twice"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([1]))
    with pytest.raises(ValueError, match="positive int"):
        CodebookUsage(0)


def test_histogram_png(tmp_path):
    path = tmp_path / "hist.png"
    save_code_histogram([5, 0, 3, 1], path, title="toy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_weights_message_says_how_to_provide_them(tmp_path):
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(LPIPS_VGG16)
    message = str(error.value)
    assert "VISTOK_LPIPS_VGG_WEIGHTS" in message and "--lpips-weights" in message
    assert os.path.join("hub", "checkpoints", "vgg16-397923af.pth") in message
    with pytest.raises(MissingWeightsError, match="not a file"):
        resolve_weights(INCEPTION_V3_FID, tmp_path / "nope.pth")


def test_weights_found_through_option_env_var_and_hub_cache(monkeypatch, tmp_path, vgg_weights):
    assert resolve_weights(LPIPS_VGG16, vgg_weights) == vgg_weights
    monkeypatch.setenv("VISTOK_LPIPS_VGG_WEIGHTS", str(vgg_weights))
    assert resolve_weights(LPIPS_VGG16) == vgg_weights
    monkeypatch.delenv("VISTOK_LPIPS_VGG_WEIGHTS")
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"")  # pytorch-fid's file name counts too
    assert resolve_weights(INCEPTION_V3_FID).name == "pt_inception-2015-12-05-6726825d.pth"


def test_lpips_with_local_vgg_weights(vgg_weights):
    network = build_lpips_vgg(vgg_weights)
    state = torch.load(vgg_weights, weights_only=True)
    assert torch.equal(network.net.slice3.state_dict()["12.weight"], state["features.12.weight"])
    assert not any(p.requires_grad for p in network.parameters())
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=generator)
    other = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=generator)
    metric = LPIPS(network=network)
    metric.update(images, images)
    assert metric.compute()["lpips"] == pytest.approx(0.0, abs=1e-6)
    metric.reset()
    metric.update(images, other)
    assert metric.compute()["lpips"] > 0


def test_lpips_rejects_a_file_of_the_wrong_network(tmp_path):
    path = tmp_path / "not-vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(MissingWeightsError, match="not a torchvision vgg16"):
        build_lpips_vgg(path)


def test_inception_extractor_with_local_weights(inception_weights, vgg_weights):
    extractor = build_inception(inception_weights)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=generator)
    features = extractor(images)[0]
    assert features.shape == (4, 2048) and torch.isfinite(features).all() and features.std() > 0
    with pytest.raises(MissingWeightsError, match="Inception"):
        build_inception(vgg_weights)
    with pytest.raises(ValueError, match="3 channels"):
        FID(extractor=extractor).update(images[:, :1], images[:, :1])


def test_suite_skips_metrics_without_weights_and_computes_the_rest():
    metrics = ReconstructionMetrics(codebook_size=16)
    assert set(metrics.skipped) == {"lpips", "rfid"}
    assert "VISTOK_INCEPTION_WEIGHTS" in metrics.skipped["rfid"]
    generator = torch.Generator().manual_seed(0)
    original = torch.rand(4, 3, 24, 24, generator=generator) * 2 - 1
    reconstruction = (original + 0.05 * torch.randn(4, 3, 24, 24, generator=generator)).clamp(-1, 1)
    indices = torch.randint(0, 16, (4, 6, 6), generator=generator)
    metrics.update(original, reconstruction, indices, torch.arange(4))
    results = metrics.compute()
    assert results["num_images"] == 4
    assert set(results["skipped"]) == {"lpips", "rfid"}
    expected = psnr_per_image(to_uint8(original), to_uint8(reconstruction)).double().mean()
    assert results["psnr"] == pytest.approx(float(expected), rel=1e-12)
    assert 0 < results["ssim"] < 1 and 0 < results["codebook_usage"] <= 1
    with pytest.raises(ValueError, match="valid names"):
        ReconstructionMetrics(metrics=("psnr", "fid"))


def test_suite_with_all_metrics_offline(vgg_weights, inception_weights):
    """The full path with every backbone; an exact reconstruction gives FID ~0, LPIPS 0, SSIM 1, PSNR inf."""
    metrics = ReconstructionMetrics(
        codebook_size=16, lpips_weights=vgg_weights, inception_weights=inception_weights
    )
    assert metrics.skipped == {}
    generator = torch.Generator().manual_seed(1)
    original = torch.rand(3, 3, 32, 32, generator=generator) * 2 - 1
    metrics.update(original, original.clone(), torch.randint(0, 16, (3, 4, 4), generator=generator))
    results = metrics.compute()
    assert results["rfid"] == pytest.approx(0.0, abs=1e-3)
    assert results["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert results["ssim"] == pytest.approx(1.0) and results["psnr"] == math.inf
    assert results["skipped"] == {} and results["num_images"] == 3
    assert metrics.conventions()["ssim"]["sigma"] == 1.5


class _MeanColourFeatures(torch.nn.Module):
    """A tiny stand-in feature extractor: per-channel means and standard deviations of uint8 images."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().flatten(2)
        return torch.cat([x.mean(-1), x.std(-1)], dim=1)


def _data_for_sync_test():
    generator = torch.Generator().manual_seed(5)
    original = torch.rand(11, 3, 16, 16, generator=generator) * 2 - 1
    reconstruction = (original + 0.1 * torch.randn(11, 3, 16, 16, generator=generator)).clamp(-1, 1)
    indices = torch.randint(0, 32, (11, 4, 4), generator=generator)
    return original, reconstruction, indices


def _evaluate_shard(rank: int, world: int) -> dict:
    original, reconstruction, indices = _data_for_sync_test()
    metrics = ReconstructionMetrics(
        codebook_size=32,
        queue_size=40,
        inception_extractor=_MeanColourFeatures(),
        metrics=METRICS_WITHOUT_LPIPS,
    )
    positions = torch.arange(rank, 11, world)  # a non-padding, interleaved shard
    for chunk in positions.split(2):
        metrics.update(original[chunk], reconstruction[chunk], indices[chunk], chunk)
    metrics.sync()
    return metrics.compute()


METRICS_WITHOUT_LPIPS = ("psnr", "ssim", "rfid", "codebook_usage")


def _sync_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.save(_evaluate_shard(rank, world), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_sync_across_processes_equals_single_process(tmp_path):
    import torch.multiprocessing as mp

    single = _evaluate_shard(0, 1)
    mp.spawn(_sync_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        merged = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert merged.keys() == single.keys() and merged["num_images"] == 11
        for key, value in single.items():
            if isinstance(value, float):
                assert merged[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
            else:
                assert merged[key] == value, key

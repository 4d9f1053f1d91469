"""The user-facing API of VisTokenizer: presets, bad input, transformers-5 pitfalls, Hub loading, processor."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor

import vistok
from vistok import PRESETS, VisTokenizer, VisTokenizerConfig, create_tokenizer, list_tokenizers

from .helpers import images, tiny_tokenizer

SEED_ROWS = [
    *(f"vqvae-celeba64-vq-d{d}" for d in (4, 8, 16, 32, 64)),
    "vqvae-celeba64-vq-d64-k1024", "vqvae-celeba64-vq-d64-k2048",
    "vqvae-celeba64-vq-d4-l2", "vqvae-celeba64-vq-d64-l2",
    "vqvae-celeba64-vq-d4-ema", "vqvae-celeba64-vq-d64-ema", "vqvae-celeba64-vq-d64-entropy",
    "fsqvae-celeba64-888", "fsqvae-celeba64-8555", "lfqvae-celeba64-d9", "simvqvae-celeba64-d64",
    "vqgan-taming-f16-1024", "vqgan-taming-f16-16384", "vqgan-llamagen-vq16", "vqgan-llamagen-vq8",
]


# ------------------------------------------------------------------------------------------------ presets
def test_list_tokenizers_has_every_seed_row_with_descriptions():
    presets = list_tokenizers()
    assert set(SEED_ROWS) <= set(presets)
    assert all(isinstance(d, str) and d for d in presets.values())
    assert all(PRESETS.get(name).source for name in presets)


@pytest.mark.parametrize("name", SEED_ROWS)
def test_every_preset_builds(name):
    with torch.device("meta"):
        tok = create_tokenizer(name)
    cfg = tok.config
    assert cfg.preset == name
    expected_codebook_size = {
        "fsqvae-celeba64-888": 512, "fsqvae-celeba64-8555": 1000, "lfqvae-celeba64-d9": 512,
        "vqvae-celeba64-vq-d64-k1024": 1024, "vqvae-celeba64-vq-d64-k2048": 2048, "vqgan-taming-f16-1024": 1024,
    }.get(name, 16384 if name.startswith(("vqgan-llamagen", "vqgan-taming-f16-16384")) else 512)
    assert tok.codebook_size == expected_codebook_size
    assert cfg.image_size % tok.downsample_factor == 0
    if name.startswith(("vqvae", "fsqvae", "lfqvae", "simvqvae")):
        assert cfg.image_size == 64 and tok.downsample_factor == 4
    else:
        assert cfg.image_size == 256 and tok.downsample_factor == (8 if name.endswith("vq8") else 16)


def test_preset_forward_on_cpu():
    tok = create_tokenizer("vqvae-celeba64-vq-d4")
    out = tok(images(tok))
    assert out.indices.shape == (2, 16, 16)


def test_create_tokenizer_merges_quantizer_overrides():
    tok = create_tokenizer("vqvae-celeba64-vq-d4", quantizer={"codebook_size": 64})
    assert tok.config.quantizer["codebook_size"] == 64 and tok.config.quantizer["codebook_dim"] == 4


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="did you mean 'vqvae-celeba64-vq-d4'"):
        create_tokenizer("vqvae-celeba64-vq-d5")


def test_unknown_config_and_create_tokenizer_options_raise_listing_valid_ones():
    valid = "image_size, num_channels, net, quantizer, preset, source, metadata"
    with pytest.raises(ValueError, match=rf"Unknown VisTokenizerConfig option\(s\) \['codebook_size'\]; valid options: {valid}"):
        VisTokenizerConfig(codebook_size=1024)  # belongs inside the quantizer spec
    with pytest.raises(ValueError, match=rf"unknown option\(s\) \['hidden'\]; valid options: {valid}"):
        create_tokenizer("vqvae-celeba64-vq-d4", hidden=3)
    with pytest.raises(ValueError, match=r"\['codebook_sz'\] \(did you mean 'codebook_size'.*\) for quantizer 'vq'; valid options: codebook_size"):
        create_tokenizer("vqvae-celeba64-vq-d4", quantizer={"codebook_sz": 64})
    with pytest.raises(ValueError, match=r"is a preset, an architecture without published weights.*vistok zoo list"):
        create_tokenizer("vqvae-celeba64-vq-d4", pretrained=True)
    assert create_tokenizer("vqvae-celeba64-vq-d4", pretrained=False).config.preset == "vqvae-celeba64-vq-d4"


def test_config_json_with_transformers_bookkeeping_keys_still_loads(tmp_path):
    """Keys transformers itself writes or passes (older versions wrote torch_dtype / _name_or_path) stay accepted."""
    tiny_tokenizer("vq").save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    config.update(torch_dtype="float32", _name_or_path="somewhere", output_attentions=False, architectures=["X"])
    path.write_text(json.dumps(config))
    assert VisTokenizer.from_pretrained(tmp_path).config.quantizer["type"] == "vq"
    config["quantiser"] = {"type": "fsq"}  # a misspelt field in a hand-edited config.json
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"\['quantiser'\]"):
        VisTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("family", ["vqgan", "magvit2"])
def test_levelled_nets_refuse_bad_levels_naming_the_family(family):
    with pytest.raises(ValueError, match=rf"{family} channel_multiplier must be a non-empty list of positive ints"):
        VisTokenizerConfig(net={"type": family, "channel_multiplier": [1, 0]})
    with pytest.raises(ValueError, match=rf"{family}: every level width base_channels\*multiplier \(36\) must be "):
        VisTokenizerConfig(net={"type": family, "base_channels": 12, "channel_multiplier": [2, 3], "norm_groups": 8})


def test_unknown_net_and_net_option():
    with pytest.raises(ValueError, match="valid names: " + ", ".join(vistok.NETS.names())):
        VisTokenizerConfig(net={"type": "resnet"})
    with pytest.raises(ValueError, match="valid options: hidden_channels"):
        VisTokenizerConfig(net={"type": "simple_cnn", "hidden": 3})
    with pytest.raises(ValueError, match="not divisible by the net's downsample factor 4"):
        VisTokenizerConfig(image_size=30)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer("vq").eval()


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: torch.zeros(1, 1, 16, 16), ValueError, r"shape \(B, 3, H, W\)"),
        (lambda: torch.zeros(3, 16, 16), ValueError, r"shape \(B, 3, H, W\)"),
        (lambda: torch.zeros(1, 3, 18, 16), ValueError, "multiples of the downsample factor 4"),
        (lambda: torch.zeros(1, 3, 16, 16, dtype=torch.uint8), TypeError, "floating-point"),
        (lambda: torch.full((1, 3, 16, 16), float("nan")), ValueError, "NaN or infinite"),
        (lambda: torch.full((1, 3, 16, 16), 255.0), ValueError, "looks like 0..255"),
        (lambda: np.zeros((1, 3, 16, 16), dtype=np.float32), TypeError, "torch.Tensor"),
    ],
)
def test_bad_pixel_values_raise_clear_errors(tok, make, error, message):
    with pytest.raises(error, match=message):
        tok(make())
    with pytest.raises(error, match=message):
        tok.encode(make())


@pytest.mark.parametrize(
    ("indices", "error", "message"),
    [
        (torch.full((1, 4, 4), 32), ValueError, r"\[0, 32\)"),
        (torch.full((1, 4, 4), -1), ValueError, r"\[0, 32\)"),
        (torch.zeros(16, dtype=torch.long), ValueError, r"shape \(B, h, w\)"),
        (torch.zeros(1, 4, 4), TypeError, "integer tensor"),
    ],
)
def test_bad_indices_raise_clear_errors(tok, indices, error, message):
    with pytest.raises(error, match=message):
        tok.decode(indices)


def test_decode_quantized_checks_shape(tok):
    with pytest.raises(ValueError, match=r"shape \(B, 4, h, w\)"):
        tok.decode_quantized(torch.zeros(1, 5, 4, 4))


def test_unit_range_images_warn_once_naming_the_fix():
    tok = tiny_tokenizer("vq").eval()
    x = images(tok)  # in [-1, 1], with negative values
    unit = (x + 1) / 2  # the same images scaled to [0, 1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tok.encode(x)
        tok.encode(torch.zeros_like(x))  # a constant batch says nothing about its range
    assert not [w for w in caught if issubclass(w.category, vistok.PixelRangeWarning)]
    with pytest.warns(vistok.PixelRangeWarning, match=r"\[0, 1\].*\[-1, 1\].*pixel_values \* 2 - 1.*image processor"):
        tok(unit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tok.encode(unit)
        tok(unit)
    assert not [w for w in caught if issubclass(w.category, vistok.PixelRangeWarning)]  # once per model
    with pytest.warns(vistok.PixelRangeWarning):
        tiny_tokenizer("fsq").encode(unit)  # another model warns again


def test_any_resolution_divisible_by_the_factor_works(tok):
    out = tok(torch.zeros(1, 3, 24, 40))
    assert out.indices.shape == (1, 6, 10) and out.reconstruction.shape == (1, 3, 24, 40)


# --------------------------------------------------------------------------------- transformers-5 pitfalls
def test_post_init_keeps_the_quantizer_codebook_init():
    """post_init() re-initialises with normal(0.02) unless _init_weights handles the codebook."""
    tok = VisTokenizer(VisTokenizerConfig(quantizer={"type": "vq", "codebook_size": 1024, "codebook_dim": 8}))
    bound = 1 / 1024
    assert tok.quantizer.codebook.abs().max() <= bound
    assert tok.quantizer.codebook.std() > bound / 4  # uniform, not collapsed to zeros


def test_non_persistent_buffers_are_rebuilt_after_from_pretrained(tmp_path):
    tok = tiny_tokenizer("fsq")
    tok.save_pretrained(tmp_path)
    loaded = VisTokenizer.from_pretrained(tmp_path)
    assert torch.equal(loaded.quantizer._levels, torch.tensor([4, 3, 2]))
    assert torch.equal(loaded.quantizer._basis, torch.tensor([1, 4, 12]))
    lfq = tiny_tokenizer("lfq")
    lfq.save_pretrained(tmp_path / "lfq")
    assert torch.equal(VisTokenizer.from_pretrained(tmp_path / "lfq").quantizer._bit_values, torch.tensor([16, 8, 4, 2, 1]))


def test_from_pretrained_returns_eval_mode_and_keeps_frozen_params_frozen(tmp_path):
    tok = tiny_tokenizer("vq", ema_decay=0.99)
    tok.save_pretrained(tmp_path)
    loaded = VisTokenizer.from_pretrained(tmp_path)
    assert not loaded.training
    assert not loaded.quantizer.codebook.requires_grad
    sim = tiny_tokenizer("simvq")
    sim.save_pretrained(tmp_path / "sim")
    loaded = VisTokenizer.from_pretrained(tmp_path / "sim")
    assert [n for n, p in loaded.quantizer.named_parameters() if p.requires_grad] == ["codebook_proj.weight"]


def test_saved_folder_is_safetensors_with_json_native_config(tmp_path):
    tok = tiny_tokenizer("fsq", "vqgan")
    tok.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "vistok"
    assert config["quantizer"] == {"type": "fsq", "levels": [4, 3, 2], "eps": 1e-3}
    assert config["net"]["channel_multiplier"] == [1, 2]  # tuple defaults serialise as lists


def test_dtype_argument_loads_in_bfloat16(tmp_path):
    tiny_tokenizer("vq").save_pretrained(tmp_path)
    loaded = VisTokenizer.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16
    out = loaded(torch.zeros(1, 3, 16, 16))
    assert out.reconstruction.dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model_type": "multi_modality", "architectures": ["MultiModalityCausalLM"]},
         r"model_type 'multi_modality', vistok expects model_type 'vistok'.*Janus.*vistok convert janus"),
        ({"_class_name": "VQModel", "_diffusers_version": "0.30.0", "num_vq_embeddings": 16384},
         r"diffusers class 'VQModel'.*VisTokenizer.from_diffusers"),
        ({"image_size": 16}, r"has no model_type, vistok expects model_type 'vistok'"),
    ],
)
def test_foreign_config_is_refused_naming_what_was_found(tmp_path, config, message):
    tiny_tokenizer("vq").save_pretrained(tmp_path)  # vistok weights, but someone else's config.json
    (tmp_path / "config.json").write_text(json.dumps(config))
    for load in (VisTokenizer.from_pretrained, VisTokenizerConfig.from_pretrained):
        with pytest.raises(ValueError, match=message):
            load(tmp_path)


def _rewrite_weights(folder: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    edit(weights)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


def test_checkpoint_with_missing_or_extra_weights_is_refused(tmp_path, caplog):
    import logging

    transformers_logger = logging.getLogger("transformers")  # does not propagate to the root logger
    transformers_logger.addHandler(caplog.handler)
    tiny_tokenizer("vq").save_pretrained(tmp_path)
    _rewrite_weights(tmp_path, lambda w: w.pop("quant_conv.bias"))
    with pytest.raises(ValueError, match=r"1 tensor\(s\) the config needs are missing \(quant_conv.bias\)"):
        VisTokenizer.from_pretrained(tmp_path)
    _rewrite_weights(tmp_path, lambda w: w.update({"quant_conv.bias": torch.zeros(4), "stray.weight": torch.zeros(2)}))
    with pytest.raises(ValueError, match=r"1 tensor\(s\) in the file are not used \(stray.weight\)"):
        VisTokenizer.from_pretrained(tmp_path)
    transformers_logger.removeHandler(caplog.handler)
    assert "LOAD REPORT" not in caplog.text  # one message, not transformers' table as well


def test_missing_weights_are_refused_even_without_transformers_private_hook(tmp_path, monkeypatch):
    """The refusal must not hang on transformers' private _adjust_missing_and_unexpected_keys alone: with that hook
    reduced to transformers' own behaviour, loading still refuses the incomplete checkpoint."""
    from transformers import PreTrainedModel

    monkeypatch.setattr(
        VisTokenizer, "_adjust_missing_and_unexpected_keys", PreTrainedModel._adjust_missing_and_unexpected_keys
    )
    tiny_tokenizer("vq").save_pretrained(tmp_path)
    _rewrite_weights(tmp_path, lambda w: w.pop("quant_conv.bias"))
    with pytest.raises(ValueError, match=r"1 tensor\(s\) the config needs are missing \(quant_conv.bias\)"):
        VisTokenizer.from_pretrained(tmp_path)


def test_output_loading_info_returns_the_model_and_an_empty_report(tmp_path):
    tiny_tokenizer("vq").save_pretrained(tmp_path)
    model, info = VisTokenizer.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(model, VisTokenizer) and not model.training
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])


def test_checkpoint_whose_config_changed_shape_is_refused(tmp_path):
    tiny_tokenizer("vq").save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["quantizer"]["codebook_size"] = 64  # the file holds a 32 × 4 codebook
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"quantizer.codebook: file \(32, 4\) vs config \(64, 4\)"):
        VisTokenizer.from_pretrained(tmp_path)


def test_model_type_is_namespaced():
    assert VisTokenizerConfig.model_type == "vistok"


# ------------------------------------------------------------------------------------------- Hub loading
def _build_hub_cache(cache: Path, repo_id: str, folder: Path, revision: str = "0123456789abcdef") -> None:
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        shutil.copy(file, snapshot / file.name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)


def test_repo_id_loads_through_an_offline_hub_cache(tmp_path, monkeypatch):
    tok = tiny_tokenizer("fsq").eval()
    tok.save_pretrained(tmp_path / "folder")
    cache = tmp_path / "hub"
    _build_hub_cache(cache, "org/tiny-fsq", tmp_path / "folder")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = VisTokenizer.from_pretrained("org/tiny-fsq", cache_dir=str(cache))
    x = images(tok)
    with torch.no_grad():
        assert torch.equal(loaded(x).reconstruction, tok(x).reconstruction)
    processor = AutoImageProcessor.from_pretrained("org/tiny-fsq", cache_dir=str(cache))
    assert isinstance(processor, vistok.VisTokenizerImageProcessor)


def test_offline_missing_repo_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match=r"Could not load the tokenizer 'org/missing': HF_HUB_OFFLINE is set.*hf download"):
        VisTokenizer.from_pretrained("org/missing", cache_dir=str(tmp_path))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("./out_typo", r"No folder './out_typo' \(looked for .*out_typo\)"),
        ("../elsewhere/model", r"No folder '../elsewhere/model'"),
        ("runs/2024/model", r"No folder 'runs/2024/model'"),
        ("vqvae-celeba64-vq-d4", r"is a vistok preset.*create_tokenizer\('vqvae-celeba64-vq-d4'\)"),
        ("vistok/vqvae-celeba64-vq-d4", r"is a vistok preset.*create_tokenizer\('vqvae-celeba64-vq-d4'\)"),
        ("vqvae-celeba64-vq-d44", r"did you mean 'vqvae-celeba64-vq-d4'"),
        ("vistok/defualt", r"did you mean 'vistok/default'"),
        ("defualt", r"did you mean 'vistok/default'"),
        ("my-tokenizer", r"is not a folder, bundled tokenizer, zoo entry, preset or Hub repo id 'org/name'"),
    ],
)
def test_names_that_cannot_be_a_repo_are_answered_at_once(hub_reachable_but_watched, name, message):
    import time

    loaders = (VisTokenizer, VisTokenizerConfig, vistok.VisTokenizerImageProcessor)
    for load in (loader.from_pretrained for loader in loaders):
        start = time.perf_counter()
        with pytest.raises(OSError, match=message) as info:
            load(name)
        # no lookup is the real check (below); the bound only catches a retry loop (five retries take ~23 s)
        assert time.perf_counter() - start < 10.0
        assert "hf download" not in str(info.value)
    assert hub_reachable_but_watched == []  # no network lookup at all


def test_missing_folder_suggests_a_close_sibling(tmp_path, monkeypatch):
    tiny_tokenizer("vq").save_pretrained(tmp_path / "out_run")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OSError, match=r"No folder './out_rnu'.*did you mean '.*out_run'"):
        VisTokenizer.from_pretrained("./out_rnu")


def test_repo_ids_still_reach_the_hub(hub_reachable_but_watched, tmp_path):
    """An org/name id is not second-guessed (someone may publish 'org/vqgan-llamagen-vq16')."""
    with pytest.raises(OSError, match="Could not load the tokenizer 'org/vqgan-llamagen-vq16'"):
        VisTokenizer.from_pretrained("org/vqgan-llamagen-vq16", cache_dir=str(tmp_path), local_files_only=True)


def test_bundled_name_loads_through_the_transformers_auto_classes():
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    folder = Path(vistok.__file__).parent / "pretrained" / "default"
    weights = load_file(folder / "model.safetensors")
    processor_json = json.loads((folder / "preprocessor_config.json").read_text())
    model = AutoModel.from_pretrained("vistok/default")
    assert isinstance(model, VisTokenizer)
    state = model.state_dict()
    assert set(weights) <= set(state) and all(torch.equal(state[k], v) for k, v in weights.items())
    assert AutoConfig.from_pretrained("vistok/default").to_dict() == model.config.to_dict()
    assert VisTokenizerConfig.from_pretrained("vistok/default").quantizer == model.config.quantizer
    for loader in (AutoImageProcessor, vistok.VisTokenizerImageProcessor):
        processor = loader.from_pretrained("vistok/default")
        assert isinstance(processor, vistok.VisTokenizerImageProcessor)
        assert processor.crop_size == processor_json["crop_size"]


@pytest.mark.parametrize("offline", [True, False])
def test_offline_mode_is_read_from_huggingface_hub(monkeypatch, offline):
    """vistok's messages follow huggingface_hub's own offline flag (what its downloads obey), not a re-parse of
    the environment variable."""
    import huggingface_hub.constants

    from vistok.metrics.weights import downloads_disabled
    from vistok.resolver import hub_load_message

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0" if offline else "1")  # the opposite, to tell the two apart
    monkeypatch.delenv("VISTOK_OFFLINE", raising=False)
    assert ("HF_HUB_OFFLINE is set" in hub_load_message("org/missing", OSError("x"))) is offline
    assert downloads_disabled() is offline


def test_push_to_hub_uploads_the_saved_folder(monkeypatch):
    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            uploaded["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False, repo_type="model"):
            uploaded["repo"] = repo_id

        def upload_folder(self, repo_id, folder_path, **kwargs):
            uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            return "commit-url"

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    assert tiny_tokenizer("vq").push_to_hub("me/tok", token="t") == "commit-url"
    assert uploaded["repo"] == "me/tok" and uploaded["token"] == "t"
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= set(uploaded["files"])


def test_push_to_hub_without_network_says_how_to_upload_later(hub_reachable_but_watched):
    """The real huggingface_hub client and its real transport, with name resolution failing as it does without
    network: one message saying how to upload later, whatever exception class the transport raises."""
    with pytest.raises(ConnectionError, match=r"Could not upload to the Hub model repo 'me/tok': the Hugging Face Hub "
                       r"is unreachable \(.*no network in this test.*nothing was uploaded.*save_pretrained.*"
                       r"`hf upload me/tok <folder>` on a machine with network\."):
        tiny_tokenizer("vq").push_to_hub("me/tok", token="hf_fake")
    assert any("huggingface.co" in str(host) for host in hub_reachable_but_watched)  # it really tried


def test_push_to_hub_with_hf_hub_offline_is_explained(monkeypatch):
    """The real huggingface_hub client, with offline mode on: no request leaves, one clear message."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError, match=r"HF_HUB_OFFLINE is set.*`hf upload me/tok <folder>` on a machine with network \(HF_HUB_OFFLINE unset"):
        tiny_tokenizer("vq").push_to_hub("me/tok", token="hf_fake")


# ----------------------------------------------------------------------------------------- image processor
def test_auto_image_processor_does_not_claim_torchvision_is_missing(tmp_path, caplog):
    """transformers prefers its torchvision backend when torchvision is installed; vistok's processor must be
    found for it rather than "Requested torchvision backend is not available. Falling back to pil"."""
    import logging

    pytest.importorskip("torchvision")
    tiny_tokenizer("vq").save_pretrained(tmp_path)
    logging.Logger.warning_once.cache_clear()  # transformers warns once per process
    transformers_logger = logging.getLogger("transformers")  # does not propagate to the root logger
    transformers_logger.addHandler(caplog.handler)
    try:
        processor = AutoImageProcessor.from_pretrained(tmp_path)
    finally:
        transformers_logger.removeHandler(caplog.handler)
    assert isinstance(processor, vistok.VisTokenizerImageProcessor)
    assert "backend is not available" not in caplog.text
def test_image_processor_round_trip(tmp_path):
    tok = tiny_tokenizer("vq")
    tok.save_pretrained(tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))
    pixels = processor(photo, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 16, 16)
    assert pixels.min() >= -1 and pixels.max() <= 1
    gray = processor(photo.convert("L"), return_tensors="pt")["pixel_values"]
    assert gray.shape == (1, 3, 16, 16)
    back = processor.postprocess(pixels)[0]
    assert back.size == (16, 16) and back.mode == "RGB"
    exact = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    again = processor.postprocess(processor(exact, return_tensors="pt")["pixel_values"])[0]
    assert np.array_equal(np.asarray(again), np.asarray(exact))
    assert tok(pixels).reconstruction.shape == pixels.shape  # processor output is valid model input


def test_gradient_checkpointing_gives_the_same_gradients():
    tok = tiny_tokenizer("vq", "vqgan").train()
    x = images(tok)

    def grads():
        tok.zero_grad()
        out = tok(x)
        (out.reconstruction.pow(2).mean() + out.loss).backward()
        return [p.grad.clone() for p in tok.parameters() if p.grad is not None]

    plain = grads()
    tok.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    assert any(getattr(m, "gradient_checkpointing", False) for m in tok.modules())
    checkpointed = grads()
    assert len(plain) == len(checkpointed)
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- saving survives kills (issue 26.3)
def _same_weights(tok: VisTokenizer, reference: dict[str, torch.Tensor]) -> bool:
    state = tok.state_dict()
    return state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in reference)


def _load_outcome(folder: Path, old: dict, new: dict) -> str:
    """"old" / "new" when the folder loads as exactly one of the two tokenizers, "refused" when loading refuses it
    with the message of an interrupted save; anything else fails the test (a mixture, or another error)."""
    try:
        loaded = VisTokenizer.from_pretrained(folder)
    except OSError as err:
        assert "save_pretrained into it was replacing its files" in str(err), err
        return "refused"
    for label, reference in (("old", old), ("new", new)):
        if _same_weights(loaded, reference):
            return label
    raise AssertionError(f"{folder} loads as a mixture of the old and the new tokenizer")


SAVE_INTO = """
import os
from vistok import VisTokenizer
FOLDER = {folder!r}
into = lambda src, dst, *args, **kwargs: os.path.dirname(os.fspath(dst)) == FOLDER
pause_at({target!r}, {call}, {reached!r}, {where})
VisTokenizer.from_pretrained({source!r}).save_pretrained(FOLDER, max_shard_size="8KB")
"""


@pytest.mark.parametrize(
    ("target", "call", "where"),
    [
        ("transformers.modeling_utils:safe_save_file", 3, None),  # while the shards are written
        ("os:replace", 1, "into"),  # the first file is about to be moved into the folder
        ("os:replace", 4, "into"),  # some files moved, others not yet
    ],
)
def test_a_save_killed_at_any_point_leaves_the_old_tokenizer_the_new_or_a_refusal(tmp_path, target, call, where):
    from .killing import kill_when_reached

    torch.manual_seed(0)
    old = tiny_tokenizer("vq", "vqgan")
    folder = tmp_path / "tok"
    old.save_pretrained(folder, max_shard_size="8KB")
    assert len(list(folder.glob("model-*.safetensors"))) > 4
    torch.manual_seed(1)
    new = tiny_tokenizer("vq", "vqgan")  # the same architecture: a mixture would load without complaint
    new.save_pretrained(tmp_path / "source")
    reached = tmp_path / "reached"
    code = SAVE_INTO.format(folder=str(folder), target=target, call=call, reached=str(reached), where=where,
                            source=str(tmp_path / "source"))
    assert kill_when_reached(code, reached)
    outcome = _load_outcome(folder, old.state_dict(), new.state_dict())
    assert outcome in {"old", "new", "refused"}
    if target.endswith("safe_save_file"):
        assert outcome == "old"  # nothing of the folder was touched yet
    new.save_pretrained(folder, max_shard_size="8KB")  # saving again repairs the folder and clears the leftovers
    assert _load_outcome(folder, old.state_dict(), new.state_dict()) == "new"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_saving_into_a_new_folder_appears_complete_or_not_at_all(tmp_path):
    from .killing import kill_when_reached

    folder, reached = tmp_path / "tok", tmp_path / "reached"
    tiny_tokenizer("vq").save_pretrained(tmp_path / "source")
    code = SAVE_INTO.format(folder=str(folder), target="vistok.image_processing:VisTokenizerImageProcessor.save_pretrained",
                            call=1, reached=str(reached), where=None, source=str(tmp_path / "source"))
    assert kill_when_reached(code, reached)  # weights and config written, processor config and card not yet
    assert not folder.exists()
    tiny_tokenizer("vq").save_pretrained(folder)
    assert {p.name for p in folder.iterdir()} == {
        "config.json", "model.safetensors", "preprocessor_config.json", "README.md"
    }
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # the killed save's temporary


def test_a_save_replaces_the_weight_files_of_an_earlier_save(tmp_path):
    torch.manual_seed(0)
    tiny_tokenizer("vq", "vqgan").save_pretrained(tmp_path, max_shard_size="8KB")
    (tmp_path / "notes.txt").write_text("mine")
    torch.manual_seed(1)
    new = tiny_tokenizer("vq", "vqgan")
    new.save_pretrained(tmp_path)  # one file now: the shards and their index would shadow nothing, but must go
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md", "config.json", "model.safetensors", "notes.txt", "preprocessor_config.json"
    ]
    assert _same_weights(VisTokenizer.from_pretrained(tmp_path), new.state_dict())


# ----------------------------------------------------------------- sizes checked before allocating (issue 26.9)
def _edit_config(folder: Path, edit) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


PEAK_LOAD = """
import sys, time
def hwm():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
import vistok
before, start = hwm(), time.monotonic()
try:
    vistok.VisTokenizer.from_pretrained(sys.argv[1])
except ValueError as err:
    print("REFUSED", err)
print(hwm() - before, time.monotonic() - start)
"""


def test_a_config_far_larger_than_its_weights_is_refused_before_allocating(tmp_path):
    import subprocess
    import sys

    tiny_tokenizer("vq").save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda c: c["quantizer"].update(codebook_size=2**27))  # 2 GiB of codebook
    out = subprocess.run([sys.executable, "-c", PEAK_LOAD, str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout
    assert "REFUSED" in out and "quantizer.codebook_size 134,217,728" in out, out
    grown, seconds = out.split()[-2:]
    assert int(grown) < 256 * 2**20, out  # the 2 GiB codebook was never allocated


def test_absurd_sizes_are_refused_naming_the_option(tmp_path):
    tiny_tokenizer("vq").save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda c: c["quantizer"].update(codebook_size=2**31))
    with pytest.raises(ValueError, match=r"quantizer.codebook: file \(32, 4\) vs config \(2147483648, 4\).*"
                                         r"quantizer.codebook_size 2,147,483,648"):
        VisTokenizer.from_pretrained(tmp_path)
    _edit_config(tmp_path, lambda c: c.update(image_size=100000, quantizer={"type": "vq", "codebook_size": 32,
                                                                             "codebook_dim": 4}))
    with pytest.raises(ValueError, match=r"config\.json: VisTokenizerConfig\.image_size is 100,000, more than"):
        VisTokenizer.from_pretrained(tmp_path)
    huge = VisTokenizerConfig(quantizer={"type": "vq", "codebook_size": 2**40, "codebook_dim": 4})
    with pytest.raises(ValueError, match=r"more than this machine's .* memory.*quantizer.codebook_size"):
        VisTokenizer(huge)


# ------------------------------------------------------------------ one sentence per mistake (issue 26, Messages)
def _nan_weights(weights: dict) -> None:
    name = next(k for k in weights if k.startswith("encoder.") and weights[k].is_floating_point())
    weights[name][:] = float("nan")


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (lambda f: _edit_config(f, lambda c: c.update(net="vqgan")), ValueError,
         r"tok/config\.json: VisTokenizerConfig\.net must be a dict .*\{'type': 'vqgan'\}.*got the str 'vqgan'"),
        (lambda f: _edit_config(f, lambda c: c.update(net=["vqgan"])), ValueError,
         r"tok/config\.json: VisTokenizerConfig\.net must be a dict .*got the list \['vqgan'\]"),
        (lambda f: _edit_config(f, lambda c: c.update(metadata="notes")), ValueError,
         r"tok/config\.json: VisTokenizerConfig\.metadata must be a dict"),
        (lambda f: (f / "config.json").write_text("[1, 2]"), ValueError,
         r"tok/config\.json' holds an array, not a JSON object"),
        (lambda f: (f / "config.json").unlink(), OSError,
         r"tok' is not a vistok tokenizer folder: it has no config\.json \(it holds README\.md, model\.safetensors"),
        (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:-100]), OSError,
         r"tok/model\.safetensors' is not a complete safetensors file: tensor .* ends at byte .*truncated"),
        (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:50]), OSError,
         r"tok/model\.safetensors' is not a complete safetensors file: its header says"),
    ],
)
def test_damaged_folders_get_one_sentence_naming_the_file(tmp_path, damage, error, message):
    folder = tmp_path / "tok"
    tiny_tokenizer("vq").save_pretrained(folder)
    damage(folder)
    with pytest.raises(error, match=message) as caught:
        VisTokenizer.from_pretrained(folder)
    assert "has no model_type" not in str(caught.value)


def test_a_damaged_weight_index_is_named(tmp_path):
    tiny_tokenizer("vq", "vqgan").save_pretrained(tmp_path, max_shard_size="8KB")
    (tmp_path / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(OSError, match=r"model\.safetensors\.index\.json' is not a weight index"):
        VisTokenizer.from_pretrained(tmp_path)


def test_nan_weights_are_named_instead_of_a_bincount_error(tmp_path):
    tiny_tokenizer("fsq").save_pretrained(tmp_path)
    _rewrite_weights(tmp_path, _nan_weights)
    tok = VisTokenizer.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"weights of '.*' hold NaN or infinite values \(encoder\."), torch.no_grad():
        tok.encode(images(tok))

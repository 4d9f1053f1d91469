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

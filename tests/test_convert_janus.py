"""Janus-Pro's generation tokenizer: parity with upstream's test vector (tests/data/janus_tiny, made by running
deepseek-ai/Janus's VQModel), every release format (safetensors / pickle, single / sharded), reading nothing but
the gen_vision_model.* tensors, and the errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import vistok.convert.prefixed_tensors as prefixed_tensors
from vistok import VisTokenizer
from vistok.cli import main as cli
from vistok.convert import CheckpointError, UnsafeCheckpointError
from vistok.families import get_family
from vistok.families.janus import convert_janus

DATA = Path(__file__).parent / "data"
JANUS_TINY = DATA / "janus_tiny"
PREFIX = "gen_vision_model."


def release_tensors() -> dict[str, torch.Tensor]:
    """Every tensor of the tiny release (bf16, as stored), read independently of vistok."""
    with safe_open(str(JANUS_TINY / "model.safetensors"), framework="pt") as f:
        return {name: f.get_tensor(name) for name in f.keys()}


@pytest.fixture(scope="module")
def expected() -> dict:
    return torch.load(DATA / "janus_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    return convert_janus(JANUS_TINY).state_dict()


def assert_same_weights(tok, reference_state: dict[str, torch.Tensor]) -> None:
    state = tok.state_dict()
    assert state.keys() == reference_state.keys()
    for name, value in state.items():
        assert torch.equal(value, reference_state[name]), name


# ------------------------------------------------------------------------------------------------------------
# Parity
# ------------------------------------------------------------------------------------------------------------
def test_parity_with_upstream_test_vector(expected):
    tok = convert_janus(JANUS_TINY)
    assert not tok.training
    assert tok.config.image_size == 384  # Janus's resolution, not the tiny test images'
    assert tok.config.quantizer["l2_norm"] is True
    assert (tok.config.quantizer["codebook_size"], tok.config.quantizer["codebook_dim"]) == (256, 8)
    # The upstream constructor arguments recorded in the expected file, read back from the tensors alone.
    args, overrides = expected["config"]["model_args"], expected["config"]["encoder_decoder_overrides"]
    assert tok.config.net["channel_multiplier"] == args["encoder_ch_mult"]
    assert tok.config.net["latent_channels"] == args["z_channels"]
    assert tok.config.net["base_channels"] == overrides["ch"]
    assert tok.config.net["num_res_blocks"] == overrides["num_res_blocks"]

    with torch.no_grad():
        out = tok(expected["input"])
        from_indices = tok.decode(expected["indices"])
    assert torch.equal(out.indices, expected["indices"])
    assert torch.equal(out.indices.flatten(), expected["indices_upstream_flat"])
    assert (out.reconstruction - expected["reconstruction"]).abs().max() < 1e-4
    assert (from_indices - expected["reconstruction_from_indices"]).abs().max() < 1e-4
    # Looking up the stored (not unit-norm) rows would give other codes at 85 of 192 positions.
    assert (out.indices != expected["indices_if_codebook_not_normalized"]).sum() > 0


def test_weights_are_the_gen_vision_model_tensors_upcast_exactly():
    release = release_tensors()
    state = convert_janus(JANUS_TINY).state_dict()
    codebook = release[PREFIX + "quantize.embedding.weight"]
    assert codebook.dtype == torch.bfloat16
    assert state["quantizer.codebook"].dtype == torch.float32
    assert torch.equal(state["quantizer.codebook"], codebook.double().float())  # bf16 → fp32 is exact
    # gen_embed has the codebook's shape but other values: it must not be taken for the codebook.
    assert release["gen_embed.weight"].shape == codebook.shape
    assert not torch.equal(state["quantizer.codebook"], release["gen_embed.weight"].float())
    for name in ("encoder.conv_in.weight", "decoder.conv_out.bias", "quant_conv.weight"):
        assert torch.equal(state[name], release[PREFIX + name].float())
    assert not any("codebook_used" in name for name in state)


def test_metadata_names_origin_and_the_non_permissive_licence():
    meta = convert_janus(JANUS_TINY).config.metadata
    assert meta["origin"]["name"] == "Janus-Pro" and meta["license"] == "other"
    assert meta["origin"]["checkpoint_file"] == "model.safetensors"
    assert meta["origin"]["weights_license"]["url"].endswith("deepseek-ai/Janus/blob/main/LICENSE-MODEL")
    assert any("DeepSeek Model License" in note for note in meta["converter"]["notes"])
    assert "reported_metrics" not in meta  # nobody reports reconstruction numbers for this tokenizer
    assert convert_janus(JANUS_TINY, image_size=64).config.image_size == 64


def test_registered_and_offered_by_the_cli(tmp_path, expected):
    assert get_family("janus").convert is convert_janus
    out = tmp_path / "janus-gen"
    assert cli(["convert", "janus", str(JANUS_TINY), str(out), "--image-size", "32"]) == 0
    tok = VisTokenizer.from_pretrained(out)
    with torch.no_grad():
        assert torch.equal(tok(expected["input"]).indices, expected["indices"])
    card = (out / "README.md").read_text()
    assert "license: other" in card and "DeepSeek Model License" in card and "LICENSE-MODEL" in card


# ------------------------------------------------------------------------------------------------------------
# Release formats, built here from the tiny release
# ------------------------------------------------------------------------------------------------------------
def _split(tensors: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Two shards: half of the tokenizer's tensors in each, the language model in the second."""
    first, second = {}, {}
    vq_names = [n for n in tensors if n.startswith(PREFIX)]
    for name, value in tensors.items():
        in_first = name in vq_names[: len(vq_names) // 2] or name.startswith("vision_model.")
        (first if in_first else second)[name] = value
    return first, second


def write_release(
    folder: Path, fmt: str, sharded: bool, tensors: dict[str, torch.Tensor] | None = None
) -> Path:
    """A release folder in ``fmt`` ("safetensors" or "bin"), one file or two shards with an index."""
    tensors = release_tensors() if tensors is None else tensors
    folder.mkdir(parents=True, exist_ok=True)
    save = (
        (lambda sd, path: save_file(sd, str(path), metadata={"format": "pt"}))
        if fmt == "safetensors"
        else (lambda sd, path: torch.save(sd, path))
    )
    stem, ext = ("model", "safetensors") if fmt == "safetensors" else ("pytorch_model", "bin")
    if not sharded:
        save(tensors, folder / f"{stem}.{ext}")
        return folder / f"{stem}.{ext}"
    weight_map = {}
    for i, shard in enumerate(_split(tensors), start=1):
        name = f"{stem}-0000{i}-of-00002.{ext}"
        save(shard, folder / name)
        weight_map.update(dict.fromkeys(shard, name))
    index = folder / f"{stem}.{ext}.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return index


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
@pytest.mark.parametrize("sharded", [False, True])
def test_every_release_format_gives_the_same_weights(tmp_path, reference_state, fmt, sharded):
    weight_file = write_release(tmp_path / "release", fmt, sharded)
    for path in (weight_file, weight_file.parent):  # the file itself, or the folder holding it
        tok = convert_janus(path)
        assert_same_weights(tok, reference_state)
        assert tok.config.metadata["origin"]["checkpoint_file"] == weight_file.name
    if sharded:
        assert tok.config.metadata["origin"]["shards_read"] == [
            f"{weight_file.name.split('.')[0]}-0000{i}-of-00002.{fmt}" for i in (1, 2)
        ]


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_only_the_shards_holding_the_tokenizer_are_opened(tmp_path, reference_state, fmt):
    tensors = release_tensors()
    vq = {k: v for k, v in tensors.items() if k.startswith(PREFIX)}
    rest = {k: v for k, v in tensors.items() if not k.startswith(PREFIX)}
    folder = tmp_path / "release"
    index = write_release(folder, fmt, sharded=True, tensors={**rest, **vq})
    weight_map = json.loads(index.read_text())["weight_map"]
    # Re-shard: the tokenizer alone in shard 1, everything else in a shard 2 that is then deleted.
    stem = index.name.split(".")[0]
    shard1, shard2 = f"{stem}-00001-of-00002.{fmt}", f"{stem}-00002-of-00002.{fmt}"
    for p in folder.glob(f"{stem}-*"):
        p.unlink()
    write_release(tmp_path / "tmp", fmt, sharded=False, tensors=vq).rename(folder / shard1)
    weight_map = {k: (shard1 if k.startswith(PREFIX) else shard2) for k in weight_map}
    index.write_text(json.dumps({"weight_map": weight_map}))
    assert not (folder / shard2).exists()
    assert_same_weights(convert_janus(folder), reference_state)


def test_only_gen_vision_model_tensors_are_read_from_safetensors(monkeypatch):
    read: list[str] = []

    class RecordingSafeOpen:
        def __init__(self, *args, **kwargs):
            self._file = safe_open(*args, **kwargs)

        def __enter__(self):
            self._inner = self._file.__enter__()
            return self

        def __exit__(self, *exc):
            return self._file.__exit__(*exc)

        def keys(self):
            return self._inner.keys()

        def get_tensor(self, name):
            read.append(name)
            return self._inner.get_tensor(name)

    monkeypatch.setattr(prefixed_tensors, "safe_open", RecordingSafeOpen)
    convert_janus(JANUS_TINY)
    vq_names = {n for n in release_tensors() if n.startswith(PREFIX)}
    assert set(read) == vq_names and len(read) == len(vq_names) == 184


MEMORY_PROBE = textwrap.dedent(
    """
    import sys
    from vistok.families.janus import convert_janus

    def peak_mib():
        # VmHWM: this process's peak resident memory since exec (ru_maxrss would carry over pytest's own peak).
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    convert_janus(sys.argv[1])  # warm-up: imports and first-call allocations
    for path in sys.argv[2:]:
        before = peak_mib()
        convert_janus(path)
        print(path, peak_mib() - before)
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from /proc (Linux)")
def test_the_language_model_is_never_loaded_into_memory(tmp_path):
    # A release whose language model is 128 MiB: converting it must not raise the process's peak memory by
    # anything near that, whether the release is safetensors or a pickle (memory-mapped).
    tensors = release_tensors()
    tensors["language_model.model.embed_tokens.weight"] = torch.ones(64 * 1024 * 1024, dtype=torch.bfloat16)
    files = [
        write_release(tmp_path / fmt, fmt, sharded=False, tensors=tensors) for fmt in ("bin", "safetensors")
    ]
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(JANUS_TINY), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    growth = dict(line.rsplit(" ", 1) for line in result.stdout.strip().splitlines())
    assert len(growth) == 2
    for path, mib in growth.items():
        assert float(mib) < 48, f"converting {path} raised peak memory by {mib} MiB"


# ------------------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------------------
def test_a_release_without_the_tokenizer_says_what_it_holds(tmp_path):
    tensors = {k: v for k, v in release_tensors().items() if not k.startswith(PREFIX)}
    write_release(tmp_path, "safetensors", sharded=False, tensors=tensors)
    with pytest.raises(
        CheckpointError, match=r"has no gen_vision_model\.\* tensors.*language_model\.\* \(12\)"
    ):
        convert_janus(tmp_path)


def test_transformers_converted_janus_points_to_the_original_release(tmp_path):
    renamed = {
        "model.vqmodel.encoder.down.0.block.0.conv1.weight": torch.zeros(4, 3, 3, 3),
        "model.vqmodel.quantize.embedding.weight": torch.zeros(16, 8),
        "model.language_model.embed_tokens.weight": torch.zeros(8, 4),
    }
    save_file(renamed, str(tmp_path / "model.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"transformers' converted Janus format.*deepseek-ai/Janus-Pro-1B"
    ):
        convert_janus(tmp_path)


def test_an_index_naming_a_missing_shard_says_which(tmp_path):
    index = write_release(tmp_path, "safetensors", sharded=True)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(
        CheckpointError, match=r"in the shard 'model-00002-of-00002\.safetensors', which is not in"
    ):
        convert_janus(index)


def test_an_index_that_disagrees_with_its_shards_or_is_not_an_index(tmp_path):
    index = write_release(tmp_path, "bin", sharded=True)
    weight_map = json.loads(index.read_text())["weight_map"]
    swapped = {
        k: ("pytorch_model-00001-of-00002.bin" if v.endswith("2.bin") else v) for k, v in weight_map.items()
    }
    index.write_text(json.dumps({"weight_map": swapped}))
    with pytest.raises(
        CheckpointError, match=r"says the shard 'pytorch_model-00001-of-00002\.bin' holds .*does not"
    ):
        convert_janus(index)
    index.write_text(json.dumps({"metadata": {}}))
    with pytest.raises(
        CheckpointError, match=r"is not a weight index: expected a JSON object with a 'weight_map'"
    ):
        convert_janus(index)


def test_a_folder_without_weights_and_other_bad_input(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"holds none of the weight files .*it holds config\.json"):
        convert_janus(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert_janus(tmp_path / "missing")
    with pytest.raises(CheckpointError, match=r"weights must be 'auto', got 'ema'"):
        convert_janus(JANUS_TINY, weights="ema")
    (tmp_path / "model.safetensors").write_bytes(b"<html>rate limited</html>")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint: it looks like HTML"):
        convert_janus(tmp_path)


class NotATensor:
    """A class a pickle may reference but the safe loader must refuse."""


def test_pickles_go_through_the_allow_list(tmp_path):
    tensors = release_tensors()
    torch.save({**tensors, "extra": NotATensor()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match=r"NotATensor.*--trust-checkpoint"):
        convert_janus(tmp_path)
    torch.save(tensors, tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy .* cannot be memory-mapped"):
        convert_janus(tmp_path)


# ------------------------------------------------------------------------------------------------------------
# The full-size release layout and the zoo entries
# ------------------------------------------------------------------------------------------------------------
def full_size_release(folder: Path) -> Path:
    """A Janus-Pro-style release whose tokenizer has the full VQ_16() layout (zeros), in bf16 as released:
    VQ_16()'s state dict has LlamaGen VQ-16's keys and shapes (shared/reference/README.md), here next to
    gen_embed (the codebook's shape) and a language-model decoy."""
    spec = json.loads((DATA / "llamagen_vq16_state_dict_spec.json").read_text())
    tensors = {PREFIX + key: torch.zeros(shape, dtype=torch.bfloat16) for key, shape in spec.items()}
    tensors[PREFIX + "quantize.codebook_used"] = torch.zeros(65536, dtype=torch.bfloat16)
    tensors["gen_embed.weight"] = torch.ones(16384, 8, dtype=torch.bfloat16)
    tensors["language_model.model.norm.weight"] = torch.ones(2048, dtype=torch.bfloat16)
    return write_release(folder, "bin", sharded=False, tensors=tensors)


@pytest.fixture(scope="module")
def full_size_config(tmp_path_factory):
    return convert_janus(full_size_release(tmp_path_factory.mktemp("janus-full"))).config


def test_full_size_release_is_vq16_at_384px_and_catalogued(full_size_config):
    from vistok.families.catalogue import entries_for_repo, get_entry

    config = full_size_config
    assert config.latent_size == 24  # 384 px → 24x24 = 576 tokens, as Janus-Pro generates
    assert config.net["channel_multiplier"] == [1, 1, 2, 2, 4] and config.net["base_channels"] == 128
    assert (config.quantizer["codebook_size"], config.quantizer["codebook_dim"]) == (16384, 8)
    for size in ("1B", "7B"):
        (entry,) = entries_for_repo(f"deepseek-ai/Janus-Pro-{size}")
        assert entry is get_entry(f"vqgan-janus-pro-{size.lower()}")
        assert (
            entry.converter == "janus" and entry.image_size == 384 and entry.preset == "vqgan-llamagen-vq16"
        )
        assert "pytorch_model.bin" in entry.filenames and "pytorch_model.bin.index.json" in entry.filenames
        assert entry.license.name == "DeepSeek Model License" and not entry.license.permissive
        assert entry.license.url.endswith("deepseek-ai/Janus/blob/main/LICENSE-MODEL")


def test_full_size_release_matches_the_catalogued_architecture(full_size_config):
    from vistok.families.catalogue import get_entry
    from vistok.zoo.loader import architecture_differences

    for name in ("vqgan-janus-pro-1b", "vqgan-janus-pro-7b"):
        assert architecture_differences(get_entry(name), full_size_config) == []


def test_the_zoo_loads_janus_pro_from_its_release_files(hub, tmp_path, expected):
    import vistok
    from vistok.zoo import ZooArchitectureWarning

    from .hub_cache import add_to_hub_cache

    def check(tok, name):
        with torch.no_grad():
            out = tok(expected["input"])
        assert torch.equal(out.indices, expected["indices"])
        assert (out.reconstruction - expected["reconstruction"]).abs().max() < 1e-4
        assert tok.config.metadata["zoo"]["name"] == name and tok.config.metadata["license"] == "other"

    # Janus-Pro-1B is released as one pytorch_model.bin, -7B as two shards and pytorch_model.bin.index.json.
    single = write_release(tmp_path / "1B", "bin", sharded=False)
    add_to_hub_cache(
        hub, "deepseek-ai/Janus-Pro-1B", {"config.json": JANUS_TINY / "config.json", single.name: single}
    )
    index = write_release(tmp_path / "7B", "bin", sharded=True)
    add_to_hub_cache(hub, "deepseek-ai/Janus-Pro-7B", {p.name: p for p in index.parent.iterdir()})
    tiny_vs_full = r"net\.base_channels: catalogue 128, file 32"
    with pytest.warns(ZooArchitectureWarning, match=tiny_vs_full):
        check(vistok.VisTokenizer.from_pretrained("deepseek-ai/Janus-Pro-1B"), "vqgan-janus-pro-1b")
    with pytest.warns(ZooArchitectureWarning, match=tiny_vs_full):
        check(vistok.create_tokenizer("vqgan-janus-pro-7b", pretrained=True), "vqgan-janus-pro-7b")


@pytest.mark.parametrize("where", ["../outside.safetensors", "ABSOLUTE", "sub/../../outside.safetensors", "C:evil"])
def test_an_index_naming_shards_outside_the_release_folder_is_refused_quoting_nothing(tmp_path, where):
    release = tmp_path / "release"
    index = write_release(release, "safetensors", sharded=True)
    secret = tmp_path / "outside.safetensors"  # a file outside the release, its first bytes must not be shown
    secret.write_text("TOP SECRET: the launch codes are 0000")
    shard = str(secret) if where == "ABSOLUTE" else where
    weight_map = json.loads(index.read_text())["weight_map"]
    moved = {k: (shard if v.endswith("00002-of-00002.safetensors") else v) for k, v in weight_map.items()}
    index.write_text(json.dumps({"weight_map": moved}))
    with pytest.raises(CheckpointError, match=r"names 1 shard file\(s\) outside its own folder") as err:
        convert_janus(release)
    assert "SECRET" not in str(err.value) and "launch" not in str(err.value)
    with pytest.raises(SystemExit, match="outside its own folder") as err:
        cli(["convert", "janus", str(release), str(tmp_path / "out")])
    assert "SECRET" not in str(err.value) and not (tmp_path / "out").exists()

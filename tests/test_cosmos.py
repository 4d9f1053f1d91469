"""NVIDIA Cosmos DI tokenizers (TorchScript archives, bfloat16 weights, Haar patching, FSQ [8,8,8,5,5,5]).

The reference (``tests/data/cosmos/``, a copy of ``shared/reference/cosmos/``) was made by running upstream with
random weights and NVIDIA's own export recipe for the ``.jit`` files: the converted tokenizer must reproduce its
indices exactly and its float32 reconstruction within 1e-4, read the archives without running them, give each
preset's architecture from the full-size state-dict specs, and load under the real repo ids and file names from a
local Hub cache."""

from __future__ import annotations

import dataclasses
import json
import pickle
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

import vistok
from vistok import VisTokenizer, VisTokenizerConfig
from vistok.cli import main as cli
from vistok.convert import CheckpointError
from vistok.convert.safe_load import UnsafeCheckpointError
from vistok.convert.torchscript import ScriptObject, is_torchscript_archive, read_torchscript
from vistok.families import FAMILIES, get_family
from vistok.families.cosmos import (
    COMPRESSIONS,
    check_buffers,
    convert_cosmos,
    cosmos_to_vistok,
    infer_cosmos_net,
    release_compression,
)
from vistok.nets.cosmos import haar_analysis, haar_synthesis
from vistok.zoo import ZooArchitectureWarning, get_entry

from .hub_cache import add_to_hub_cache

DATA = Path(__file__).parent / "data" / "cosmos"
TINY = DATA / "Cosmos-0.1-Tokenizer-DI8x8-tiny"
STATE_DICT = DATA / "cosmos_di8x8_tiny_state_dict.pt"
# The reference README: bfloat16 weights upcast to float32 reproduce the indices exactly and the reconstruction to
# within 1e-4 (max abs); a float64 rerun of upstream differs by 4.1e-6.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def expected():
    return torch.load(DATA / "cosmos_di8x8_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def tok():
    return convert_cosmos(TINY / "autoencoder.jit", image_size=48)


def check_parity(tok: VisTokenizer, expected: dict) -> None:
    """Indices exact (upstream's int32 values as int64), codes exact, reconstructions within the README's 1e-4
    through the forward pass, decode(encode(x)) and decode of upstream's own indices."""
    x = expected["input"]
    with torch.no_grad():
        enc = tok.encode(x)
        from_indices = tok.decode(enc.indices)
        forward = tok(x).reconstruction
        from_upstream = tok.decode(expected["indices"].long())
    assert enc.indices.shape == (3, 6, 6) and enc.indices.dtype == torch.int64
    assert torch.equal(enc.indices, expected["indices"].long())
    assert torch.equal(enc.quantized, expected["codes"])
    assert (from_indices - expected["reconstruction"]).abs().max() < TOLERANCE
    assert (forward - expected["reconstruction"]).abs().max() < TOLERANCE
    assert (from_upstream - expected["reconstruction_from_indices"]).abs().max() < TOLERANCE


# ------------------------------------------------------------------------------------------ the Haar front end
def test_haar_bands_are_the_readme_formulas_and_invert_exactly():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    bands = haar_analysis(x)
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    ll, lh, hl, hh = bands.chunk(4, dim=1)  # [LL, LH, HL, HH] blocks of the 3 input channels
    torch.testing.assert_close(ll, (a + b + c + d) / 4)  # the 2x2 mean
    torch.testing.assert_close(lh, (a + b - c - d) / 4)  # top row minus bottom row
    torch.testing.assert_close(hl, (a - b + c - d) / 4)  # left column minus right column
    torch.testing.assert_close(hh, (a - b - c + d) / 4)
    torch.testing.assert_close(haar_synthesis(bands), x, rtol=0, atol=1e-12)


def test_two_levels_order_channels_band2_band1_rgb(tok):
    x = torch.zeros(1, 3, 8, 8)
    x[0, 1, 0, 0] = 1.0  # green, top-left pixel of a 4x4 patch
    out = tok.encoder.patcher(x)
    assert out.shape == (1, 48, 2, 2)
    # top-left of its 2x2 block at both levels: every band gets +1/16; channel = band2 * 12 + band1 * 3 + rgb
    nonzero = sorted(int(c) for c in out[0, :, 0, 0].nonzero().flatten())
    assert nonzero == [band2 * 12 + band1 * 3 + 1 for band2 in range(4) for band1 in range(4)]
    torch.testing.assert_close(out[0, nonzero, 0, 0], torch.full((16,), 1 / 16))


# ------------------------------------------------------------------------------------------ parity
def test_autoencoder_jit_reproduces_upstream(tok, expected):
    check_parity(tok, expected)


@pytest.mark.parametrize("given", ["encoder.jit", "decoder.jit", "", "state_dict"])
def test_every_form_of_the_release_converts_to_the_same_tokenizer(given, tok, expected):
    path = STATE_DICT if given == "state_dict" else TINY / given
    other = convert_cosmos(path, image_size=48)
    assert other.config.net == tok.config.net and other.config.quantizer == tok.config.quantizer
    for (name, a), (_, b) in zip(tok.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    check_parity(other, expected)


def test_converted_config_and_weights(tok):
    assert tok.config.net == {
        "type": "cosmos", "base_channels": 32, "channel_multiplier": [1, 1, 1], "num_res_blocks": 1,
        "latent_channels": 16, "patch_size": 4, "spatial_compression": 8, "dropout": 0.0, "norm_groups": 32,
        "norm_eps": 1e-6,
    }
    assert tok.config.quantizer["type"] == "fsq" and tok.config.quantizer["levels"] == [8, 8, 8, 5, 5, 5]
    assert tok.codebook_size == 64_000 and tok.downsample_factor == 8 and tok.num_parameters() == 306_518
    plain = torch.load(STATE_DICT, weights_only=True)  # upstream's own state_dict(): the same bf16 weights
    ours = tok.state_dict()
    assert set(ours) == set(plain)  # the jit-only buffers are gone, every weight is there
    for key, value in plain.items():
        assert value.dtype == torch.bfloat16 and ours[key].dtype == torch.float32
        assert torch.equal(ours[key], value.float()), key


def test_metadata_names_origin_licence_files_and_conventions(tok):
    meta = tok.config.metadata
    assert meta["origin"]["name"] == "NVIDIA Cosmos Tokenizer" and meta["origin"]["files"] == ["autoencoder.jit"]
    assert meta["origin"]["weights_license"]["name"] == "NVIDIA Open Model License"
    assert meta["origin"]["weights_license"]["commercial_use"] is True
    assert "release" not in meta["origin"] and "reported_metrics" not in meta  # a tiny stand-in, not a release
    notes = " ".join(meta["converter"]["notes"])
    assert "code was not run" in notes and "upcast exactly to float32" in notes
    assert "channel 0 the least significant digit" in notes and "commercial use is allowed" in notes


def test_the_jit_buffers_are_checked(tmp_path):
    tensors = read_torchscript(TINY / "autoencoder.jit").tensors
    assert check_buffers(tensors) == [8, 8, 8, 5, 5, 5]
    assert tensors["encoder.patcher.wavelets"].tolist() == [0.70703125, 0.70703125]  # 1/sqrt(2) in bfloat16
    msb_first = dict(tensors)
    msb_first["quantizer._basis"] = torch.tensor([12800, 1600, 200, 25, 5, 1], dtype=torch.int32)
    with pytest.raises(CheckpointError, match=r"quantizer._basis .*channel 0 the least significant digit"):
        check_buffers(msb_first)
    codebook = dict(tensors)
    codebook["quantizer.implicit_codebook"] = tensors["quantizer.implicit_codebook"].flip(0)
    with pytest.raises(CheckpointError, match=r"implicit_codebook is not the FSQ code table"):
        check_buffers(codebook)
    taps = dict(tensors)
    taps["decoder.unpatcher.wavelets"] = torch.tensor([0.5, 0.5], dtype=torch.bfloat16)
    with pytest.raises(CheckpointError, match=r"decoder.unpatcher.wavelets .*1/sqrt\(2\)"):
        check_buffers(taps)


def test_torch_jit_is_never_used(monkeypatch, expected):
    def refuse(*args, **kwargs):
        raise AssertionError("TorchScript machinery was called")

    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    check_parity(convert_cosmos(TINY / "autoencoder.jit", image_size=48), expected)


def test_the_archives_code_is_not_read(tmp_path, expected):
    """Every code/ file of the archive replaced by one that cannot compile: the conversion does not notice."""
    broken = tmp_path / "autoencoder.jit"
    with zipfile.ZipFile(TINY / "autoencoder.jit") as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if "/code/" in info.filename:
                data = b"def forward(self):\n    raise RuntimeError('the archive code ran')\n  )))"
            dst.writestr(info, data)
    check_parity(convert_cosmos(broken, image_size=48), expected)


def test_cli_writes_a_loadable_folder(tmp_path, expected):
    out = tmp_path / "cosmos"
    assert cli(["convert", "cosmos", str(TINY / "autoencoder.jit"), str(out), "--image-size", "48"]) == 0
    loaded = VisTokenizer.from_pretrained(out)
    assert loaded.config.image_size == 48 and "NVIDIA Cosmos Tokenizer" in (out / "README.md").read_text()
    check_parity(loaded, expected)


# ------------------------------------------------------------------------------------------ reading safely
def _archive(path: Path, data_pkl: bytes, name: str = "autoencoder") -> Path:
    """A zip laid out like a TorchScript archive (data.pkl, code/, constants.pkl) around ``data_pkl``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/data.pkl", data_pkl)
        archive.writestr(f"{name}/code/__torch__/model.py", "def forward(self, x):\n    return x\n")
        archive.writestr(f"{name}/constants.pkl", pickle.dumps(()))
        archive.writestr(f"{name}/version", "4")
    return path


class _WritesMarker:
    """Pickles to `builtins.exec(<code that writes a marker file>)`: unpickling it with plain pickle runs it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('the payload ran')",))


def test_a_payload_is_refused_without_running(tmp_path, hub):
    marker = tmp_path / "marker"
    payload = pickle.dumps({"encoder": _WritesMarker(marker)}, protocol=2)
    # the payload is live: plain unpickling runs it
    pickle.loads(payload)
    assert marker.read_text() == "the payload ran"
    marker.unlink()

    evil = _archive(tmp_path / "autoencoder.jit", payload)
    assert is_torchscript_archive(evil)
    with pytest.raises(UnsafeCheckpointError, match=r"references (__builtin__|builtins)\.exec.*Nothing was run"):
        read_torchscript(evil)
    with pytest.raises(UnsafeCheckpointError, match=r"builtins?__\.exec|builtins\.exec"):
        convert_cosmos(evil)
    with pytest.raises(UnsafeCheckpointError, match=r"builtins?__\.exec|builtins\.exec"):
        convert_cosmos(tmp_path, trust_checkpoint=True)  # the folder: still a TorchScript archive, never run
    add_to_hub_cache(hub, "nvidia/Cosmos-0.1-Tokenizer-DI8x8", {"autoencoder.jit": evil})
    with pytest.raises(UnsafeCheckpointError, match=r"builtins?__\.exec|builtins\.exec"):
        vistok.create_tokenizer("cosmos-di8x8", pretrained=True)
    assert not marker.exists()


def _pickle_ops(*ops: bytes) -> bytes:
    """A protocol-2 pickle from raw opcodes (for records no Python object pickles to)."""
    return b"\x80\x02" + b"".join(ops) + b"."


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def _int(value: int) -> bytes:
    return b"K" + bytes([value])


def test_module_classes_stay_inert_and_bad_records_are_refused(tmp_path):
    # a __torch__ class called with arguments (pickle's REDUCE) only records them
    called = _pickle_ops(_global("__torch__.evil", "Payload"), b"(", _text("rm -rf /"), b"tR")
    archive = read_torchscript(_archive(tmp_path / "a.jit", called, "a"))
    assert isinstance(archive.root, ScriptObject) and archive.root.args == ("rm -rf /",) and not archive.tensors
    assert archive.root.qualified_name == "__torch__.evil.Payload"
    # a module whose tensor (5 elements, stride 1) reaches past its 2-element storage
    tensor = (
        _global("torch._utils", "_rebuild_tensor_v2")
        + b"(" + b"(" + _text("storage") + _global("torch", "FloatStorage") + _text("0") + _text("cpu") + _int(2)
        + b"tQ" + _int(0) + b"(" + _int(5) + b"t" + b"(" + _int(1) + b"t" + b"\x89"
        + _global("collections", "OrderedDict") + b")R" + b"tR"
    )
    module = _pickle_ops(_global("__torch__.m", "M"), b")\x81", b"}", _text("weight"), tensor, b"s", b"b")
    path = _archive(tmp_path / "b.jit", module, "b")
    with zipfile.ZipFile(path, "a") as archive_file:
        archive_file.writestr("b/data/0", bytes(8))
    with pytest.raises(CheckpointError, match=r"reaches past its storage of 2 elements"):
        read_torchscript(path)
    # the same record within bounds reads
    ok = _pickle_ops(_global("__torch__.m", "M"), b")\x81", b"}", _text("weight"), tensor.replace(_int(5), _int(2)),
                     b"s", b"b")
    path = _archive(tmp_path / "c.jit", ok, "c")
    with zipfile.ZipFile(path, "a") as archive_file:
        archive_file.writestr("c/data/0", torch.tensor([1.5, -2.0]).numpy().tobytes())
    assert read_torchscript(path).tensors["weight"].tolist() == [1.5, -2.0]
    # a storage that names another global than torch.*Storage is refused by name
    with pytest.raises(UnsafeCheckpointError, match=r"references posix.system"):
        read_torchscript(_archive(tmp_path / "d.jit", _pickle_ops(_global("posix", "system"), _text("x"), b"\x85R")))


def test_other_files_are_refused_naming_what_they_are(tmp_path):
    with pytest.raises(CheckpointError, match=r"plain torch.save checkpoint.*not a TorchScript archive"):
        read_torchscript(STATE_DICT)
    with pytest.raises(CheckpointError, match=r"nor a state dict of Cosmos' DiscreteImageTokenizer"):
        convert_cosmos(Path(__file__).parent / "data" / "llamagen_tiny.pt")
    alone = tmp_path / "encoder.jit"
    alone.write_bytes((TINY / "encoder.jit").read_bytes())
    with pytest.raises(CheckpointError, match=r"only the encoder half.*put decoder.jit beside it"):
        convert_cosmos(alone)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"holds none of autoencoder.jit, encoder.jit, decoder.jit"):
        convert_cosmos(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"weights='ema'"):
        convert_cosmos(TINY, weights="ema")
    with pytest.raises(ValueError, match=r"image_size 20 must be a multiple of the compression factor 8"):
        convert_cosmos(TINY, image_size=20)


# ------------------------------------------------------------------------------------------ full-size layouts
@pytest.mark.parametrize(("compression", "keys", "parameters"), [(8, 205, 79_004_342), (16, 209, 83_723_958)])
def test_full_size_spec_gives_the_preset_architecture_on_meta(compression, keys, parameters):
    spec = json.loads((DATA / f"cosmos_di{compression}x{compression}_state_dict_spec.json").read_text())
    assert len(spec) == keys
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in spec.items()}
    inferred = infer_cosmos_net(state_dict)
    preset = vistok.PRESETS.get(f"cosmos-di-f{compression}").config
    assert {k: inferred["net"][k] for k in preset["net"] if k != "type"} == {
        k: v for k, v in preset["net"].items() if k != "type"
    }
    assert inferred["codebook_dim"] == len(preset["quantizer"]["levels"]) == 6
    with torch.device("meta"):
        tok = VisTokenizer(VisTokenizerConfig(**preset))
    ours = {key: tuple(value.shape) for key, value in tok.state_dict().items()}
    theirs = {key: tuple(value.shape) for key, value in cosmos_to_vistok(state_dict).items()}
    assert ours == theirs  # every key mapped, none left over (the 7 jit-only buffers dropped)
    assert len(spec) - len(theirs) == 7
    assert tok.num_parameters() == parameters and tok.downsample_factor == compression
    assert tok.codebook_size == 64_000
    assert release_compression(inferred["net"], preset["quantizer"]["levels"]) == compression
    assert release_compression({**inferred["net"], "base_channels": 32}, preset["quantizer"]["levels"]) is None


# ===================================================================================== the zoo
ENTRIES = {
    "cosmos-di8x8": "nvidia/Cosmos-0.1-Tokenizer-DI8x8",
    "cosmos-di16x16": "nvidia/Cosmos-0.1-Tokenizer-DI16x16",
    "cosmos-tokenizer-di8x8": "nvidia/Cosmos-Tokenizer-DI8x8",
    "cosmos-tokenizer-di16x16": "nvidia/Cosmos-Tokenizer-DI16x16",
}


def test_entries_name_the_published_files_licence_and_reported_numbers():
    assert {e.name for e in get_family("cosmos").entries} == set(ENTRIES)
    for name, repo in ENTRIES.items():
        entry = get_entry(name)
        compression = 16 if "16x16" in name else 8
        assert (entry.repo_id, entry.filenames, entry.converter) == (repo, ("autoencoder.jit",), "cosmos")
        assert entry.preset == f"cosmos-di-f{compression}"
        assert entry.license.name == "NVIDIA Open Model License" and entry.license.permissive
        assert any("commercial use is allowed" in note for note in entry.notes)
        assert entry.reported("rfid") == (4.57 if compression == 16 else None)
    assert set(COMPRESSIONS) == {8, 16}


@pytest.mark.parametrize("name", list(ENTRIES))
def test_both_entry_points_load_with_parity_and_the_second_load_converts_nothing(hub, monkeypatch, name, expected):
    repo = ENTRIES[name]
    config = b'{"architectures": ["CosmosTokenizer"]}'
    add_to_hub_cache(
        hub, repo, {**{f: TINY / f for f in ("autoencoder.jit", "encoder.jit", "decoder.jit")}, "config.json": config}
    )
    with pytest.warns(ZooArchitectureWarning, match=r"net.base_channels: catalogue 128, file 32"):
        first = vistok.create_tokenizer(name, pretrained=True)
    check_parity(first, expected)
    meta = first.config.metadata
    assert meta["zoo"]["name"] == name and meta["zoo"]["repo_id"] == repo and meta["zoo"]["files"] == ["autoencoder.jit"]
    assert meta["origin"]["checkpoint_file"] == "autoencoder.jit" and "reported_metrics" not in meta

    def refuse(*args, **kwargs):
        raise AssertionError("the second load read an archive or converted")

    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooArchitectureWarning)
        patch.setattr(pickle, "Unpickler", refuse)
        patch.setattr(zipfile, "ZipFile", refuse)
        patch.setitem(FAMILIES, "cosmos", dataclasses.replace(FAMILIES["cosmos"], convert=refuse))
        second = vistok.VisTokenizer.from_pretrained(repo)
    check_parity(second, expected)


def test_the_reference_input_is_upstreams_numpy2tensor_and_the_zoo_processor_maps_like_it(expected):
    from transformers import AutoImageProcessor

    torch.testing.assert_close(
        expected["input_uint8"].permute(0, 3, 1, 2).float() / 255 * 2 - 1, expected["input"], rtol=0, atol=1e-6
    )
    processor = AutoImageProcessor.from_pretrained("cosmos-di16x16")
    assert processor.preprocessing is None  # upstream states no evaluation pipeline: vistok's generic one
    generic = type(processor)(image_size=48)  # at the image's own size the pixels are mapped, not resampled
    got = generic([image.numpy() for image in expected["input_uint8"]], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(got, expected["input"], rtol=0, atol=1e-6)

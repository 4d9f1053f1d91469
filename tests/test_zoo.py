"""The model zoo, offline: a local Hugging Face cache holds the reference files of ``shared/reference`` under the
real repo ids and file names; entries load through both entry points, the converted cache serves later loads
without unpickling, a damaged cache entry is rebuilt, and every failure has its message."""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import warnings
from pathlib import Path

import httpx
import huggingface_hub
import pytest
import torch
from huggingface_hub.errors import GatedRepoError

import vistok
from vistok.families import FAMILIES
from vistok.families.catalogue import zoo_names
from vistok.zoo import ZooArchitectureWarning, ZooDownloadError, get_entry

from .hub_cache import add_folder_to_hub_cache, add_to_hub_cache

DATA = Path(__file__).parent / "data"
LLAMAGEN_REPO = "FoundationVision/LlamaGen"


def _llamagen_expected():
    return torch.load(DATA / "llamagen_tiny_expected.pt", weights_only=True)


def _check_llamagen_parity(tok):
    expected = _llamagen_expected()
    assert not tok.training
    with torch.no_grad():
        encoded = tok.encode(expected["input"])
        assert torch.equal(encoded.indices, expected["indices"])
        recon = tok.decode(encoded.indices)
    assert (recon - expected["reconstruction"]).abs().max() < 1e-4


def _load_quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooArchitectureWarning)
        return fn(*args, **kwargs)


# ------------------------------------------------------------------------------------------------- catalogue
def test_every_entry_is_listed_with_tokens_codebook_licence_and_reported_numbers():
    rows = {row["name"]: row for row in vistok.list_pretrained()}
    assert sorted(rows) == zoo_names()
    vq16 = rows["vqgan-llamagen-vq16"]
    # LlamaGen's README: VQ-16 on ImageNet 256 → 16x16 tokens, 16384 codes, rFID 2.19, MIT licence.
    assert (vq16["tokens_per_image"], vq16["codebook_size"], vq16["reported_rfid"]) == (256, 16384, 2.19)
    assert vq16["license"] == "MIT" and vq16["permissive_license"] and vq16["cached"] == "no"
    assert rows["vqgan-llamagen-vq8"]["tokens_per_image"] == 32 * 32
    for row in rows.values():
        entry = get_entry(row["name"])
        assert entry.converter in FAMILIES, entry.name
        assert entry.license.url.startswith("https://"), entry.name
        for metric in entry.reported_metrics:
            assert metric["source"] and metric["source_url"].startswith("https://"), entry.name


def test_non_permissive_licences_are_flagged():
    restrictive = {name: get_entry(name).license.id for name in zoo_names() if not get_entry(name).license.permissive}
    # Janus-Pro's weights are under the DeepSeek Model License, aMUSEd's under CreativeML Open RAIL++-M (both with
    # use-based restrictions) and Chameleon's under the Chameleon Research License; the others are MIT/Apache
    assert restrictive == {
        "vqgan-amused-256": "openrail++",
        "vqgan-amused-512": "openrail++",
        "vqgan-chameleon": "other",
        "vqgan-chameleon-encoder-30b": "other",
        "vqgan-chameleon-encoder-7b": "other",
        "vqgan-janus-pro-1b": "other",
        "vqgan-janus-pro-7b": "other",
    }


# ---------------------------------------------------------------------------------------- loading: LlamaGen
def test_create_tokenizer_pretrained_downloads_converts_and_caches(hub, tmp_path):
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    with pytest.warns(ZooArchitectureWarning, match=r"net.base_channels: catalogue 128, file 32"):
        tok = vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True)
    _check_llamagen_parity(tok)
    zoo = tok.config.metadata["zoo"]
    assert zoo["name"] == "vqgan-llamagen-vq16" and zoo["repo_id"] == LLAMAGEN_REPO
    # the tiny stand-in is not the release the authors measured: their numbers are not attached to it
    assert "reported_metrics" not in tok.config.metadata
    assert tok.config.metadata["license"] == "mit"
    cached = list((tmp_path / "vistok" / "converted" / "vqgan-llamagen-vq16").iterdir())
    assert len(cached) == 1
    assert {p.name for p in cached[0].iterdir()} >= {"config.json", "model.safetensors", "README.md", "manifest.json"}
    assert vistok.list_pretrained()[[r["name"] for r in vistok.list_pretrained()].index("vqgan-llamagen-vq16")][
        "cached"
    ] == "converted"


def test_second_load_reads_only_the_converted_safetensors(hub, monkeypatch):
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    first = _load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True)

    def refuse(*args, **kwargs):
        raise AssertionError("the second load unpickled or converted")

    with monkeypatch.context() as patch:
        patch.setattr(torch, "load", refuse)
        patch.setattr(pickle, "Unpickler", refuse)
        patch.setitem(FAMILIES, "llamagen", dataclasses.replace(FAMILIES["llamagen"], convert=refuse))
        second = _load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    _check_llamagen_parity(second)


def test_a_damaged_cache_entry_is_rebuilt_never_loaded(hub, tmp_path, caplog):
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    _load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True)
    (folder,) = (tmp_path / "vistok" / "converted" / "vqgan-llamagen-vq16").iterdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated
    with caplog.at_level(logging.WARNING, logger="vistok.zoo.loader"):
        tok = _load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True)
    assert "damaged" in caplog.text and "model.safetensors" in caplog.text
    _check_llamagen_parity(tok)
    # flipped bytes of the same size are caught by the manifest's sha256
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vistok.zoo.loader"):
        tok = _load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True)
    assert "sha256" in caplog.text
    _check_llamagen_parity(tok)


def test_force_download_offline_is_refused_and_a_forced_write_replaces_a_sound_entry(hub, tmp_path):
    from vistok.zoo.cache import check_entry, write_entry

    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    with pytest.raises(ZooDownloadError, match="force_download asks for a fresh download.*HF_HUB_OFFLINE"):
        vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True, force_download=True)

    folder = tmp_path / "entry"

    def writer(text):
        def save(tmp):
            tmp.mkdir()
            (tmp / "model.safetensors").write_text(text)

        return save

    write_entry(folder, writer("first"), {"k": 1})
    write_entry(folder, writer("second"), {"k": 1})  # a sound entry is kept (another process won the race)
    assert (folder / "model.safetensors").read_text() == "first"
    write_entry(folder, writer("third"), {"k": 1}, replace=True)  # what force_download does after downloading
    assert (folder / "model.safetensors").read_text() == "third" and check_entry(folder) is None


def test_a_crash_while_writing_the_cache_leaves_nothing_half_written(hub, tmp_path, monkeypatch):
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})

    def crash(self, folder, *args, **kwargs):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "config.json").write_text("{}")
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(vistok.VisTokenizer, "save_pretrained", crash)
        _load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True)
    root = tmp_path / "vistok" / "converted" / "vqgan-llamagen-vq16"
    assert list(root.iterdir()) == []  # neither a final folder nor a temporary one
    _check_llamagen_parity(_load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True))


def test_from_pretrained_with_an_upstream_repo_id(hub):
    add_to_hub_cache(hub, "peizesun/llamagen_t2i", {"vq_ds16_t2i.pt": DATA / "llamagen_tiny.pt"})
    tok = _load_quietly(vistok.VisTokenizer.from_pretrained, "peizesun/llamagen_t2i")
    _check_llamagen_parity(tok)
    assert tok.config.metadata["zoo"]["name"] == "vqgan-llamagen-vq16-t2i"
    # the zoo name loads through from_pretrained too
    _check_llamagen_parity(_load_quietly(vistok.VisTokenizer.from_pretrained, "vqgan-llamagen-vq16-t2i"))


def test_a_repo_with_several_tokenizers_lists_their_zoo_names(hub):
    with pytest.raises(OSError, match="holds several tokenizers") as err:
        vistok.VisTokenizer.from_pretrained(LLAMAGEN_REPO)
    assert "vqgan-llamagen-vq16" in str(err.value) and "vqgan-llamagen-vq8" in str(err.value)


def test_revision_pins_the_upstream_commit(hub):
    old = "a" * 40
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"}, commit=old)
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "magvit2_tiny.ckpt"}, commit="b" * 40)
    tok = _load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True, revision=old)
    assert tok.config.metadata["zoo"]["commit"] == old
    _check_llamagen_parity(tok)


# ---------------------------------------------------------------------------------------------------- errors
def test_offline_and_not_cached_names_the_entry_and_how_to_prefetch(hub):
    with pytest.raises(ZooDownloadError) as err:
        vistok.create_tokenizer("vqgan-llamagen-vq8", pretrained=True)
    message = str(err.value)
    assert "'vqgan-llamagen-vq8'" in message and "HF_HUB_OFFLINE" in message
    assert "vistok zoo download vqgan-llamagen-vq8" in message and "vq_ds8_c2i.pt" in message


def test_an_entry_not_on_the_hub_says_where_the_original_files_are(hub):
    with pytest.raises(ZooDownloadError, match=r"not on the Hugging Face Hub.*vistok convert taming"):
        vistok.create_tokenizer("vqgan-taming-f16-1024", pretrained=True)


def test_typos_of_zoo_names_and_repo_ids_get_the_closest_names(hub):
    with pytest.raises(ValueError, match=r"did you mean 'vqgan-llamagen-vq16'"):
        vistok.create_tokenizer("vqgan-llamagen-vq61", pretrained=True)
    with pytest.raises(OSError, match=r"did you mean 'peizesun/llamagen_t2i'"):
        vistok.VisTokenizer.from_pretrained("peizesun/llamagen_t2l")


def test_pretrained_preset_without_zoo_weights_is_refused_with_the_zoo_list():
    with pytest.raises(ValueError, match=r"is a preset, an architecture without published weights.*vistok zoo list"):
        vistok.create_tokenizer("vqvae-celeba64-vq-d4", pretrained=True)
    with pytest.raises(ValueError, match="only apply with pretrained=True"):
        vistok.create_tokenizer("vqvae-celeba64-vq-d4", revision="main")
    with pytest.raises(ValueError, match="no architecture overrides"):
        vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True, image_size=128)


def test_from_pretrained_refuses_options_the_zoo_would_ignore(hub):
    with pytest.raises(TypeError, match="torch_dtype"):
        vistok.VisTokenizer.from_pretrained("peizesun/llamagen_t2i", torch_dtype=torch.float16)
    with pytest.raises(TypeError, match="keywords only; got 1 positional"):
        vistok.VisTokenizer.from_pretrained("peizesun/llamagen_t2i", "main")


def test_output_loading_info_works_for_zoo_names(hub):
    add_to_hub_cache(hub, "peizesun/llamagen_t2i", {"vq_ds16_t2i.pt": DATA / "llamagen_tiny.pt"})
    tok, info = _load_quietly(vistok.VisTokenizer.from_pretrained, "peizesun/llamagen_t2i", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    _check_llamagen_parity(tok)


def test_a_file_in_the_wrong_format_names_what_was_expected(hub):
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds8_c2i.pt": DATA / "magvit2_tiny.ckpt"})
    with pytest.raises(ValueError, match="not a LlamaGen VQ checkpoint"):
        vistok.create_tokenizer("vqgan-llamagen-vq8", pretrained=True)


def test_a_gated_repo_says_to_accept_the_licence(hub, monkeypatch):
    def gated(*args, **kwargs):
        raise GatedRepoError("403 gated", response=httpx.Response(403, request=httpx.Request("GET", "https://x")))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(ZooDownloadError, match=r"gated.*accept"):
        vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True)


def test_a_download_that_fails_half_way_loads_nothing(hub, monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise httpx.ReadError("connection reset after 40 MB")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken)
    with pytest.raises(ZooDownloadError, match=r"failed.*Nothing half-downloaded"):
        vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True)
    assert not (tmp_path / "vistok" / "converted").exists()


def test_unknown_repo_with_a_foreign_config_says_what_it_is(hub):
    add_to_hub_cache(hub, "someorg/some-llm", {"config.json": json.dumps({"model_type": "llama"}).encode()})
    with pytest.raises((OSError, ValueError), match=r"not a vistok tokenizer.*model_type 'llama'"):
        vistok.VisTokenizer.from_pretrained("someorg/some-llm")


def test_unknown_repo_without_a_config_says_it_is_not_a_vistok_repo(hub):
    add_to_hub_cache(hub, "someorg/checkpoints", {"model.ckpt": b"not a vistok folder"})
    with pytest.raises(OSError, match=r"not a vistok repo \(it has no config.json.*model.ckpt.*vistok convert"):
        vistok.VisTokenizer.from_pretrained("someorg/checkpoints")


def test_vistok_format_repos_load_as_before(hub, tmp_path):
    tok = vistok.create_tokenizer("vqvae-celeba64-vq-d4").eval()
    tok.save_pretrained(tmp_path / "folder")
    add_folder_to_hub_cache(hub, "someorg/my-vistok-tokenizer", tmp_path / "folder")
    loaded = vistok.VisTokenizer.from_pretrained("someorg/my-vistok-tokenizer")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.encode(x).indices, tok.encode(x).indices)


# ------------------------------------------------------------------------------------------------------- CLI
def test_zoo_cli_list_info_and_download(hub, capsys):
    from vistok.cli import main

    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "vqgan-llamagen-vq16" in out and "2.19" in out
    assert main(["zoo", "info", "vqgan-taming-f16-16384"]) == 0
    assert "heibox.uni-heidelberg.de" in capsys.readouterr().out
    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZooArchitectureWarning)
        assert main(["zoo", "download", "vqgan-llamagen-vq16"]) == 0
    assert "converted →" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="did you mean"):
        main(["zoo", "info", "vqgan-llamagen-vq61"])


def test_a_sharded_release_fetches_only_the_shards_holding_the_tokenizer(hub, tmp_path):
    """Janus-Pro-7B is pytorch_model.bin.index.json + 2 shards; the language-model-only shard is never needed:
    here it is not even in the (offline) cache, and the tokenizer still loads with upstream's outputs."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(DATA / "janus_tiny" / "model.safetensors")
    tokenizer = {k: v for k, v in tensors.items() if k.startswith("gen_vision_model.")}
    others = {k: v for k, v in tensors.items() if k not in tokenizer}
    save_file(tokenizer, tmp_path / "shard1.safetensors", metadata={"format": "pt"})
    weight_map = {k: "model-00001-of-00002.safetensors" for k in tokenizer}
    weight_map |= {k: "model-00002-of-00002.safetensors" for k in others}
    index = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    add_to_hub_cache(
        hub,
        "deepseek-ai/Janus-Pro-7B",
        {"model.safetensors.index.json": index, "model-00001-of-00002.safetensors": tmp_path / "shard1.safetensors"},
    )
    tok = _load_quietly(vistok.VisTokenizer.from_pretrained, "deepseek-ai/Janus-Pro-7B")
    expected = torch.load(DATA / "janus_tiny_expected.pt", weights_only=True)
    with torch.no_grad():
        indices = tok.encode(expected["input"]).indices
        assert torch.equal(indices, expected["indices"])
        assert (tok.decode(indices) - expected["reconstruction"]).abs().max() < 1e-4
    assert tok.config.metadata["zoo"]["license"]["permissive"] is False


def test_reordered_zoo_names_are_recognised():
    with pytest.raises(KeyError, match=r"did you mean 'vqgan-taming-f16-16384'"):
        get_entry("taming-vqgan-imagenet-f16-16384")


# ------------------------------------------------------------- a cache manifest that does not validate (26.5)
@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["files"].update({"model.safetensors": [m["files"]["model.safetensors"]["size"]]}),
        lambda m: m["files"].update({"model.safetensors": 12}),
        lambda m: m["files"]["model.safetensors"].update(size=str(m["files"]["model.safetensors"]["size"])),
        lambda m: m["files"]["model.safetensors"].update(sha256=None),
        lambda m: m["files"].update({"../config.json": m["files"]["config.json"]}),
        lambda m: m.update(identity="an entry"),
        lambda m: m.update(files=list(m["files"])),
    ],
    ids=["entry-list", "entry-int", "size-str", "sha-null", "outside", "identity-str", "files-list"],
)
def test_a_manifest_with_wrong_types_means_rebuild_not_a_type_error(hub, tmp_path, edit):
    from vistok.zoo.cache import cached_entries, check_entry

    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    _load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True)
    (folder,) = (tmp_path / "vistok" / "converted" / "vqgan-llamagen-vq16").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert check_entry(folder) is not None and check_entry(folder, verify_hashes=False) is not None
    assert [row["problem"] for row in cached_entries()] != [None]  # listed as damaged, not a crash
    _check_llamagen_parity(_load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True))
    assert check_entry(folder) is None  # rebuilt


CACHE_WRITE = """
from vistok import create_tokenizer
pause_at("vistok.modeling:align_safetensors_file", 1, {reached!r})
create_tokenizer("vqgan-llamagen-vq16", pretrained=True)
"""


def test_a_killed_cache_write_leaves_a_temporary_that_the_next_write_deletes(hub, tmp_path):
    from .killing import kill_when_reached

    add_to_hub_cache(hub, LLAMAGEN_REPO, {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    env = {"HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "VISTOK_CACHE": str(tmp_path / "vistok")}
    entries = tmp_path / "vistok" / "converted" / "vqgan-llamagen-vq16"
    for attempt in range(2):  # a killed write leaves its temporary folder (weights written); the next deletes it
        reached = tmp_path / f"reached-{attempt}"
        assert kill_when_reached(CACHE_WRITE.format(reached=str(reached)), reached, env=env)
        leftovers = [p for p in entries.iterdir() if p.is_dir()]
        assert len(leftovers) == 1 and leftovers[0].name.startswith("."), leftovers
    _check_llamagen_parity(_load_quietly(vistok.create_tokenizer, "vqgan-llamagen-vq16", pretrained=True))
    assert [p.name for p in entries.iterdir() if p.name.startswith(".")] == []  # the stale temporaries are gone
    assert len(list(entries.iterdir())) == 1


def test_cache_files_are_flushed_to_disk_before_the_entry_is_renamed_into_place(tmp_path, monkeypatch):
    """Records the real fsync and rename calls (both still happen) and checks their order."""
    import os

    from vistok.zoo.cache import write_entry

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        events.append(("replace", os.fspath(dst)))
        return real_replace(src, dst, *args, **kwargs)

    def save(folder):
        folder.mkdir()
        (folder / "model.safetensors").write_text("weights")
        (folder / "config.json").write_text("{}")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    folder = tmp_path / "converted" / "entry" / "key"
    write_entry(folder, save, {"k": 1})
    published = events.index(("replace", str(folder)))
    flushed = {path for kind, path in events[:published] if kind == "fsync"}
    names = {Path(path).name for path in flushed}
    assert {"model.safetensors", "config.json", "manifest.json"} <= names
    assert ("fsync", str(folder.parent)) in events[published:]  # the rename itself is flushed too

"""The spine (issue 20): a family is one module. A dummy family registered from this test file — origin, preset,
zoo entry, converter with its own option — is found by every entry point without touching a vistok file; the
converted cache follows the converter's code; several processes loading one entry convert it once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import vistok
from tests.hub_cache import add_to_hub_cache
from vistok.cli import main
from vistok.convert import load_checkpoint
from vistok.convert.origins import Origin, Release, reported_metric
from vistok.families import ConverterOption, ZooEntry, get_family, register_family, unregister_family
from vistok.families.base import conversion_metadata
from vistok.registry import Preset

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
DUMMY_REPO = "dummyorg/dummy-tokenizer"
DUMMY_FILE = "weights.safetensors"

DUMMY = Origin(
    name="Dummy",
    url="https://example.org/dummy",
    license="mit",
    paper_title="A Dummy Tokenizer",
    paper_authors="Nobody",
    paper_venue="Tests 2026",
    paper_url="https://example.org/dummy-paper",
    citation="@misc{dummy}",
)
DUMMY_PRESET = Preset(
    name="dummy-tiny",
    description="a tiny SimpleCNN VQ-VAE of the dummy family",
    config={
        "image_size": 16,
        "net": {"type": "simple_cnn", "hidden_channels": 8, "num_res_blocks": 1},
        "quantizer": {"type": "vq", "codebook_size": 16, "codebook_dim": 4},
    },
    source="tests/test_families.py",
)
DUMMY_ENTRY = ZooEntry(
    name="dummy-tiny-release",
    description="the dummy family's one release",
    origin=DUMMY,
    license=vistok.families.MIT,
    converter="dummy",
    image_size=16,
    repo_id=DUMMY_REPO,
    filenames=(DUMMY_FILE,),
    preset="dummy-tiny",
    reported_metrics=(reported_metric("rfid", 9.99, "dummy README", "https://example.org/dummy"),),
)


def convert_dummy(checkpoint, *, weights="auto", image_size=None, trust_checkpoint=False, scale=1.0):
    """The dummy format: a vistok state dict in safetensors whose codebook is stored divided by ``scale``."""
    state = dict(load_checkpoint(checkpoint))
    state["quantizer.codebook"] = state["quantizer.codebook"] * scale
    tok = vistok.create_tokenizer("dummy-tiny")
    tok.load_state_dict(state)
    inferred = {"net": {}, "codebook_size": 16, "codebook_dim": 4}
    tok.config.metadata = conversion_metadata(DUMMY, "dummy", inferred, checkpoint, weights)
    return tok.eval()


@pytest.fixture
def dummy_family():
    register_family(
        "dummy",
        origin=DUMMY,
        summary="the dummy test format: a safetensors state dict",
        options=(ConverterOption("--dummy-scale", "scale", "multiply the stored codebook", parse=float),),
        presets=(DUMMY_PRESET,),
        releases=(Release(DUMMY, "dummy release", (DUMMY_FILE,), (), (16, 4)),),
        entries=(DUMMY_ENTRY,),
    )(convert_dummy)
    yield get_family("dummy")
    unregister_family("dummy")


@pytest.fixture
def dummy_weights(tmp_path) -> tuple[Path, vistok.VisTokenizer]:
    torch.manual_seed(0)
    source = vistok.create_tokenizer("vqvae-celeba64-vq-d4", image_size=16, net={"hidden_channels": 8, "num_res_blocks": 1}, quantizer={"codebook_size": 16})
    path = tmp_path / DUMMY_FILE
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    return path, source.eval()


def test_a_family_registered_from_a_test_file_reaches_every_entry_point(dummy_family, dummy_weights, hub, capsys, tmp_path):
    path, source = dummy_weights
    # vistok convert: the choice, its help and its own option
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "dummy: the dummy test format" in help_text and "--dummy-scale" in help_text
    assert main(["convert", "dummy", str(path), str(tmp_path / "converted"), "--dummy-scale", "1.0"]) == 0
    assert (tmp_path / "converted" / "model.safetensors").is_file()
    with pytest.raises(SystemExit, match="--dummy-scale applies to dummy checkpoints only"):
        main(["convert", "var", str(path), str(tmp_path / "other"), "--dummy-scale", "2"])
    capsys.readouterr()
    # vistok zoo list / info
    assert main(["zoo", "list"]) == 0
    assert "dummy-tiny-release" in capsys.readouterr().out
    assert main(["zoo", "info", DUMMY_REPO]) == 0
    assert "the dummy family's one release" in capsys.readouterr().out
    # the resolver: the zoo name and the repo id are the release, the preset the architecture
    assert vistok.resolve("dummy-tiny-release").kind == "zoo"
    assert vistok.resolve(DUMMY_REPO).target == "dummy-tiny-release"
    assert vistok.resolve("dummy-tiny").kind == "preset"
    assert vistok.create_tokenizer("dummy-tiny-release").config.preset == "dummy-tiny"
    # from_pretrained through a local Hub cache, and the same weights through create_tokenizer
    add_to_hub_cache(hub, DUMMY_REPO, {DUMMY_FILE: path})
    tok = vistok.VisTokenizer.from_pretrained(DUMMY_REPO)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(tok.encode(x).indices, source.encode(x).indices)
    assert vistok.create_tokenizer("dummy-tiny-release", pretrained=True).config.metadata["zoo"]["repo_id"] == DUMMY_REPO
    # the card, rendered from the catalogue
    from vistok.cards import render_model_card
    from vistok.zoo.cards import zoo_card_config

    card = str(render_model_card(zoo_card_config("dummy-tiny-release")))
    assert "A Dummy Tokenizer" in card and "9.99" in card


def test_a_converter_change_rebuilds_the_converted_entry(tmp_path):
    """A copy of the package whose LlamaGen converter file is edited: the next load converts again (its cache key
    is the converter's code), an unedited one reads the cache."""
    package = tmp_path / "pkg"
    shutil.copytree(REPO_ROOT / "vistok", package / "vistok", ignore=shutil.ignore_patterns("__pycache__"))
    hub = tmp_path / "hf"
    add_to_hub_cache(hub, "FoundationVision/LlamaGen", {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    script = textwrap.dedent(
        """
        import json, warnings
        import vistok
        from vistok.zoo import loader
        conversions = []
        original = loader.convert_entry
        loader.convert_entry = lambda *a, **k: conversions.append(1) or original(*a, **k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True)
        print(json.dumps({"conversions": len(conversions), "file": vistok.__file__}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(package), "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1",
           "VISTOK_CACHE": str(tmp_path / "vistok")}

    def load() -> int:
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["file"].startswith(str(package))
        return report["conversions"]

    assert load() == 1
    assert load() == 0
    converter = package / "vistok" / "families" / "llamagen.py"
    converter.write_text(converter.read_text() + "\n# a converter fix\n")
    assert load() == 1
    entries = list((tmp_path / "vistok" / "converted" / "vqgan-llamagen-vq16").iterdir())
    assert len(entries) == 2  # the stale one stays until `vistok zoo cache --stale --clear`
    done = subprocess.run([sys.executable, "-m", "vistok.cli", "zoo", "cache", "--stale", "--clear"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 folder(s)" in done.stdout
    assert len(list((tmp_path / "vistok" / "converted" / "vqgan-llamagen-vq16").iterdir())) == 1


def test_two_processes_loading_one_entry_convert_it_once(hub, tmp_path):
    """Two processes started together on an empty converted cache: one unpickles and converts, the other waits on
    the entry's lock and reads the result (torch.load calls counted in each process)."""
    add_to_hub_cache(hub, "FoundationVision/LlamaGen", {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"})
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import json, os, time, warnings
        import torch
        calls = []
        original = torch.load
        def counting_load(*args, **kwargs):
            calls.append(1)
            time.sleep(1.0)  # keep the other process waiting on the lock
            return original(*args, **kwargs)
        torch.load = counting_load
        import vistok
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tok = vistok.create_tokenizer("vqgan-llamagen-vq16", pretrained=True)
        print(json.dumps({{"torch_load_calls": len(calls), "codebook": tok.quantizer.codebook.sum().item()}}))
        """
    )
    env = {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "VISTOK_CACHE": os.environ["VISTOK_CACHE"]}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    go.touch()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["torch_load_calls"] for r in reports) == [0, 1]
    assert reports[0]["codebook"] == reports[1]["codebook"]


def test_registering_a_name_twice_is_refused(dummy_family):
    with pytest.raises(ValueError, match="family 'dummy' is already registered"):
        register_family("dummy", origin=DUMMY, summary="again")(convert_dummy)
    with pytest.raises(ValueError, match=r"zoo name\(s\) \['dummy-tiny-release'\] are already registered"):
        register_family("dummy2", origin=DUMMY, summary="clash", entries=(DUMMY_ENTRY.__class__(
            **{**DUMMY_ENTRY.__dict__, "converter": "dummy2"}),))(convert_dummy)


def test_every_family_has_its_own_module_and_a_stable_code_hash():
    for family in vistok.families.all_families():
        assert family.module.startswith("vistok.families."), family.name
        assert family.code_hash() == family.code_hash()
    # a converter's hash covers the shared machinery it imports (Taming's layout for IBQ), not only its own file
    from vistok.families.base import _conversion_modules

    assert "vistok.convert.taming_layout" in _conversion_modules("vistok.families.ibq")
    assert "vistok.families.llamagen" in _conversion_modules("vistok.families.janus")


# One zoo entry per token layout, with the tiny reference file of its family standing in for the release.
LAYOUT_ENTRIES = {
    "grid": ("vqgan-llamagen-vq16", "FoundationVision/LlamaGen", {"vq_ds16_c2i.pt": DATA / "llamagen_tiny.pt"}, {}),
    "sequence": (
        "titok-bl64-vq8k-imagenet256",
        "yucornetto/tokenizer_titok_bl64_vq8k_imagenet",
        {p.name: p for p in (DATA / "titok_tiny").iterdir()},
        {"image_size": 32, "converter_options": {"num_heads": 2}},
    ),
    "multiscale": (
        "var-vqvae-imagenet256-f16",
        "FoundationVision/var",
        {"vae_ch160v4096z32.pth": DATA / "var_tiny.pth"},
        {"image_size": 32, "converter_options": {"patch_nums": [1, 2, 3, 4]}},
    ),
}


@pytest.mark.parametrize("layout", list(LAYOUT_ENTRIES))
def test_zoo_names_work_in_tokenize_evaluate_and_reconstruct(layout, hub, monkeypatch, tmp_path, capsys):
    """The same zoo name (also a preset name for two of them) is the release in every command that needs weights."""
    import datasets
    from PIL import Image

    from tests.helpers import replace_zoo_entry
    from vistok.tokenize import read_layout

    name, repo, files, changes = LAYOUT_ENTRIES[layout]
    add_to_hub_cache(hub, repo, files)
    if changes:
        replace_zoo_entry(monkeypatch, name, **changes)
    monkeypatch.setattr("warnings.showwarning", lambda *args, **kwargs: None)  # the stand-ins' architecture warning
    tok = vistok.create_tokenizer(name, pretrained=True)
    size = tok.config.image_size

    out = tmp_path / "tokens"
    assert main(["tokenize", "--model", name, "--dataset", "samples", "--split", "test", "--num-samples", "2",
                 "--image-size", str(size), "--output", str(out), "--num-workers", "0", "--no-progress"]) == 0
    assert datasets.load_from_disk(str(out)).num_rows == 2
    assert read_layout(out)["layout"] == layout

    report = tmp_path / "report.json"
    assert main(["evaluate", "--model", name, "--dataset", "samples", "--split", "test", "--num-samples", "2",
                 "--image-size", str(size), "--batch-size", "2", "--metrics", "psnr", "--output", str(report)]) == 0
    assert json.loads(report.read_text())["models"][0]["config"]["token_layout"]["layout"] == layout

    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 40), (120, 30, 200)).save(photo)
    model = name if layout == "grid" else repo  # the LlamaGen repo holds two releases: its id alone is ambiguous
    assert main(["reconstruct", str(photo), "--model", model, "--output-dir", str(tmp_path / "rec")]) == 0
    assert (tmp_path / "rec" / "photo_reconstruction.png").is_file()
    capsys.readouterr()

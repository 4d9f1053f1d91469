"""Model cards: rendered from the metadata stored with the weights, with every metric labelled by its source."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from vistok import VisTokenizer, VisTokenizerConfig, list_tokenizers
from vistok.cards import MEASURED, REPORTED, render_model_card
from vistok.cli import main as cli
from vistok.families.llamagen import convert_llamagen
from vistok.preset_cards import preset_card_config

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
EVALUATION = {
    "psnr": 31.25,
    "ssim": 0.9412,
    "rfid": 12.5,
    "codebook_usage": 0.875,
    "num_images": 19962,
    "dataset": "CelebA 64x64 test",
    "dataset_id": "flwrlabs/celeba",
    "split": "test",
    "skipped": {"lpips": "VGG16 weights not found"},
}


def _model_index(card: ModelCard) -> list[dict]:
    return [
        {"metric": r.metric_type, "value": r.metric_value, "source": r.source_name}
        for r in (card.data.eval_results or [])
    ]


def test_preset_card_describes_architecture_and_labels_origin_numbers():
    card = render_model_card(preset_card_config("vqgan-llamagen-vq16"))
    text = str(card)
    assert "| Tokens per image | 16×16 grid (256 tokens) |" in text
    assert "16,384 codes (14.00 bits per token)" in text
    assert "| Attention levels | `[4]` |" in text  # the net's default, resolved
    assert 'vistok.create_tokenizer("vqgan-llamagen-vq16")' in text
    assert f"| rFID ↓ | 2.19 | ImageNet 256x256 validation | {REPORTED} (LlamaGen paper / README; protocol llamagen) |" in text
    assert "only shares their architecture" in text
    # a randomly initialised preset does not claim the upstream numbers in its model-index
    assert card.data.eval_results is None
    assert card.data.license == "apache-2.0"


def test_measured_metrics_fill_the_table_and_model_index():
    config = preset_card_config("vqvae-celeba64-vq-d4")
    card = render_model_card(config, EVALUATION)
    text = str(card)
    assert f"| PSNR (dB) ↑ | 31.25 | CelebA 64x64 test, 19,962 images | {MEASURED} |" in text
    assert f"| Codebook usage ↑ | 87.50% | CelebA 64x64 test, 19,962 images | {MEASURED} |" in text
    assert "LPIPS (VGG) ↓ not measured: VGG16 weights not found" in text
    index = _model_index(card)
    assert {"metric": "psnr", "value": 31.25, "source": None} in index
    assert {"metric": "fid", "value": 12.5, "source": None} in index
    assert card.data.datasets == ["flwrlabs/celeba"]
    # metrics stored with the weights render the same way
    config.metadata["evaluation"] = [EVALUATION]
    assert str(render_model_card(config)) == text


def test_converted_card_names_origin_licence_paper_converter(tmp_path):
    tok = convert_llamagen(DATA / "llamagen_tiny.pt")
    text = str(render_model_card(tok, repo_id="org/vqgan-llamagen-tiny"))
    assert "license: mit" in text and "keep its licence: `mit`" in text
    assert "[LlamaGen](https://github.com/FoundationVision/LlamaGen)" in text
    from vistok.families import get_family

    assert f"`vistok convert llamagen` code {get_family('llamagen').code_hash()}" in text
    assert tok.config.metadata["origin"]["checkpoint_sha256"] in text
    assert "@article{sun2024autoregressive" in text
    assert 'VisTokenizer.from_pretrained("org/vqgan-llamagen-tiny")' in text
    assert "tok.to_diffusers()" in text


def test_converted_release_card_puts_reported_numbers_in_model_index():
    config = preset_card_config("vqgan-llamagen-vq16")
    from vistok.families.base import conversion_metadata
    from vistok.families.llamagen import LLAMAGEN

    inferred = {"net": config.net, "codebook_size": 16384, "codebook_dim": 8}
    config.metadata = conversion_metadata(LLAMAGEN, "llamagen", inferred)
    card = render_model_card(config)
    assert {"metric": "fid", "value": 2.19, "source": f"{REPORTED}: LlamaGen paper / README"} in _model_index(
        card
    )
    assert "SSIM computed with data_range 2" in str(card)


def test_usage_snippet_runs(tmp_path):
    tok = convert_llamagen(DATA / "llamagen_tiny.pt", image_size=32)
    tok.save_pretrained(tmp_path)
    text = str(render_model_card(tok, repo_id=str(tmp_path)))
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 — the card's own usage example must work as written
    assert scope["ids"].shape == (1, 8, 8) and scope["images"].shape == (1, 3, 32, 32)


def test_card_command_for_a_model_folder(tmp_path):
    tok = convert_llamagen(DATA / "llamagen_tiny.pt")
    tok.save_pretrained(tmp_path)
    (tmp_path / "README.md").unlink()
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"psnr": 30.0, "dataset": "my images"}')
    assert cli(["card", "--model", str(tmp_path), "--metrics", str(metrics)]) == 0
    text = (tmp_path / "README.md").read_text()
    assert f"| PSNR (dB) ↑ | 30.00 | my images | {MEASURED} |" in text
    with pytest.raises(SystemExit, match="No folder .*nowhere"):
        cli(["card", "--model", str(tmp_path / "nowhere"), "--output", str(tmp_path / "x.md")])


def test_bad_inputs():
    with pytest.raises(TypeError, match="VisTokenizer or VisTokenizerConfig"):
        render_model_card({"net": "vqgan"})
    with pytest.raises(TypeError, match="metrics must be a dict"):
        render_model_card(VisTokenizerConfig(), metrics=3.0)
    with pytest.raises(FileNotFoundError, match="template"):
        render_model_card(VisTokenizerConfig(), template_path="/nonexistent/template.md")


def test_committed_preset_cards_are_current(tmp_path):
    """model_cards/ must be exactly what `vistok card --all-presets` renders (cards are never hand-edited)."""
    from vistok.families.catalogue import zoo_names

    assert cli(["card", "--all-presets", "--output-dir", str(tmp_path)]) == 0
    from vistok.families.catalogue import get_entry

    with_preset = [entry for entry in zoo_names() if get_entry(entry).preset is not None]
    for name in [*list_tokenizers(), "README", *(f"zoo/{entry}" for entry in with_preset)]:
        fresh = (tmp_path / f"{name}.md").read_text()
        committed_path = ROOT / "model_cards" / f"{name}.md"
        assert committed_path.is_file(), (
            f"model_cards/{name}.md missing: run `vistok card --all-presets --output-dir model_cards/`"
        )
        committed = committed_path.read_text()
        if fresh != committed:
            diff = "".join(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), n=1))[
                :2000
            ]
            pytest.fail(
                f"model_cards/{name}.md is stale; run `vistok card --all-presets --output-dir model_cards/`\n{diff}"
            )


def test_loaded_tokenizer_renders_without_model_instance_changes():
    tok = VisTokenizer(preset_card_config("vqvae-celeba64-vq-d4"))
    n = sum(p.numel() for p in tok.parameters())
    assert f"| Parameters | {n:,} |" in str(render_model_card(tok))
    assert f"| Parameters | {n:,} |" in str(render_model_card(tok.config))  # counted on the meta device
    assert not any(p.is_meta for p in tok.parameters()) and torch.is_grad_enabled()


def test_every_writer_uses_the_one_renderer(tmp_path):
    """save_pretrained, the training export and evaluate's card update all write render_model_card's card."""
    import sys

    from vistok.metrics.model_card import record_evaluation

    sys.path.insert(0, str(ROOT / "training"))
    from trainkit.model import export_tokenizer

    tok = VisTokenizer(preset_card_config("vqvae-celeba64-vq-d4"))
    tok.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "README.md").read_text() == str(render_model_card(tok))
    export_tokenizer(tok, tmp_path / "trained", {"steps": 5, "trained with": "vistok training/train.py"})
    text = (tmp_path / "trained" / "README.md").read_text()
    assert text == str(render_model_card(tok)) and "steps: 5" in text
    summary = {"psnr": 30.0, "dataset": "my images", "split": "test", "image_size": 64}
    record_evaluation(tmp_path / "trained", tok, summary, {"results": {"psnr": 30.0}})
    text = (tmp_path / "trained" / "README.md").read_text()
    assert text == str(render_model_card(tok)) and f"| PSNR (dB) ↑ | 30.00 | my images (test), 64px | {MEASURED} |" in text


def test_zoo_cards_show_where_the_files_are_the_licence_and_the_reported_numbers():
    from vistok.families.catalogue import get_entry, zoo_names
    from vistok.zoo.cards import zoo_card_config

    card = str(render_model_card(zoo_card_config("vqgan-llamagen-vq16")))
    assert 'create_tokenizer("vqgan-llamagen-vq16", pretrained=True)' in card
    assert "[FoundationVision/LlamaGen](https://huggingface.co/FoundationVision/LlamaGen): `vq_ds16_c2i.pt`" in card
    assert "2.19" in card and "reported" in card.lower()  # LlamaGen's README: rFID 2.19
    assert "[MIT](https://opensource.org/license/mit)" in card
    manual = str(render_model_card(zoo_card_config("vqgan-taming-f16-1024")))
    assert "not on the Hugging Face Hub" in manual and "vistok convert taming" in manual
    assert "pretrained=True" not in manual
    for name in zoo_names():
        entry = get_entry(name)
        if entry.preset is None:
            with pytest.raises(ValueError, match="records no preset"):
                zoo_card_config(entry)
            continue
        text = str(render_model_card(zoo_card_config(entry)))
        assert entry.license.url in text, name
        assert ("Not a permissive licence" in text) == (not entry.license.permissive), name


# ----------------------------------------------------------------------- the card follows the weights (issue 25.8)
def test_saving_another_tokenizer_into_a_folder_re_renders_vistoks_card(tmp_path):
    from tests.helpers import tiny_tokenizer

    tiny_tokenizer("vq").save_pretrained(tmp_path)
    assert "| Vocabulary | 32 codes" in (tmp_path / "README.md").read_text()
    fsq = tiny_tokenizer("fsq", levels=[8, 5, 5, 5])
    fsq.save_pretrained(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "| Vocabulary | 1,000 codes" in text and "32 codes" not in text
    assert text == str(render_model_card(fsq))


def test_a_readme_the_user_wrote_is_kept_with_a_warning_unless_asked(tmp_path):
    from tests.helpers import tiny_tokenizer
    from vistok.cards import is_vistok_card
    from vistok.modeling import ModelCardKeptWarning

    tok = tiny_tokenizer("vq")
    tok.save_pretrained(tmp_path)
    assert is_vistok_card(tmp_path / "README.md")
    (tmp_path / "README.md").write_text("# My tokenizer\n\nNotes I wrote myself.\n")
    with pytest.warns(ModelCardKeptWarning, match=r"README.md was not written by vistok .* overwrite_card=True"):
        tok.save_pretrained(tmp_path)
    assert (tmp_path / "README.md").read_text() == "# My tokenizer\n\nNotes I wrote myself.\n"
    assert not is_vistok_card(tmp_path / "README.md")
    tok.save_pretrained(tmp_path, overwrite_card=True)
    assert (tmp_path / "README.md").read_text() == str(render_model_card(tok))


def test_reported_numbers_on_a_card_name_the_protocol_they_were_measured_under():
    """Only numbers of one evaluation protocol compare (docs/evaluation.md): each reported row names its protocol,
    with the source's words when it is unknown."""
    from vistok.families import all_entries
    from vistok.zoo.cards import zoo_card_config

    checked = 0
    for entry in all_entries():
        if not entry.reported_metrics or entry.preset is None:
            continue
        card = str(render_model_card(zoo_card_config(entry)))
        rows = [line for line in card.splitlines() if line.startswith("|") and REPORTED in line]
        assert len(rows) == len(entry.reported_metrics), entry.name
        for row, metric in zip(rows, entry.reported_metrics, strict=True):
            assert f"protocol {metric['protocol']}" in row, (entry.name, row)
        checked += 1
    assert checked >= 10

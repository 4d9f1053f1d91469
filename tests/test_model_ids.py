"""Image tokens as the multimodal model numbers them (issue 21, part 4): ``tok.to_model_ids`` / ``from_model_ids``, the
record in ``config.metadata["model_ids"]`` and ``vistok tokenize --model-ids``.

The expected ids come from the upstream projects, never from vistok: Chameleon's from upstream's
``VocabTranslation.convert_img2bp2`` and transformers' ``get_image_tokens`` (saved in the reference file) and from
transformers' own ``ChameleonImageVocabularyMapping``; Emu3's from transformers' ``Emu3Model.get_image_tokens``;
Show-o's from its ``llm_token_ids`` (index + len(text tokenizer) in Show-o's code).
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from vistok import VisTokenizer, VisTokenizerConfig
from vistok.cli import main as vistok_main
from vistok.configuration import InvalidConfigError
from vistok.model_ids import ModelIdMap, ModelIdsUnavailableError, entries_with_model_ids
from vistok.tokenize import read_layout, read_manifest, rows_to_indices

DATA = Path(__file__).parent / "data"
CHAMELEON_HF = DATA / "chameleon" / "chameleon_tiny_hf"
EMU3_BAAI, EMU3_HF = DATA / "emu3" / "emu3_tiny", DATA / "emu3" / "emu3_tiny_hf"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_with(record: dict | None) -> VisTokenizer:
    """A tiny random grid tokenizer (32 px → 8×8 tokens, codebook 64) with ``record`` as its model-ids record."""
    torch.manual_seed(0)
    config = VisTokenizerConfig(
        image_size=32,
        net={"type": "simple_cnn", "hidden_channels": 16, "num_res_blocks": 1},
        quantizer={"type": "vq", "codebook_size": 64, "codebook_dim": 4},
        metadata={"model_ids": record} if record is not None else None,
    )
    return VisTokenizer(config).eval()


# ------------------------------------------------------------------------------------------------ records
def test_offset_table_and_named_records_round_trip():
    k = 16
    indices = torch.arange(k).reshape(1, 4, 4).flip(-1)
    offset = ModelIdMap({"kind": "offset", "offset": 100}, k)
    assert torch.equal(offset.to_model_ids(indices), indices + 100)
    assert torch.equal(offset.from_model_ids(offset.to_model_ids(indices)), indices)
    ids = [int(i) for i in torch.randperm(k, generator=torch.Generator().manual_seed(0)) * 7 + 3]
    table = ModelIdMap({"kind": "table", "ids": ids}, k)
    mapped = table.to_model_ids(indices)
    assert mapped.tolist() == [[[ids[i] for i in row] for row in indices[0].tolist()]]
    assert torch.equal(table.from_model_ids(mapped), indices)
    vocabulary = {f"<tok{i:03d}>": 1000 + 2 * i for i in range(k)} | {"hello": 5}
    named = ModelIdMap({"kind": "named", "token_format": "<tok{:03d}>"}, k)
    assert torch.equal(named.to_model_ids(indices, vocabulary), 1000 + 2 * indices)
    assert torch.equal(named.from_model_ids(1000 + 2 * indices, vocabulary), indices)
    with pytest.raises(ModelIdsUnavailableError, match="pass vocabulary="):
        named.to_model_ids(indices)
    with pytest.raises(ValueError, match="lacks 1 of the 16 image tokens.*<tok015>"):
        named.to_model_ids(indices, {k: v for k, v in vocabulary.items() if k != "<tok015>"})
    # multi-scale maps and numpy arrays
    assert [t.tolist() for t in offset.to_model_ids([indices[:, :1, :1], indices])] == [[[[103]]], (indices + 100).tolist()]
    assert offset.to_model_ids(np.array([1, 2])).tolist() == [101, 102]


def test_out_of_range_values_name_the_valid_range():
    offset = ModelIdMap({"kind": "offset", "offset": 50305}, 8192)
    with pytest.raises(ValueError, match=r"index 8192 is outside .* valid indices are 0\.\.8191"):
        offset.to_model_ids(torch.tensor([0, 8192]))
    with pytest.raises(ValueError, match=r"index -1 is outside"):
        offset.to_model_ids(torch.tensor([-1]))
    with pytest.raises(ValueError, match=r"id 50304 is not an image token .* valid ids are 50305\.\.58496"):
        offset.from_model_ids(torch.tensor([50304]))
    table = ModelIdMap({"kind": "table", "ids": [9, 4, 7]}, 3)
    with pytest.raises(ValueError, match=r"id 5 is not an image token .* the 3 ids of its table, between 4 and 9"):
        table.from_model_ids(torch.tensor([4, 5]))
    with pytest.raises(TypeError, match="must be integers"):
        offset.to_model_ids(torch.tensor([1.0]))


@pytest.mark.parametrize(
    "record, message",
    [
        ({"kind": "shift", "offset": 3}, "valid kinds: offset, table, named"),
        ({"kind": "offset", "offset": -1}, "non-negative integer 'offset'"),
        ({"kind": "offset", "offset": "4"}, "non-negative integer 'offset'"),
        ({"kind": "table", "ids": [1, 1] + list(range(2, 64))}, "must be distinct"),
        ({"kind": "table", "ids": list(range(10))}, "10 ids for a codebook of 64"),
        ({"kind": "named", "token_format": "<visual>"}, "one field for the code"),
        ({"kind": "offset", "offset": 4, "end_of_row": "<eor>"}, r"\['end_of_row'\] must be"),
        ("offset 4", "must be a dict"),
    ],
)
def test_a_malformed_record_is_refused_when_the_config_is_built_and_loaded(record, message, tmp_path):
    with pytest.raises(InvalidConfigError, match=message):
        tiny_with(record)
    tiny_with({"kind": "offset", "offset": 4}).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["metadata"]["model_ids"] = record
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidConfigError, match=message):
        VisTokenizer.from_pretrained(tmp_path)


def test_a_tokenizer_without_a_record_says_so_and_names_the_entries_that_have_one():
    names = entries_with_model_ids()
    assert {"showo-magvitv2", "vqgan-chameleon-encoder-7b", "movq-emu3-gen-hf", "vqgan-janus-pro-1b", "movq-emu3"} <= set(names)
    assert "vqgan-chameleon" not in names  # Meta's ckpt + yaml carry no vocabulary
    with pytest.raises(ModelIdsUnavailableError, match="records no model vocabulary ids.*showo-magvitv2"):
        tiny_with(None).to_model_ids(torch.zeros(1, 8, 8, dtype=torch.long))
    tok = tiny_with({"kind": "offset", "offset": 4})
    with pytest.raises(ValueError, match=r"valid indices are 0\.\.63"):
        tok.to_model_ids(torch.full((1, 2, 2), 64))


def test_the_record_survives_save_and_load(tmp_path):
    tok = tiny_with({"kind": "table", "ids": list(range(200, 264))[::-1], "source": "test"})
    tok.save_pretrained(tmp_path)
    again = VisTokenizer.from_pretrained(tmp_path)
    indices = torch.randint(0, 64, (2, 8, 8))
    assert torch.equal(again.to_model_ids(indices), 263 - indices)
    assert torch.equal(again.from_model_ids(263 - indices), indices)


# ----------------------------------------------------------------------------- against the upstream sources
def test_chameleon_ids_are_upstream_img2bpe_and_transformers_vocabulary_mapping():
    from transformers.models.chameleon.modeling_chameleon import ChameleonImageVocabularyMapping

    from vistok.families.chameleon import convert_chameleon

    expected = torch.load(DATA / "chameleon" / "chameleon_tiny_expected.pt", weights_only=True)
    tok = convert_chameleon(CHAMELEON_HF / "model.safetensors.index.json")
    ids = tok.to_model_ids(expected["indices"])
    assert ids.shape == expected["indices"].shape
    assert torch.equal(ids.reshape(3, -1), expected["bpe_tokens"].long())  # upstream VocabTranslation
    assert torch.equal(ids.reshape(3, -1), expected["transformers_bpe_tokens"].long())
    vocabulary_map = json.loads((CHAMELEON_HF / "config.json").read_text())["vocabulary_map"]
    mapping = ChameleonImageVocabularyMapping(vocabulary_map)  # transformers' own reading of the map
    assert torch.equal(ids, mapping.img2bpe_mapping_tensor.long()[expected["indices"]])
    assert torch.equal(tok.from_model_ids(expected["bpe_tokens"].long().reshape(3, 16, 16)), expected["indices"])


def test_emu3_ids_are_transformers_get_image_tokens_from_either_format():
    from vistok.families.emu3 import convert_emu3

    expected_hf = torch.load(DATA / "emu3" / "emu3_tiny_hf_expected.pt", weights_only=True)
    rows = expected_hf["bpe_tokens"].long().reshape(3, 8, 9)  # each row of 8 ids then <|extra_200|>
    hf = convert_emu3(EMU3_HF, image_size=32)
    assert torch.equal(hf.to_model_ids(expected_hf["indices"]), rows[..., :8])
    assert torch.equal(hf.from_model_ids(rows[..., :8]), expected_hf["indices"])
    baai = convert_emu3(EMU3_BAAI, image_size=32)  # no vocabulary in BAAI's folder: the record names the tokens
    record = baai.config.metadata["model_ids"]
    assert record["kind"] == "named" and record["end_of_row"]["token"] == "<|extra_200|>"
    with pytest.raises(ModelIdsUnavailableError, match=r"<\|visual token000000\|>.*pass vocabulary="):
        baai.to_model_ids(expected_hf["indices"])
    vocabulary = json.loads((EMU3_HF / "config.json").read_text())["vocabulary_map"]
    assert torch.equal(baai.to_model_ids(expected_hf["indices"], vocabulary=vocabulary), rows[..., :8])
    assert (rows[..., 8] == vocabulary[record["end_of_row"]["token"]]).all()


def test_showo_ids_are_its_llm_token_ids():
    from vistok.families.showo import convert_showo

    expected = torch.load(DATA / "showo" / "showo_magvitv2_tiny_expected.pt", weights_only=True)
    tok = convert_showo(DATA / "showo" / "showo_magvitv2_tiny")
    grid = expected["indices"].reshape(3, 8, 8)
    assert torch.equal(tok.to_model_ids(grid).reshape(3, -1), expected["llm_token_ids"])
    assert torch.equal(tok.from_model_ids(expected["llm_token_ids"].reshape(3, 8, 8)), grid)


def test_janus_ids_are_the_codes_of_its_generation_vocabulary():
    from vistok.families.janus import convert_janus

    tok = convert_janus(DATA / "janus_tiny")
    record = tok.config.metadata["model_ids"]
    assert record["kind"] == "offset" and record["offset"] == 0 and "generation" in record["vocabulary"]
    indices = torch.randint(0, tok.codebook_size, (2, 8, 8))
    assert torch.equal(tok.to_model_ids(indices), indices)


# ------------------------------------------------------------------------------------- vistok tokenize
def _tokenize(model, output, *extra: str) -> int:
    return vistok_main([
        "tokenize", "--model", str(model), "--dataset", "samples", "--split", "test", "--output", str(output),
        "--num-samples", "3", "--num-workers", "0", "--no-progress", *extra,
    ])  # fmt: skip


def test_tokenize_model_ids_writes_vocabulary_ids_and_records_them(tmp_path):
    tok = tiny_with({"kind": "offset", "offset": 300, "source": "a test record"})
    tok.save_pretrained(tmp_path / "tok")
    assert _tokenize(tmp_path / "tok", tmp_path / "indices") == 0
    assert _tokenize(tmp_path / "tok", tmp_path / "ids", "--model-ids") == 0
    plain = datasets.load_from_disk(str(tmp_path / "indices"))
    ids = datasets.load_from_disk(str(tmp_path / "ids"))
    assert np.array_equal(np.asarray(ids["indices"]), np.asarray(plain["indices"]) + 300)
    manifest = read_manifest(tmp_path / "ids")
    assert manifest["model_ids"]["kind"] == "offset" and manifest["model_ids"]["id_range"] == [300, 363]
    assert manifest["identity"]["model_ids"]["offset"] == 300 and "model_ids" not in read_manifest(tmp_path / "indices")["identity"]
    assert manifest["token_dtype"] == "uint16" and read_manifest(tmp_path / "indices")["token_dtype"] == "uint8"
    assert "vocabulary ids" in (tmp_path / "ids" / "README.md").read_text()
    assert "vocabulary ids of codes from a codebook of 64" in (tmp_path / "ids" / "README.md").read_text()
    assert "of token ids from a codebook of 64" in (tmp_path / "indices" / "README.md").read_text()
    back = tok.from_model_ids(rows_to_indices(ids["indices"], read_layout(tmp_path / "ids")))
    assert torch.equal(back, rows_to_indices(plain["indices"], read_layout(tmp_path / "indices")))
    # resuming into the index dataset with --model-ids is another run, refused
    with pytest.raises(SystemExit, match="model_ids"):
        _tokenize(tmp_path / "tok", tmp_path / "indices", "--model-ids", "--resume")


def test_tokenize_model_ids_refuses_a_tokenizer_without_a_record(tmp_path):
    tiny_with(None).save_pretrained(tmp_path / "tok")
    with pytest.raises(SystemExit, match="--model-ids: this tokenizer records no model vocabulary ids"):
        _tokenize(tmp_path / "tok", tmp_path / "out", "--model-ids")
    assert not (tmp_path / "out").exists()
    tiny_with({"kind": "named", "token_format": "<v{:03d}>"}).save_pretrained(tmp_path / "named")
    with pytest.raises(SystemExit, match="names its image tokens.*vocabulary="):
        _tokenize(tmp_path / "named", tmp_path / "out", "--model-ids")


def test_zoo_info_and_the_card_say_how_the_multimodal_model_numbers_image_tokens(capsys):
    from vistok.cards import render_model_card
    from vistok.cli import main
    from vistok.families import get_entry
    from vistok.zoo.cards import zoo_card_config

    entry = get_entry("showo-magvitv2")
    assert entry.model_ids
    assert main(["zoo", "info", "showo-magvitv2"]) == 0
    assert f"model vocabulary ids: {entry.model_ids}" in capsys.readouterr().out
    assert entry.model_ids in str(render_model_card(zoo_card_config(entry)))

"""The Pretrain releases (issue 22, part 4): IBQ Pretrain 16384 / 262144 and Open-MAGVIT2 Pretrain 16384 / 262144
each record a preset (so they get a card and a tokens / size row before download); the presets are the networks the
converters infer from a full-size state dict of that network, and a file whose shapes differ still loads as the file
says, with a warning naming each difference."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import vistok
from vistok.convert.lightning_ema import select_lightning_weights
from vistok.convert.magvit2_layout import infer_magvit2_net
from vistok.convert.vqgan_layout import infer_vqgan_config
from vistok.families.catalogue import get_entry
from vistok.families.ibq import ibq_to_vistok
from vistok.families.open_magvit2 import is_tokenizer_key
from vistok.zoo.cards import zoo_card_config
from vistok.zoo.loader import architecture_differences, expected_config

DATA = Path(__file__).parent / "data"
PRETRAIN = {
    "ibq-pretrain256-16384": ("TencentARC/IBQ-Tokenizer-16384-Pretrain", "ibqgan-pretrain256-16384", 16384),
    "ibq-pretrain256-262144": ("TencentARC/IBQ-Tokenizer-262144-Pretrain", "ibqgan-pretrain256-262144", 262144),
    "lfqgan-magvit2-pretrain256-16384": ("TencentARC/Open-MAGVIT2-Tokenizer-16384-Pretrain",
                                         "lfqgan-magvit2-pretrain256-16384", 16384),
    "lfqgan-magvit2-pretrain256-262144": ("TencentARC/Open-MAGVIT2-Tokenizer-262144-Pretrain",
                                          "lfqgan-magvit2-pretrain256-262144", 262144),
}


def meta_spec(name: str, **resize: list[int]) -> dict[str, torch.Tensor]:
    spec = json.loads((DATA / name).read_text())
    return {key: torch.empty(resize.get(key, shape), device="meta") for key, shape in spec.items()}


@pytest.mark.parametrize("name", sorted(PRETRAIN))
def test_pretrain_entries_have_a_preset_a_card_and_their_codebook(name):
    repo_id, preset, codes = PRETRAIN[name]
    entry = get_entry(name)
    assert entry.repo_id == repo_id and entry.preset == preset
    config = expected_config(entry)
    with torch.device("meta"):
        tok = vistok.create_tokenizer(preset)
    assert tok.codebook_size == codes and config.tokens_per_image() == 256 and config.image_size == 256
    card = zoo_card_config(entry)  # the card renders from the catalogue before any download
    assert card.metadata["zoo"] and card.source == f"vistok zoo entry {name}"
    assert "not yet checked against" in vistok.PRESETS.get(preset).source  # says what is not confirmed


def test_ibq_pretrain_presets_are_the_network_the_converter_infers_from_the_imagenet_layout():
    """The pretraining configs give the ImageNet network: the full-size ImageNet 16384 layout (and the same with a
    262,144-row codebook) converts to the pretrain presets' architecture, key for key."""
    for size in (16384, 262144):
        spec = meta_spec("ibq_16384_state_dict_spec.json", **{
            "quantize.embedding.weight": [size, 256], "model_ema.quantizeembeddingweight": [size, 256]})
        converted, which, _ = ibq_to_vistok(spec)
        assert which == "ema"
        with torch.device("meta"):
            target = vistok.create_tokenizer(f"ibqgan-pretrain256-{size}").state_dict()
        assert set(converted) == set(target)
        assert all(tuple(converted[k].shape) == tuple(target[k].shape) for k in target)
        inferred = infer_vqgan_config(converted)
        preset = vistok.PRESETS.get(f"ibqgan-pretrain256-{size}").config
        assert {k: inferred["net"][k] for k in preset["net"]} == preset["net"]
        assert (inferred["codebook_size"], inferred["codebook_dim"]) == (size, 256)
        assert preset == vistok.PRESETS.get(f"ibqgan-imagenet256-{size}").config


def test_open_magvit2_pretrain_262144_preset_is_the_network_inferred_from_the_256_L_layout():
    selected, _ = select_lightning_weights(meta_spec("magvit2_256_L_state_dict_spec.json"), is_tokenizer_key, "auto",
                                           what="an Open-MAGVIT2")
    net = infer_magvit2_net(selected)["net"]
    preset = vistok.PRESETS.get("lfqgan-magvit2-pretrain256-262144").config
    assert {k: net[k] for k in preset["net"]} == preset["net"]
    small = vistok.PRESETS.get("lfqgan-magvit2-pretrain256-16384").config
    assert small["net"] == {**preset["net"], "latent_channels": 14} and small["quantizer"]["codebook_dim"] == 14
    assert small["quantizer"]["bit_order"] == "lsb_first"


def test_a_pretrain_file_with_another_architecture_is_loaded_as_the_file_says_with_the_differences_named():
    entry = get_entry("lfqgan-magvit2-pretrain256-16384")
    config = expected_config(entry)
    assert architecture_differences(entry, config) == []
    other = copy.deepcopy(config)
    other.net = {**config.net, "num_res_blocks": 2}
    assert architecture_differences(entry, other) == ["net.num_res_blocks: catalogue 4, file 2"]

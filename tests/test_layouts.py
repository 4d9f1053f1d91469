"""Token layouts (vistok.layouts): shapes, reading order, validation and descriptions."""

from __future__ import annotations

import pytest
import torch

import vistok
from vistok.layouts import GridLayout, MultiScaleLayout, SequenceLayout, layout_for

VAR_PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)


def test_var_schedule_has_680_tokens_and_reads_coarse_to_fine():
    layout = MultiScaleLayout(VAR_PATCH_NUMS)
    assert layout.tokens_per_image((16, 16)) == 680  # VAR's tokenizer: 1² + 2² + … + 16² (issue 13)
    scales = [torch.full((2, p, p), k) for k, p in enumerate(VAR_PATCH_NUMS)]
    flat = layout.flatten(scales)
    assert flat.shape == (2, 680)
    assert flat[0, 0] == 0 and torch.equal(flat[0, 1:5], torch.ones(4, dtype=flat.dtype))
    back = layout.unflatten(flat, (16, 16))
    assert all(torch.equal(a, b) for a, b in zip(back, scales, strict=True))
    assert layout.describe((16, 16)) == "10 scales 1×1 … 16×16 (680 tokens)"
    assert layout.spec((16, 16))["scales"][-1] == [16, 16]


def test_multiscale_refuses_wrong_lists_naming_the_expected_shapes():
    layout = MultiScaleLayout((1, 2, 3, 4))
    good = [torch.zeros(2, p, p, dtype=torch.long) for p in (1, 2, 3, 4)]
    assert layout.from_user(good) == good
    with pytest.raises(ValueError, match=r"list of 4 tensors \[\(B, 1, 1\), \(B, 2, 2\), \(B, 3, 3\), \(B, 4, 4\)\]"):
        layout.from_user(torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"indices\[2\] must have shape \(B, 3, 3\)"):
        layout.from_user([good[0], good[1], torch.zeros(2, 4, 4, dtype=torch.long), good[3]])
    with pytest.raises(ValueError, match="same B"):
        layout.from_user([good[0], good[1], good[2], torch.zeros(3, 4, 4, dtype=torch.long)])
    with pytest.raises(TypeError, match=r"indices\[0\] must be an integer tensor"):
        layout.from_user([good[0].float(), *good[1:]])
    with pytest.raises(ValueError, match="last scale is 4×4"):
        layout.tokens_per_image((8, 8))


def test_sequence_layout_maps_b_l_to_the_quantizers_b_1_l():
    layout = SequenceLayout(32)
    internal = torch.arange(64).reshape(2, 1, 32)
    user = layout.to_user(internal)
    assert user.shape == (2, 32) and torch.equal(layout.from_user(user), internal)
    assert layout.tokens_per_image((1, 32)) == 32 and layout.describe((1, 32)) == "1-D sequence of 32 tokens"
    with pytest.raises(ValueError, match=r"shape \(B, 32\) \(a sequence of 32 tokens\)"):
        layout.from_user(torch.zeros(2, 4, 8, dtype=torch.long))


def test_grid_layout_is_todays_contract():
    layout = GridLayout()
    ids = torch.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert layout.to_user(ids) is ids and layout.from_user(ids) is ids
    assert torch.equal(layout.flatten(ids)[1], torch.arange(12, 24))  # row-major
    assert torch.equal(layout.unflatten(layout.flatten(ids), (3, 4)), ids)
    with pytest.raises(ValueError, match=r"shape \(B, h, w\)"):
        layout.from_user(ids[0])


def test_layout_for_combines_net_and_quantizer():
    class MultiScale:
        layout = "multiscale"

    class Plain:
        pass

    assert isinstance(layout_for("grid", None, Plain, {}), GridLayout)
    assert layout_for("sequence", 64, Plain, {}) == SequenceLayout(64)
    assert layout_for("grid", None, MultiScale, {"patch_nums": [1, 2, 4]}) == MultiScaleLayout((1, 2, 4))
    with pytest.raises(ValueError, match="num_latent_tokens"):
        layout_for("sequence", None, Plain, {})
    with pytest.raises(ValueError, match="needs a square latent grid"):
        layout_for("sequence", 32, MultiScale, {"patch_nums": [1, 2]})


@pytest.mark.parametrize("name", ["vqvae-celeba64-vq-d4", "vqgan-llamagen-vq16"])
def test_existing_tokenizers_are_grids(name):
    config = vistok.create_tokenizer(name).config
    assert isinstance(config.token_layout, GridLayout)
    assert config.tokens_per_image() == config.latent_size**2


def test_the_examples_in_the_layouts_module_docstrings_hold():
    import doctest

    import vistok.layouts

    results = doctest.testmod(vistok.layouts)
    assert results.attempted >= 3 and results.failed == 0

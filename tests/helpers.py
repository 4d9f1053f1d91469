"""Small builders shared by the tests."""

from __future__ import annotations

import torch

import vistok
from vistok import NETS, QUANTIZERS, VisTokenizerConfig


def tiny_config(quantizer: str = "vq", net: str = "simple_cnn", **quantizer_options) -> VisTokenizerConfig:
    """A tokenizer built from the registered classes' ``tiny`` options (16 px images for every net)."""
    net_spec = {"type": net, **NETS.get(net).tiny}
    q_spec = {"type": quantizer, **QUANTIZERS.get(quantizer).tiny, **quantizer_options}
    if "image_size" in net_spec:  # a net with fixed position embeddings (titok) sets the size
        return VisTokenizerConfig(image_size=net_spec["image_size"], net=net_spec, quantizer=q_spec)
    probe = VisTokenizerConfig(image_size=64, net=net_spec, quantizer=q_spec)
    return VisTokenizerConfig(image_size=2 * probe.downsample_factor * 2, net=net_spec, quantizer=q_spec)


def tiny_tokenizer(quantizer: str = "vq", net: str = "simple_cnn", **quantizer_options) -> vistok.VisTokenizer:
    return vistok.VisTokenizer(tiny_config(quantizer, net, **quantizer_options))


def images(tok: vistok.VisTokenizer, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [-1, 1] at the tokenizer's native size."""
    g = torch.Generator().manual_seed(seed)
    size = tok.config.image_size
    low = torch.rand(batch, tok.config.num_channels, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return (x * 2 - 1).clamp(-1, 1)


def replace_zoo_entry(monkeypatch, name: str, **changes):
    """Swap the zoo entry ``name`` for a copy with ``changes`` (e.g. a tiny stand-in's resolution) in its family's
    record, for this test only; returns the new entry."""
    import dataclasses

    from vistok.families import FAMILIES
    from vistok.families.catalogue import get_entry

    entry = get_entry(name)
    family = FAMILIES[entry.converter]
    new = dataclasses.replace(entry, **changes)
    entries = tuple(new if e.name == name else e for e in family.entries)
    monkeypatch.setitem(FAMILIES, family.name, dataclasses.replace(family, entries=entries))
    return new

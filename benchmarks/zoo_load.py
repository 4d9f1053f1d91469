"""First and second load of every zoo entry, on full-size stand-in files (issue 11).

For each zoo entry that is on the Hub and whose converter is registered, this writes a stand-in of the release into
a temporary offline Hugging Face cache: the upstream on-disk format (LlamaGen's ``{"model": state_dict}`` ``.pt``,
the mixin's ``config.json`` + ``model.safetensors``, Lightning ``.ckpt`` files whose ``state_dict`` holds the raw
weights, ``loss.*`` and the ``model_ema.*`` shadows in file order, a Janus ``model.safetensors`` whose
``gen_vision_model.*`` sits beside a large bfloat16 ``language_model.*`` decoy) with random values of the real shapes,
taken from the full-size state-dict specs in ``tests/data/*_state_dict_spec.json``. Then, each in a fresh
interpreter:

- ``import vistok`` alone (the baseline every load pays);
- the first ``vistok.create_tokenizer(name, pretrained=True)``: find the file in the HF cache, unpickle, convert,
  write the converted cache entry;
- the second one (new process, cache warm): verify the cache entry and read its safetensors.

Each reports wall time, CPU time, how many times it converted and unpickled (``torch.load`` calls), and peak
resident memory (``VmHWM``: the whole process, interpreter and import included) right after ``import vistok``,
right after the load and after reading every weight once (what a first forward pass pages in). Per entry the row
records the second load's peak over the import divided by the converted ``model.safetensors`` size (about 2 when a
load holds two copies of the weights, 1 for one). ``--before REV`` measures an earlier commit on the same stand-in
files too (before / after).

Then, for the ``--concurrent`` entries (default ``ibq-imagenet256-16384``), ``--ranks`` processes (default 8, as the
ranks of one launch) each import vistok and start the first load at the same moment on an empty converted cache,
then as many start the second load: how many converted, the ``torch.load`` calls, the sum of their peaks and the
drop of the machine's ``MemAvailable``. The files are deleted after each entry. Results go to
``benchmarks/results/zoo_load_cpu.json``.

    python benchmarks/zoo_load.py                     # every entry (~15 minutes, ~3 GB of temporary disk)
    python benchmarks/zoo_load.py --before f473656    # and the commit before the one-copy loading (~35 minutes)
    python benchmarks/zoo_load.py --only ibq-imagenet256-16384,vqgan-llamagen-vq16 --concurrent ''
    python benchmarks/zoo_load.py --only none --concurrent maskgit-vqgan-imagenet256-f16 --ranks 4 --merge
    python benchmarks/zoo_load.py --workdir /big/tmp  # where the stand-in files go
    python benchmarks/zoo_load.py --only NAME --merge # measure NAME again, keep the file's other rows

The stand-ins are written just before they are loaded, so the first load reads them from the page cache, as it
would right after a download. Random values only make the timing meaningful: the outputs are not checked here.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "tests" / "data"
RESULT_NAME = "zoo_load_cpu"
BASELINE_REPEATS = 2
# What `import vistok` costs, layer by layer (each alone in a fresh process): vistok builds on transformers, whose
# image utilities import torchvision.
IMPORT_BREAKDOWN = ("torch", "torchvision", "transformers", "transformers.image_processing_utils")
# Janus: bfloat16 decoy standing in for the language model that shares the release file (Janus-Pro-1B's is larger);
# it is there to measure that only the tokenizer's tensors are read.
JANUS_DECOY_LAYERS = 10
JANUS_HIDDEN, JANUS_FFN, JANUS_VOCAB = 2048, 5632, 102400

Spec = dict[str, tuple[int, ...]]  # key -> shape, in file order


# ------------------------------------------------------------------------------------------- stand-in layouts
def load_spec(name: str) -> Spec:
    """``tests/data/<name>_state_dict_spec.json`` (key -> shape, in the upstream file's order)."""
    raw = json.loads((SPECS / f"{name}_state_dict_spec.json").read_text())
    return {key: tuple(shape) for key, shape in raw.items()}


def with_rows(spec: Spec, keys: Iterable[str], rows: int) -> Spec:
    """``spec`` with the first dimension of ``keys`` (codebook tensors) set to ``rows``."""
    out = dict(spec)
    for key in keys:
        if key not in out:
            raise KeyError(f"{key} is not in the spec")
        out[key] = (rows, *out[key][1:])
    return out


def magvit2_net_spec(ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z: int) -> Spec:
    """``encoder.*`` / ``decoder.*`` of SEED-Voken's Open-MAGVIT2 model (adaptive-norm decoder) for the given
    sizes, in state-dict order. :func:`check_magvit2_generator` checks that it reproduces the 256_L spec."""
    spec: Spec = {}

    def block(prefix: str, cin: int, cout: int) -> None:
        spec[f"{prefix}.norm1.weight"] = spec[f"{prefix}.norm1.bias"] = (cin,)
        spec[f"{prefix}.norm2.weight"] = spec[f"{prefix}.norm2.bias"] = (cout,)
        spec[f"{prefix}.conv1.weight"] = (cout, cin, 3, 3)
        spec[f"{prefix}.conv2.weight"] = (cout, cout, 3, 3)
        if cin != cout:
            spec[f"{prefix}.nin_shortcut.weight"] = (cout, cin, 1, 1)

    levels = len(ch_mult)
    top = ch * ch_mult[-1]
    spec["encoder.conv_in.weight"] = (ch, 3, 3, 3)
    for i in range(levels):
        cin, cout = (ch * ch_mult[i - 1] if i else ch), ch * ch_mult[i]
        for j in range(num_res_blocks):
            block(f"encoder.down.{i}.block.{j}", cin if j == 0 else cout, cout)
        if i < levels - 1:
            spec[f"encoder.down.{i}.downsample.weight"] = (cout, cout, 3, 3)
            spec[f"encoder.down.{i}.downsample.bias"] = (cout,)
    for j in range(num_res_blocks):
        block(f"encoder.mid_block.{j}", top, top)
    spec["encoder.norm_out.weight"] = spec["encoder.norm_out.bias"] = (top,)
    spec["encoder.conv_out.weight"], spec["encoder.conv_out.bias"] = (z, top, 1, 1), (z,)

    spec["decoder.conv_in.weight"], spec["decoder.conv_in.bias"] = (top, z, 3, 3), (top,)
    for j in range(num_res_blocks):
        block(f"decoder.mid_block.{j}", top, top)
    level_in = [ch * ch_mult[i + 1] if i < levels - 1 else top for i in range(levels)]
    for i in range(levels):
        cout = ch * ch_mult[i]
        for j in range(num_res_blocks):
            block(f"decoder.up.{i}.block.{j}", level_in[i] if j == 0 else cout, cout)
        if i > 0:
            spec[f"decoder.up.{i}.upsample.conv1.weight"] = (4 * cout, cout, 3, 3)
            spec[f"decoder.up.{i}.upsample.conv1.bias"] = (4 * cout,)
    for i in range(levels):
        for part in ("gamma", "beta"):
            spec[f"decoder.adaptive.{i}.{part}.weight"] = (level_in[i], z)
            spec[f"decoder.adaptive.{i}.{part}.bias"] = (level_in[i],)
    spec["decoder.norm_out.weight"] = spec["decoder.norm_out.bias"] = (ch,)
    spec["decoder.conv_out.weight"], spec["decoder.conv_out.bias"] = (3, ch, 3, 3), (3,)
    return spec


def shadow_name(key: str) -> str:
    return "model_ema." + key.replace(".", "")


def lightning_layout(net: Spec, template: Spec) -> Spec:
    """A Lightning ``state_dict`` laid out like ``template`` (a full spec with ``loss.*`` and ``model_ema.*``) but
    with ``net`` as its ``encoder.*`` / ``decoder.*``: raw net, then ``template``'s other raw keys, then
    ``model_ema.decay`` / ``num_updates`` and one shadow per trainable raw key, in raw order (LitEma's layout)."""
    shadowed_in_template = {k for k in template if shadow_name(k) in template}
    others = {k: s for k, s in template.items() if not k.startswith(("encoder.", "decoder.", "model_ema."))}
    raw = {**net, **others}
    spec = dict(raw)
    spec["model_ema.decay"] = spec["model_ema.num_updates"] = ()
    for key, shape in raw.items():
        if key in net or key in shadowed_in_template:
            spec[shadow_name(key)] = shape
    return spec


def check_magvit2_generator() -> None:
    """The generated Open-MAGVIT2 layout equals the 256_L spec key for key, shape for shape, in order."""
    template = load_spec("magvit2_256_L")
    rebuilt = lightning_layout(magvit2_net_spec(128, (1, 1, 2, 2, 4), 4, 18), template)
    if list(rebuilt.items()) != list(template.items()):
        diff = [k for k in set(rebuilt) ^ set(template)][:5] or [
            k for k in template if rebuilt.get(k) != template[k]
        ][:5]
        raise SystemExit(f"the Open-MAGVIT2 layout generator does not reproduce magvit2_256_L: {diff}")


def titok_spec(encoder: tuple[int, int], decoder: tuple[int, int], tokens: int, patch: int = 16) -> Spec:
    """1d-tokenizer's single-stage TiTok VQ state dict (``encoder`` / ``decoder`` = (width, depth), codebook
    8192 x 64, 256 px), in state-dict order. :func:`check_titok_generator` checks it against the BL-64 spec."""
    token_size, grid = 64, (256 // patch) ** 2 + 1
    spec: Spec = {"latent_tokens": (tokens, encoder[0])}

    def blocks(prefix: str, width: int, depth: int) -> None:
        for i in range(depth):
            b = f"{prefix}.transformer.{i}"
            spec[f"{b}.ln_1.weight"] = spec[f"{b}.ln_1.bias"] = (width,)
            spec[f"{b}.attn.in_proj_weight"], spec[f"{b}.attn.in_proj_bias"] = (
                (3 * width, width),
                (3 * width,),
            )
            spec[f"{b}.attn.out_proj.weight"], spec[f"{b}.attn.out_proj.bias"] = (width, width), (width,)
            spec[f"{b}.ln_2.weight"] = spec[f"{b}.ln_2.bias"] = (width,)
            spec[f"{b}.mlp.c_fc.weight"], spec[f"{b}.mlp.c_fc.bias"] = (4 * width, width), (4 * width,)
            spec[f"{b}.mlp.c_proj.weight"], spec[f"{b}.mlp.c_proj.bias"] = (width, 4 * width), (width,)

    w, depth = encoder
    spec["encoder.class_embedding"] = (1, w)
    spec["encoder.positional_embedding"] = (grid, w)
    spec["encoder.latent_token_positional_embedding"] = (tokens, w)
    spec["encoder.patch_embed.weight"], spec["encoder.patch_embed.bias"] = (w, 3, patch, patch), (w,)
    spec["encoder.ln_pre.weight"] = spec["encoder.ln_pre.bias"] = (w,)
    blocks("encoder", w, depth)
    spec["encoder.ln_post.weight"] = spec["encoder.ln_post.bias"] = (w,)
    spec["encoder.conv_out.weight"], spec["encoder.conv_out.bias"] = (token_size, w, 1, 1), (token_size,)
    w, depth = decoder
    spec["decoder.class_embedding"] = (1, w)
    spec["decoder.positional_embedding"] = (grid, w)
    spec["decoder.mask_token"] = (1, 1, w)
    spec["decoder.latent_token_positional_embedding"] = (tokens, w)
    spec["decoder.decoder_embed.weight"], spec["decoder.decoder_embed.bias"] = (w, token_size), (w,)
    spec["decoder.ln_pre.weight"] = spec["decoder.ln_pre.bias"] = (w,)
    blocks("decoder", w, depth)
    spec["decoder.ln_post.weight"] = spec["decoder.ln_post.bias"] = (w,)
    spec["decoder.ffn.0.weight"], spec["decoder.ffn.0.bias"] = (
        (3 * patch * patch, w, 1, 1),
        (3 * patch * patch,),
    )
    spec["decoder.conv_out.weight"], spec["decoder.conv_out.bias"] = (3, 3, 3, 3), (3,)
    spec["quantize.embedding.weight"] = (8192, token_size)
    return spec


# TiTok's ViT sizes (width, depth) by name, and each release's encoder / decoder size and token count.
TITOK_SIZES = {"small": (512, 8), "base": (768, 12), "large": (1024, 24)}
TITOK_RELEASES = {
    "bl64": ("base", "large", 64),
    "bl128": ("base", "large", 128),
    "sl256": ("small", "large", 256),
}


def check_titok_generator() -> None:
    """The generated TiTok layout equals the BL-64 spec key for key, shape for shape, in order."""
    rebuilt = titok_spec(TITOK_SIZES["base"], TITOK_SIZES["large"], 64)
    if list(rebuilt.items()) != list(load_spec("titok_bl64_vq8k").items()):
        raise SystemExit("the TiTok layout generator does not reproduce titok_bl64_vq8k")


def titok_config(encoder: str, decoder: str, tokens: int) -> dict[str, Any]:
    """The mixin config.json TiTok's ``save_pretrained`` writes (the keys of titok_bl64_vq8k.yaml)."""
    vq = {
        "codebook_size": 8192,
        "token_size": 64,
        "use_l2_norm": False,
        "commitment_cost": 0.25,
        "vit_enc_model_size": encoder,
        "vit_dec_model_size": decoder,
        "vit_enc_patch_size": 16,
        "vit_dec_patch_size": 16,
        "num_latent_tokens": tokens,
        "finetune_decoder": False,
        "is_legacy": False,
    }
    return {"model": {"vq_model": vq}, "dataset": {"preprocessing": {"crop_size": 256}}}


# ------------------------------------------------------------------------------------------------ file writers
def random_tensors(spec: Spec, dtype_of: Callable[[str], Any]) -> dict[str, Any]:
    """Random tensors of ``spec``'s shapes (normal values; integers for LitEma's step counter)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    out = {}
    for key, shape in spec.items():
        if key == "model_ema.num_updates":
            out[key] = torch.tensor(250250, dtype=torch.int32)
        elif key == "model_ema.decay":
            out[key] = torch.tensor(0.999)
        else:
            out[key] = torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype_of(key))
    return out


def write_torch(path: Path, payload: Any) -> None:
    import torch

    torch.save(payload, path)


def write_safetensors(path: Path, tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path))


def lightning_checkpoint(spec: Spec) -> dict[str, Any]:
    """A Lightning checkpoint of ``spec``'s state dict (the training-loop entries small; no optimiser state)."""
    import torch

    return {
        "epoch": 49,
        "global_step": 250250,
        "pytorch-lightning_version": "2.2.0",
        "state_dict": random_tensors(spec, lambda key: torch.float32),
        "loops": {},
        "callbacks": {},
        "optimizer_states": [],
        "lr_schedulers": [],
    }


def llamagen_model_args(ch_mult: tuple[int, ...]) -> dict[str, Any]:
    """LlamaGen ``ModelArgs`` as VQModelHF's config.json holds them."""
    return {
        "codebook_size": 16384,
        "codebook_embed_dim": 8,
        "codebook_l2_norm": True,
        "codebook_show_usage": True,
        "commit_loss_beta": 0.25,
        "entropy_loss_ratio": 0.0,
        "encoder_ch_mult": list(ch_mult),
        "decoder_ch_mult": list(ch_mult),
        "z_channels": 256,
        "dropout_p": 0.0,
    }


def simvq_config_yaml(codebook_size: int) -> str:
    """LightningCLI config of SimVQ's 128_B run (the keys the converter reads), codebook ``codebook_size``."""
    return (
        "model:\n  class_path: taming.models.vq.VQModel\n  init_args:\n    ddconfig:\n      double_z: false\n"
        "      z_channels: 128\n      resolution: 128\n      in_channels: 3\n      out_ch: 3\n      ch: 128\n"
        "      ch_mult: [1, 2, 2, 4]\n      num_res_blocks: 2\n    lossconfig:\n"
        "      target: taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator\n"
        "      params:\n        commit_weight: 1.0\n    quantconfig:\n"
        "      target: taming.modules.vqvae.quantize.SimVQ\n"
        f"      params:\n        n_e: {codebook_size}\n        e_dim: 128\n        beta: 0.25\n        legacy: false\n"
        "    use_ema: true\n"
    )


def janus_decoy_spec() -> Spec:
    """A Llama-style ``language_model.*`` of ``JANUS_DECOY_LAYERS`` layers (about 1.4 GB in bfloat16)."""
    h, f = JANUS_HIDDEN, JANUS_FFN
    spec: Spec = {"language_model.model.embed_tokens.weight": (JANUS_VOCAB, h)}
    for i in range(JANUS_DECOY_LAYERS):
        p = f"language_model.model.layers.{i}"
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            spec[f"{p}.self_attn.{name}.weight"] = (h, h)
        spec[f"{p}.mlp.gate_proj.weight"] = spec[f"{p}.mlp.up_proj.weight"] = (f, h)
        spec[f"{p}.mlp.down_proj.weight"] = (h, f)
        spec[f"{p}.input_layernorm.weight"] = spec[f"{p}.post_attention_layernorm.weight"] = (h,)
    spec["language_model.model.norm.weight"] = (h,)
    return spec


# ------------------------------------------------------------------------------------------ entries → files
class NoStandIn(Exception):
    """No full-size stand-in can be built for this entry (the reason is the message)."""


def stand_in_files(entry, folder: Path, layout: str | None = None) -> tuple[dict[str, Path], str]:
    """Write ``entry``'s release files into ``folder`` (``layout``: which of the entry's weight files, for entries
    measured in several); returns ``{repo file name: local file}`` and a line saying what the stand-in is."""
    import torch

    files: dict[str, Path] = {}

    def out(name: str) -> Path:
        path = folder / name.replace("/", "__")
        files[name] = path
        return path

    name, converter = entry.name, entry.converter
    main = entry.filenames[0]
    if converter == "llamagen":
        spec_name = "llamagen_vq8" if "vq_ds8" in main or name.endswith("vq8") else "llamagen_vq16"
        spec = load_spec(spec_name)
        sd = random_tensors(spec, lambda key: torch.float32)
        if main.endswith(".safetensors"):
            write_safetensors(out(main), sd)
            ch_mult = (1, 2, 2, 4) if spec_name == "llamagen_vq8" else (1, 1, 2, 2, 4)
            for companion in entry.companion_files:
                if companion != "config.json":
                    raise NoStandIn(f"unknown companion file {companion}")
                out(companion).write_text(json.dumps(llamagen_model_args(ch_mult), indent=2))
            return files, f"{spec_name} spec, VQModelHF layout (model.safetensors + config.json ModelArgs)"
        write_torch(out(main), {"model": sd})
        return files, f"{spec_name} spec, torch.save({{'model': state_dict}})"
    if converter == "ibq":
        size = int(name.rsplit("-", 1)[1])
        spec = with_rows(
            load_spec("ibq_16384"), ["quantize.embedding.weight", "model_ema.quantizeembeddingweight"], size
        )
        write_torch(out(main), lightning_checkpoint(spec))
        return files, f"ibq_16384 spec with a {size}-row codebook (raw and EMA), Lightning .ckpt"
    if converter == "open-magvit2":
        template = load_spec("magvit2_256_L")
        bits = 18
        if "pretrain256_" in main:
            bits = int(math.log2(int(main.split("_")[-1].split(".")[0])))
        ch_mult = (1, 2, 2, 4) if main == "imagenet_128_L.ckpt" else (1, 1, 2, 2, 4)
        spec = lightning_layout(magvit2_net_spec(128, ch_mult, 4, bits), template)
        write_torch(out(main), lightning_checkpoint(spec))
        what = (
            "magvit2_256_L spec"
            if spec == template
            else (
                f"magvit2_256_L layout with ch_mult {ch_mult}, z {bits} (generated; the generator reproduces 256_L)"
            )
        )
        return files, what + ", Lightning .ckpt"
    if converter == "simvq":
        size = entry.preset and int(entry.preset.rsplit("-", 1)[1])
        if not size:
            raise NoStandIn("no preset to read the codebook size from")
        spec = with_rows(load_spec("simvq_128_B"), ["quantize.embedding.weight"], size)
        write_torch(out(main), lightning_checkpoint(spec))
        for companion in entry.companion_files:
            if not companion.endswith("config.yaml"):
                raise NoStandIn(f"unknown companion file {companion}")
            out(companion).write_text(simvq_config_yaml(size))
        return files, f"simvq_128_B spec with a {size}-row frozen codebook, Lightning .ckpt + config.yaml"
    if converter == "maskgit":
        write_torch(out(main), random_tensors(load_spec("maskgit_vqgan_f16_256"), lambda key: torch.float32))
        return files, "maskgit_vqgan_f16_256 spec, torch.save(state_dict)"
    if converter == "var":
        write_torch(out(main), random_tensors(load_spec("var_vae_ch160v4096z32"), lambda key: torch.float32))
        return files, "var_vae_ch160v4096z32 spec, torch.save(state_dict)"
    if converter == "titok":
        variant = entry.repo_id.split("tokenizer_titok_")[-1].split("_")[0]
        if variant not in TITOK_RELEASES or main != "model.safetensors":
            raise NoStandIn(f"no TiTok stand-in for {entry.repo_id}/{main}")
        enc, dec, tokens = TITOK_RELEASES[variant]
        spec = titok_spec(TITOK_SIZES[enc], TITOK_SIZES[dec], tokens)
        write_safetensors(out(main), random_tensors(spec, lambda key: torch.float32))
        for companion in entry.companion_files:
            if companion != "config.json":
                raise NoStandIn(f"unknown companion file {companion}")
            out(companion).write_text(json.dumps(titok_config(enc, dec, tokens), indent=4))
        source = (
            "titok_bl64_vq8k spec"
            if variant == "bl64"
            else (
                f"TiTok layout {enc} encoder / {dec} decoder, {tokens} tokens (generated; the generator reproduces bl64)"
            )
        )
        return files, source + ", mixin model.safetensors + config.json"
    if converter == "janus":
        return files, janus_files(entry, out, layout or janus_layouts(entry)[0])
    raise NoStandIn(f"no full-size stand-in recipe for converter {converter!r}")


JANUS_FORMATS = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


# What each release ships (vistok/zoo/entries/janus.py): Janus-Pro-1B one pytorch_model.bin, -7B an index and two
# .bin shards. The 1B is also measured as model.safetensors, the layout whose per-tensor reads skip the decoy.
JANUS_RELEASE_LAYOUTS = {
    "deepseek-ai/Janus-Pro-1B": ("pytorch_model.bin", "model.safetensors"),
    "deepseek-ai/Janus-Pro-7B": ("pytorch_model.bin.index.json",),
}


def janus_layouts(entry) -> list[str]:
    """The weight-file layouts to measure for a Janus entry (each separately): the release's own (and, for the
    1B, model.safetensors), else the first of ``entry.filenames`` that :func:`janus_files` can write."""
    known = [f for f in JANUS_RELEASE_LAYOUTS.get(entry.repo_id, ()) if f in entry.filenames]
    return known or [f for f in JANUS_FORMATS if f in entry.filenames][:1]


def janus_files(entry, out: Callable[[str], Path], main: str) -> str:
    """Write a Janus release in the layout ``main`` through ``out``: ``gen_vision_model.*`` (the LlamaGen VQ-16
    spec) and a bfloat16 language-model decoy, all bfloat16 as Janus ships them; an index layout puts half of the
    decoy in shard 1 and the rest with the tokenizer in shard 2. Returns what the stand-in is."""
    import torch

    gen = {f"gen_vision_model.{k}": s for k, s in load_spec("llamagen_vq16").items()}
    decoy = janus_decoy_spec()
    safetensors = ".safetensors" in main
    write = write_safetensors if safetensors else write_torch
    if main.endswith(".index.json"):
        keys = list(decoy)
        half = len(keys) // 2
        ext = "safetensors" if safetensors else "bin"
        stem = "model" if safetensors else "pytorch_model"
        shards = [f"{stem}-0000{i}-of-00002.{ext}" for i in (1, 2)]
        parts = [{k: decoy[k] for k in keys[:half]}, {**{k: decoy[k] for k in keys[half:]}, **gen}]
        weight_map = {}
        for shard, part in zip(shards, parts, strict=True):
            write(out(shard), random_tensors(part, lambda key: torch.bfloat16))
            weight_map.update(dict.fromkeys(part, shard))
        total = 2 * sum(math.prod(s) for part in parts for s in part.values())
        out(main).write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
        )
    else:
        write(out(main), random_tensors({**decoy, **gen}, lambda key: torch.bfloat16))
    companions = {"config.json": SPECS / "janus_tiny" / "config.json"}
    for companion in entry.companion_files:
        if companion not in companions:
            raise NoStandIn(f"unknown companion file {companion}")
        shutil.copyfile(companions[companion], out(companion))
    decoy_bytes = 2 * sum(math.prod(s) for s in decoy.values())
    return (
        f"{main}: gen_vision_model.* = llamagen_vq16 spec in bfloat16 + a {decoy_bytes / 1e9:.2f} GB bfloat16 "
        "language_model.* decoy"
    )


# ----------------------------------------------------------------------------------------------- HF cache
def add_file_to_hub_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Move ``files`` into ``cache`` as huggingface_hub lays it out (blobs named by sha256, snapshot symlinks,
    ``refs/main``); streams, so multi-GB files never sit in memory."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shas = {}
    for name, path in files.items():
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda f=f: f.read(1 << 24), b""):
                digest.update(block)
        shas[name] = digest.hexdigest()
    commit = hashlib.sha1("".join(shas[n] for n in sorted(shas)).encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    for name, path in files.items():
        blob = repo / "blobs" / shas[name]
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


# --------------------------------------------------------------------------------------------- measurement
CHILD = r"""
import json, os, sys, time, warnings

def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

start, cpu = time.perf_counter(), time.process_time()
if len(sys.argv) > 2:  # import breakdown: only this module
    __import__(sys.argv[2])
else:
    import vistok
out = {
    "import_s": time.perf_counter() - start,
    "import_cpu_s": time.process_time() - cpu,
    "rss_after_import_mb": status_mb("VmRSS"),
    "peak_after_import_mb": status_mb("VmHWM"),
}
name = sys.argv[1]
if name:
    import torch
    import vistok.zoo.loader as loader
    calls, unpickles = [], []
    convert, torch_load = loader.convert_entry, torch.load
    def counted(*args, **kwargs):
        calls.append(1)
        return convert(*args, **kwargs)
    def counted_load(*args, **kwargs):
        unpickles.append(1)
        return torch_load(*args, **kwargs)
    loader.convert_entry, torch.load = counted, counted_load
    barrier = os.environ.get("ZOO_LOAD_BARRIER")
    if barrier:  # concurrent ranks: say ready, then start together
        open(os.path.join(barrier, f"ready-{os.getpid()}"), "w").close()
        while not os.path.exists(os.path.join(barrier, "go")):
            time.sleep(0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, cpu = time.perf_counter(), time.process_time()
        tok = vistok.create_tokenizer(name, pretrained=True)
        out["load_s"] = time.perf_counter() - start
        out["load_cpu_s"] = time.process_time() - cpu
    out["converted"] = bool(calls)
    out["unpickle_calls"] = len(unpickles)
    out["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    out["parameters"] = sum(p.numel() for p in tok.parameters())
    out["rss_after_load_mb"] = status_mb("VmRSS")
    out["peak_rss_mb"] = status_mb("VmHWM")
    with torch.no_grad():  # what a first forward pass would page in: every weight read once
        for tensor in (*tok.parameters(), *tok.buffers()):
            tensor.sum()
    out["peak_after_reading_weights_mb"] = status_mb("VmHWM")
    out["rss_anon_mb"], out["rss_file_mb"] = status_mb("RssAnon"), status_mb("RssFile")  # file: shared pages
else:
    out["peak_rss_mb"] = status_mb("VmHWM")
out["vistok_file"] = vistok.__file__ if "vistok" in sys.modules else None
print("RESULT " + json.dumps(out))
"""


def measure(name: str, env: dict[str, str], module: str | None = None) -> dict[str, Any]:
    """Run :data:`CHILD` in a fresh interpreter (``name`` empty: import only; ``module``: import that module
    instead of vistok); its report plus the process's wall time from launch to exit."""
    start = time.perf_counter()
    proc = subprocess.run(child_argv(name, module), env=env, cwd=child_cwd(env), capture_output=True, text=True)
    return child_result(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


def child_argv(name: str, module: str | None = None) -> list[str]:
    return [sys.executable, "-c", CHILD, name] + ([module] if module else [])


def child_cwd(env: dict[str, str]) -> str:
    # The vistok source on PYTHONPATH: `python -c` puts the cwd first on sys.path.
    return env["PYTHONPATH"].split(os.pathsep)[0]


def child_result(returncode: int, stdout: str, stderr: str, wall: float) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if returncode != 0 or not lines:
        tail = (stderr or stdout).strip().splitlines()[-6:]
        return {"error": "\n".join(tail), "process_wall_s": wall}
    return {**json.loads(lines[-1][len("RESULT ") :]), "process_wall_s": wall}


def child_env(hf_cache: Path, vistok_cache: Path, source: Path) -> dict[str, str]:
    """The measuring process's environment: offline HF cache ``hf_cache``, converted cache ``vistok_cache``, the
    vistok package from ``source``."""
    env = dict(os.environ)
    env.update(
        HF_HUB_CACHE=str(hf_cache),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        VISTOK_CACHE=str(vistok_cache),
        PYTHONPATH=str(source) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("HF_HOME", None)
    return env


@dataclasses.dataclass(frozen=True)
class Source:
    """A vistok package to measure: ``label`` ("now", "before"), the extracted tree and its commit."""

    label: str
    path: Path
    commit: str


def fresh(*folders: Path) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)


def write_stand_in(entry, workdir: Path, row: dict[str, Any], layout: str | None) -> Path | None:
    """Write ``entry``'s stand-in into ``workdir/hf`` (an offline HF cache), describing it in ``row``; returns the HF
    cache, or None (``row["skipped"]`` says why) when there is no stand-in for it."""
    staging, hf_cache = workdir / "staging", workdir / "hf"
    fresh(staging, hf_cache)
    started = time.perf_counter()
    try:
        files, what = stand_in_files(entry, staging, layout)
    except NoStandIn as err:
        row["skipped"] = str(err)
        return None
    row["stand_in"] = what
    row["files"] = {name: path.stat().st_size for name, path in files.items()}
    row["file_bytes"] = sum(row["files"].values())
    add_file_to_hub_cache(hf_cache, entry.repo_id, files)
    row["stand_in_write_s"] = round(time.perf_counter() - started, 2)
    return hf_cache


def weights_bytes(vistok_cache: Path) -> int:
    """Size of the converted cache entry's ``model.safetensors`` (the converted weights)."""
    return sum(p.stat().st_size for p in vistok_cache.rglob("model.safetensors"))


def over_import(measured: dict[str, Any], key: str = "peak_rss_mb") -> float | None:
    """The process's peak ``key`` minus its peak right after ``import vistok`` (MiB)."""
    if "error" in measured or key not in measured:
        return None
    return measured[key] - measured["peak_after_import_mb"]


def per_weight(mib: float | None, size: int) -> float | None:
    return None if mib is None or not size else round(mib * 2**20 / size, 3)


def load_twice(entry, hf_cache: Path, vistok_cache: Path, source: Source) -> dict[str, Any]:
    """First and second load of ``entry`` with ``source``'s vistok on an empty converted cache, and the second
    load's peak over the import per byte of converted weights (just loaded, and after reading every weight)."""
    fresh(vistok_cache)
    env = child_env(hf_cache, vistok_cache, source.path)
    out: dict[str, Any] = {"vistok_commit": source.commit, "first": measure(entry.name, env)}
    out["cache_bytes"] = folder_bytes(vistok_cache)
    out["weights_bytes"] = weights_bytes(vistok_cache)
    out["second"] = second = measure(entry.name, env)
    out["second_peak_per_weight_byte"] = per_weight(over_import(second), out["weights_bytes"])
    out["second_peak_reading_weights_per_weight_byte"] = per_weight(
        over_import(second, "peak_after_reading_weights_mb"), out["weights_bytes"]
    )
    return out


def bench_entry(entry, workdir: Path, sources: list[Source], layout: str | None = None) -> dict[str, Any]:
    """One row: the stand-in, then :func:`load_twice` with each source; the first source's numbers at the top
    level, the others' under their label."""
    row: dict[str, Any] = {
        "entry": entry.name,
        "converter": entry.converter,
        "repo_id": entry.repo_id,
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if layout:
        row["layout"] = layout
    try:
        hf_cache = write_stand_in(entry, workdir, row, layout)
        if hf_cache is None:
            return row
        for i, source in enumerate(sources):
            measured = load_twice(entry, hf_cache, workdir / "vistok", source)
            if i == 0:
                row.update(measured)
            else:
                row[source.label] = measured
    finally:
        for folder in ("staging", "hf", "vistok"):
            shutil.rmtree(workdir / folder, ignore_errors=True)
    return row


# ------------------------------------------------------------------------------------------ concurrent ranks
def mem_available_mb() -> float:
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_ranks(name: str, env: dict[str, str], ranks: int, folder: Path, timeout: float = 900) -> dict[str, Any]:
    """``ranks`` fresh processes loading ``name`` at the same moment (each imports vistok, then waits at a file
    barrier). Per rank: :data:`CHILD`'s report; in all: how many converted, torch.load calls, the sum of their
    peaks (``VmHWM``; file-backed pages shared between processes count in each), and the largest drop of the
    machine's ``MemAvailable`` while they ran (other jobs move it too)."""
    fresh(folder)
    barrier = folder / "barrier"
    barrier.mkdir()
    env = {**env, "ZOO_LOAD_BARRIER": str(barrier)}
    available_before = mem_available_mb()
    procs, logs = [], []
    for rank in range(ranks):
        out, err = (folder / f"rank{rank}.out").open("w"), (folder / f"rank{rank}.err").open("w")
        logs.append((out, err))
        procs.append(subprocess.Popen(child_argv(name), env=env, cwd=child_cwd(env), stdout=out, stderr=err))
    deadline = time.monotonic() + timeout
    lowest = available_before
    while len(list(barrier.glob("ready-*"))) < ranks and time.monotonic() < deadline:
        if all(p.poll() is not None for p in procs):
            break
        time.sleep(0.02)
    lowest = min(lowest, mem_available_mb())
    (barrier / "go").touch()
    started = time.perf_counter()
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        lowest = min(lowest, mem_available_mb())
        time.sleep(0.05)
    wall = time.perf_counter() - started
    results = []
    for rank, (proc, (out, err)) in enumerate(zip(procs, logs, strict=True)):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        out.close()
        err.close()
        text = (folder / f"rank{rank}.out").read_text(), (folder / f"rank{rank}.err").read_text()
        results.append(child_result(proc.returncode, *text, wall))
    ok = [r for r in results if "error" not in r]
    summary: dict[str, Any] = {
        "ranks": ranks,
        "errors": len(results) - len(ok),
        "converted_ranks": sum(bool(r.get("converted")) for r in ok),
        "unpickle_calls": sum(r.get("unpickle_calls", 0) for r in ok),
        "total_peak_rss_mb": round(sum(r["peak_rss_mb"] for r in ok), 1),
        "total_peak_over_import_mb": round(sum(over_import(r) for r in ok), 1),
        "total_peak_reading_weights_mb": round(sum(r["peak_after_reading_weights_mb"] for r in ok), 1),
        "slowest_load_s": round(max((r["load_s"] for r in ok), default=float("nan")), 2),
        "group_wall_s": round(wall, 2),
        "mem_available_drop_mb": round(available_before - lowest, 1),
        "per_rank": results,
    }
    return summary


def bench_concurrent(entry, workdir: Path, sources: list[Source], ranks: int) -> dict[str, Any]:
    """The first load of ``entry`` by ``ranks`` processes started together on an empty converted cache (one should
    convert while the others wait on the entry's lock, then read its result), then the second load by as many
    processes, with each source."""
    row: dict[str, Any] = {
        "entry": entry.name,
        "ranks": ranks,
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    try:
        hf_cache = write_stand_in(entry, workdir, row, None)
        if hf_cache is None:
            return row
        for source in sources:
            vistok_cache = workdir / "vistok"
            fresh(vistok_cache)
            env = child_env(hf_cache, vistok_cache, source.path)
            measured: dict[str, Any] = {"vistok_commit": source.commit}
            measured["first"] = run_ranks(entry.name, env, ranks, workdir / "ranks")
            measured["weights_bytes"] = weights_bytes(vistok_cache)
            measured["second"] = run_ranks(entry.name, env, ranks, workdir / "ranks")
            row[source.label] = measured
    finally:
        for folder in ("staging", "hf", "vistok", "ranks"):
            shutil.rmtree(workdir / folder, ignore_errors=True)
    return row


def print_concurrent(row: dict[str, Any]) -> None:
    if "skipped" in row:
        print(f"{row['entry']} x{row['ranks']}: skipped ({row['skipped']})", flush=True)
        return
    for label, measured in row.items():
        if not isinstance(measured, dict) or "first" not in measured:
            continue
        parts = [
            f"{key}: {m['converted_ranks']} converted, {m['unpickle_calls']} torch.load, errors {m['errors']}, "
            f"sum of peaks {m['total_peak_rss_mb']:,.0f} MB ({m['total_peak_over_import_mb']:,.0f} over import)"
            for key in ("first", "second")
            for m in [measured[key]]
        ]
        print(f"{row['entry']} x{row['ranks']} [{label}]: " + "; ".join(parts), flush=True)


def print_row(row: dict[str, Any]) -> None:
    if "skipped" in row:
        print(f"{row['entry']}: skipped ({row['skipped']})", flush=True)
        return
    parts = []
    for key in ("first", "second"):
        m = row[key]
        parts.append(
            f"{key} error: {m['error']}"
            if "error" in m
            else f"{key} {m['load_s']:.1f} s / {m['peak_rss_mb']:.0f} MB"
        )
    ratios = [f"second peak over import / weights {row.get('second_peak_per_weight_byte')}"]
    for label, measured in row.items():
        if isinstance(measured, dict) and "second_peak_per_weight_byte" in measured:
            ratios.append(f"{label} {measured['second_peak_per_weight_byte']}")
    print(
        f"{row['entry']}: file {row['file_bytes'] / 1e6:.0f} MB, cache {row.get('cache_bytes', 0) / 1e6:.0f} MB; "
        + "; ".join(parts + ratios),
        flush=True,
    )


def committed_source(folder: Path, rev: str = "HEAD") -> tuple[Path, str]:
    """The committed ``vistok/`` package at ``rev`` (``git archive``) extracted into ``folder``, and the commit: the
    measurements never see half-made edits in the working tree."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit, "vistok"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder, commit


def merge_into_previous(payload: dict[str, Any], previous: dict[str, Any]) -> None:
    """Put ``previous``'s rows of the entries ``payload`` did not measure back, in catalogue order; the rows keep
    their own ``measured_at`` and load average, and ``merged_from`` records the earlier run."""
    measured = {row["entry"] for row in payload["entries"]}
    kept = [row for row in previous.get("entries", []) if row["entry"] not in measured]
    for row in kept:
        row.setdefault("vistok_commit", previous.get("vistok_commit"))
    payload["entries"] = sorted(kept + payload["entries"], key=lambda row: row["entry"])
    payload["merged_from"] = {
        "date": previous.get("date"),
        "vistok_commit": previous.get("vistok_commit"),
        "machine": previous.get("machine"),
        "entries": sorted({row["entry"] for row in kept}),
    }
    for key in ("import_baseline", "import_breakdown", "concurrent", "before_commit"):
        if payload.get(key) is None and previous.get(key) is not None:
            payload[key] = previous[key]


DEFAULT_CONCURRENT = "ibq-imagenet256-16384"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated zoo names (default: every entry; 'none': no row)")
    parser.add_argument(
        "--workdir", default=None, help="folder for the stand-in files (default: a temp folder)"
    )
    parser.add_argument(
        "--out", default=None, help=f"results file (default benchmarks/results/{RESULT_NAME}.json)"
    )
    parser.add_argument(
        "--merge", action="store_true", help="keep the results file's rows of the entries not measured now"
    )
    parser.add_argument("--commit", default="HEAD", help="the vistok commit to measure (default HEAD)")
    parser.add_argument(
        "--before", default=None, help="also measure this earlier commit on the same stand-ins (before / after)"
    )
    parser.add_argument(
        "--concurrent",
        default=DEFAULT_CONCURRENT,
        help=f"comma-separated zoo names whose first load is also run by --ranks processes at once (default "
        f"{DEFAULT_CONCURRENT}; '' for none)",
    )
    parser.add_argument("--ranks", type=int, default=8, help="processes of the concurrent load (default 8)")
    args = parser.parse_args(argv)

    env_root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="vistok-zoo-load-"))
    env_root.mkdir(parents=True, exist_ok=True)
    source, commit = committed_source(env_root / "source", args.commit)
    sources = [Source("now", source, commit)]
    if args.before:
        before, before_commit = committed_source(env_root / "source-before", args.before)
        sources.append(Source("before", before, before_commit))
    sys.path.insert(0, str(source))
    sys.path.insert(1, str(ROOT / "benchmarks"))
    from _common import library_versions, machine

    import vistok
    from vistok.families import family_names, get_entry, zoo_names

    check_magvit2_generator()
    check_titok_generator()
    names = [n for n in args.only.split(",") if n and n != "none"] or ([] if args.only == "none" else zoo_names())
    concurrent = [n for n in args.concurrent.split(",") if n]
    started = time.perf_counter()
    info = machine("cpu")
    info["load_average_1min_at_start"] = info.pop("load_average_1min", None)
    info["note"] = (
        f"{info['cpu_cores']}-core virtual machine shared with other jobs (other agents' tests and benchmarks ran "
        "during this run); times move with that load"
    )
    payload: dict[str, Any] = {
        "what": "zoo entries: first load (HF cache -> unpickle -> convert -> converted cache) and second load "
        "(converted cache's safetensors only) through vistok.create_tokenizer(name, pretrained=True), each in a "
        "fresh process, on full-size stand-in files with random weights of the real shapes",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "versions": library_versions("huggingface_hub", "safetensors", "transformers"),
        "converters": family_names(),
        "memory": "peak_rss_mb = VmHWM of the measuring process (interpreter, import vistok and the load) right after "
        "the load; peak_after_reading_weights_mb after reading every weight once (as a first forward pass would); "
        "peak_after_import_mb right after import vistok. *_per_weight_byte = (peak - peak_after_import) / the "
        "converted model.safetensors size. Not ru_maxrss: Linux carries the parent's peak into it across fork + exec",
        "page_cache": "stand-in files are written just before the first load, so they are read from the page cache "
        "(as right after a download)",
    }
    payload["vistok_commit"] = commit
    if args.before:
        payload["before_commit"] = sources[1].commit
    try:
        empty = child_env(env_root / "hf-empty", env_root / "vistok-empty", source)
        baseline = [measure("", empty) for _ in range(BASELINE_REPEATS)]
        payload["import_baseline"] = baseline
        payload["import_breakdown"] = {module: measure("", empty, module) for module in IMPORT_BREAKDOWN}
        print(
            "import vistok: "
            + ", ".join(
                f"{b['import_s']:.2f} s / {b['peak_rss_mb']:.0f} MB" for b in baseline if "import_s" in b
            ),
            flush=True,
        )
        rows = []
        for name in names:
            entry = get_entry(name)
            if not entry.on_hub:
                row = {
                    "entry": name,
                    "converter": entry.converter,
                    "skipped": "not on the Hub (manual download)",
                }
            elif entry.converter not in family_names():
                row = {
                    "entry": name,
                    "converter": entry.converter,
                    "skipped": f"converter {entry.converter!r} is not a registered family (vistok.families)",
                }
            elif entry.converter == "janus":
                layouts = janus_layouts(entry)
                if not layouts:
                    row = {
                        "entry": name,
                        "converter": entry.converter,
                        "skipped": f"no stand-in writer for the Janus files {list(entry.filenames)}",
                    }
                for layout in layouts:
                    rows.append(bench_entry(entry, env_root / "run", sources, layout))
                    print_row(rows[-1])
                if layouts:
                    continue
            else:
                row = bench_entry(entry, env_root / "run", sources)
            rows.append(row)
            print_row(row)
        for row in rows:
            row["vistok_commit"] = commit
        payload["entries"] = rows
        if concurrent:
            payload["concurrent"] = []
            for name in concurrent:
                row = bench_concurrent(get_entry(name), env_root / "run", sources, args.ranks)
                payload["concurrent"].append(row)
                print_concurrent(row)
    finally:
        if not args.workdir:
            shutil.rmtree(env_root, ignore_errors=True)
    payload["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    payload["total_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"{RESULT_NAME}.json"
    if args.merge and out.exists():
        merge_into_previous(payload, json.loads(out.read_text()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out} ({payload['total_s']:.0f} s; vistok {vistok.__version__})")


# ------------------------------------------------------------------------------------------------ rendering
def _load_cell(measured: dict[str, Any]) -> str:
    if "error" in measured:
        return "error: " + measured["error"].splitlines()[-1][:80]
    return f"{measured['load_s']:.1f} s (CPU {measured['load_cpu_s']:.1f} s)"


def render_zoo_load(payload: dict[str, Any]) -> list[str]:
    """The docs/benchmarks.md table of a ``zoo_load_*.json`` payload (called by ``benchmarks/run.py``)."""
    m, v = payload["machine"], payload["versions"]
    base = [b for b in payload.get("import_baseline", []) if "import_s" in b]
    lines = [
        f"*Measured {payload['date'][:10]} on {m['cpu']}, {m['cpu_cores']} cores, {m['torch_threads']} torch threads, "
        f"shared with other jobs (1-min load average {m.get('load_average_1min_at_start')} at the start, "
        f"{m.get('load_average_1min_at_end')} at the end); "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + ".*",
        "",
    ]
    if base:
        fastest = min(base, key=lambda b: b["import_s"])
        lines += [
            f"`import vistok` alone in a fresh process (best of {len(base)}): {fastest['import_s']:.1f} s "
            f"(CPU {fastest['import_cpu_s']:.1f} s), peak RSS {fastest['peak_rss_mb']:,.0f} MiB. Load times "
            "exclude the import (wall time, with the process's CPU time beside it); peak RSS is the whole process, "
            "import included.",
            "",
        ]
    layers = {k: r for k, r in payload.get("import_breakdown", {}).items() if "import_s" in r}
    if layers:
        lines += [
            "What the import is made of (each module alone in a fresh process, with what it imports in turn; "
            "`import transformers` alone is lazy and loads neither torch nor torchvision): "
            + "; ".join(
                f"`import {k}` {r['import_s']:.1f} s (CPU {r['import_cpu_s']:.1f} s), {r['peak_rss_mb']:,.0f} MiB"
                for k, r in layers.items()
            )
            + ".",
            "",
        ]
    before_commit = payload.get("before_commit")
    if before_commit:
        lines += [
            f"Each entry is measured with the vistok commit {payload.get('vistok_commit', '?')[:7]} and, on the same "
            f"stand-in files, with the earlier commit {before_commit[:7]}: cells reading *a → b* give that commit's "
            "number, then this one's.",
            "",
        ]
    lines += [
        "| entry | stand-in file | first load | first peak RSS | second load | second peak RSS | converted cache "
        "| second peak over import ÷ weights (loaded / every weight read) | second load converted? | warnings |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    skipped = []
    for row in payload["entries"]:
        if "skipped" in row:
            skipped.append(f"{row['entry']} ({row['skipped']})")
            continue
        first, second = row["first"], row["second"]
        earlier = row.get("before") or {}
        name = row["entry"] + (f" (`{row['layout']}`)" if "layout" in row else "")
        peaks = [
            _then_now((earlier.get(key) or {}).get("peak_rss_mb"), row[key].get("peak_rss_mb"), "{:,.0f} MiB")
            for key in ("first", "second")
        ]
        ratio = _then_now(_ratio_pair(earlier), _ratio_pair(row), "{}")
        converted = "—" if "error" in second else ("yes" if second["converted"] else "no")
        warned = sorted({w.split(":", 1)[0] for r in (first, second) for w in r.get("warnings", [])})
        lines.append(
            f"| {name} | {row['file_bytes'] / 2**20:,.0f} MiB | {_load_cell(first)} | {peaks[0]} "
            f"| {_load_cell(second)} | {peaks[1]} | {row.get('cache_bytes', 0) / 2**20:,.0f} MiB | {ratio} "
            f"| {converted} | {', '.join(warned) or '—'} |"
        )
    merged = payload.get("merged_from")
    if merged and merged.get("entries"):
        earlier = [
            n
            for n in merged["entries"]
            if any(r["entry"] == n and "skipped" not in r for r in payload["entries"])
        ]
        commit = merged.get("vistok_commit") or "?"
        load = (merged.get("machine") or {}).get("load_average_1min_at_end")
        lines += [
            "",
            f"Measured in an earlier run of the same script ({(merged.get('date') or '?')[:16]} UTC, vistok commit "
            f"{commit[:7]}, 1-min load average {load} at its end): {', '.join(earlier)}. The others: this run "
            f"(vistok commit {payload.get('vistok_commit', '?')[:7]}).",
        ]
    if skipped:
        lines += ["", "Not measured: " + "; ".join(skipped) + "."]
    lines += _render_concurrent(payload)
    return lines


def _then_now(before: Any, now: Any, fmt: str) -> str:
    """``now`` formatted, preceded by ``before`` (*a → b*) when there is one; "—" for a missing value."""
    shown = fmt.format(now) if now is not None else "—"
    return f"{fmt.format(before)} → {shown}" if before is not None else shown


def _ratio_pair(measured: dict[str, Any]) -> str | None:
    loaded = measured.get("second_peak_per_weight_byte")
    read = measured.get("second_peak_reading_weights_per_weight_byte")
    return None if loaded is None else f"{loaded:.2f} / {read:.2f}"


def _render_concurrent(payload: dict[str, Any]) -> list[str]:
    rows = [row for row in payload.get("concurrent") or [] if "skipped" not in row]
    if not rows:
        return []
    lines = [
        "",
        "First load by several processes at once (as the ranks of one launch): they start together on an empty "
        "converted cache, each after its own `import vistok`; then as many second loads, together. Peak RSS summed "
        "over the processes (`VmHWM`; pages of the same file mapped by several processes count in each), the same "
        "minus each process's peak after its import, and the largest drop of the machine's `MemAvailable` while they "
        "ran (imports included; other jobs move it).",
        "",
        "| entry | vistok | load | processes | converted | torch.load calls | sum of peak RSS | sum over import "
        "| after reading every weight | MemAvailable drop | slowest load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for label in ("before", "now"):
            measured = row.get(label)
            if not measured:
                continue
            for key in ("first", "second"):
                m = measured[key]
                errors = f" ({m['errors']} failed)" if m["errors"] else ""
                lines.append(
                    f"| {row['entry']} | {measured['vistok_commit'][:7]} | {key} | {m['ranks']}{errors} "
                    f"| {m['converted_ranks']} | {m['unpickle_calls']} | {m['total_peak_rss_mb']:,.0f} MiB "
                    f"| {m['total_peak_over_import_mb']:,.0f} MiB | {m['total_peak_reading_weights_mb']:,.0f} MiB "
                    f"| {m['mem_available_drop_mb']:,.0f} MiB | {m['slowest_load_s']:.1f} s |"
                )
    return lines


if __name__ == "__main__":
    main()

"""Upstream converters: safe loading, LlamaGen parity (upstream test vector), Taming parity (an independent
re-implementation of Taming's VQGAN below), full-size layouts on the meta device, and the `vistok convert` command."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vistok
from vistok import VisTokenizer, create_tokenizer
from vistok.cli import main as cli
from vistok.convert import CheckpointError, UnsafeCheckpointError, load_checkpoint
from vistok.convert.taming_layout import taming_to_vistok
from vistok.convert.vqgan_layout import infer_vqgan_config
from vistok.families import get_family
from vistok.families.llamagen import convert_llamagen, llamagen_to_vistok
from vistok.families.taming import convert_taming

DATA = Path(__file__).parent / "data"
LLAMAGEN_TINY = DATA / "llamagen_tiny.pt"


# ============================================================================================================
# An independent, minimal re-implementation of Taming-Transformers' VQGAN forward pass (parity reference only).
# Written from the published architecture (Esser et al. 2021): module names follow Taming's state-dict keys
# (encoder.down.{i}.block.{j}, mid.block_1/attn_1/block_2, decoder.up.{i}, quantize.embedding), attention is
# resolution-based (attn_resolutions) and computed with explicit matmuls, the quantizer is the argmin of
# z² + e² − 2ze with Taming's legacy loss. It shares no code with vistok.
# ============================================================================================================


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, 1, 1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm = _norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        y = self.norm(x)
        b, c, h, w = x.shape
        q = self.q(y).reshape(b, c, h * w).transpose(1, 2)  # b, hw, c
        k = self.k(y).reshape(b, c, h * w)  # b, c, hw
        weights = torch.softmax(torch.bmm(q, k) * c**-0.5, dim=2)  # b, hw(query), hw(key)
        v = self.v(y).reshape(b, c, h * w)
        out = torch.bmm(v, weights.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _mid(c: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1, mid.attn_1, mid.block_2 = ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)
    return mid


class Encoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, resolution, z_channels, in_channels=3):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        in_mult = (1, *ch_mult)
        res = resolution
        self.down = nn.ModuleList()
        for level, mult in enumerate(ch_mult):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            cin, cout = ch * in_mult[level], ch * mult
            for _ in range(num_res_blocks):
                stage.block.append(ResnetBlock(cin, cout))
                cin = cout
                if res in attn_resolutions:
                    stage.attn.append(AttnBlock(cout))
            if level != len(ch_mult) - 1:
                stage.downsample = Downsample(cout)
                res //= 2
            self.down.append(stage)
        self.mid = _mid(cin)
        self.norm_out, self.conv_out = _norm(cin), nn.Conv2d(cin, z_channels, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for stage in self.down:
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, resolution, z_channels, out_ch=3):
        super().__init__()
        cin = ch * ch_mult[-1]
        res = resolution // 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(z_channels, cin, 3, 1, 1)
        self.mid = _mid(cin)
        self.up = nn.ModuleList()
        for level in reversed(range(len(ch_mult))):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            cout = ch * ch_mult[level]
            for _ in range(num_res_blocks + 1):
                stage.block.append(ResnetBlock(cin, cout))
                cin = cout
                if res in attn_resolutions:
                    stage.attn.append(AttnBlock(cout))
            if level != 0:
                stage.upsample = Upsample(cout)
                res *= 2
            self.up.insert(0, stage)
        self.norm_out, self.conv_out = _norm(cin), nn.Conv2d(cin, out_ch, 3, 1, 1)

    def forward(self, z):
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for level in reversed(range(len(self.up))):
            stage = self.up[level]
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    def __init__(self, n_e: int, e_dim: int, beta: float = 0.25):
        super().__init__()
        self.beta = beta
        self.embedding = nn.Embedding(n_e, e_dim)

    def forward(self, z):
        zc = z.permute(0, 2, 3, 1).contiguous()
        flat = zc.reshape(-1, zc.shape[-1])
        e = self.embedding.weight
        d = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * flat @ e.t()
        indices = d.argmin(1)
        z_q = self.embedding(indices).view(zc.shape)
        loss = torch.mean((z_q.detach() - zc) ** 2) + self.beta * torch.mean((z_q - zc.detach()) ** 2)
        z_q = z_q.permute(0, 3, 1, 2).contiguous()
        return z_q, loss, indices.view(z.shape[0], z.shape[2], z.shape[3])


class TamingVQModel(nn.Module):
    """Taming's ``VQModel`` (encoder, quant_conv, quantize, post_quant_conv, decoder) plus a stand-in ``loss``
    module whose parameters mimic the discriminator / LPIPS entries a Lightning checkpoint carries."""

    def __init__(
        self,
        ch=32,
        ch_mult=(1, 2, 2),
        num_res_blocks=2,
        attn_resolutions=(16,),
        resolution=32,
        z_channels=16,
        embed_dim=8,
        n_embed=64,
    ):
        super().__init__()
        args = (ch, ch_mult, num_res_blocks, attn_resolutions, resolution, z_channels)
        self.encoder, self.decoder = Encoder(*args), Decoder(*args)
        self.quantize = VectorQuantizer(n_embed, embed_dim)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)
        self.loss = nn.Module()
        self.loss.discriminator = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.BatchNorm2d(8))
        self.loss.perceptual_loss = nn.Module()
        self.loss.perceptual_loss.lin0 = nn.Conv2d(8, 1, 1, bias=False)

    def forward(self, x):
        z_q, loss, indices = self.quantize(self.quant_conv(self.encoder(x)))
        return self.decoder(self.post_quant_conv(z_q)), loss, indices


@torch.no_grad()
def randomize(model: nn.Module, calibrate: torch.Tensor, seed: int = 0) -> nn.Module:
    """Non-trivial random weights: GroupNorm affines away from (1, 0), and a codebook drawn from real latents of
    ``calibrate`` plus noise, so the lookup assigns many different codes."""
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.GroupNorm):
            module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=g))
            module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=g))
    latents = (
        model.quant_conv(model.encoder(calibrate))
        .permute(0, 2, 3, 1)
        .reshape(-1, model.quant_conv.out_channels)
    )
    n_e = model.quantize.embedding.weight.shape[0]
    picks = latents[torch.randint(len(latents), (n_e,), generator=g)]
    model.quantize.embedding.weight.copy_(picks + 0.05 * picks.std() * torch.randn(picks.shape, generator=g))
    return model.eval()


# ============================================================================================================
# helpers
# ============================================================================================================
def smooth_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, 4, 4, generator=g)
    return (F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) * 2 - 1).clamp(-1, 1)


def fake_lightning_callback_class(monkeypatch) -> type:
    """A class importable as pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint while the context lasts
    (Lightning < 1.5 keys ``callbacks`` by the class itself); Lightning is not installed here."""
    names = [
        "pytorch_lightning",
        "pytorch_lightning.callbacks",
        "pytorch_lightning.callbacks.model_checkpoint",
    ]
    modules = {name: types.ModuleType(name) for name in names}
    cls = type("ModelCheckpoint", (), {"__module__": names[-1]})
    modules[names[-1]].ModelCheckpoint = cls
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return cls


def write_taming_ckpt(path: Path, reference: nn.Module, monkeypatch) -> Path:
    with monkeypatch.context() as m:
        callback = fake_lightning_callback_class(m)
        torch.save(
            {
                "epoch": 3,
                "global_step": 1234,
                "pytorch-lightning_version": "1.0.8",
                "callbacks": {
                    callback: {"best_model_score": np.float64(0.5), "best_model_path": "last.ckpt"}
                },
                "optimizer_states": [],
                "lr_schedulers": [],
                "state_dict": reference.state_dict(),
            },
            path,
        )
    return path


def meta_state_dict(spec_file: str) -> dict[str, torch.Tensor]:
    spec = json.loads((DATA / spec_file).read_text())
    return {key: torch.empty(shape, device="meta") for key, shape in spec.items()}


# ============================================================================================================
# LlamaGen
# ============================================================================================================
def test_llamagen_parity_with_upstream_test_vector():
    expected = torch.load(DATA / "llamagen_tiny_expected.pt", weights_only=True)
    tok = convert_llamagen(LLAMAGEN_TINY)
    assert tok.config.net["channel_multiplier"] == [1, 2, 2] and tok.config.net["attention_levels"] == [2]
    assert tok.config.quantizer["l2_norm"] is True
    assert (tok.config.quantizer["codebook_size"], tok.config.quantizer["codebook_dim"]) == (512, 8)
    with torch.no_grad():
        out = tok(expected["input"])
        from_indices = tok.decode(expected["indices"])
    assert torch.equal(out.indices, expected["indices"])
    assert (out.reconstruction - expected["reconstruction"]).abs().max() < 1e-4
    assert (from_indices - expected["reconstruction"]).abs().max() < 1e-4


def test_convert_command_writes_a_loadable_folder_with_card(tmp_path, capsys):
    out = tmp_path / "vqgan-llamagen-tiny"
    assert cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out)]) == 0
    assert "64x64 tokens" in capsys.readouterr().out  # 256 px from the checkpoint's args, f4
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    expected = torch.load(DATA / "llamagen_tiny_expected.pt", weights_only=True)
    tok = VisTokenizer.from_pretrained(out)
    with torch.no_grad():
        out_ = tok(expected["input"])
    assert torch.equal(out_.indices, expected["indices"])
    assert (out_.reconstruction - expected["reconstruction"]).abs().max() < 1e-4
    meta = tok.config.metadata
    assert meta["license"] == "mit" and meta["origin"]["name"] == "LlamaGen"
    assert meta["converter"]["code"] == get_family("llamagen").code_hash()
    assert len(meta["origin"]["checkpoint_sha256"]) == 64
    assert any("l2_norm=True assumed" in note for note in meta["converter"]["notes"])
    card = (out / "README.md").read_text()
    assert "license: mit" in card and "LlamaGen" in card and "arxiv.org/abs/2406.06525" in card
    with pytest.raises(SystemExit, match="--overwrite"):
        cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out)])


def _llamagen_with_ema(tmp_path: Path, **args) -> tuple[Path, dict]:
    raw = torch.load(LLAMAGEN_TINY, weights_only=False)
    ema = raw["model"]
    model = {k: v + 0.01 if v.is_floating_point() else v for k, v in ema.items()}
    path = tmp_path / "vq_with_ema.pt"
    torch.save({"model": model, "ema": ema, "steps": 10, "args": argparse.Namespace(**args)}, path)
    return path, ema


def test_llamagen_prefers_ema_and_the_flag_chooses(tmp_path):
    path, ema = _llamagen_with_ema(tmp_path, codebook_size=512, codebook_embed_dim=8, codebook_l2_norm=True)
    auto = convert_llamagen(path)
    assert auto.config.metadata["origin"]["weights"] == "ema"
    assert torch.equal(auto.state_dict()["quantizer.codebook"], ema["quantize.embedding.weight"])
    assert "notes" not in auto.config.metadata["converter"]  # l2_norm came from the args
    model = convert_llamagen(path, weights="model")
    assert torch.equal(model.state_dict()["quantizer.codebook"], ema["quantize.embedding.weight"] + 0.01)
    with pytest.raises(CheckpointError, match="no 'state_dict' weights; available: \\['ema', 'model'\\]"):
        convert_llamagen(path, weights="state_dict")


def test_llamagen_args_cross_checked_and_used(tmp_path):
    path, _ = _llamagen_with_ema(tmp_path, codebook_size=1024)
    with pytest.raises(CheckpointError, match="codebook_size=1024 but its codebook tensor has 512"):
        convert_llamagen(path)
    path, _ = _llamagen_with_ema(tmp_path, codebook_l2_norm=False, commit_loss_beta=0.5, image_size=64)
    tok = convert_llamagen(path)
    assert tok.config.quantizer["l2_norm"] is False and tok.config.quantizer["commitment_weight"] == 0.5
    assert tok.config.image_size == 64


def _euclidean_nearest(latents: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Brute-force nearest code (plain Euclidean, no normalisation): (B, D, h, w) latents → (B, h, w) indices."""
    flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).double()
    return torch.cdist(flat, codebook.double()).argmin(1).view(latents.shape[0], *latents.shape[2:])


def test_llamagen_codebook_l2_norm_override(tmp_path):
    # Rows rescaled to norms in [0.5, 2]: l2-normalised lookup is unchanged by that, a plain Euclidean one is not.
    expected = torch.load(DATA / "llamagen_tiny_expected.pt", weights_only=True)
    raw = torch.load(LLAMAGEN_TINY, weights_only=False)
    g = torch.Generator().manual_seed(0)
    codebook = raw["model"]["quantize.embedding.weight"]
    codebook = (
        codebook
        / codebook.norm(dim=1, keepdim=True)
        * (0.5 + 1.5 * torch.rand(len(codebook), 1, generator=g))
    )
    raw["model"]["quantize.embedding.weight"] = codebook
    path = tmp_path / "rescaled.pt"
    torch.save(raw, path)  # args store no codebook_l2_norm, like a checkpoint saved without it

    default, tok = convert_llamagen(path), convert_llamagen(path, codebook_l2_norm=False)
    assert default.config.quantizer["l2_norm"] is True and tok.config.quantizer["l2_norm"] is False
    assert any("l2_norm=False given by the caller" in n for n in tok.config.metadata["converter"]["notes"])
    with torch.no_grad():
        latents = tok.quant_conv(tok.encoder(expected["input"]))
        indices, default_indices = tok(expected["input"]).indices, default(expected["input"]).indices
    assert torch.equal(default_indices, expected["indices"])  # upstream's l2-normalised lookup
    assert torch.equal(indices, _euclidean_nearest(latents, codebook))
    assert (indices != expected["indices"]).float().mean() > 0.2

    out = tmp_path / "plain-l2"
    assert cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out), "--codebook-l2-norm", "false"]) == 0
    assert json.loads((out / "config.json").read_text())["quantizer"]["l2_norm"] is False
    assert convert_llamagen(LLAMAGEN_TINY, codebook_l2_norm=True).config.quantizer["l2_norm"] is True
    path, _ = _llamagen_with_ema(tmp_path, codebook_l2_norm=True)
    overridden = convert_llamagen(path, codebook_l2_norm=False)
    assert overridden.config.quantizer["l2_norm"] is False
    assert any(
        "overrides the training args' codebook_l2_norm=True" in n
        for n in overridden.config.metadata["converter"]["notes"]
    )
    with pytest.raises(ValueError, match="codebook_l2_norm must be True, False or None, got 'no'"):
        convert_llamagen(LLAMAGEN_TINY, codebook_l2_norm="no")
    with pytest.raises(SystemExit, match="--codebook-l2-norm applies to llamagen checkpoints only"):
        cli(["convert", "taming", str(LLAMAGEN_TINY), str(tmp_path / "t"), "--codebook-l2-norm", "false"])


def test_llamagen_dropout_p_is_carried_into_the_config(tmp_path):
    path, _ = _llamagen_with_ema(tmp_path, dropout_p=0.1)
    tok = convert_llamagen(path)
    assert tok.config.net["dropout"] == 0.1
    tok.save_pretrained(tmp_path / "saved")
    tok = VisTokenizer.from_pretrained(tmp_path / "saved")
    assert tok.config.net["dropout"] == 0.1
    # LlamaGen puts one dropout in every residual block: num_res_blocks per encoder level, one more per decoder
    # level, and two in each mid block.
    levels, blocks = len(tok.config.net["channel_multiplier"]), tok.config.net["num_res_blocks"]
    dropouts = [m.p for m in tok.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [0.1] * (levels * blocks + levels * (blocks + 1) + 4)

    expected = torch.load(DATA / "llamagen_tiny_expected.pt", weights_only=True)
    with torch.no_grad():
        out = tok.eval()(expected["input"])  # dropout is inactive in eval mode: upstream's outputs still hold
        assert torch.equal(out.indices, expected["indices"])
        assert (out.reconstruction - expected["reconstruction"]).abs().max() < 1e-4
        tok.train()
        torch.manual_seed(0)
        first = tok(expected["input"]).reconstruction
        torch.manual_seed(1)
        assert not torch.allclose(first, tok(expected["input"]).reconstruction)

    bad, _ = _llamagen_with_ema(tmp_path, dropout_p=1.5)
    with pytest.raises(CheckpointError, match=r"dropout_p=1\.5; expected a probability in \[0, 1\)"):
        convert_llamagen(bad)


@pytest.mark.parametrize(
    "spec_file, preset",
    [
        ("llamagen_vq16_state_dict_spec.json", "vqgan-llamagen-vq16"),
        ("llamagen_vq8_state_dict_spec.json", "vqgan-llamagen-vq8"),
    ],
)
def test_full_size_llamagen_layouts_map_onto_presets(spec_file, preset):
    converted = llamagen_to_vistok(meta_state_dict(spec_file))
    with torch.device("meta"):
        target = create_tokenizer(preset).state_dict()
    assert set(converted) == set(target)
    assert all(tuple(converted[k].shape) == tuple(target[k].shape) for k in target)
    inferred = infer_vqgan_config(converted)
    preset_net = vistok.PRESETS.get(preset).config["net"]
    assert {k: inferred["net"][k] for k in preset_net} == preset_net
    assert inferred["net"]["attention_levels"] == [len(preset_net["channel_multiplier"]) - 1]


# ============================================================================================================
# Taming
# ============================================================================================================
@pytest.mark.parametrize("codebook", [1024, 16384])
def test_full_size_taming_layout_maps_onto_presets(codebook):
    state_dict = meta_state_dict("taming_f16_1024_state_dict_spec.json")
    state_dict["quantize.embedding.weight"] = torch.empty(codebook, 256, device="meta")
    state_dict["loss.discriminator.main.0.weight"] = torch.empty(64, 3, 4, 4, device="meta")
    converted, dropped = taming_to_vistok(state_dict)
    assert dropped == ["loss.discriminator.main.0.weight"]
    with torch.device("meta"):
        target = create_tokenizer(f"vqgan-taming-f16-{codebook}").state_dict()
    assert set(converted) == set(target)
    assert all(tuple(converted[k].shape) == tuple(target[k].shape) for k in target)
    assert infer_vqgan_config(converted)["net"]["attention_levels"] == [4]


@pytest.mark.parametrize(
    "ch_mult, attn_resolutions, attention_levels",
    [
        ((1, 2, 2), (16,), [1]),  # attention in the middle level only
        ((1, 2), (), []),  # no attention outside the mid blocks (like latent diffusion's vq-f4)
    ],
)
def test_taming_parity_with_independent_reference(
    tmp_path, monkeypatch, ch_mult, attn_resolutions, attention_levels
):
    torch.manual_seed(0)
    x = smooth_images(3, 32)
    reference = randomize(TamingVQModel(ch_mult=ch_mult, attn_resolutions=attn_resolutions), x)
    ckpt = write_taming_ckpt(tmp_path / "last.ckpt", reference, monkeypatch)
    out = tmp_path / "converted"
    assert cli(["convert", "taming", str(ckpt), str(out), "--image-size", "32"]) == 0

    tok = VisTokenizer.from_pretrained(out)
    assert tok.config.net["attention_levels"] == attention_levels
    assert tok.config.quantizer["l2_norm"] is False
    with torch.no_grad():
        ref_rec, ref_loss, ref_indices = reference(x)
        ours = tok(x)
    assert ref_indices.unique().numel() > 8  # the lookup is exercised, not a constant code
    assert torch.equal(ours.indices, ref_indices)
    assert (ours.reconstruction - ref_rec).abs().max() < 1e-4
    assert torch.allclose(ours.loss, ref_loss, rtol=1e-5, atol=1e-7)  # Taming's legacy β placement
    meta = tok.config.metadata
    assert meta["origin"]["dropped_entries"] == ["loss.*"] and meta["origin"]["training_global_step"] == 1234
    assert meta["license"] == "mit" and "arxiv.org/abs/2012.09841" in (out / "README.md").read_text()


# Taming's EMA quantizer (EMAVQ). Upstream's EmbeddingEMA keeps weight (K, D), cluster_size (K,) and embed_avg (K, D)
# under quantize.embedding.*, and after every training step sets weight = embed_avg / s with the smoothed counts
# s = (cluster_size + eps) / (n + K·eps) · n. The helpers below build such a checkpoint from a plain reference.
TAMING_EMA_EPS = 1e-5


def smoothed_counts(cluster_size: torch.Tensor) -> torch.Tensor:
    n = cluster_size.sum()
    return (cluster_size + TAMING_EMA_EPS) / (n + cluster_size.numel() * TAMING_EMA_EPS) * n


def taming_ema_state_dict(
    reference: nn.Module, *, transposed: bool = False, uniform_counts: bool = False, seed: int = 0
) -> dict[str, torch.Tensor]:
    """``reference``'s state dict as Taming's EMAVQ would hold it: same codebook, plus EMA statistics consistent
    with it; ``transposed`` stores weight and embed_avg (D, K) as the older layout did."""
    state_dict = dict(reference.state_dict())
    weight = state_dict.pop("quantize.embedding.weight")
    g = torch.Generator().manual_seed(seed)
    cluster_size = (
        torch.full((len(weight),), 3.0) if uniform_counts else 50 * torch.rand(len(weight), generator=g)
    )
    embed_avg = weight * smoothed_counts(cluster_size)[:, None]
    if transposed:
        weight, embed_avg = weight.t().contiguous(), embed_avg.t().contiguous()
    state_dict["quantize.embedding.weight"] = weight
    state_dict["quantize.embedding.cluster_size"] = cluster_size
    state_dict["quantize.embedding.embed_avg"] = embed_avg
    return state_dict


@pytest.mark.parametrize(
    "n_embed, embed_dim, transposed",
    [
        (64, 8, False),  # upstream's (K, D)
        (64, 8, True),  # older (D, K), told apart by cluster_size's length
        (16, 16, False),  # K = D: shapes cannot tell, the values must
        (16, 16, True),
    ],
)
def test_taming_ema_checkpoint_converts_like_the_plain_one(tmp_path, n_embed, embed_dim, transposed):
    torch.manual_seed(0)
    x = smooth_images(3, 32)
    reference = randomize(
        TamingVQModel(ch_mult=(1, 2), attn_resolutions=(), embed_dim=embed_dim, n_embed=n_embed), x
    )
    plain_path, ema_path = tmp_path / "plain.ckpt", tmp_path / "ema.ckpt"
    torch.save({"state_dict": reference.state_dict()}, plain_path)
    ema_state = taming_ema_state_dict(reference, transposed=transposed)
    torch.save({"state_dict": ema_state}, ema_path)

    plain, ema = convert_taming(plain_path, image_size=32), convert_taming(ema_path, image_size=32)
    with torch.no_grad():
        ref_rec, _, ref_indices = reference(x)
        z = reference.quant_conv(reference.encoder(x)).permute(0, 2, 3, 1)
        ours_plain, ours = plain(x), ema(x)
    assert ref_indices.unique().numel() > 4
    assert torch.equal(ours.indices, ref_indices) and torch.equal(ours.indices, ours_plain.indices)
    assert torch.equal(ours.reconstruction, ours_plain.reconstruction)
    assert (ours.reconstruction - ref_rec).abs().max() < 1e-4
    # EMAVQ's loss is beta * ||sg(z_q) - z||^2 with beta = 0.25 (no codebook term: the EMA moves the codes).
    z_q = reference.quantize.embedding.weight[ref_indices]
    assert torch.allclose(ours.loss, 0.25 * (z_q - z).pow(2).mean(), rtol=1e-5, atol=1e-7)

    quantizer = ema.config.quantizer
    assert quantizer["ema_decay"] == 0.99 and quantizer["commitment_weight"] == 0.25
    assert torch.equal(ema.quantizer.codebook, reference.quantize.embedding.weight)
    assert torch.equal(ema.quantizer.ema_cluster_size, ema_state["quantize.embedding.cluster_size"])
    notes = " ".join(ema.config.metadata["converter"]["notes"])
    assert "EMA statistics were kept" in notes
    assert ("stored transposed (D, K)" in notes) is transposed


def test_taming_ema_fine_tuning_continues_upstreams_update():
    """One training step of the converted EMA quantizer moves the codebook as EmbeddingEMA would (decay 0.99)."""
    torch.manual_seed(0)
    x = smooth_images(2, 32)
    reference = randomize(TamingVQModel(ch_mult=(1, 2), attn_resolutions=()), x)
    state = taming_ema_state_dict(reference)
    converted, _ = taming_to_vistok(state)
    tok = VisTokenizer(
        vistok.VisTokenizerConfig(
            image_size=32,
            net=infer_vqgan_config(converted)["net"],
            quantizer={
                "type": "vq",
                "codebook_size": 64,
                "codebook_dim": 8,
                "l2_norm": False,
                "commitment_weight": 0.25,
                "ema_decay": 0.99,
                "ema_epsilon": TAMING_EMA_EPS,
            },
        )
    )
    tok.load_state_dict(converted)
    tok.train()
    with torch.no_grad():
        z = reference.quant_conv(reference.encoder(x)).permute(0, 2, 3, 1).reshape(-1, 8)
        _, _, indices = reference(x)
        tok(x)
    one_hot = F.one_hot(indices.reshape(-1), 64).float()
    cluster_size = 0.99 * state["quantize.embedding.cluster_size"] + 0.01 * one_hot.sum(0)
    embed_avg = 0.99 * state["quantize.embedding.embed_avg"] + 0.01 * one_hot.t() @ z
    expected = embed_avg / smoothed_counts(cluster_size)[:, None]
    assert torch.allclose(tok.quantizer.ema_cluster_size, cluster_size)
    assert torch.allclose(tok.quantizer.codebook, expected, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(expected, state["quantize.embedding.weight"], atol=1e-4)  # the step moved codes


_TAMING_BASE = {
    "encoder.down.0.block.0.conv1.weight": torch.zeros(1),
    "decoder.up.0.block.0.conv1.weight": torch.zeros(1),
}


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            {"quantize.embed.weight": torch.zeros(1), "quantize.proj.weight": torch.zeros(1)},
            r"looks like a Taming GumbelQuantize checkpoint \(quantize\.(embed|proj)\.weight.*not supported, "
            r"because .*argmax of a learned 1x1 projection",
        ),
        (
            {"quantize.embedding.weight": torch.zeros(4, 2), "quantize.used": torch.zeros(3)},
            r"looks like a Taming VQGAN trained with index remapping \(quantize\.used, shape \(3,\)\): not "
            r"supported, because its token ids are positions",
        ),
        (
            {
                "quantize.embedding.weight": torch.zeros(4, 2),
                "encoder.down.1.block.0.conv_shortcut.weight": torch.zeros(1),
            },
            r"looks like a Taming VQGAN built with 3x3 conv shortcuts .*not supported, because .*1x1 nin_shortcut",
        ),
        (
            {"quantize.embedding.weight": torch.zeros(4, 2), "quantize.embedding.initted": torch.zeros(1)},
            r"quantizer holds tensors vistok does not know \(quantize\.embedding\.initted\): not supported, "
            r"because .*could change which codes",
        ),
        (
            {
                "quantize.embedding.weight": torch.zeros(4, 2),
                "quantize.embedding.cluster_size": torch.zeros(4),
            },
            r"looks like a Taming EMAVectorQuantizer checkpoint .* lacks quantize\.embedding\.embed_avg",
        ),
        (
            {
                "quantize.embedding.weight": torch.zeros(4, 2),
                "quantize.embedding.cluster_size": torch.zeros(3),
                "quantize.embedding.embed_avg": torch.zeros(4, 2),
            },
            r"EMAVectorQuantizer checkpoint, but cluster_size has 3 entries while the codebook is 4 x 2",
        ),
    ],
)
def test_taming_refusals_say_what_the_checkpoint_is_and_why(extra, message):
    with pytest.raises(CheckpointError, match=message):
        taming_to_vistok({**_TAMING_BASE, **extra})


def test_taming_ema_square_codebook_without_usable_statistics_is_refused():
    reference = randomize(
        TamingVQModel(ch_mult=(1, 2), attn_resolutions=(), embed_dim=16, n_embed=16), smooth_images(2, 32)
    )
    state = taming_ema_state_dict(
        reference, uniform_counts=True
    )  # every code has one scale: both layouts fit
    with pytest.raises(
        CheckpointError, match=r"square 16 x 16 codebook \(K = D\).*neither shapes nor values"
    ):
        taming_to_vistok(state)


def test_weights_that_do_not_fit_name_the_origin(tmp_path):
    raw = torch.load(LLAMAGEN_TINY, weights_only=False)
    raw["model"]["decoder.extra.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pt"
    torch.save(raw, path)
    with pytest.raises(
        CheckpointError,
        match=r"this LlamaGen checkpoint has tensors that do not fit .*1 "
        r"unexpected \(decoder\.extra\.weight\).*Refused because",
    ):
        convert_llamagen(path)


def test_inconsistent_layout_is_reported(tmp_path, monkeypatch):
    reference = TamingVQModel(ch_mult=(1, 2), attn_resolutions=())
    state_dict, _ = taming_to_vistok(reference.state_dict())
    state_dict["decoder.conv_blocks.0.attn.0.q.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(CheckpointError, match="attention differs between encoder and decoder"):
        infer_vqgan_config(state_dict)


# ============================================================================================================
# safe loading and clear errors
# ============================================================================================================
def test_safe_load_refuses_unlisted_globals_unless_trusted(tmp_path, capsys):
    path = tmp_path / "odd.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "when": datetime.timedelta(days=1)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"datetime\.timedelta.*--trust-checkpoint"):
        load_checkpoint(path)
    assert load_checkpoint(path, trust_checkpoint=True)["when"] == datetime.timedelta(days=1)
    with pytest.raises(SystemExit, match="refusing to unpickle"):
        cli(["convert", "llamagen", str(path), str(tmp_path / "out")])


def test_safe_load_reads_legacy_format_and_safetensors(tmp_path):
    legacy = tmp_path / "legacy.pt"
    torch.save(
        {"args": argparse.Namespace(a=1), "w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False
    )
    assert load_checkpoint(legacy)["args"].a == 1
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2)}, tmp_path / "w.safetensors")
    assert torch.equal(load_checkpoint(tmp_path / "w.safetensors")["w"], torch.ones(2))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(32), "PNG image"),
        (b'{"not": "weights"}', "JSON"),
        (b"version https://git-lfs.github.com/spec/v1\n", "Git LFS pointer"),
        (b"hello world, not a checkpoint", "text"),
    ],
)
def test_non_checkpoint_files_say_what_they_are(tmp_path, content, message):
    path = tmp_path / "file.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_zip_without_pickle_and_missing_file(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError, match="no data.pkl"):
        load_checkpoint(tmp_path / "a.zip")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_wrong_converter_names_the_right_one(tmp_path):
    taming = tmp_path / "taming.ckpt"
    torch.save({"state_dict": TamingVQModel(ch_mult=(1, 2), attn_resolutions=()).state_dict()}, taming)
    with pytest.raises(
        CheckpointError, match="not a LlamaGen VQ checkpoint: it looks like a Taming .*vistok convert taming"
    ):
        convert_llamagen(taming)
    with pytest.raises(
        CheckpointError,
        match="not a Taming VQGAN checkpoint: it looks like a LlamaGen .*vistok convert llamagen",
    ):
        convert_taming(LLAMAGEN_TINY, weights="model")
    not_weights = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(CheckpointError, match="found a list"):
        convert_llamagen(not_weights)
    no_weights = tmp_path / "dict.pt"
    torch.save({"optimizer": {}, "steps": 3}, no_weights)
    with pytest.raises(CheckpointError, match=r"found keys \['optimizer', 'steps'\]"):
        convert_llamagen(no_weights)


def test_push_to_hub_offline_fails_clearly_after_saving(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"saved in .*uploading it to 'org/vqgan-tiny' failed.*hf upload"):
        cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out), "--push-to-hub", "org/vqgan-tiny"])
    assert (out / "model.safetensors").is_file()


def test_cli_offers_exactly_the_registered_converters():
    from vistok.cli import build_command_parser
    from vistok.families import family_names

    parser, _ = build_command_parser("convert")
    origin = next(action for action in parser._actions if action.dest == "origin")
    assert sorted(origin.choices) == sorted(family_names())


# ------------------------------------------------- `vistok convert` never replaces what it did not write (26.2)
def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _home_like(folder: Path) -> Path:
    """A folder with the user's files and no trace of vistok: a README, weights of their own, a shard, notes."""
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "holiday.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(16))
    (folder / "README.md").write_text("# my project\n")
    (folder / "model.safetensors").write_bytes(b"my own weights")
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"my shard")
    (folder / "notes.txt").write_text("do not lose me")
    return folder


def test_convert_refuses_a_folder_with_the_users_files_with_or_without_overwrite(tmp_path):
    out = _home_like(tmp_path / "home")
    before = _snapshot(out)
    with pytest.raises(SystemExit, match=r"home is not empty: it holds files vistok did not write \(no config.json\): "
                                         r"README.md, images, model-00001-of-00002.safetensors"):
        cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out)])
    with pytest.raises(SystemExit, match=r"--overwrite replaces only a tokenizer folder vistok wrote"):
        cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out), "--overwrite"])
    assert _snapshot(out) == before
    (out / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    before = _snapshot(out)
    with pytest.raises(SystemExit, match=r"a config.json that is not a vistok tokenizer's"):
        cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out), "--overwrite"])
    assert _snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing left beside it either


def test_convert_overwrite_replaces_only_a_folder_vistok_wrote(tmp_path, capsys):
    out = tmp_path / "tok"
    assert cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out), "--image-size", "32"]) == 0
    with pytest.raises(SystemExit, match=r"tok is not empty: it holds a vistok tokenizer \(README.md, config.json, "
                                         r"model.safetensors, preprocessor_config.json\).* or pass --overwrite"):
        cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out)])
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    with pytest.raises(SystemExit, match=r"and files vistok did not write: notes.txt"):
        cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out), "--overwrite"])
    assert _snapshot(out) == before
    (out / "notes.txt").unlink()
    assert cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out), "--overwrite"]) == 0
    assert VisTokenizer.from_pretrained(out).config.image_size == 256  # the new conversion, not the 32 px one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]


def test_convert_names_a_half_written_folder_as_such_and_overwrite_replaces_it(tmp_path):
    out = tmp_path / "tok"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"model_type": "vistok", "image_size": 16}))
    with pytest.raises(SystemExit, match=r"a vistok tokenizer \(config.json\), incomplete: it has no weights") as err:
        cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out)])
    assert "already holds a tokenizer" not in str(err.value)
    assert cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out), "--overwrite"]) == 0
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"}


# --------------------------------------------------------- a killed `vistok convert` leaves no half folder (26.3)
CONVERT = """
import os
from vistok.cli import main
OUT = {out!r}
into = lambda src, dst, *args, **kwargs: os.fspath(dst) == OUT
pause_at({target!r}, 1, {reached!r}, {where})
main(["convert", "llamagen", {checkpoint!r}, OUT])
"""


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ("transformers.modeling_utils:safe_save_file", None),  # while the weights are written
        ("vistok.image_processing:VisTokenizerImageProcessor.save_pretrained", None),  # config + weights written
        ("os:replace", "into"),  # everything written, about to appear
    ],
)
def test_a_convert_killed_at_any_point_leaves_no_folder_or_a_complete_one(tmp_path, target, where):
    from .killing import kill_when_reached

    out, reached = tmp_path / "tok", tmp_path / "reached"
    code = CONVERT.format(out=str(out), target=target, reached=str(reached), where=where,
                          checkpoint=str(LLAMAGEN_TINY))
    assert kill_when_reached(code, reached)
    assert not out.exists()
    assert cli(["convert", "llamagen", str(LLAMAGEN_TINY), str(out)]) == 0  # runs again without --overwrite
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"}
    VisTokenizer.from_pretrained(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reached", "tok"]  # the killed run's temporary is gone


# ------------------------------------------------------------------------- messages, not tracebacks (26 Messages)
def test_convert_of_a_truncated_safetensors_file_names_it(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "vq.safetensors"
    save_file({"weight": torch.zeros(1000)}, str(path))
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match=r"vq.safetensors' starts like a safetensors file .* truncated"):
        load_checkpoint(path)
    with pytest.raises(SystemExit, match=r"vistok convert llamagen: .*vq.safetensors' starts like a safetensors file"):
        cli(["convert", "llamagen", str(path), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_convert_refuses_nan_weights_naming_them(tmp_path):
    raw = torch.load(LLAMAGEN_TINY, weights_only=False)
    name = next(k for k, v in raw["model"].items() if k.startswith("encoder.") and v.is_floating_point())
    raw["model"][name][:] = float("nan")
    raw.pop("ema", None)
    torch.save(raw, tmp_path / "nan.pt")
    with pytest.raises(SystemExit, match=r"nan.pt hold NaN or infinite values \(encoder\..*nothing was written"):
        cli(["convert", "llamagen", str(tmp_path / "nan.pt"), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_refusals_quote_nothing_from_the_file(tmp_path):
    path = tmp_path / "secret.pt"
    path.write_text("password=hunter2 and more text")
    with pytest.raises(CheckpointError, match="it looks like text") as err:
        load_checkpoint(path)
    assert "hunter2" not in str(err.value) and "password" not in str(err.value)

"""The Open-MAGVIT2 and SimVQ converters: parity with the upstream reference vectors (EMA weights, upstream's
indices), the full-size layouts inferred from the upstream state-dict specs, the explicit conventions (LFQ bit
order, SimVQ's projected codebook for decoding) and clear errors for other files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import vistok
from vistok.cli import main as cli
from vistok.convert import CheckpointError
from vistok.convert.lightning_ema import select_lightning_weights
from vistok.convert.magvit2_layout import infer_magvit2_net
from vistok.families import get_family
from vistok.families.open_magvit2 import convert_open_magvit2, is_tokenizer_key
from vistok.families.open_magvit2 import refuse_other_layouts as refuse_non_magvit2
from vistok.families.simvq import FROZEN_CODEBOOK, convert_simvq, simvq_to_vistok
from vistok.families.simvq import refuse_other_layouts as refuse_non_simvq
from vistok.quantizers.lfq import LookupFreeQuantizer
from vistok.quantizers.simvq import SimVQQuantizer

DATA = Path(__file__).parent / "data"
MAGVIT2_TINY = DATA / "magvit2_tiny.ckpt"
SIMVQ_TINY = DATA / "simvq_tiny.ckpt"


@pytest.fixture(scope="module")
def magvit2_expected():
    return torch.load(DATA / "magvit2_tiny_expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def simvq_expected():
    return torch.load(DATA / "simvq_tiny_expected.pt", weights_only=True)


def meta_state_dict(spec_file: str) -> dict[str, torch.Tensor]:
    spec = json.loads((DATA / spec_file).read_text())
    return {key: torch.empty(shape, device="meta") for key, shape in spec.items()}


def run(tok: vistok.VisTokenizer, x: torch.Tensor, indices: torch.Tensor):
    with torch.no_grad():
        enc = tok.encode(x)
        return enc, tok.decode_quantized(enc.quantized), tok.decode(indices)


# ----------------------------------------------------------------------------------------- the LFQ bit order
def test_lfq_bit_order_names_the_same_codes_with_reversed_bits():
    z = torch.randn(2, 7, 3, 3, generator=torch.Generator().manual_seed(0))
    msb, lsb = LookupFreeQuantizer(codebook_dim=7), LookupFreeQuantizer(codebook_dim=7, bit_order="lsb_first")
    bits = (z > 0).long()
    # Independent formulas: index = Σ_c bit_c · 2^(D−1−c) (MSB first) or Σ_c bit_c · 2^c (LSB first).
    expected_msb = sum(bits[:, c] * 2 ** (6 - c) for c in range(7))
    expected_lsb = sum(bits[:, c] * 2**c for c in range(7))
    assert torch.equal(msb(z).indices, expected_msb)
    assert torch.equal(lsb(z).indices, expected_lsb)
    assert torch.equal(msb(z).quantized, lsb(z).quantized)  # the order names codes; it never changes them
    assert torch.equal(lsb.indices_to_codes(expected_lsb), msb.indices_to_codes(expected_msb))
    with pytest.raises(ValueError, match="bit_order must be one of 'msb_first', 'lsb_first'"):
        LookupFreeQuantizer(codebook_dim=7, bit_order="little")
    with pytest.raises(ValueError, match="bit_order must be one of"):
        vistok.VisTokenizerConfig(quantizer={"type": "lfq", "bit_order": "big_endian"})
    # Existing configs (no bit_order) keep channel 0 as the most significant bit.
    assert vistok.VisTokenizerConfig(quantizer={"type": "lfq"}).quantizer["bit_order"] == "msb_first"


def test_open_magvit2_lfq_options_give_upstreams_training_loss():
    """imagenet_lfqgan_256_L.yaml: codebook_weight 0.1 × (H[p(c|z)] − H[E p(c|z)]) + commit_weight 0.25 ·
    ||z − sg(q)||², p(c|z) = softmax(2⟨z, c⟩ / 0.01) over all 2^D sign codes — here by brute force at D = 6."""
    from vistok.families.open_magvit2 import OPEN_MAGVIT2_LFQ_OPTIONS

    d = 6
    lfq = LookupFreeQuantizer(codebook_dim=d, **OPEN_MAGVIT2_LFQ_OPTIONS).train()
    z = torch.randn(2, d, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.05
    losses = lfq(z).losses
    flat = z.permute(0, 2, 3, 1).reshape(-1, d)
    codes = torch.tensor([[1.0 if (k >> c) & 1 else -1.0 for c in range(d)] for k in range(2**d)], dtype=torch.float64)
    p = torch.softmax(2 * flat @ codes.T / 0.01, dim=-1)
    sample_entropy = -(p * p.log()).sum(-1).mean()
    mean = p.mean(0)
    codebook_entropy = -(mean * mean.log()).sum()
    commit = ((flat - torch.where(flat > 0, 1.0, -1.0)) ** 2).mean()
    expected = 0.1 * (sample_entropy - codebook_entropy) + 0.25 * commit
    assert abs(float(sum(losses.values())) - float(expected)) < 1e-4 * max(1.0, abs(float(expected)))


# ------------------------------------------------------------------------------------- Open-MAGVIT2 parity
def test_open_magvit2_converter_reproduces_upstream(magvit2_expected):
    e = magvit2_expected
    tok = convert_open_magvit2(MAGVIT2_TINY)
    assert tok.config.quantizer["type"] == "lfq" and tok.config.quantizer["codebook_dim"] == 10
    assert tok.config.quantizer["bit_order"] == "lsb_first"
    assert tok.config.net["channel_multiplier"] == [1, 1, 2] and tok.config.net["num_res_blocks"] == 1
    enc, reconstruction, from_indices = run(tok, e["input"], e["indices"])
    assert torch.equal(enc.indices, e["indices"])
    assert torch.equal(enc.indices.flatten(), e["indices_upstream_flat"])
    assert torch.equal(enc.quantized, e["quantized"])  # upstream's latent channel order, weights unchanged
    assert (reconstruction - e["reconstruction"]).abs().max() < 1e-4
    assert (from_indices - e["reconstruction_from_indices"]).abs().max() < 1e-4
    meta = tok.config.metadata
    assert meta["origin"]["weights"] == "ema" and meta["license"] == "apache-2.0"
    assert any("lsb_first" in note for note in meta["converter"]["notes"])


def test_open_magvit2_raw_weights_do_not_reproduce_upstream(magvit2_expected):
    e = magvit2_expected
    tok = convert_open_magvit2(MAGVIT2_TINY, weights="raw")
    enc, reconstruction, _ = run(tok, e["input"], e["indices"])
    assert not torch.equal(enc.indices, e["indices"])
    assert torch.equal(enc.indices.flatten(), e["indices_raw_weights"].flatten())
    assert (reconstruction - e["reconstruction"]).abs().max() > 0.1


def test_open_magvit2_with_vistoks_default_bit_order_would_give_other_indices(magvit2_expected):
    """Why the converter sets bit_order: the same weights under the MSB-first default name other codes."""
    e = magvit2_expected
    tok = convert_open_magvit2(MAGVIT2_TINY)
    msb = LookupFreeQuantizer(codebook_dim=10)
    with torch.no_grad():
        assert not torch.equal(msb(tok.encoder(e["input"])).indices, e["indices"])


def test_open_magvit2_cli_writes_a_loadable_folder(tmp_path, magvit2_expected):
    out = tmp_path / "om2"
    assert cli(["convert", "open-magvit2", str(MAGVIT2_TINY), str(out)]) == 0
    loaded = vistok.VisTokenizer.from_pretrained(out)
    with torch.no_grad():
        assert torch.equal(loaded.encode(magvit2_expected["input"]).indices, magvit2_expected["indices"])
    assert (out / "README.md").exists()
    assert get_family("open-magvit2").convert is convert_open_magvit2 and get_family("simvq").convert is convert_simvq


def test_open_magvit2_full_size_layout_is_inferred():
    state = meta_state_dict("magvit2_256_L_state_dict_spec.json")
    refuse_non_magvit2(state)
    selected, which = select_lightning_weights(state, is_tokenizer_key, "auto", what="an Open-MAGVIT2")
    assert which == "ema" and len(selected) == 159 + 180
    net = infer_magvit2_net(selected)["net"]
    assert net["base_channels"] == 128
    assert net["channel_multiplier"] == [1, 1, 2, 2, 4]
    assert net["num_res_blocks"] == 4
    assert net["latent_channels"] == 18
    assert net["adaptive_norm"] is True


# ------------------------------------------------------------------------------------- Open-MAGVIT2 errors
def test_open_magvit2_refuses_a_file_that_is_not_a_lightning_checkpoint(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save({"encoder.conv_in.weight": torch.zeros(2, 3, 3, 3)}, path)
    with pytest.raises(CheckpointError, match="expected an Open-MAGVIT2 Lightning checkpoint with a 'state_dict'"):
        convert_open_magvit2(path)


def test_open_magvit2_ema_asked_without_shadows(tmp_path):
    ckpt = torch.load(MAGVIT2_TINY, weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("model_ema.")}
    path = tmp_path / "no_ema.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="weights='ema' was asked for, but .* no model_ema"):
        convert_open_magvit2(path, weights="ema")
    assert convert_open_magvit2(path).config.metadata["origin"]["weights"] == "raw"


def test_open_magvit2_refuses_ibq_simvq_and_taming_files():
    with pytest.raises(CheckpointError, match="not an Open-MAGVIT2 checkpoint: it holds quantizer tensors"):
        convert_open_magvit2(DATA / "ibq_tiny.ckpt")
    with pytest.raises(CheckpointError, match="SimVQ checkpoint .* `vistok convert simvq`"):
        convert_open_magvit2(SIMVQ_TINY)
    with pytest.raises(CheckpointError, match="not an Open-MAGVIT2 checkpoint"):
        refuse_non_magvit2(meta_state_dict("taming_f16_1024_state_dict_spec.json"))
    # An improved-model checkpoint without adaptive norms or quantizer tensors is neither family.
    state = {k: v for k, v in meta_state_dict("simvq_128_B_state_dict_spec.json").items() if "quantize" not in k}
    refuse_non_magvit2(state)
    assert infer_magvit2_net(state)["net"]["adaptive_norm"] is False


def test_inconsistent_shapes_are_named():
    state = dict(meta_state_dict("magvit2_256_L_state_dict_spec.json"))
    state["decoder.conv_out.weight"] = torch.empty(4, 128, 3, 3, device="meta")
    with pytest.raises(CheckpointError, match="the decoder outputs 4 channels but the encoder reads 3"):
        infer_magvit2_net(state)
    state = {k: v for k, v in meta_state_dict("magvit2_256_L_state_dict_spec.json").items() if "mid_block.3" not in k}
    with pytest.raises(CheckpointError, match="has 3 mid blocks; expected num_res_blocks = 4"):
        infer_magvit2_net(state)


# -------------------------------------------------------------------------------------------- SimVQ parity
def test_simvq_converter_reproduces_upstream(simvq_expected):
    e = simvq_expected
    tok = convert_simvq(SIMVQ_TINY)
    assert tok.config.net["adaptive_norm"] is False and not hasattr(tok.decoder, "adaptive")
    assert tok.config.quantizer["projection_bias"] is True
    enc, reconstruction, from_indices = run(tok, e["input"], e["indices"])
    assert torch.equal(enc.indices, e["indices"])
    assert torch.equal(enc.indices.flatten(), e["indices_upstream_flat"])
    assert (reconstruction - e["reconstruction"]).abs().max() < 1e-4
    assert (from_indices - e["reconstruction_from_indices"]).abs().max() < 1e-4
    with torch.no_grad():
        torch.testing.assert_close(tok.quantizer.effective_codebook(), e["codebook_projected"], rtol=0, atol=1e-6)
    # Upstream's get_codebook_entry decodes the unprojected rows; vistok's decode must not.
    assert (from_indices - e["reconstruction_upstream_get_codebook_entry"]).abs().max() > 0.5
    meta = tok.config.metadata
    assert meta["origin"]["weights"] == "ema" and meta["license"] == "mit"
    assert meta["origin"]["training_global_step"] == 250250


def test_simvq_takes_the_frozen_codebook_as_stored_and_the_projection_from_ema():
    state = torch.load(SIMVQ_TINY, weights_only=True)["state_dict"]
    assert "model_ema.quantizeembeddingweight" not in state  # the frozen codebook has no shadow
    tok = convert_simvq(SIMVQ_TINY)
    assert torch.equal(tok.quantizer.frozen_codebook, state[FROZEN_CODEBOOK])
    assert torch.equal(tok.quantizer.codebook_proj.weight, state["model_ema.quantizeembedding_projweight"])
    assert torch.equal(tok.quantizer.codebook_proj.bias, state["model_ema.quantizeembedding_projbias"])
    assert not torch.equal(tok.quantizer.codebook_proj.weight, state["quantize.embedding_proj.weight"])


def test_simvq_raw_weights_do_not_reproduce_upstream(simvq_expected):
    e = simvq_expected
    tok = convert_simvq(SIMVQ_TINY, weights="raw")
    enc, reconstruction, _ = run(tok, e["input"], e["indices"])
    assert not torch.equal(enc.indices, e["indices"])
    assert torch.equal(enc.indices.flatten(), e["indices_raw_weights"].flatten())
    assert (reconstruction - e["reconstruction"]).abs().max() > 0.1


def test_simvq_reads_the_lightning_config_beside_the_checkpoint(tmp_path, simvq_expected):
    run_dir = tmp_path / "vq_log" / "simvq_tiny"
    (run_dir / "size32").mkdir(parents=True)
    shutil.copy(SIMVQ_TINY, run_dir / "epoch=49-step=250250.ckpt")
    shutil.copy(DATA / "simvq_tiny_config.yaml", run_dir / "size32" / "config.yaml")
    tok = convert_simvq(run_dir / "epoch=49-step=250250.ckpt")
    assert tok.config.image_size == 32  # ddconfig.resolution
    assert tok.config.metadata["origin"]["config_file"] == "size32/config.yaml"
    assert tok.config.quantizer["commitment_weight"] == 0.25 and tok.config.quantizer["codebook_weight"] == 1.0
    assert not any("the tensors win" in n for n in tok.config.metadata["converter"]["notes"])
    # A config that disagrees with the shapes is noted; the shapes win.
    text = (DATA / "simvq_tiny_config.yaml").read_text().replace("ch: 32", "ch: 64").replace("n_e: 256", "n_e: 512")
    (run_dir / "size32" / "config.yaml").write_text(text)
    tok = convert_simvq(run_dir / "epoch=49-step=250250.ckpt")
    notes = tok.config.metadata["converter"]["notes"]
    assert any("ch=64" in n and "tensors give 32" in n for n in notes)
    assert any("n_e=512" in n for n in notes) and tok.config.quantizer["codebook_size"] == 256
    with torch.no_grad():
        assert torch.equal(tok.encode(simvq_expected["input"]).indices, simvq_expected["indices"])
    # An explicit config that is not a SimVQ config is refused.
    bad = tmp_path / "other.yaml"
    bad.write_text("model:\n  target: something.Else\n")
    with pytest.raises(CheckpointError, match="not a SimVQ LightningCLI config"):
        convert_simvq(SIMVQ_TINY, config_file=bad)


def test_simvq_full_size_layout_is_inferred():
    state = meta_state_dict("simvq_128_B_state_dict_spec.json")
    refuse_non_simvq(state)
    selected, which = select_lightning_weights(
        state, lambda k: k.startswith(("encoder.", "decoder.", "quantize.")), "auto",
        without_shadow=(FROZEN_CODEBOOK,), what="a SimVQ",
    )
    assert which == "ema" and len(selected) == 73 + 74 + 3
    net = infer_magvit2_net(selected)["net"]
    assert (net["base_channels"], net["channel_multiplier"], net["num_res_blocks"]) == (128, [1, 2, 2, 4], 2)
    assert net["latent_channels"] == 128 and net["adaptive_norm"] is False
    # Every tensor maps onto a vistok tokenizer of that architecture with its shape.
    config = vistok.VisTokenizerConfig(
        image_size=128,
        net={**net, "quant_conv": False},
        quantizer={"type": "simvq", "codebook_size": 1024, "codebook_dim": 128, "projection_bias": True},
    )
    with torch.device("meta"):
        tok = vistok.VisTokenizer(config)
    ours = {k: tuple(v.shape) for k, v in tok.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in simvq_to_vistok(selected).items()}
    assert ours == theirs
    assert sum(torch.Size(s).numel() for k, s in ours.items() if k.startswith(("encoder.", "decoder."))) == 64_134_403


def test_simvq_refuses_other_files():
    with pytest.raises(CheckpointError, match="Open-MAGVIT2 .* `vistok convert open-magvit2`"):
        convert_simvq(MAGVIT2_TINY)
    with pytest.raises(CheckpointError, match="not a SimVQ checkpoint .* plain learned codebook"):
        convert_simvq(DATA / "ibq_tiny.ckpt")


def test_simvq_projection_bias_is_opt_in():
    """Existing simvq checkpoints have no bias tensor; with the option the codes are c·Wᵀ + b."""
    plain = SimVQQuantizer(codebook_size=8, codebook_dim=4)
    assert "codebook_proj.bias" not in plain.state_dict()
    biased = SimVQQuantizer(codebook_size=8, codebook_dim=4, projection_bias=True)
    with torch.no_grad():
        biased.codebook_proj.bias.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]))
        expected = biased.frozen_codebook @ biased.codebook_proj.weight.T + biased.codebook_proj.bias
        assert torch.equal(biased.effective_codebook(), expected)
        indices = torch.tensor([[[3, 0], [7, 1]]])
        assert torch.equal(biased.indices_to_codes(indices), expected[indices].permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match="projection_bias must be true or false"):
        vistok.VisTokenizerConfig(quantizer={"type": "simvq", "projection_bias": "yes"})

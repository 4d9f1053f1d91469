"""``VisTokenizer.from_transformers`` (issue 21, part 5): transformers' ``ChameleonVQVAE``, ``Emu3VQVAE`` and
``JanusVQVAE`` (alone or inside their models) as vistok tokenizers.

Expected values come from transformers itself (its ``encode`` / ``decode`` on the same random weights) and, where a
reference folder exists, from the upstream projects' outputs saved beside it (Chameleon's and Emu3's transformers
folders; Janus's original release weights put into transformers' ``JanusVQVAE`` with transformers' own renames).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import (
    ChameleonForConditionalGeneration,
    ChameleonVQVAE,
    ChameleonVQVAEConfig,
    Emu3ForConditionalGeneration,
    Emu3VQVAE,
    Emu3VQVAEConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusVisionConfig,
    JanusVQVAE,
    JanusVQVAEConfig,
    LlamaConfig,
)

from vistok import VisTokenizer
from vistok.nets.vqgan import DecoderUnavailableError

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pixels(batch: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear").mul(2).sub(1)


def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial values everywhere (norm affines, biases, BatchNorm statistics), as trained weights have."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                if name.endswith("running_var"):
                    tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
                elif name.endswith(("norm.weight", "norm_out.weight")) or ".norm" in name and name.endswith("weight"):
                    tensor.copy_(1 + 0.1 * torch.randn(tensor.shape, generator=g))
                else:
                    tensor.copy_(tensor + 0.05 * torch.randn(tensor.shape, generator=g))
    return module.eval()


def chameleon_vqvae() -> ChameleonVQVAE:
    torch.manual_seed(0)
    config = ChameleonVQVAEConfig(base_channels=32, channel_multiplier=[1, 2], num_res_blocks=1, latent_channels=16,
                                  embed_dim=8, num_embeddings=64, resolution=32, attn_resolutions=[16])  # fmt: skip
    return randomize(ChameleonVQVAE(config))


def emu3_vqvae() -> Emu3VQVAE:
    torch.manual_seed(0)
    config = Emu3VQVAEConfig(base_channels=32, channel_multiplier=[1, 2], num_res_blocks=1, latent_channels=4,
                             embed_dim=4, codebook_size=64, attn_resolutions=[1], temporal_downsample_factor=4,
                             hidden_size=64)  # fmt: skip
    return randomize(Emu3VQVAE(config))


def janus_vq_config(**changes) -> JanusVQVAEConfig:
    return JanusVQVAEConfig(**{"base_channels": 32, "channel_multiplier": [1, 1, 2], "num_res_blocks": 1,
                               "latent_channels": 32, "embed_dim": 8, "num_embeddings": 256, "num_patches": 8,
                               "projection_dim": 32, "image_token_embed_dim": 32, **changes})  # fmt: skip


def tiny_janus_model() -> JanusForConditionalGeneration:
    torch.manual_seed(0)
    config = JanusConfig(
        text_config=LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2),
        vision_config=JanusVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=4, projection_dim=32),
        vq_config=janus_vq_config(),
    )  # fmt: skip
    return JanusForConditionalGeneration(config).eval()


# ------------------------------------------------------------------------------------------------ Chameleon
def test_chameleon_vqvae_gives_transformers_indices_and_is_encode_only():
    module = chameleon_vqvae()
    tok = VisTokenizer.from_transformers(module)
    x = pixels()
    with torch.no_grad():
        ours = tok.encode(x).indices
        theirs = module.encode(x).image_tokens
    assert ours.shape == (2, 16, 16) and torch.equal(ours.reshape(-1), theirs)
    assert len(ours.unique()) > 4
    with pytest.raises(DecoderUnavailableError, match="ChameleonVQVAE.*vqgan-chameleon"):
        tok.decode(ours)
    assert "model_ids" not in tok.config.metadata  # a bare VQ-VAE has no vocabulary


def test_chameleon_model_from_the_reference_folder_gives_upstream_indices_and_ids():
    expected = torch.load(DATA / "chameleon" / "chameleon_tiny_expected.pt", weights_only=True)
    model = ChameleonForConditionalGeneration.from_pretrained(DATA / "chameleon" / "chameleon_tiny_hf").eval()
    tok = VisTokenizer.from_transformers(model)
    with torch.no_grad():
        indices = tok.encode(expected["input"]).indices
    assert torch.equal(indices, expected["indices"])  # facebookresearch/chameleon's own indices
    assert torch.equal(tok.to_model_ids(indices).reshape(3, -1), expected["transformers_bpe_tokens"].long())
    with torch.no_grad():
        assert torch.equal(tok.to_model_ids(indices).reshape(3, -1), model.model.get_image_tokens(expected["input"]))


# ----------------------------------------------------------------------------------------------------- Emu3
def test_emu3_vqvae_gives_transformers_indices_and_decode():
    module = emu3_vqvae()
    tok = VisTokenizer.from_transformers(module)
    x = pixels()
    with torch.no_grad():
        ours = tok.encode(x).indices
        theirs = torch.stack(module.encode(x, torch.tensor([[32, 32]] * 2)).image_tokens)
        assert torch.equal(ours, theirs) and len(ours.unique()) > 4
        assert (tok.decode(ours) - module.decode(ours)).abs().max() < 1e-4


def test_emu3_model_from_the_reference_folder_gives_baai_indices_and_ids():
    expected = torch.load(DATA / "emu3" / "emu3_tiny_expected.pt", weights_only=True)
    expected_hf = torch.load(DATA / "emu3" / "emu3_tiny_hf_expected.pt", weights_only=True)
    model = Emu3ForConditionalGeneration.from_pretrained(DATA / "emu3" / "emu3_tiny_hf").eval()
    tok = VisTokenizer.from_transformers(model)
    with torch.no_grad():
        indices = tok.encode(expected["input"]).indices
        assert torch.equal(indices, expected_hf["indices"])
        assert (tok.decode(indices) - expected["reconstruction"]).abs().max() < 1e-4  # BAAI's own decode
    ids = tok.to_model_ids(indices)
    assert torch.equal(ids, expected_hf["bpe_tokens"].long().reshape(3, 8, 9)[..., :8])


# ---------------------------------------------------------------------------------------------------- Janus
def test_janus_vqvae_decodes_as_transformers_and_agrees_on_unit_norm_codebooks():
    torch.manual_seed(0)
    module = randomize(JanusVQVAE(janus_vq_config()))
    x = pixels()
    tok = VisTokenizer.from_transformers(module)
    assert tok.config.image_size == 32
    with torch.no_grad():
        indices = tok.encode(x).indices
        assert (tok.decode(indices) - module.decode(indices.reshape(2, -1))).abs().max() < 1e-4
        module.quantize.embedding.weight.copy_(torch.nn.functional.normalize(module.quantize.embedding.weight, dim=-1))
        tok = VisTokenizer.from_transformers(module)
        assert torch.equal(tok.encode(x).indices.reshape(-1), module.encode(x).image_tokens)


def test_janus_model_with_the_release_weights_gives_janus_own_indices():
    """Janus's tiny release weights, renamed as transformers' convert_janus_weights_to_hf.py renames them: vistok's
    indices are Janus's (l2-normalised search); transformers' raw-codebook encode differs, its decode does not."""
    expected = torch.load(DATA / "janus_tiny_expected.pt", weights_only=True)
    renames = [(r"^encoder\.conv_blocks\.(\d+)\.res\.", r"encoder.down.\1.block."), (r"^encoder\.conv_blocks\.", "encoder.down."),
               (r"^decoder\.conv_blocks\.(\d+)\.res\.", r"decoder.up.\1.block."), (r"^decoder\.conv_blocks\.", "decoder.up."),
               (r"\.mid\.0\.", ".mid.block_1."), (r"\.mid\.1\.", ".mid.attn_1."), (r"\.mid\.2\.", ".mid.block_2.")]  # fmt: skip
    state = {}
    with safe_open(str(DATA / "janus_tiny" / "model.safetensors"), framework="pt") as f:
        for name in f.keys():
            if name.startswith("gen_vision_model.") and not name.endswith("codebook_used"):
                key = name[len("gen_vision_model."):]
                for pattern, replacement in renames:
                    key = re.sub(pattern, replacement, key)
                state[key] = f.get_tensor(name).float()
    model = tiny_janus_model()
    model.model.vqmodel.load_state_dict(state, strict=True)
    tok = VisTokenizer.from_transformers(model)
    assert (tok.config.metadata["model_ids"]["kind"], tok.config.metadata["model_ids"]["offset"]) == ("offset", 0)
    with torch.no_grad():
        assert torch.equal(tok.encode(expected["input"]).indices, expected["indices"])  # deepseek-ai/Janus's own
        theirs = model.model.vqmodel.encode(expected["input"]).image_tokens
        assert not torch.equal(theirs, expected["indices"].reshape(-1))
        decoded = model.model.vqmodel.decode(expected["indices"].reshape(3, -1))
        assert (tok.decode(expected["indices"]) - decoded).abs().max() < 1e-4
        assert (decoded - expected["reconstruction_from_indices"]).abs().max() < 1e-4


# ---------------------------------------------------------------------------------------------- all classes
@pytest.mark.parametrize("build", [chameleon_vqvae, emu3_vqvae, lambda: JanusVQVAE(janus_vq_config()).eval()])
def test_the_tokenizer_shares_no_state_with_the_module(build):
    module = build()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    pointers = {v.data_ptr() for v in module.state_dict().values()}
    tok = VisTokenizer.from_transformers(module)
    assert not pointers & {v.data_ptr() for v in tok.state_dict().values()}
    with torch.no_grad():
        for parameter in tok.parameters():
            parameter.add_(1.0)
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not tok.training and next(tok.parameters()).dtype == torch.float32


def test_a_bfloat16_module_gives_a_float32_tokenizer():
    module = chameleon_vqvae().to(torch.bfloat16)
    tok = VisTokenizer.from_transformers(module)
    assert all(p.dtype == torch.float32 for p in tok.parameters())
    assert torch.equal(tok.quantizer.codebook, module.quantize.embedding.weight.float())


@pytest.mark.parametrize("wrong", [torch.nn.Linear(2, 2), "facebook/chameleon-7b", None])
def test_a_wrong_type_gets_a_message_naming_the_accepted_classes(wrong):
    with pytest.raises(TypeError, match="ChameleonVQVAE, Emu3VQVAE or JanusVQVAE.*JanusForConditionalGeneration"):
        VisTokenizer.from_transformers(wrong)

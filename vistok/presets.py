"""Named tokenizer presets: every row of the seed's CelebA-64 table and the ImageNet-256 VQGANs.

Presets build randomly initialised tokenizers (``create_tokenizer(name)``); trained or converted weights are
loaded with ``VisTokenizer.from_pretrained``.
"""

from __future__ import annotations

from .registry import Preset, register_preset

SEED_TABLE = "seed benchmark-celeba64 (SimpleCNN, batch 256, Adam lr 4e-4, 500k steps)"
CELEBA_NET = {"type": "simple_cnn", "hidden_channels": 256, "num_res_blocks": 2}
CELEBA_RECIPE = "training/configs/celeba64"


def _celeba(name: str, description: str, quantizer: dict, row: str, recipe: str) -> None:
    register_preset(
        Preset(
            name=name,
            description=description,
            config={"image_size": 64, "net": dict(CELEBA_NET), "quantizer": quantizer},
            source=f"{SEED_TABLE}: {row}",
            training=f"{CELEBA_RECIPE}/{recipe}",
            tags=("celeba64",),
        )
    )


for dim in (4, 8, 16, 32, 64):
    _celeba(
        f"vqvae-celeba64-vq-d{dim}",
        f"SimpleCNN VQ-VAE, 64px f4, codebook 512 x {dim}",
        {"type": "vq", "codebook_size": 512, "codebook_dim": dim},
        f"VQVAE, effect of codebook dim: dim {dim}, size 512",
        "vqvae.yaml",
    )
for size in (1024, 2048):
    _celeba(
        f"vqvae-celeba64-vq-d64-k{size}",
        f"SimpleCNN VQ-VAE, 64px f4, codebook {size} x 64",
        {"type": "vq", "codebook_size": size, "codebook_dim": 64},
        f"VQVAE, effect of codebook size: dim 64, size {size}",
        "vqvae.yaml",
    )
for dim in (4, 64):
    _celeba(
        f"vqvae-celeba64-vq-d{dim}-l2",
        f"SimpleCNN VQ-VAE, 64px f4, l2-normalised codebook 512 x {dim}",
        {"type": "vq", "codebook_size": 512, "codebook_dim": dim, "l2_norm": True},
        f"VQVAE, effect of l2-norm codes: dim {dim}, size 512, l2-norm yes",
        "vqvae.yaml",
    )
    _celeba(
        f"vqvae-celeba64-vq-d{dim}-ema",
        f"SimpleCNN VQ-VAE, 64px f4, EMA codebook 512 x {dim}",
        {"type": "vq", "codebook_size": 512, "codebook_dim": dim, "ema_decay": 0.99},
        f"VQVAE, effect of EMA update: dim {dim}, size 512, EMA",
        "vqvae.yaml",
    )
_celeba(
    "vqvae-celeba64-vq-d64-entropy",
    "SimpleCNN VQ-VAE, 64px f4, codebook 512 x 64, entropy regularisation 0.1",
    {"type": "vq", "codebook_size": 512, "codebook_dim": 64, "entropy_weight": 0.1},
    "VQVAE, effect of entropy regularization: dim 64, size 512, weight 0.1",
    "vqvae.yaml",
)
for levels in ((8, 8, 8), (8, 5, 5, 5)):
    tag = "".join(map(str, levels))
    _celeba(
        f"fsqvae-celeba64-{tag}",
        f"SimpleCNN FSQ-VAE, 64px f4, levels {list(levels)}",
        {"type": "fsq", "levels": list(levels)},
        f"FSQ-VAE: levels {list(levels)}",
        "fsqvae.yaml",
    )
_celeba(
    "lfqvae-celeba64-d9",
    "SimpleCNN LFQ-VAE, 64px f4, 9 bits (512 codes)",
    {"type": "lfq", "codebook_dim": 9},
    "LFQ-VAE: dim 9, size 512",
    "lfqvae.yaml",
)
_celeba(
    "simvqvae-celeba64-d64",
    "SimpleCNN SimVQ-VAE, 64px f4, codebook 512 x 64",
    {"type": "simvq", "codebook_size": 512, "codebook_dim": 64},
    "SimVQ-VAE: dim 64, size 512",
    "simvqvae.yaml",
)


def _vqgan(name: str, description: str, mult: list[int], quantizer: dict, source: str, recipe: str) -> None:
    register_preset(
        Preset(
            name=name,
            description=description,
            config={
                "image_size": 256,
                "net": {
                    "type": "vqgan",
                    "base_channels": 128,
                    "channel_multiplier": mult,
                    "num_res_blocks": 2,
                    "latent_channels": 256,
                },
                "quantizer": quantizer,
            },
            source=source,
            training=f"training/configs/imagenet256/{recipe}",
            tags=("imagenet256",),
        )
    )


TAMING = "Esser et al., Taming Transformers for High-Resolution Image Synthesis (CVPR 2021)"
LLAMAGEN = "Sun et al., Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation (2024)"

# The quantizer loss weights of each family, defined once: the presets, their training recipes (which name the
# preset and repeat no weight) and the converters (vistok.convert) all read them from here.
# Taming's VectorQuantizer2 (legacy=True, the form its released VQGANs were trained with) computes
# ||sg(z_q) − z||² + β·||z_q − sg(z)||² with β = 0.25: β weighs the codebook term, the commitment term has weight 1.
TAMING_BETA = 0.25
TAMING_QUANTIZER_LOSS = {"commitment_weight": 1.0, "codebook_weight": TAMING_BETA}
# LlamaGen's VectorQuantizer: ||z_q − sg(z)||² + commit_loss_beta·||sg(z_q) − z||² with commit_loss_beta = 0.25,
# plus entropy_loss_ratio (0 in vq_train.py's defaults) times its entropy loss.
LLAMAGEN_QUANTIZER_LOSS = {"commitment_weight": 0.25, "codebook_weight": 1.0, "entropy_weight": 0.0}
for size in (1024, 16384):
    _vqgan(
        f"vqgan-taming-f16-{size}",
        f"Taming VQGAN f16, 256px → 16x16 tokens, codebook {size} x 256",
        [1, 1, 2, 2, 4],
        {"type": "vq", "codebook_size": size, "codebook_dim": 256, "l2_norm": False, **TAMING_QUANTIZER_LOSS},
        TAMING,
        "vqgan-taming.yaml",
    )
_vqgan(
    "vqgan-llamagen-vq16",
    "LlamaGen VQ-16, 256px → 16x16 tokens, l2-normalised codebook 16384 x 8",
    [1, 1, 2, 2, 4],
    {"type": "vq", "codebook_size": 16384, "codebook_dim": 8, "l2_norm": True, **LLAMAGEN_QUANTIZER_LOSS},
    LLAMAGEN,
    "vqgan-llamagen.yaml",
)
_vqgan(
    "vqgan-llamagen-vq8",
    "LlamaGen VQ-8, 256px → 32x32 tokens, l2-normalised codebook 16384 x 8",
    [1, 2, 2, 4],
    {"type": "vq", "codebook_size": 16384, "codebook_dim": 8, "l2_norm": True, **LLAMAGEN_QUANTIZER_LOSS},
    LLAMAGEN,
    "vqgan-llamagen.yaml",
)

# IBQ (Shi et al., 2024), SEED-Voken configs/IBQ/gpu/imagenet_ibqgan_*.yaml: IndexPropagationQuantize's quant_loss
# ||q_ib − z||² + ||sg(q) − z||² + β·||q − sg(z)||² with β = 0.25 (weighed by quant_loss_weight 1.0), plus
# entropy_loss_weight (0.05) × (H[softmax(⟨z, e⟩/0.01)] per sample − H[batch mean]), both entropy weights 1.0.
IBQ_PAPER = "Shi et al., Taming Scalable Visual Tokenizer for Autoregressive Image Generation (IBQ, 2024)"
IBQ_QUANTIZER_LOSS = {
    "commitment_weight": 1.0,
    "codebook_weight": 0.25,
    "index_backprop_weight": 1.0,
    "entropy_weight": 0.05,
    "entropy_temperature": 0.01,
    "sample_entropy_weight": 1.0,
    "codebook_entropy_weight": 1.0,
}
IBQ_CODEBOOK_SIZES = (1024, 8192, 16384, 262144)
for size in IBQ_CODEBOOK_SIZES:
    register_preset(
        Preset(
            name=f"ibqgan-imagenet256-{size}",
            description=f"IBQ f16 (Taming-style VQGAN, index backpropagation), 256px → 16x16 tokens, codebook {size} x 256",
            config={
                "image_size": 256,
                "net": {
                    "type": "vqgan",
                    "base_channels": 128,
                    "channel_multiplier": [1, 1, 2, 2, 4],
                    "num_res_blocks": 4,
                    "latent_channels": 256,
                    "attention_levels": [4],  # attn_resolutions [16] at 256 px: the last level
                },
                "quantizer": {"type": "ibq", "codebook_size": size, "codebook_dim": 256, **IBQ_QUANTIZER_LOSS},
            },
            source=IBQ_PAPER,
            training="training/configs/imagenet256/ibqgan.yaml",
            tags=("imagenet256",),
        )
    )

# Open-MAGVIT2 (Luo et al., 2024), SEED-Voken configs/Open-MAGVIT2/gpu/imagenet_lfqgan_{256,128}_L.yaml: the improved
# conv net (magvit2) and LFQ 2^18. Its loss adds codebook_weight 0.1 × (sample_minimization_weight 1.0 · H[p(c|z)]
# − batch_maximization_weight 1.0 · H[E p(c|z)]) with p(c|z) = softmax(2⟨z, c⟩ / 0.01), and commit_weight 0.25 ·
# ||z − sg(q)||² (codebook_enlarge_ratio 0: no annealing). Its index is Σ_c bit_c · 2^c (channel 0 least
# significant), which bit_order states; the converter (vistok.convert.open_magvit2) reads the same options.
OPEN_MAGVIT2_PAPER = "Luo et al., Open-MAGVIT2: An Open-Source Project Toward Democratizing Auto-regressive Visual Generation (2024)"
OPEN_MAGVIT2_LFQ_OPTIONS = {
    "commitment_weight": 0.25,
    "entropy_weight": 0.1,
    "diversity_weight": 1.0,
    "entropy_temperature": 0.01,
    "bit_order": "lsb_first",
}
for resolution, mult in ((256, [1, 1, 2, 2, 4]), (128, [1, 2, 2, 4])):
    register_preset(
        Preset(
            name=f"lfqgan-magvit2-imagenet{resolution}-L",
            description=f"Open-MAGVIT2 {resolution}_L (MAGVIT-v2 conv net, LFQ 2^18), {resolution}px → 16x16 tokens",
            config={
                "image_size": resolution,
                "net": {
                    "type": "magvit2",
                    "base_channels": 128,
                    "channel_multiplier": mult,
                    "num_res_blocks": 4,
                    "latent_channels": 18,
                },
                "quantizer": {"type": "lfq", "codebook_dim": 18, **OPEN_MAGVIT2_LFQ_OPTIONS},
            },
            source=f"{OPEN_MAGVIT2_PAPER}; SEED-Voken configs/Open-MAGVIT2/gpu/imagenet_lfqgan_{resolution}_L.yaml",
            training="training/configs/imagenet256/lfqgan-magvit2.yaml" if resolution == 256 else None,
            tags=(f"imagenet{resolution}",),
        )
    )

# SimVQ (Zhu et al., 2024), configs/imagenet_simvq_128_B.yaml: the improved conv net without adaptive norms and
# SimVQ(beta 0.25, legacy False) — the frozen codebook seen through nn.Linear with bias; loss commit_weight 1.0.
SIMVQ_PAPER = "Zhu et al., Addressing Representation Collapse in Vector Quantized Models with One Linear Layer (2024)"
SIMVQ_QUANTIZER_OPTIONS = {"commitment_weight": 0.25, "codebook_weight": 1.0, "projection_bias": True}
SIMVQ_CODEBOOK_SIZES = (1024, 8192, 65536, 262144)
for size in SIMVQ_CODEBOOK_SIZES:
    register_preset(
        Preset(
            name=f"simvq-imagenet128-{size}",
            description=f"SimVQ 128_B (MAGVIT-v2 conv net, no adaptive norm), 128px → 16x16 tokens, codebook {size} x 128",
            config={
                "image_size": 128,
                "net": {
                    "type": "magvit2",
                    "base_channels": 128,
                    "channel_multiplier": [1, 2, 2, 4],
                    "num_res_blocks": 2,
                    "latent_channels": 128,
                    "adaptive_norm": False,
                },
                "quantizer": {"type": "simvq", "codebook_size": size, "codebook_dim": 128, **SIMVQ_QUANTIZER_OPTIONS},
            },
            source=f"{SIMVQ_PAPER}; SimVQ configs/imagenet_simvq_128_B.yaml (n_e {size})",
            tags=("imagenet128",),
        )
    )

# VAR's multi-scale VQVAE (Tian et al., NeurIPS 2024; FoundationVision/VAR models/vqvae.py VQVAE with the arguments
# build_vae_var passes for vae_ch160v4096z32.pth): ch 160, the hard-coded ch_mult (1,1,2,2,4) and 2 res blocks, z 32,
# attention in the deepest level and the middle (one packed qkv conv), 3x3 quant convs; VectorQuantizer2 with a
# 4096 x 32 codebook, 10 scales 1..16 (680 tokens), 4 shared φ convs with quant_resi 0.5, beta 0.25.
VAR_PAPER = "Tian et al., Visual Autoregressive Modeling: Scalable Image Generation via Next-Scale Prediction (NeurIPS 2024)"
VAR_PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
register_preset(
    Preset(
        name="var-vqvae-imagenet256-f16",
        description="VAR multi-scale VQVAE, 256px → 10 token maps 1x1 … 16x16 (680 tokens), codebook 4096 x 32",
        config={
            "image_size": 256,
            "net": {
                "type": "var",
                "base_channels": 160,
                "channel_multiplier": [1, 1, 2, 2, 4],
                "num_res_blocks": 2,
                "latent_channels": 32,
                "attention": True,
                "mid_attention": True,
                "quant_conv_kernel_size": 3,
            },
            "quantizer": {
                "type": "multiscale_vq",
                "codebook_size": 4096,
                "codebook_dim": 32,
                "patch_nums": VAR_PATCH_NUMS,
                "num_phi_convs": 4,
                "phi_ratio": 0.5,
                "commitment_weight": 0.25,
            },
        },
        source=f"{VAR_PAPER}; FoundationVision/VAR models/vqvae.py (vae_ch160v4096z32.pth)",
        tags=("imagenet256",),
    )
)

# MaskGIT's VQGAN (Chang et al., 2022) as TiTok's PyTorch port (bytedance/1d-tokenizer PretrainedTokenizer, the file
# maskgit-vqgan-imagenet-f16-256.bin): hidden 128, channel_mult (1,1,2,2,4), 2 res blocks, z 256 quantized directly by
# a plain Euclidean 1024 x 256 codebook (commitment 0.25); the network works on [0, 1] pixels (pixel_range "unit").
register_preset(
    Preset(
        name="maskgit-vqgan-imagenet256-f16",
        description="MaskGIT VQGAN (no attention, TF same padding, avg-pool), 256px → 16x16 tokens, codebook 1024 x 256",
        config={
            "image_size": 256,
            "net": {
                "type": "maskgit",
                "base_channels": 128,
                "channel_multiplier": [1, 1, 2, 2, 4],
                "num_res_blocks": 2,
                "latent_channels": 256,
                "pixel_range": "unit",
            },
            "quantizer": {"type": "vq", "codebook_size": 1024, "codebook_dim": 256, "commitment_weight": 0.25},
        },
        source="Chang et al., MaskGIT: Masked Generative Image Transformer (CVPR 2022); TiTok's PyTorch port "
        "(bytedance/1d-tokenizer modeling/modules/maskgit_vqgan.py)",
        tags=("imagenet256",),
    )
)

# TiTok single-stage VQ tokenizers (Yu et al., NeurIPS 2024; bytedance/1d-tokenizer configs/infer/TiTok/
# titok_{bl64,bl128,sl256}_vq8k.yaml): ViT encoder base (768 wide, 12 layers, 12 heads) or small (512, 8, 8), ViT
# decoder large (1024, 24, 16), patch 16, N latent tokens of 64 channels, a plain Euclidean 8192 x 64 codebook
# (commitment 0.25); the network works on [0, 1] pixels (pixel_range "unit").
TITOK_PAPER = "Yu et al., An Image is Worth 32 Tokens for Reconstruction and Generation (TiTok, NeurIPS 2024)"
TITOK_VIT_SIZES = {"S": (512, 8, 8), "B": (768, 12, 12), "L": (1024, 24, 16)}
for encoder, decoder, tokens in (("B", "L", 64), ("B", "L", 128), ("S", "L", 256)):
    enc, dec = TITOK_VIT_SIZES[encoder], TITOK_VIT_SIZES[decoder]
    variant = f"{encoder.lower()}{decoder.lower()}{tokens}"
    register_preset(
        Preset(
            name=f"titok-{variant}-vq8k-imagenet256",
            description=f"TiTok-{encoder}{decoder}-{tokens} VQ (ViT encoder/decoder), 256px → 1-D sequence of {tokens} "
            "tokens, codebook 8192 x 64",
            config={
                "image_size": 256,
                "net": {
                    "type": "titok",
                    "image_size": 256,
                    "encoder_patch_size": 16,
                    "decoder_patch_size": 16,
                    "encoder_width": enc[0],
                    "encoder_depth": enc[1],
                    "encoder_heads": enc[2],
                    "decoder_width": dec[0],
                    "decoder_depth": dec[1],
                    "decoder_heads": dec[2],
                    "num_latent_tokens": tokens,
                    "token_size": 64,
                    "pixel_range": "unit",
                },
                "quantizer": {"type": "vq", "codebook_size": 8192, "codebook_dim": 64, "commitment_weight": 0.25},
            },
            source=f"{TITOK_PAPER}; bytedance/1d-tokenizer configs/infer/TiTok/titok_{variant}_vq8k.yaml",
            tags=("imagenet256",),
        )
    )

"""vistok's own presets: every row of the seed's CelebA-64 table. The upstream projects' architectures are
registered by their family modules (:mod:`vistok.families`).

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


# BSQ-ViT-style presets (Zhao, Xiong and Krähenbühl, "Image and Video Tokenization with Binary Spherical
# Quantization", arXiv 2406.07548; zhaoyue-zephyrus/bsq-vit configs/tokenizer/imagenet_256x256_bsqvit_b18g18 /
# _b36g36_stylegan_f8_fp16.yaml). vistok has no BSQ-ViT network (its nets are convolutional, and TiTok's ViT reads
# 1-D latent tokens), so these presets take BSQ-ViT's quantizer settings and its downsampling factor on a conv
# backbone: the Taming / LlamaGen ``vqgan`` net at f8 (LlamaGen VQ-8's layout: base 128, multipliers 1, 2, 2, 4,
# 2 res blocks, z 256), whose 1x1 quant_conv / post_quant_conv stand where BSQ-ViT's linear quant_embed /
# post_quant_embed (ViT width 768 → d bits → 768) do. They are not BSQ-ViT and cannot load its checkpoints.
BSQ_VIT_PAPER = (
    "Zhao, Xiong, Krähenbühl, Image and Video Tokenization with Binary Spherical Quantization (arXiv 2406.07548)"
)
# BSQ-ViT's quantizer loss: codebook_weight 0.1 × (beta · commitment + zeta · (gamma0 · H[q(c|u)] − gamma · H[E q(c|u)])
# / inv_temperature) with beta 0, zeta 1, gamma0 = gamma = 1, inv_temperature 1 (VITBSQModel defaults and the 256-px
# configs), and embed_group_size 1: the codebook entropy summed over single channels (the paper's Eq. 8
# approximation, "Use approx." in its README), which its best-reported 18- and 36-bit models use. The training
# recipe adds BSQ-ViT's ramp of that weight (codebook_rampup_multiplier 3 over 2,000 steps) as loss.entropy_boost.
BSQ_VIT_QUANTIZER = {
    "commitment_weight": 0.0,
    "entropy_weight": 0.1,
    "sample_entropy_weight": 1.0,
    "codebook_entropy_weight": 1.0,
    "entropy_temperature": 1.0,
    "entropy_group_size": 1,
    "bit_order": "msb_first",
}
BSQ_CONV_NET = {
    "type": "vqgan",
    "base_channels": 128,
    "channel_multiplier": [1, 2, 2, 4],
    "num_res_blocks": 2,
    "latent_channels": 256,
}

for bits in (18, 36):
    register_preset(
        Preset(
            name=f"bsqgan-imagenet256-f8-b{bits}",
            description=(
                f"BSQ {bits} bits per token (2^{bits} implicit codes) with BSQ-ViT's quantizer settings on a conv "
                "backbone (vqgan f8, not BSQ-ViT's ViT), 256px → 32x32 tokens"
            ),
            config={"image_size": 256, "net": dict(BSQ_CONV_NET), "quantizer": {"type": "bsq", "codebook_dim": bits,
                                                                                 **BSQ_VIT_QUANTIZER}},
            source=(
                f"{BSQ_VIT_PAPER}: quantizer settings of bsq-vit configs/tokenizer/imagenet_256x256_bsqvit_b{bits}g{bits}"
                "_stylegan_f8_fp16.yaml (embed_dim, embed_group_size 1, beta 0, gamma0 = gamma = zeta = 1, "
                "codebook_weight 0.1) and its f8 patching; the network is vistok's vqgan conv net (LlamaGen VQ-8 "
                "layout), not BSQ-ViT's ViT-B encoder / decoder"
            ),
            training="training/configs/imagenet256/bsqgan.yaml",
            tags=("imagenet256",),
        )
    )

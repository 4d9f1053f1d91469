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

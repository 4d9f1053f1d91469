"""LlamaGen's VQ tokenizers (MIT): the c2i VQ-16 / VQ-8 files of ``FoundationVision/LlamaGen``, the t2i VQ-16 of
``peizesun/llamagen_t2i`` (file names as in LlamaGen's README download links) and the PyTorchModelHubMixin repo
``FoundationVision/vq-ds16-c2i`` (``VQModelHF``: config.json with the ``ModelArgs`` + model.safetensors)."""

from __future__ import annotations

from ...convert.origins import LLAMAGEN, release_named
from ..entry import MIT, ZooEntry

VQ16 = release_named(LLAMAGEN, "VQ-16")
VQ8 = release_named(LLAMAGEN, "VQ-8")

ENTRIES = (
    ZooEntry(
        name="vqgan-llamagen-vq16",
        description="LlamaGen VQ-16 (class-to-image), 256px → 16x16 tokens, codebook 16384 x 8",
        origin=LLAMAGEN,
        license=MIT,
        converter="llamagen",
        image_size=256,
        repo_id="FoundationVision/LlamaGen",
        filenames=("vq_ds16_c2i.pt",),
        preset="vqgan-llamagen-vq16",
        reported_metrics=VQ16.reported_metrics,
    ),
    ZooEntry(
        name="vqgan-llamagen-vq8",
        description="LlamaGen VQ-8 (class-to-image), 256px → 32x32 tokens, codebook 16384 x 8",
        origin=LLAMAGEN,
        license=MIT,
        converter="llamagen",
        image_size=256,
        repo_id="FoundationVision/LlamaGen",
        filenames=("vq_ds8_c2i.pt",),
        preset="vqgan-llamagen-vq8",
        reported_metrics=VQ8.reported_metrics,
    ),
    ZooEntry(
        name="vqgan-llamagen-vq16-t2i",
        description="LlamaGen VQ-16 (text-to-image tokenizer), 256px → 16x16 tokens, codebook 16384 x 8",
        origin=LLAMAGEN,
        license=MIT,
        converter="llamagen",
        image_size=256,
        repo_id="peizesun/llamagen_t2i",
        filenames=("vq_ds16_t2i.pt",),
        preset="vqgan-llamagen-vq16",
        notes=("The t2i tokenizer was trained on other data than the c2i one; the c2i numbers do not apply to it.",),
    ),
    ZooEntry(
        name="vqgan-llamagen-vq16-hf",
        description="LlamaGen VQ-16 c2i as LlamaGen's PyTorchModelHubMixin repo, 256px → 16x16 tokens",
        origin=LLAMAGEN,
        license=MIT,
        converter="llamagen",
        image_size=256,
        repo_id="FoundationVision/vq-ds16-c2i",
        filenames=("model.safetensors",),
        companion_files=("config.json",),
        preset="vqgan-llamagen-vq16",
        reported_metrics=VQ16.reported_metrics,
        notes=(
            "Written by LlamaGen's VQModelHF (PyTorchModelHubMixin) from vq_ds16_c2i.pt's weights: config.json "
            "holds the ModelArgs, model.safetensors the weights.",
        ),
    ),
)

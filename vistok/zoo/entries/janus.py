"""Janus-Pro's image-generation tokenizer (weights under the DeepSeek Model License, not permissive): the
``gen_vision_model.*`` tensors inside ``deepseek-ai/Janus-Pro-1B`` (one ``pytorch_model.bin``) and
``deepseek-ai/Janus-Pro-7B`` (``pytorch_model.bin.index.json`` + two shards), both bf16. Upstream builds that VQ as
LlamaGen's ``VQ_16()`` in both sizes, so both entries are the LlamaGen VQ-16 architecture at Janus's 384 px.

The file names are looked for in transformers' order, so the entry keeps working if a release is re-uploaded as
safetensors; only the tokenizer's tensors are read from whichever it is (``vistok.convert.janus``).
"""

from __future__ import annotations

from ...convert.janus import MODEL_LICENSE_URL
from ...convert.origins import JANUS
from ..entry import TRANSFORMERS_WEIGHT_FILES, License, ZooEntry

DEEPSEEK_MODEL_LICENSE = License("other", "DeepSeek Model License", MODEL_LICENSE_URL, permissive=False)


def _entry(size: str) -> ZooEntry:
    return ZooEntry(
        name=f"vqgan-janus-pro-{size.lower()}",
        description=(
            f"Janus-Pro-{size}'s image-generation VQ tokenizer (LlamaGen VQ-16), 384px → 24x24 tokens, "
            "codebook 16384 x 8"
        ),
        origin=JANUS,
        license=DEEPSEEK_MODEL_LICENSE,
        converter="janus",
        image_size=384,
        repo_id=f"deepseek-ai/Janus-Pro-{size}",
        filenames=TRANSFORMERS_WEIGHT_FILES,
        preset="vqgan-llamagen-vq16",
        tensor_prefix="gen_vision_model.",
        notes=(
            f"The tokenizer Janus-Pro-{size} generates images with: its autoregressive model predicts these 576 "
            "codes, which this decoder turns into a 384x384 image. The download is the whole multimodal release "
            "(of a sharded one, only the shards holding the tokenizer); only the tokenizer's tensors are read from "
            "it and the language model is never loaded.",
        ),
    )


ENTRIES = (_entry("1B"), _entry("7B"))

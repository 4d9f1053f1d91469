"""``VisTokenizer.from_transformers``: transformers' own VQ-VAE classes (``ChameleonVQVAE``, ``Emu3VQVAE``,
``JanusVQVAE``) as vistok tokenizers.

transformers has these classes but no shared interface and no Auto class for them. The bridge finds the VQ-VAE (the
module itself, or the ``vqmodel`` of a ``…Model`` / ``…ForConditionalGeneration``), copies its state dict (float32,
on the CPU: the tokenizer shares no tensor with the module) and hands it, with the module's config, to the family
converter that already reads that layout from a release's files:

- ``ChameleonVQVAE`` → :func:`vistok.families.chameleon.transformers_tokenizer`. transformers' Chameleon has no
  decoder, so the tokenizer is encode-only (decode raises ``DecoderUnavailableError`` naming where the decoder is);
- ``Emu3VQVAE`` → :func:`vistok.families.emu3.transformers_tokenizer`;
- ``JanusVQVAE`` → :func:`vistok.families.janus.transformers_to_janus` + :func:`~vistok.families.janus.janus_tokenizer`.

A whole model's config also gives the vocabulary: Chameleon's and Emu3's ``vocabulary_map`` become
``config.metadata["model_ids"]``; Janus's image tokens are its own generation vocabulary (``id = index``).

**Janus.** transformers' ``JanusVQVAE.encode`` looks up the raw codebook, while Janus's ``VQ_16`` (and vistok)
l2-normalise the latent and the codes first; both decode normalised codes. The tokenizer follows Janus: its decode
equals the module's, its indices equal the module's wherever the codebook rows have unit norm, and otherwise are
Janus's own (the ones its generator was trained on).
"""

from __future__ import annotations

from typing import Any

import torch

from ..modeling import install_transformers_bridge

ACCEPTED = ("ChameleonVQVAE", "Emu3VQVAE", "JanusVQVAE")
HOLDERS = ("ChameleonModel", "ChameleonForConditionalGeneration", "Emu3Model", "Emu3ForConditionalGeneration",
           "JanusModel", "JanusForConditionalGeneration")  # fmt: skip
JANUS_NOTE = (
    "transformers' JanusVQVAE.encode searches the raw codebook; this tokenizer l2-normalises latent and codes as "
    "Janus's VQ_16 does (the same indices where the codebook rows have unit norm); decode is transformers' (normalised "
    "codes)"
)


def accepted_message(module: Any) -> str:
    return (
        f"VisTokenizer.from_transformers takes a loaded transformers {', '.join(ACCEPTED[:-1])} or {ACCEPTED[-1]}, or "
        f"a model holding one ({', '.join(HOLDERS)}); got {type(module).__module__}.{type(module).__name__}"
    )


def find_vqvae(module: Any) -> tuple[str, Any, Any]:
    """``(class name, the VQ-VAE module, the config of the model holding it or None)``; ``TypeError`` naming the
    accepted classes otherwise."""
    import transformers

    classes = {name: getattr(transformers, name) for name in ACCEPTED if hasattr(transformers, name)}

    def kind_of(candidate: Any) -> str | None:
        return next((name for name, cls in classes.items() if isinstance(candidate, cls)), None)

    kind = kind_of(module)
    if kind is not None:
        return kind, module, None
    for path in (("vqmodel",), ("model", "vqmodel")):
        candidate = module
        for attribute in path:
            candidate = getattr(candidate, attribute, None) if isinstance(candidate, torch.nn.Module) else None
        kind = kind_of(candidate)
        if kind is not None:
            return kind, candidate, getattr(module, "config", None)
    raise TypeError(accepted_message(module))


def copied_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict as new CPU tensors (floating ones float32): nothing shared with the module."""
    out = {}
    for key, value in module.state_dict().items():
        if value.is_meta:
            raise ValueError(
                f"{type(module).__name__}'s {key} is on the meta device (the model was built without weights): load "
                "its weights first"
            )
        dtype = torch.float32 if value.is_floating_point() else value.dtype
        out[key] = value.detach().to(device="cpu", dtype=dtype, copy=True)
    return out


def _vocabulary_map(holder_config: Any) -> dict[str, int] | None:
    vocabulary = getattr(holder_config, "vocabulary_map", None) if holder_config is not None else None
    return dict(vocabulary) if isinstance(vocabulary, dict) and vocabulary else None


def tokenizer_from_transformers(module: Any):
    """A :class:`~vistok.VisTokenizer` (eval mode, float32, CPU) computing what ``module``'s VQ-VAE computes; see
    the module docstring."""
    import transformers

    kind, vqvae, holder_config = find_vqvae(module)
    state = copied_state_dict(vqvae)
    vq_config = vqvae.config.to_dict()
    label = f"a transformers {kind} module"
    extra = {"format": f"transformers {kind} module (VisTokenizer.from_transformers)",
             "transformers_version": transformers.__version__}  # fmt: skip
    config: dict[str, Any] = {"vq_config": vq_config}
    vocabulary = _vocabulary_map(holder_config)
    if vocabulary is not None:
        config["vocabulary_map"] = vocabulary
    if kind == "ChameleonVQVAE":
        from ..families.chameleon import transformers_tokenizer

        tok = transformers_tokenizer(state, config, "vqmodel.", label=label, extra=extra)
    elif kind == "Emu3VQVAE":
        from ..families.emu3 import transformers_tokenizer

        tok = transformers_tokenizer(state, config, label=label, extra=extra)
    else:
        from ..families.janus import janus_tokenizer, transformers_to_janus

        # transformers decodes num_patches² tokens: the native size is num_patches × the downsampling factor
        patches, levels = vq_config.get("num_patches"), len(vq_config.get("channel_multiplier") or ())
        size = patches * 2 ** (levels - 1) if isinstance(patches, int) and patches > 0 and levels else None
        tok = janus_tokenizer(transformers_to_janus(state), size, label=label, extra=extra, notes=[JANUS_NOTE])
    return tok.eval()


install_transformers_bridge(tokenizer_from_transformers)  # VisTokenizer.from_transformers runs it

"""Build a converted tokenizer around its weights without first building (and filling) a random one.

Every converter ends here (through :func:`~vistok.convert.vqgan_layout.build_tokenizer` or
:func:`~vistok.convert.magvit2_layout.load_converted`): the model is built on the meta device (no memory, no random
init), checked against the converted state dict, and the converted tensors become its parameters and buffers
(``load_state_dict(assign=True)``). A tensor is used as it is — e.g. a tensor memory-mapped from a zip-format
``torch.save`` file — when it already is what a freshly allocated parameter would be: the parameter's dtype,
contiguous, 64-byte aligned and the sole user of its whole storage. Any other (another dtype such as Janus'
bfloat16, a strided view, part of a larger storage, unaligned, or used twice) is copied into a new tensor. So the
result holds the same values in the same kind of memory as a tokenizer built and then filled by
``load_state_dict`` would, and computes bit-identical outputs (BLAS picks its kernels by dtype, layout and
alignment), without the random model or a second copy of the weights.

What a state dict does not carry is made as ``from_pretrained`` makes it: non-persistent buffers (FSQ levels, LFQ
bit values) are rebuilt by the tokenizer's ``_init_weights`` (which leaves the loaded tensors alone), and the
quantizers mark their frozen parameters (EMA codebooks, SimVQ's basis) untrainable.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .safe_load import CheckpointError

ALIGNMENT = 64


def tokenizer_with_weights(config, state_dict: Mapping[str, torch.Tensor], what: str):
    """A :class:`~vistok.VisTokenizer` of ``config`` (eval mode) whose parameters and buffers are exactly
    ``state_dict`` (vistok keys; cast to the parameters' dtypes). Raises :class:`~vistok.convert.CheckpointError`
    (naming ``what``, the checkpoint's origin) when a tensor is missing, unexpected or of another shape."""
    from ..modeling import VisTokenizer

    with torch.device("meta"):
        tokenizer = VisTokenizer(config)
    check_state_dict_matches(state_dict, tokenizer, what)
    expected = tokenizer.state_dict()
    storages: set[int] = set()
    weights = {}
    for key, tensor in state_dict.items():
        weights[key] = _owned(tensor, expected[key].dtype, storages)
    tokenizer.load_state_dict(weights, assign=True)
    _rebuild_non_persistent_buffers(tokenizer)
    left = [name for name, t in (*tokenizer.named_parameters(), *tokenizer.named_buffers()) if t.is_meta]
    if left:
        raise RuntimeError(f"the converted tokenizer left {', '.join(left[:5])} unmaterialised")
    for module in tokenizer.modules():
        if hasattr(module, "set_trainable_flags"):
            module.set_trainable_flags()
    return tokenizer.eval()


def _owned(tensor: torch.Tensor, dtype: torch.dtype, storages: set[int]) -> torch.Tensor:
    """``tensor`` itself when it can serve as a parameter as it is (see the module docstring), else a new
    contiguous ``dtype`` copy of it."""
    tensor = tensor.detach()
    storage = tensor.untyped_storage()
    usable = (
        tensor.dtype == dtype
        and tensor.device.type == "cpu"
        and tensor.is_contiguous()
        and tensor.storage_offset() == 0
        and storage.nbytes() == tensor.numel() * tensor.element_size() > 0
        and tensor.data_ptr() % ALIGNMENT == 0
        and storage.data_ptr() not in storages
    )
    if not usable:
        tensor = torch.empty(tensor.shape, dtype=dtype).copy_(tensor)
        storage = tensor.untyped_storage()
    storages.add(storage.data_ptr())
    return tensor


def _rebuild_non_persistent_buffers(tokenizer) -> None:
    """Give every non-persistent buffer still on the meta device CPU memory and let the tokenizer's
    ``_init_weights`` fill it, as transformers' ``from_pretrained`` does; the loaded tensors are flagged
    ``_is_hf_initialized`` meanwhile, so the ``transformers.initialization`` helpers that ``_init_weights`` uses skip
    them."""
    owners, fresh = [], set()
    for module in tokenizer.modules():
        buffers = module._buffers
        names = [n for n in module._non_persistent_buffers_set if getattr(buffers.get(n), "is_meta", False)]
        for name in names:
            module._buffers[name] = torch.empty_like(module._buffers[name], device="cpu")
            fresh.add(id(module._buffers[name]))
        if names:
            owners.append(module)
    if not owners:
        return
    loaded = [t for t in (*tokenizer.parameters(), *tokenizer.buffers()) if id(t) not in fresh]
    flagged = [t for t in loaded if not getattr(t, "_is_hf_initialized", False)]
    for tensor in flagged:
        tensor._is_hf_initialized = True
    try:
        for module in owners:
            tokenizer._init_weights(module)
    finally:
        for tensor in flagged:
            del tensor._is_hf_initialized


def check_state_dict_matches(
    state_dict: Mapping[str, torch.Tensor], model: torch.nn.Module, what: str = "upstream"
) -> None:
    """Raise :class:`CheckpointError` unless ``state_dict`` has exactly ``model``'s keys with the same shapes.

    ``what`` names the checkpoint's origin in the message (e.g. ``"Taming Transformers"``)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(
        k for k in set(expected) & set(state_dict) if tuple(expected[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                parts.append(f"{len(keys)} {label} ({', '.join(keys[:6])}{', …' if len(keys) > 6 else ''})")
        if wrong:
            shown = ", ".join(
                f"{k}: {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong[:4]
            )
            parts.append(f"{len(wrong)} with other shapes ({shown})")
        raise CheckpointError(
            f"this {what} checkpoint has tensors that do not fit the {_net_type(model)} architecture inferred from "
            "its shapes: "
            + "; ".join(parts)
            + ". Refused because loading only the matching ones would leave weights random or ignore some"
        )


def _net_type(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    return str(config.net["type"]) if config is not None else "vistok"

"""``VisTokenizer``: encoder → quant_conv → quantizer → post_quant_conv → decoder, as a transformers model."""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from .aligned_weights import align_safetensors_file
from .architecture import build_modules
from .cards import render_model_card
from .configuration import VisTokenizerConfig, vistok_fields
from .diffusers_interop import diffusers_config_and_weights, to_diffusers
from .hub import HUB_OPTIONS, upload_to_hub
from .image_processing import VisTokenizerImageProcessor
from .outputs import EncoderOutput, TokenizerOutput
from .quantizers.base import Quantizer
from .resolver import (
    PRESET,
    ZOO,
    Resolved,
    UnknownNameError,
    hub_load_message,
    load_zoo_entry,
    preset_message,
    resolve,
)

# Inputs are expected in [-1, 1]; a little slack allows for resampling overshoot, anything beyond is a mistake
# such as passing 0..255 or 0..1-normalised-by-mean/std images.
PIXEL_RANGE_TOLERANCE = 0.5


class PixelRangeWarning(UserWarning):
    """Inputs look like images in [0, 1] rather than the [−1, 1] vistok tokenizers expect."""


def looks_like_unit_range(lo: float, hi: float) -> bool:
    """True when a batch's extremes ``lo``, ``hi`` fit images scaled to [0, 1]: no negative value, nothing above 1,
    and not a constant batch (which says nothing about the range it was scaled to)."""
    return 0.0 <= lo < hi <= 1.0


class VisTokenizer(PreTrainedModel):
    """A discrete image tokenizer: images (B, C, H, W) in [−1, 1] ⇄ token grids (B, H/f, W/f) int64.

    ``tok(pixel_values)`` → :class:`~vistok.outputs.TokenizerOutput`; ``tok.encode(x).indices``;
    ``tok.decode(indices)``; ``tok.decode_quantized(quantized)``. In eval mode
    ``decode(encode(x).indices) == decode_quantized(encode(x).quantized)`` exactly.
    """

    config_class = VisTokenizerConfig
    main_input_name = "pixel_values"
    base_model_prefix = "vistok"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules: list[str] = []

    def __init__(self, config: VisTokenizerConfig, **unknown: Any):
        if unknown:  # from_pretrained hands the model whatever keyword its config did not take
            raise TypeError(
                f"Unknown VisTokenizer option(s) {sorted(unknown)}: a tokenizer takes only its config. Config "
                f"options (also accepted by from_pretrained as overrides): {', '.join(vistok_fields())}; loading "
                "options: revision, subfolder, cache_dir, token, local_files_only, dtype, device_map"
            )
        super().__init__(config)
        modules = build_modules(config)
        self.encoder = modules.encoder  # registration order = state-dict order of existing checkpoints
        self.quantizer: Quantizer = modules.quantizer
        self.quant_conv = modules.quant_conv
        self.post_quant_conv = modules.post_quant_conv
        self.decoder = modules.decoder
        self.downsample_factor = modules.downsample_factor
        self.token_layout = config.token_layout  # how indices are shaped: grid, sequence or multi-scale
        self.validate_inputs = True
        self._warned_unit_range = False
        self.post_init()

    # ----------------------------------------------------------------------------------------------- init
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default init for convs / linears (as upstream trains from), unit norms, and each quantizer's
        own codebook / buffer init — so the generic transformers scheme never replaces a codebook."""
        if isinstance(module, Quantizer):
            module.init_weights()
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.GroupNorm) and module.affine:
            init.ones_(module.weight)
            init.zeros_(module.bias)

    # ------------------------------------------------------------------------------------------ properties
    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def codebook_dim(self) -> int:
        return self.quantizer.codebook_dim

    def get_last_layer(self) -> nn.Parameter:
        """Weight of the decoder's output layer (for the adaptive GAN weight)."""
        return self.decoder.last_layer

    # ------------------------------------------------------------------------------------------ validation
    def check_pixel_values(self, pixel_values: Any) -> None:
        """Raise ``TypeError`` / ``ValueError`` naming what was expected for anything but
        float (B, C, H, W) tensors in [−1, 1] with H, W divisible by the downsample factor.

        A batch that lies wholly in [0, 1] (no negative value) is accepted but, once per model, triggers a
        :class:`PixelRangeWarning`: it is almost always an image scaled to [0, 1] by mistake."""
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(
                f"pixel_values must be a torch.Tensor of shape (B, {self.config.num_channels}, H, W), got "
                f"{type(pixel_values).__name__}; use vistok's image processor to convert PIL / numpy images"
            )
        if not pixel_values.is_floating_point():
            raise TypeError(
                f"pixel_values must be a floating-point tensor in [-1, 1], got dtype {pixel_values.dtype} "
                "(convert uint8 images with x.float() / 127.5 - 1, or use the image processor)"
            )
        if pixel_values.ndim != 4 or pixel_values.shape[1] != self.config.num_channels:
            raise ValueError(
                f"pixel_values must have shape (B, {self.config.num_channels}, H, W), got {tuple(pixel_values.shape)}"
            )
        f = self.downsample_factor
        h, w = pixel_values.shape[-2:]
        if self.token_layout.kind == "sequence" and (h, w) != (self.config.image_size,) * 2:
            size = self.config.image_size
            raise ValueError(
                f"this tokenizer turns {size}×{size} images into a sequence of latent tokens (its position "
                f"embeddings are fixed), got {h}×{w}; resize images to {size}×{size} (the image processor does)"
            )
        if self.token_layout.kind == "multiscale" and (h, w) != (self.token_layout.patch_nums[-1] * f,) * 2:
            side = self.token_layout.patch_nums[-1] * f
            raise ValueError(
                f"this multi-scale tokenizer's finest scale is {self.token_layout.patch_nums[-1]}×"
                f"{self.token_layout.patch_nums[-1]} tokens, so it takes {side}×{side} images; got {h}×{w}"
            )
        if h % f or w % f or h == 0 or w == 0:
            raise ValueError(
                f"image height and width must be positive multiples of the downsample factor {f}, got {h}×{w}"
            )
        if not self.validate_inputs or pixel_values.numel() == 0:
            return
        lo, hi = (float(v) for v in torch.aminmax(pixel_values.detach()))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("pixel_values contain NaN or infinite values")
        limit = 1.0 + PIXEL_RANGE_TOLERANCE
        if lo < -limit or hi > limit:
            hint = " (looks like 0..255 pixel values)" if hi > 2.0 else ""
            raise ValueError(f"pixel_values must lie in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]{hint}")
        if looks_like_unit_range(lo, hi) and not self._warned_unit_range:
            self._warned_unit_range = True
            warnings.warn(
                f"pixel_values lie in [{lo:.3g}, {hi:.3g}] with no negative value: they look like images scaled to "
                "[0, 1], but vistok tokenizers expect [-1, 1] and reconstruct [0, 1] inputs worse. Convert with "
                "pixel_values * 2 - 1, or prepare images with vistok's image processor "
                "(AutoImageProcessor.from_pretrained(<same name>)). This warning is shown once per model.",
                PixelRangeWarning,
                stacklevel=3,
            )

    # ----------------------------------------------------------------------------------------------- API
    def encode(self, pixel_values: torch.Tensor) -> EncoderOutput:
        """(B, C, H, W) in [−1, 1] → indices (B, H/f, W/f) int64 and quantized (B, D, H/f, W/f)."""
        self.check_pixel_values(pixel_values)
        z = self.quant_conv(self.encoder(pixel_values.to(self.dtype)))
        q = self.quantizer(z)
        indices = self.token_layout.to_user(q.indices)
        return EncoderOutput(indices=indices, quantized=q.quantized, losses=q.losses, stats=q.stats)

    def decode_quantized(self, quantized: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) codes → (B, C, h·f, w·f) images, nominally in [−1, 1]."""
        if not isinstance(quantized, torch.Tensor) or quantized.ndim != 4 or quantized.shape[1] != self.codebook_dim:
            shape = tuple(quantized.shape) if isinstance(quantized, torch.Tensor) else type(quantized).__name__
            raise ValueError(f"quantized must have shape (B, {self.codebook_dim}, h, w), got {shape}")
        return self.decoder(self.post_quant_conv(quantized.to(self.dtype)))

    def decode(self, indices: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Indices as ``encode`` returns them → (B, C, H, W) images, nominally in [−1, 1]: (B, h, w) int64 in
        [0, codebook_size) for grid tokenizers, (B, L) for sequence ones, a list of (B, p, p) for multi-scale ones
        (see :mod:`vistok.layouts`)."""
        internal = self.token_layout.from_user(indices)
        if isinstance(internal, torch.Tensor):
            internal = internal.to(self.device)
        else:
            internal = [scale.to(self.device) for scale in internal]
        return self.decode_quantized(self.quantizer.indices_to_codes(internal))

    def decode_progressive(self, indices: list[torch.Tensor]) -> list[torch.Tensor]:
        """Multi-scale tokenizers only: the images decoded from the first 1, 2, …, K scales of ``indices`` (as
        ``encode`` returns them); the last equals ``decode(indices)``. ``ValueError`` for other layouts."""
        if self.token_layout.kind != "multiscale":
            raise ValueError(
                f"decode_progressive needs a multi-scale tokenizer; this one's tokens are a {self.token_layout.kind}"
            )
        internal = [scale.to(self.device) for scale in self.token_layout.from_user(indices)]
        return [self.decode_quantized(codes) for codes in self.quantizer.progressive_codes(internal)]

    def forward(self, pixel_values: torch.Tensor, return_dict: bool | None = None, **kwargs: Any) -> TokenizerOutput:
        encoded = self.encode(pixel_values)
        reconstruction = self.decode_quantized(encoded.quantized)
        loss = sum(encoded.losses.values(), reconstruction.new_zeros(()))
        output = TokenizerOutput(
            reconstruction=reconstruction,
            indices=encoded.indices,
            quantized=encoded.quantized,
            loss=loss,
            losses=encoded.losses,
            stats=encoded.stats,
        )
        return output if return_dict is not False else output.to_tuple()

    # ------------------------------------------------------------------------------------------- saving
    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """Write config.json + model.safetensors, the matching preprocessor_config.json and, unless the folder
        already has one, a README.md model card rendered from the config's metadata.

        The weights file(s) are laid out 64-byte aligned (:func:`~vistok.aligned_weights.align_safetensors_file`),
        so :meth:`from_pretrained` uses the memory-mapped tensors as they are: a load holds one copy of the weights."""
        super().save_pretrained(save_directory, *args, **kwargs)
        for weights in _safetensors_files(Path(save_directory)):
            align_safetensors_file(weights)
        VisTokenizerImageProcessor.for_config(self.config).save_pretrained(save_directory)
        card_path = Path(save_directory) / "README.md"
        if not card_path.exists():
            render_model_card(self).save(card_path)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
    ):
        """Upload a ``save_pretrained`` folder (weights, config, processor config and the rendered model card)
        to ``repo_id``, creating the repo if needed. Without network this raises
        :class:`~vistok.hub.HubUnreachableError`, which says how to upload later."""
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return upload_to_hub(
                tmp,
                repo_id,
                token=token,
                private=private,
                commit_message=commit_message or "Upload vistok tokenizer",
                revision=revision,
                create_pr=create_pr,
            )

    # ---------------------------------------------------------------------------------- diffusers interop
    def to_diffusers(self, **kwargs: Any):
        """A ``diffusers.VQModel`` computing the same reconstruction (``vqgan`` net + ``vq`` quantizer only);
        see :func:`vistok.diffusers_interop.to_diffusers`."""
        return to_diffusers(self, **kwargs)

    @classmethod
    def from_diffusers(cls, model_or_repo: Any, **kwargs: Any) -> VisTokenizer:
        """Import a diffusers ``VQModel`` (instance, repo id or folder) as a tokenizer in eval mode computing the
        same tokens and images; see :func:`vistok.diffusers_interop.diffusers_config_and_weights`."""
        config, weights = diffusers_config_and_weights(model_or_repo, **kwargs)
        tok = cls(config)
        tok.load_state_dict(weights)
        return tok.eval()

    # ----------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """Load from a local folder, a Hub repo id (``revision``, ``subfolder``, ``cache_dir``, ``token``,
        ``local_files_only`` are forwarded), a bundled name such as ``vistok/default`` or a zoo name.

        Zoo names and catalogued upstream repo ids load the zoo entry (downloaded, converted once, cached; only
        huggingface_hub's download options are taken). Names are resolved by :func:`vistok.resolver.resolve`: a
        preset name, a near miss of a known name or a local-looking path that does not exist raise ``OSError`` at
        once, before any network access. Offline without a cached copy this raises one ``OSError`` naming the repo
        and how to provide it.
        """
        resolved = resolve(pretrained_model_name_or_path)
        wants_loading_info = kwargs.pop("output_loading_info", False)
        if resolved.kind == PRESET:
            raise UnknownNameError(preset_message(resolved.target))
        if resolved.kind == ZOO:
            model = _load_zoo_entry(resolved, args, kwargs)
            info = {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
            return (model, info) if wants_loading_info else model
        try:
            model, loading_info = super().from_pretrained(resolved.path, *args, output_loading_info=True, **kwargs)
        except OSError as err:
            raise OSError(hub_load_message(resolved.path, err)) from err
        # _adjust_missing_and_unexpected_keys below refuses incomplete weights while transformers loads them (so its
        # load table is not printed); this second check keeps the promise should that private hook ever be renamed.
        _refuse_weights_that_do_not_match(
            model.config.name_or_path,
            loading_info["missing_keys"], loading_info["unexpected_keys"], loading_info["mismatched_keys"],
        )
        model._after_load()
        return (model, loading_info) if wants_loading_info else model

    def _adjust_missing_and_unexpected_keys(self, loading_info: Any) -> None:
        """transformers' hook after weights are loaded: a vistok checkpoint must hold exactly the tensors its
        config describes. A missing or mis-shaped tensor would be left randomly initialised (a tokenizer that
        computes garbage), an unused one means the config does not describe the weights: raise ``ValueError``."""
        super()._adjust_missing_and_unexpected_keys(loading_info)
        missing = set(loading_info.missing_keys)
        unexpected = set(loading_info.unexpected_keys)
        mismatched = set(loading_info.mismatched_keys)
        # The error replaces transformers' load report (which would be printed as well, and then ignored).
        loading_info.missing_keys.clear()
        loading_info.unexpected_keys.clear()
        loading_info.mismatched_keys.clear()
        _refuse_weights_that_do_not_match(self.config.name_or_path, missing, unexpected, mismatched)

    def _after_load(self) -> None:
        """Undo two side effects of transformers' loading.

        Tensors come back as views into the memory-mapped safetensors file at the file's byte offsets, and BLAS
        picks a different (numerically different) kernel for data that is not 64-byte aligned: copy such tensors so
        a reloaded tokenizer computes bit-identical outputs. In a folder written by :meth:`save_pretrained` only a
        few small tensors (sizes not a multiple of 64 bytes) need it; a file written by other code may need all
        of them copied, which briefly holds two copies of the weights. Loading also turns every parameter
        trainable; restore the quantizers' frozen parameters (EMA codebooks, SimVQ's basis).
        """
        with torch.no_grad():
            for tensor in (*self.parameters(), *self.buffers()):
                if tensor.device.type == "cpu" and tensor.numel() and tensor.data_ptr() % 64:
                    tensor.data = tensor.data.clone()
        for module in self.modules():
            if isinstance(module, Quantizer):
                module.set_trainable_flags()


def _safetensors_files(folder: Path) -> list[Path]:
    """The weight files ``save_pretrained`` wrote into ``folder``: model.safetensors or the shards its index names."""
    names = {"model.safetensors"}
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names |= set(json.loads(index.read_text()).get("weight_map", {}).values())
    return [folder / name for name in sorted(names) if (folder / name).is_file()]


def _load_zoo_entry(resolved: Resolved, args: tuple, kwargs: dict[str, Any]) -> VisTokenizer:
    """A zoo entry for ``from_pretrained``: only huggingface_hub's download options, as keywords (any other option
    would be silently ignored, so it is refused)."""
    if args:
        raise TypeError(
            f"from_pretrained({resolved.name!r}) loads the zoo entry {resolved.target!r} and takes its download "
            f"options as keywords only; got {len(args)} positional argument(s)"
        )
    unsupported = sorted(set(kwargs) - set(HUB_OPTIONS))
    if unsupported:
        raise TypeError(
            f"from_pretrained({resolved.name!r}) loads the zoo entry {resolved.target!r}, which takes only the "
            f"download options {', '.join(HUB_OPTIONS)}; got {', '.join(unsupported)}"
        )
    return load_zoo_entry(resolved, **kwargs)


def _refuse_weights_that_do_not_match(name: str, missing: Any, unexpected: Any, mismatched: Any) -> None:
    """Raise ``ValueError`` when a checkpoint lacks tensors its config needs, holds tensors of the wrong shape
    ((key, file shape, config shape) triples) or tensors the config does not use; return when all three are empty."""
    missing, unexpected, mismatched = sorted(missing), sorted(unexpected), sorted(mismatched)
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensor(s) the config needs are missing ({_first(missing)})")
    if mismatched:
        shapes = [f"{key}: file {tuple(theirs)} vs config {tuple(ours)}" for key, theirs, ours in mismatched]
        problems.append(f"{len(mismatched)} tensor(s) have the wrong shape ({_first(shapes)})")
    if unexpected:
        problems.append(f"{len(unexpected)} tensor(s) in the file are not used ({_first(unexpected)})")
    raise ValueError(
        f"The weights of {name or 'this tokenizer'!r} do not match its config.json: "
        + "; ".join(problems)
        + ". A tokenizer with missing weights is never useful: the folder is incomplete or its config.json does "
        "not belong to these weights. Re-save it with save_pretrained, or re-run `vistok convert`."
    )


def _first(items: list[str], count: int = 3) -> str:
    """``a, b, c, …`` — the first ``count`` items of a long list."""
    return ", ".join(items[:count]) + (", …" if len(items) > count else "")

"""``VisTokenizer``: encoder → quant_conv → quantizer → post_quant_conv → decoder, as a transformers model."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from .aligned_weights import align_safetensors_file
from .architecture import build_modules
from .atomic import fsync_dir, fsync_tree, mark_incomplete, publish_folder, temporary_folder
from .cards import is_vistok_card, render_model_card
from .configuration import InvalidConfigError, VisTokenizerConfig, check_local_folder, vistok_fields
from .diffusers_interop import diffusers_config_and_weights, to_diffusers
from .hub import HUB_OPTIONS, upload_to_hub
from .image_processing import VisTokenizerImageProcessor
from .model_ids import ModelIdMap, model_id_map
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


class WeightFileError(OSError):
    """A tokenizer's weight file is damaged, truncated or does not fit its config.json; the message names the file."""


class ModelCardKeptWarning(UserWarning):
    """``save_pretrained`` found a README.md that vistok did not write and kept it: it may not describe the weights
    saved beside it."""


def looks_like_unit_range(lo: float, hi: float) -> bool:
    """True when a batch's extremes ``lo``, ``hi`` fit images scaled to [0, 1]: no negative value, nothing above 1,
    and not a constant batch (which says nothing about the range it was scaled to)."""
    return 0.0 <= lo < hi <= 1.0


# VisTokenizer.from_transformers runs vistok.convert.transformers_bridge, which builds tokenizers through the family
# converters (and so imports this module): the bridge installs itself here instead of being imported from here.
_transformers_bridge: Callable[[Any], VisTokenizer] | None = None


def install_transformers_bridge(bridge: Callable[[Any], VisTokenizer]) -> None:
    """Set what :meth:`VisTokenizer.from_transformers` runs (called once by vistok.convert.transformers_bridge)."""
    global _transformers_bridge
    _transformers_bridge = bridge


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
        _refuse_sizes_beyond_memory(config)  # before anything config-sized is allocated
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
        if self.validate_inputs and not bool(torch.isfinite(z.detach()).all()):
            self._refuse_non_finite_weights()  # inputs are finite (checked): damaged weights make NaN latents
        q = self.quantizer(z)
        indices = self.token_layout.to_user(q.indices)
        return EncoderOutput(indices=indices, quantized=q.quantized, losses=q.losses, stats=q.stats)

    def _refuse_non_finite_weights(self) -> None:
        """Raise ``ValueError`` naming the weights that hold NaN or infinite values, if any (they make every latent
        NaN and the quantizer's indices meaningless); return when all are finite."""
        bad = non_finite_tensors(self)
        if bad:
            where = self.config.name_or_path or "this tokenizer"
            raise ValueError(
                f"The weights of {where!r} hold NaN or infinite values ({_first(bad)}), so it cannot tokenize: "
                "weights are expected to be finite numbers. The file is damaged or comes from a diverged training "
                "run; load an earlier checkpoint, or convert / download the weights again"
            )

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

    # ------------------------------------------------------------------------ a multimodal model's token ids
    @property
    def model_id_map(self) -> ModelIdMap:
        """How the multimodal model this tokenizer belongs to numbers its codes (``config.metadata["model_ids"]``);
        :class:`~vistok.model_ids.ModelIdsUnavailableError` when the config records none."""
        return model_id_map(self.config.metadata, self.codebook_size)

    def to_model_ids(self, indices: Any, vocabulary: dict[str, int] | None = None) -> Any:
        """Codebook indices (as ``encode`` returns them) → the multimodal model's vocabulary ids, same shape, int64.
        ``vocabulary`` (token name → id) is needed only where the record names tokens (Emu3's BAAI folder).
        ``ValueError`` naming the valid range for an index outside the codebook; see :mod:`vistok.model_ids`."""
        return self.model_id_map.to_model_ids(indices, vocabulary)

    def from_model_ids(self, ids: Any, vocabulary: dict[str, int] | None = None) -> Any:
        """The multimodal model's image-token ids → codebook indices (ready for ``decode``); ``ValueError`` naming
        the valid ids for one that is not an image token."""
        return self.model_id_map.from_model_ids(ids, vocabulary)

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
    def save_pretrained(
        self, save_directory: str | os.PathLike, *args: Any, overwrite_card: bool = False, **kwargs: Any
    ) -> None:
        """Write config.json + model.safetensors (or shards and their index), the matching preprocessor_config.json
        and a README.md model card rendered from the config's metadata (transformers' options are taken).

        A new folder is written whole under a temporary name and renamed into place: a crash leaves no folder or
        a complete one. Into an existing folder (transformers' semantics: other files in it are kept) every file is
        written aside first and moved in by rename, and weight files of an earlier save that the new one does not
        have are removed; while files are being moved a marker makes :meth:`from_pretrained` refuse the folder,
        so a crash at any point leaves it loading as the old tokenizer, as the new one, or refused with a message
        saying to save again, never a mixture. A README.md that vistok rendered is re-rendered (the card follows
        the weights); one vistok did not write is kept, with a :class:`ModelCardKeptWarning`, unless
        ``overwrite_card=True``.

        The weights file(s) are laid out 64-byte aligned (:func:`~vistok.aligned_weights.align_safetensors_file`),
        so :meth:`from_pretrained` uses the memory-mapped tensors as they are: a load holds one copy of the weights."""
        target = Path(save_directory)
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(
                f"save_pretrained: {str(target)!r} is a file; give the folder to write the tokenizer into"
            )
        if not (args[0] if args else kwargs.get("is_main_process", True)):
            return  # the other processes of a distributed run write nothing, as in transformers
        push_to_hub = kwargs.pop("push_to_hub", False)
        hub = {key: kwargs.pop(key) for key in ("repo_id", "commit_message", "private", "create_pr") if key in kwargs}
        if not target.exists():
            with temporary_folder(target.parent, target.name) as work:
                staged = work / "saved"
                self._write_files(staged, args, kwargs)
                publish_folder(staged, target)
        else:
            with temporary_folder(target, "save") as staged:
                self._write_files(staged, args, kwargs)
                self._move_files_into(staged, target, kwargs.get("variant"), overwrite_card)
        if push_to_hub:
            self.push_to_hub(hub.pop("repo_id", target.resolve().name), token=kwargs.get("token"), **hub)

    def _write_files(self, folder: Path, args: tuple, kwargs: dict[str, Any]) -> None:
        """Everything a tokenizer folder holds, written into ``folder`` (created if missing)."""
        super().save_pretrained(folder, *args, **kwargs)
        for weights in _safetensors_files(folder):
            align_safetensors_file(weights)
        VisTokenizerImageProcessor.for_config(self.config).save_pretrained(folder)
        render_model_card(self).save(folder / "README.md")

    def _move_files_into(self, staged: Path, target: Path, variant: str | None, overwrite_card: bool) -> None:
        """Move the files written in ``staged`` into the existing folder ``target`` (config.json last), each by one
        rename, under the incomplete-folder marker; then remove the earlier save's weight files not rewritten."""
        names = sorted(p.name for p in staged.iterdir() if p.is_file())
        card = target / "README.md"
        if "README.md" in names and card.exists() and not overwrite_card and not is_vistok_card(card):
            names.remove("README.md")
            warnings.warn(
                ModelCardKeptWarning(
                    f"{card} was not written by vistok (it lacks the marker of a rendered card), so save_pretrained "
                    "kept it; it may not describe the tokenizer saved beside it. Pass overwrite_card=True to replace "
                    f"it with the rendered card, or render one with `vistok card --model {target} --output FILE`."
                ),
                stacklevel=3,
            )
        weight_file = _weight_file_pattern(variant)
        stale = sorted(
            p.name for p in target.iterdir() if p.is_file() and weight_file.fullmatch(p.name) and p.name not in names
        )
        order = [name for name in names if name != "config.json"] + [name for name in names if name == "config.json"]
        fsync_tree(staged)
        marker = mark_incomplete(target, order)
        for name in order:
            os.replace(staged / name, target / name)
        for name in stale:
            (target / name).unlink(missing_ok=True)
        fsync_dir(target)
        marker.unlink()
        fsync_dir(target)

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

    # -------------------------------------------------------------------------------- transformers bridge
    @classmethod
    def from_transformers(cls, module: Any) -> VisTokenizer:
        """A tokenizer (eval mode, float32, sharing no tensor with ``module``) from a loaded transformers
        ``ChameleonVQVAE``, ``Emu3VQVAE`` or ``JanusVQVAE``, or a model holding one (``…ForConditionalGeneration``,
        ``…Model``); see :mod:`vistok.convert.transformers_bridge`."""
        if _transformers_bridge is None:  # installed by vistok.convert.transformers_bridge, which `import vistok` loads
            raise RuntimeError("VisTokenizer.from_transformers needs vistok.convert.transformers_bridge: import vistok")
        return _transformers_bridge(module)

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
        check_local_folder(resolved.path, kwargs.get("subfolder") or "")
        _check_local_index(Path(resolved.path) / (kwargs.get("subfolder") or ""), kwargs.get("variant"))
        try:
            model, loading_info = super().from_pretrained(resolved.path, *args, output_loading_info=True, **kwargs)
        except SafetensorError as err:  # a damaged file the header check below did not catch
            raise WeightFileError(
                f"Could not load the tokenizer {str(resolved.path)!r}: a weight file is not a readable safetensors "
                f"file ({err}); it is damaged or truncated: save or download it again"
            ) from err
        except (OSError, ValueError) as err:
            if isinstance(err, (WeightFileError, InvalidConfigError)) or not isinstance(err, OSError):
                raise
            raise OSError(hub_load_message(resolved.path, err)) from err
        # _adjust_missing_and_unexpected_keys below refuses incomplete weights while transformers loads them (so its
        # load table is not printed); this second check keeps the promise should that private hook ever be renamed.
        _refuse_weights_that_do_not_match(
            model.config.name_or_path,
            loading_info["missing_keys"], loading_info["unexpected_keys"], loading_info["mismatched_keys"],
        )
        model._after_load()
        return (model, loading_info) if wants_loading_info else model

    @staticmethod
    def _load_pretrained_model(model, state_dict, checkpoint_files, load_config, *args: Any, **kwargs: Any):
        """transformers' loading step, entered with the model still on the meta device: before any tensor is
        allocated, check the safetensors files against the model the config describes (:func:`_check_weight_files`),
        so a config.json whose sizes do not fit the weights is refused at once, naming the options, instead of
        allocating (and initialising) tensors of the config's size first."""
        if state_dict is None and checkpoint_files:
            _check_weight_files(model, [Path(f) for f in checkpoint_files])
        return PreTrainedModel._load_pretrained_model(
            model, state_dict, checkpoint_files, load_config, *args, **kwargs
        )

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
    """The weight files ``save_pretrained`` wrote into ``folder``: model*.safetensors (a variant's too) and shards."""
    return sorted(p for p in folder.iterdir() if p.is_file() and re.fullmatch(r"model[\w.-]*\.safetensors", p.name))


def _weight_file_pattern(variant: str | None) -> re.Pattern:
    """The names of the weight files transformers' save_pretrained writes for ``variant`` (one file, or shards and
    their index): what a new save replaces."""
    v = re.escape(f".{variant}") if variant else ""
    return re.compile(rf"model{v}\.safetensors|model{v}-\d{{5}}-of-\d{{5}}\.safetensors|model\.safetensors\.index{v}\.json")


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


def _refuse_weights_that_do_not_match(
    name: str, missing: Any, unexpected: Any, mismatched: Any, cause: str | None = None
) -> None:
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
        + (f". {cause}" if cause else "")
        + ". A tokenizer with missing weights is never useful: the folder is incomplete or its config.json does "
        "not belong to these weights. Re-save it with save_pretrained, or re-run `vistok convert`."
    )


def _first(items: list[str], count: int = 3) -> str:
    """``a, b, c, …`` — the first ``count`` items of a long list."""
    return ", ".join(items[:count]) + (", …" if len(items) > count else "")


def non_finite_tensors(model: nn.Module) -> list[str]:
    """Names of ``model``'s floating-point parameters and buffers holding NaN or ±inf (read in blocks: no copy)."""
    bad = []
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if not tensor.is_floating_point() or tensor.device.type == "meta" or not tensor.numel():
            continue
        flat = tensor.detach().reshape(-1)
        if not all(bool(torch.isfinite(block).all()) for block in flat.split(1 << 22)):
            bad.append(name)
    return bad


# ----------------------------------------------------------------------------------------------- size checks
MAX_SAFETENSORS_HEADER = 100_000_000  # bytes; safetensors' own reader refuses larger headers


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _options_sized_like(config: VisTokenizerConfig, shape: tuple[int, ...]) -> list[str]:
    """The config options whose value is one of ``shape``'s sizes (``quantizer.codebook_size 134217728``)."""
    options = [("image_size", config.image_size), ("num_channels", config.num_channels)]
    options += [(f"net.{k}", v) for k, v in config.net.items()] + [(f"quantizer.{k}", v) for k, v in config.quantizer.items()]
    sizes = {int(d) for d in shape if d > 1}
    return [
        f"{name} {value:,}" for name, value in options
        if isinstance(value, int) and not isinstance(value, bool) and value in sizes
    ]


def _largest_tensors(shapes: dict[str, tuple[int, ...]], count: int = 2) -> list[tuple[str, tuple[int, ...]]]:
    return sorted(shapes.items(), key=lambda item: -math.prod(item[1]))[:count]


def _refuse_sizes_beyond_memory(config: VisTokenizerConfig) -> None:
    """Raise :class:`InvalidConfigError` naming the options behind the largest tensors when the parameters and
    buffers ``config`` describes would not fit in this machine's memory; built on the meta device first, so nothing
    is allocated. No check while the model itself is being built on the meta device (transformers' loading)."""
    limit = _physical_memory()
    if limit is None or torch.get_default_device().type == "meta":
        return
    with torch.device("meta"):
        modules = build_modules(config)
    shapes = {}
    total = 0
    for part in ("encoder", "quant_conv", "quantizer", "post_quant_conv", "decoder"):
        for name, tensor in getattr(modules, part).state_dict(keep_vars=True).items():
            shapes[f"{part}.{name}"] = tuple(tensor.shape)
            total += tensor.numel() * tensor.element_size()
    if total <= limit:
        return
    largest = "; ".join(
        f"{name} {shape}" + (f" (from {', '.join(options)})" if (options := _options_sized_like(config, shape)) else "")
        for name, shape in _largest_tensors(shapes)
    )
    raise InvalidConfigError(
        f"this config describes {total / 2**30:,.1f} GiB of parameters and buffers, more than this machine's "
        f"{limit / 2**30:,.1f} GiB of memory; the largest: {largest}. A size in the config is a mistake"
    )


def read_safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape from the header of the safetensors file ``path``, after checking the header against the
    file's size; :class:`WeightFileError` naming the file when it is damaged or truncated."""
    size = path.stat().st_size

    def damaged(why: str) -> WeightFileError:
        return WeightFileError(
            f"{str(path)!r} is not a complete safetensors file: {why}. It is damaged or truncated (an interrupted "
            "copy, save or download?): save, copy or download it again"
        )

    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise damaged(f"it has {size} bytes, fewer than a safetensors header needs")
        length = int.from_bytes(head, "little")
        if length > min(size - 8, MAX_SAFETENSORS_HEADER):
            raise damaged(f"its header says it is {length:,} bytes long, the whole file has {size:,}")
        try:
            header = json.loads(f.read(length))
        except (ValueError, UnicodeDecodeError):
            header = None
    if not isinstance(header, dict):
        raise damaged("its header is not a JSON object")
    data = size - 8 - length
    shapes = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            shape = tuple(int(d) for d in info["shape"])
            end = int(info["data_offsets"][1])
        except (TypeError, KeyError, ValueError, IndexError):
            raise damaged(f"the header entry of {name!r} has no valid shape and data offsets") from None
        if end > data:
            raise damaged(f"tensor {name!r} ends at byte {end:,} of the data, but the file holds {data:,} bytes of data")
        shapes[name] = shape
    return shapes


def _check_local_index(folder: Path, variant: str | None) -> None:
    """In a local folder loaded through a weight index: :class:`WeightFileError` naming the index when it is not
    the JSON object mapping tensor names to shard files that transformers reads."""
    index = folder / ("model.safetensors.index.json" if not variant else f"model.safetensors.index.{variant}.json")
    single = folder / ("model.safetensors" if not variant else f"model.{variant}.safetensors")
    if not index.is_file() or single.is_file():  # transformers reads the single file when there is one
        return
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        valid = isinstance(weight_map, dict) and all(
            isinstance(k, str) and isinstance(v, str) and Path(v).name == v for k, v in weight_map.items()
        )
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        valid = False
    if not valid:
        raise WeightFileError(
            f"{str(index)!r} is not a weight index: expected a JSON object whose 'weight_map' maps each tensor name "
            "to a shard file in the same folder, as save_pretrained writes it; save the tokenizer again"
        )


def _check_weight_files(model: VisTokenizer, files: list[Path]) -> None:
    """Before loading: every safetensors file in ``files`` is complete, and the tensors ``model`` (on the meta device)
    expects fit them — no shape differs and the config needs no more values than the files hold. Raises
    :class:`WeightFileError` for a damaged file, ``ValueError`` (naming the options behind the sizes) otherwise."""
    in_files: dict[str, tuple[int, ...]] = {}
    for path in files:
        if path.suffix == ".safetensors" and path.is_file():
            in_files.update(read_safetensors_shapes(path))
    if not in_files:
        return
    expected = {name: tuple(t.shape) for name, t in model.state_dict(keep_vars=True).items()}
    mismatched = [(k, in_files[k], shape) for k, shape in expected.items() if k in in_files and in_files[k] != shape]
    needed = sum(math.prod(shape) for shape in expected.values())
    held = sum(math.prod(shape) for shape in in_files.values())
    if not mismatched and needed <= held:
        return
    missing = [] if mismatched else [k for k in expected if k not in in_files]
    # The sizes that differ from the file's (or the largest missing tensor's, when it is large): the options behind them.
    culprits = [
        tuple(o for o, t in zip(ours, theirs, strict=True) if o != t) if len(ours) == len(theirs) else ours
        for _, theirs, ours in mismatched
    ] or [shape for _, shape in _largest_tensors({k: expected[k] for k in missing}, 1) if math.prod(shape) > 1 << 20]
    options = sorted({option for shape in culprits for option in _options_sized_like(model.config, shape)})
    cause = f"The config describes {needed:,} values, the weight files hold {held:,}" + (
        f"; its sizes come from {', '.join(options)}" if options else ""
    )
    _refuse_weights_that_do_not_match(model.config.name_or_path, missing, [], mismatched, cause=cause)

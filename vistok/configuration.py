"""``VisTokenizerConfig``: the single source of truth a tokenizer is rebuilt from."""

from __future__ import annotations

import dataclasses
from typing import Any

from transformers import PreTrainedConfig

from . import nets, quantizers  # noqa: F401  (fill the NETS / QUANTIZERS registries)
from .layouts import layout_for
from .registry import NETS, QUANTIZERS, normalize_spec

DEFAULT_NET = {"type": "simple_cnn"}
DEFAULT_QUANTIZER = {"type": "vq"}

# Keyword arguments that are not dataclass fields but that transformers itself passes to a config's constructor or
# writes into config.json (``from_dict`` / ``to_dict`` / ``from_pretrained`` bookkeeping). Anything else that is
# not a field is a mistake and is refused instead of being stored as a stray attribute.
TRANSFORMERS_BOOKKEEPING_KEYS = frozenset(
    {
        "model_type",
        "torch_dtype",
        "name_or_path",
        "_name_or_path",
        "_commit_hash",
        "output_attentions",
        "attn_implementation",
        "experts_implementation",
        "_attn_implementation_internal",
        "_experts_implementation_internal",
    }
)


class VisTokenizerConfig(PreTrainedConfig):
    """Configuration of a :class:`~vistok.VisTokenizer`.

    Args:
        image_size: native square resolution (the image processor resizes / crops to it). Any H, W divisible by
            the downsample factor works at run time.
        num_channels: image channels (3 for RGB).
        net: ``{"type": <registered net>, **options}``, e.g. ``{"type": "vqgan", "channel_multiplier": [1, 2, 2, 4]}``.
        quantizer: ``{"type": <registered quantizer>, **options}``, e.g. ``{"type": "fsq", "levels": [8, 5, 5, 5]}``.
        preset: name of the preset this config came from, if any.
        source: where the hyper-parameters come from (seed table row, paper), for model cards.
        metadata: free-form JSON metadata that lives with the weights (origin, licence, training recipe, metrics).

    Both specs are validated and completed with their defaults at construction: unknown types or options raise a
    ``ValueError`` that lists the valid ones, and so does an unknown keyword argument (it would otherwise be
    stored as an attribute that nothing reads).
    """

    model_type = "vistok"

    image_size: int = 64
    num_channels: int = 3
    net: dict | None = None
    quantizer: dict | None = None
    preset: str | None = None
    source: str | None = None
    metadata: dict | None = None

    def __post_init__(self, **kwargs: Any):
        unknown = sorted(set(kwargs) - TRANSFORMERS_BOOKKEEPING_KEYS)
        if unknown:
            raise ValueError(
                f"Unknown VisTokenizerConfig option(s) {unknown}; valid options: {', '.join(vistok_fields())} "
                "(quantizer and net options go inside the quantizer / net dicts, e.g. "
                "quantizer={'type': 'vq', 'codebook_size': 1024})"
            )
        for name in ("image_size", "num_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"VisTokenizerConfig.{name} must be a positive integer, got {value!r}")
        self.net = normalize_spec(NETS, dict(self.net or DEFAULT_NET))
        self.quantizer = normalize_spec(QUANTIZERS, dict(self.quantizer or DEFAULT_QUANTIZER))
        self.metadata = dict(self.metadata or {})
        super().__post_init__(**kwargs)
        if self.image_size % self.downsample_factor:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by the net's downsample factor "
                f"{self.downsample_factor}"
            )
        family = self.net_family()
        fixed = getattr(family, "image_size", None) if family.latent_kind == "sequence" else None
        if fixed is not None and fixed != self.image_size:
            raise ValueError(
                f"image_size {self.image_size} differs from the {self.net['type']} net's image_size {fixed}: a "
                "sequence tokenizer's position embeddings fix its resolution; give both the same value"
            )
        self.token_layout  # noqa: B018  (refuses a layout the net and quantizer cannot form together)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs: Any):
        """transformers' lookup of ``config.json`` for the name as :func:`vistok.resolver.resolve` reads it
        (bundled and zoo names included; presets, near misses and missing local paths refused at once), refusing
        ``config.json`` files that are not vistok's (:func:`check_is_vistok_config`)."""
        from .resolver import PRESET, ZOO, UnknownNameError, load_zoo_entry, preset_message, resolve

        resolved = resolve(pretrained_model_name_or_path)
        if resolved.kind == PRESET:
            raise UnknownNameError(preset_message(resolved.target))
        if resolved.kind == ZOO:  # the converted entry's config (converted on first use)
            return load_zoo_entry(resolved).config.to_dict(), kwargs
        config_dict, kwargs = super().get_config_dict(resolved.path, **kwargs)
        check_is_vistok_config(config_dict, str(pretrained_model_name_or_path))
        return config_dict, kwargs

    def net_family(self):
        """The configured :class:`~vistok.nets.NetFamily` instance."""
        spec = dict(self.net)
        return NETS.get(spec.pop("type"))(**spec)

    @property
    def downsample_factor(self) -> int:
        return self.net_family().downsample_factor

    @property
    def latent_size(self) -> int:
        """Latent positions per side at ``image_size`` (grid and multi-scale layouts: tokens per side of the finest
        grid)."""
        return self.image_size // self.downsample_factor

    @property
    def latent_hw(self) -> tuple[int, int]:
        """(h, w) of the latent at ``image_size``: (H/f, W/f) for grid nets, (1, L) for sequence nets."""
        family = self.net_family()
        if family.latent_kind == "sequence":
            return (1, int(family.num_latent_tokens))
        return (self.latent_size, self.latent_size)

    @property
    def token_layout(self):
        """The :class:`~vistok.layouts.TokenLayout` of this tokenizer's indices (grid, sequence or multi-scale)."""
        family = self.net_family()
        spec = dict(self.quantizer)
        return layout_for(family.latent_kind, family.num_latent_tokens, QUANTIZERS.get(spec.pop("type")), spec)

    def tokens_per_image(self) -> int:
        """Tokens one image at ``image_size`` becomes."""
        return self.token_layout.tokens_per_image(self.latent_hw)


# What to do with a config.json written by another library (model_type or diffusers class → advice).
FOREIGN_CONFIG_ADVICE = {
    "VQModel": "it is a diffusers VQModel: import it with VisTokenizer.from_diffusers(<folder or repo>)",
    "multi_modality": "it is a DeepSeek Janus / Janus-Pro multimodal model: vistok loads its image-generation "
    "tokenizer with `vistok convert janus <folder> <output>` (deepseek-ai/Janus-Pro-1B and -7B load directly through "
    "the zoo: VisTokenizer.from_pretrained('deepseek-ai/Janus-Pro-1B'))",
    "janus": "transformers implements it: load it with transformers' own classes (e.g. JanusForConditionalGeneration)",
    "janus_vqgan": "transformers implements it: load it with transformers (JanusVQVAE)",
    "chameleon_vqgan": "transformers implements it: load it with transformers (ChameleonVQVAE)",
    "emu3_vqgan": "transformers implements it: load it with transformers (Emu3VQVAE)",
}
CONVERTERS_HINT = (
    "vistok loads folders written by VisTokenizer.save_pretrained and the published tokenizers of its zoo "
    "(`vistok zoo list`); it converts upstream checkpoints with `vistok convert ORIGIN <checkpoint> <output folder>` "
    "(`vistok convert --help` lists the formats) and diffusers VQModels (VisTokenizer.from_diffusers)"
)


def check_is_vistok_config(config_dict: dict[str, Any], name: str) -> None:
    """Raise ``ValueError`` when ``config_dict`` (a loaded ``config.json``) is not a vistok tokenizer's: naming the
    ``model_type`` found, the one expected, and the converter or library that fits when one is known."""
    found = config_dict.get("model_type")
    if found == VisTokenizerConfig.model_type:
        return
    kind = found or config_dict.get("_class_name")
    described = f"model_type {found!r}" if found else (
        f"diffusers class {kind!r}" if kind else "no model_type"
    )
    advice = FOREIGN_CONFIG_ADVICE.get(kind)
    raise ValueError(
        f"{name!r} is not a vistok tokenizer: its config.json has {described}, vistok expects model_type "
        f"{VisTokenizerConfig.model_type!r}. " + (f"{advice[0].upper()}{advice[1:]}. " if advice else "")
        + f"{CONVERTERS_HINT}."
    )


def vistok_fields() -> list[str]:
    """The options :class:`VisTokenizerConfig` adds to transformers' ``PreTrainedConfig``, in declaration order."""
    inherited = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    return [f.name for f in dataclasses.fields(VisTokenizerConfig) if f.name not in inherited]

"""vistok: discrete visual tokenizers (VQVAE, VQGAN, FSQ, LFQ, SimVQ) for the Hugging Face ecosystem."""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from . import nets, presets, quantizers  # noqa: F401  (fill the registries)
from .configuration import VisTokenizerConfig
from .factory import create_tokenizer, list_tokenizers
from .hub import resolve_bundled_names_in
from .image_processing import VisTokenizerImageProcessor
from .inference import fast_inference
from .modeling import PixelRangeWarning, VisTokenizer, install_catalogued_loader
from .outputs import EncoderOutput, QuantizerOutput, TokenizerOutput
from .registry import NETS, PRESETS, QUANTIZERS
from .version import __version__
from .zoo import CatalogueLoader, ZooArchitectureWarning, list_pretrained

AutoConfig.register(VisTokenizerConfig.model_type, VisTokenizerConfig, exist_ok=True)
AutoModel.register(VisTokenizerConfig, VisTokenizer, exist_ok=True)
# One processor (PIL bicubic, the resampling the tokenizers were trained with) serves both backend names, so
# AutoImageProcessor's default choice ("torchvision" when installed) finds it instead of warning that the
# torchvision backend is unavailable; outputs never depend on whether torchvision is installed.
AutoImageProcessor.register(
    VisTokenizerConfig,
    image_processor_classes={"pil": VisTokenizerImageProcessor, "torchvision": VisTokenizerImageProcessor},
    exist_ok=True,
)
# Bundled names (``vistok/default``) load through the transformers auto classes too, not only VisTokenizer.
for _loader in (AutoConfig, AutoModel, AutoImageProcessor):
    resolve_bundled_names_in(_loader)
# Zoo names and catalogued upstream repo ids load through VisTokenizer.from_pretrained.
install_catalogued_loader(CatalogueLoader)

__all__ = [
    "VisTokenizer",
    "VisTokenizerConfig",
    "VisTokenizerImageProcessor",
    "TokenizerOutput",
    "EncoderOutput",
    "QuantizerOutput",
    "PixelRangeWarning",
    "create_tokenizer",
    "list_tokenizers",
    "list_pretrained",
    "fast_inference",
    "ZooArchitectureWarning",
    "QUANTIZERS",
    "NETS",
    "PRESETS",
    "__version__",
]

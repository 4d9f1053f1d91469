"""vistok: discrete visual tokenizers (VQVAE, VQGAN, FSQ, LFQ, SimVQ) for the Hugging Face ecosystem."""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from . import families, nets, presets, quantizers  # noqa: F401  (fill the registries)
from .auto import resolve_names_in
from .configuration import VisTokenizerConfig
from .convert import transformers_bridge  # noqa: F401  (installs VisTokenizer.from_transformers)
from .factory import create_tokenizer, list_tokenizers
from .image_processing import VisTokenizerImageProcessor
from .inference import fast_inference
from .modeling import PixelRangeWarning, VisTokenizer
from .outputs import EncoderOutput, QuantizerOutput, TokenizerOutput
from .registry import NETS, PRESETS, QUANTIZERS
from .resolver import resolve
from .version import __version__
from .zoo import ZooArchitectureWarning, list_pretrained

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
# Every vistok name (bundled, zoo, catalogued upstream repo id) means the same through the transformers auto classes
# as through VisTokenizer.from_pretrained; presets and unknown names are refused at once.
for _loader in (AutoConfig, AutoModel, AutoImageProcessor):
    resolve_names_in(_loader)

__all__ = [
    "VisTokenizer",
    "VisTokenizerConfig",
    "VisTokenizerImageProcessor",
    "TokenizerOutput",
    "EncoderOutput",
    "QuantizerOutput",
    "PixelRangeWarning",
    "create_tokenizer",
    "resolve",
    "list_tokenizers",
    "list_pretrained",
    "fast_inference",
    "ZooArchitectureWarning",
    "QUANTIZERS",
    "NETS",
    "PRESETS",
    "__version__",
]

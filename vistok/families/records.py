"""The records a family module fills in: a zoo entry (a published upstream tokenizer as data — where its files
live, how to convert them, what it is) and the licence of its weights.

Family modules (:mod:`vistok.families`) register their entries; :mod:`vistok.families.catalogue` looks them up.
Loading (download, conversion, the converted cache) is :mod:`vistok.zoo.loader`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..convert.origins import Origin
from ..convert.prefixed_tensors import WEIGHT_FILES
from ..preprocessing import Preprocessing
from ..registry import Preset

# Weight files of a transformers-style release, in the order they are looked for (the first present one is used;
# an ``*.index.json`` names the shards, which are fetched too): the order vistok.convert reads a release folder in.
TRANSFORMERS_WEIGHT_FILES = WEIGHT_FILES


@dataclass(frozen=True)
class License:
    """A licence as the release states it: ``id`` (Hub / SPDX identifier, ``"other"`` for custom ones), a
    readable name, a link, and whether it is permissive (no use-based restrictions). ``gated`` means the Hub asks
    every user to accept it before downloading."""

    id: str
    name: str
    url: str
    permissive: bool = True
    gated: bool = False


MIT = License("mit", "MIT", "https://opensource.org/license/mit")
APACHE_2 = License("apache-2.0", "Apache 2.0", "https://www.apache.org/licenses/LICENSE-2.0")


@dataclass(frozen=True)
class ZooEntry:
    """A catalogued tokenizer.

    Attributes:
        name: the zoo name users type (``create_tokenizer(name, pretrained=True)``).
        description: one line for listings.
        origin: the upstream project (paper, citation, code licence).
        license: the licence of the *weights* (may differ from the code's).
        converter: the name of the registered family whose converter turns the files into a tokenizer.
        image_size: native resolution (recorded in the converted config).
        repo_id, filenames: where the files are on the Hub; ``filenames`` are alternatives, the first one present
            in the repo is used (``None`` repo: not on the Hub, see ``manual_download``).
        companion_files: other files of the repo the converter reads when present (e.g. a mixin's config.json).
        revision: a pinned Hub revision (branch, tag or commit); ``None`` follows the default branch.
        converter_options: keyword arguments for the converter (e.g. which weights, a scale schedule).
        preset: the vistok preset whose architecture the release has; a file that differs still loads, with a
            warning naming the difference.
        reported_metrics: the authors' numbers (``vistok.convert.origins.reported_metric`` dicts), shown as
            "reported by origin" — vistok did not measure them.
        manual_download: for releases that are not on the Hub in PyTorch form: where the original files are and
            the exact ``vistok convert`` command.
        notes: facts a user should know (shown by ``vistok zoo info`` and in the card).
        tensor_prefix: the tokenizer is the tensors under this prefix of a larger model (Janus's
            ``gen_vision_model.``): of a sharded release only the shards that hold them are downloaded.
        model_ids: for the tokenizer of a multimodal model, one line on how that model numbers image tokens; the
            converter records it in ``config.metadata["model_ids"]`` (``tok.to_model_ids``, :mod:`vistok.model_ids`).
    """

    name: str
    description: str
    origin: Origin
    license: License
    converter: str
    image_size: int
    repo_id: str | None = None
    filenames: tuple[str, ...] = ()
    companion_files: tuple[str, ...] = ()
    revision: str | None = None
    converter_options: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    reported_metrics: tuple[dict[str, Any], ...] = ()
    manual_download: str | None = None
    notes: tuple[str, ...] = ()
    tensor_prefix: str | None = None
    model_ids: str | None = None

    def __post_init__(self) -> None:
        if (self.repo_id is None) == (self.manual_download is None):
            raise ValueError(f"zoo entry {self.name!r} needs exactly one of repo_id and manual_download")
        if self.repo_id is not None and not self.filenames:
            raise ValueError(f"zoo entry {self.name!r} has a repo_id but no filenames")

    @property
    def on_hub(self) -> bool:
        return self.repo_id is not None

    def zoo_metadata(self) -> dict[str, Any]:
        """What a converted tokenizer's ``config.metadata["zoo"]`` (and the entry's model card) records."""
        meta: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "repo_id": self.repo_id,
            "files": list(self.filenames) + list(self.companion_files),
            "license": {
                "id": self.license.id,
                "name": self.license.name,
                "url": self.license.url,
                "permissive": self.license.permissive,
            },
        }
        if self.manual_download:
            meta["manual_download"] = self.manual_download
        if self.notes:
            meta["notes"] = list(self.notes)
        if self.model_ids:
            meta["model_ids"] = self.model_ids
        return meta

    def reported_metrics_metadata(self) -> list[dict[str, Any]]:
        """The authors' numbers as ``config.metadata["reported_metrics"]`` records them (with what they apply to)."""
        return [{**m, "applies_to": f"{self.origin.name}'s released weights ({self.name})"} for m in self.reported_metrics]

    def reported(self, metric: str) -> float | None:
        """The authors' reported value of ``metric`` (e.g. ``"rfid"``), if any."""
        for entry in self.reported_metrics:
            if entry["metric"] == metric:
                return entry["value"]
        return None


def albumentations_smallest_max_size(size: int, follows: str) -> Preprocessing:
    """Taming's ``ImagePaths`` framing, which SEED-Voken kept: albumentations ``SmallestMaxSize`` (OpenCV linear
    resize without antialias, sides rounded) then ``CenterCrop`` (offsets floored)."""
    return Preprocessing(size, filter="cv2_linear", size_rule="round", crop_offset="floor", follows=follows)


def imagenet_vqgan_preset(
    name: str, description: str, mult: list[int], quantizer: dict[str, Any], source: str, recipe: str
) -> Preset:
    """A 256-px Taming-style ``vqgan`` preset (base 128, 2 res blocks, z 256) trained by
    ``training/configs/imagenet256/<recipe>``: the architecture Taming and LlamaGen share."""
    return Preset(
        name=name,
        description=description,
        config={
            "image_size": 256,
            "net": {
                "type": "vqgan",
                "base_channels": 128,
                "channel_multiplier": mult,
                "num_res_blocks": 2,
                "latent_channels": 256,
            },
            "quantizer": quantizer,
        },
        source=source,
        training=f"training/configs/imagenet256/{recipe}",
        tags=("imagenet256",),
    )

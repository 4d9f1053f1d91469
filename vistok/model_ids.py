"""Image tokens as a multimodal model numbers them: codebook indices ⇄ the model's vocabulary ids.

A tokenizer that lives inside a multimodal model (Chameleon, Emu3, Show-o, Janus) carries, in
``config.metadata["model_ids"]``, a small record of how that model turns a codebook index into one of its token ids.
The converter writes it from the upstream code or config (never guessed); :class:`VisTokenizerConfig` validates it
when the config is built or loaded; :meth:`VisTokenizer.to_model_ids` / :meth:`~VisTokenizer.from_model_ids` apply it.

Record kinds (plus optional annotations: ``source``, ``vocabulary``, ``begin_image`` / ``end_image`` /
``image_placeholder`` / ``end_of_row`` as ``{"token": name, "id": int}``, ``mask_token_id``):

- ``{"kind": "offset", "offset": c}``: id = index + c (Show-o: 50305; Chameleon's vocabulary_map: 4; Janus: 0 in
  its separate image-generation vocabulary);
- ``{"kind": "table", "ids": [...]}``: id = ids[index], one distinct id per code (a vocabulary map that is not
  contiguous);
- ``{"kind": "named", "token_format": "<|visual token{:06d}|>"}``: index k is the token named
  ``token_format.format(k)``; its id comes from the model's text-tokenizer vocabulary, passed as ``vocabulary=``
  (e.g. ``AutoTokenizer.from_pretrained(...).get_vocab()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

RECORD_KEY = "model_ids"
KINDS = ("offset", "table", "named")
ROLE_KEYS = ("begin_image", "end_image", "image_placeholder", "end_of_row")


class ModelIdsUnavailableError(ValueError):
    """The tokenizer has no record of how a multimodal model numbers its image tokens."""


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate_record(record: Any, codebook_size: int | None = None) -> dict[str, Any]:
    """``record`` checked (``ValueError`` naming what is wrong and what a record looks like); returned unchanged.
    ``codebook_size``, when known, is checked against a table's length."""
    where = f"config.metadata[{RECORD_KEY!r}]"
    if not isinstance(record, Mapping):
        raise ValueError(f"{where} must be a dict such as {{'kind': 'offset', 'offset': 50305}}, got {record!r}")
    kind = record.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}['kind'] is {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind == "offset":
        offset = record.get("offset")
        if not _is_int(offset) or offset < 0:
            raise ValueError(f"{where}: kind 'offset' needs a non-negative integer 'offset', got {offset!r}")
    elif kind == "table":
        ids = record.get("ids")
        if not isinstance(ids, (list, tuple)) or not ids or not all(_is_int(i) and i >= 0 for i in ids):
            raise ValueError(f"{where}: kind 'table' needs 'ids', a non-empty list of non-negative integers")
        if len(set(ids)) != len(ids):
            raise ValueError(f"{where}: the table's ids must be distinct (one model token per code)")
        if codebook_size is not None and len(ids) != codebook_size:
            raise ValueError(f"{where}: the table has {len(ids)} ids for a codebook of {codebook_size} codes")
    else:
        template = record.get("token_format")
        try:
            names = {template.format(0), template.format(1)} if isinstance(template, str) else set()
        except (IndexError, KeyError, ValueError) as err:
            raise ValueError(f"{where}: token_format {template!r} is not a format with one code field: {err}") from err
        if len(names) != 2:
            raise ValueError(
                f"{where}: kind 'named' needs 'token_format', a string with one field for the code such as "
                f"'<|visual token{{:06d}}|>', got {template!r}"
            )
    for role in ROLE_KEYS:
        value = record.get(role)
        if value is not None and not (
            isinstance(value, Mapping) and isinstance(value.get("token"), str)
            and (value.get("id") is None or _is_int(value["id"]))
        ):
            raise ValueError(f"{where}[{role!r}] must be {{'token': str, 'id': int}}, got {value!r}")
    mask = record.get("mask_token_id")
    if mask is not None and not _is_int(mask):
        raise ValueError(f"{where}['mask_token_id'] must be an integer, got {mask!r}")
    for key in ("source", "vocabulary"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ValueError(f"{where}[{key!r}] must be a string")
    return dict(record)


class ModelIdMap:
    """The conversion a record describes, for a codebook of ``codebook_size`` codes."""

    def __init__(self, record: Mapping[str, Any], codebook_size: int):
        self.record = validate_record(record, codebook_size)
        self.codebook_size = int(codebook_size)
        self.kind = self.record["kind"]
        self._table: torch.Tensor | None = None

    # ------------------------------------------------------------------------------------------ the table
    def table(self, vocabulary: Mapping[str, int] | None = None) -> torch.Tensor | None:
        """The (K,) int64 id of every code, or ``None`` for an offset record."""
        if self.kind == "offset":
            return None
        if self.kind == "table":  # built once: tokenize converts every batch with it
            if self._table is None:
                self._table = torch.tensor(self.record["ids"], dtype=torch.int64)
            return self._table
        template = self.record["token_format"]
        if vocabulary is None:
            raise ModelIdsUnavailableError(
                f"this tokenizer's image tokens are named {template.format(0)!r} … "
                f"{template.format(self.codebook_size - 1)!r} ({self.record.get('source', 'the model')}); their ids "
                "come from the model's text-tokenizer vocabulary: pass vocabulary= (a name → id mapping, e.g. "
                "AutoTokenizer.from_pretrained(<the model's repo>).get_vocab())"
            )
        names = [template.format(k) for k in range(self.codebook_size)]
        missing = [n for n in names if n not in vocabulary]
        if missing:
            raise ValueError(
                f"the vocabulary lacks {len(missing)} of the {self.codebook_size} image tokens (first: {missing[0]!r}): "
                "it is not the vocabulary of the model this tokenizer belongs to"
            )
        ids = [int(vocabulary[n]) for n in names]
        if len(set(ids)) != len(ids):
            raise ValueError("the vocabulary gives two image tokens the same id")
        return torch.tensor(ids, dtype=torch.int64)

    def id_range(self, vocabulary: Mapping[str, int] | None = None) -> tuple[int, int]:
        """(smallest, largest) model id of an image token."""
        if self.kind == "offset":
            return self.record["offset"], self.record["offset"] + self.codebook_size - 1
        table = self.table(vocabulary)
        return int(table.min()), int(table.max())

    def describe(self) -> str:
        if self.kind == "offset":
            lo, hi = self.id_range()
            return f"id = index + {self.record['offset']} ({lo}..{hi})"
        if self.kind == "table":
            lo, hi = self.id_range()
            return f"a table of {self.codebook_size} distinct ids in {lo}..{hi}"
        return f"the vocabulary ids of the tokens {self.record['token_format'].format(0)!r}…"

    # ----------------------------------------------------------------------------------------- converting
    def to_model_ids(self, indices: Any, vocabulary: Mapping[str, int] | None = None) -> Any:
        if isinstance(indices, (list, tuple)) and indices and all(isinstance(t, torch.Tensor) for t in indices):
            return [self.to_model_ids(t, vocabulary) for t in indices]  # multi-scale: one map per scale
        x = _integer_tensor(indices, "indices")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.codebook_size):
            bad = int(x.min()) if int(x.min()) < 0 else int(x.max())
            raise ValueError(
                f"index {bad} is outside this tokenizer's codebook: valid indices are 0..{self.codebook_size - 1}"
            )
        if self.kind == "offset":
            return x + self.record["offset"]
        return self.table(vocabulary).to(x.device)[x]

    def from_model_ids(self, ids: Any, vocabulary: Mapping[str, int] | None = None) -> Any:
        if isinstance(ids, (list, tuple)) and ids and all(isinstance(t, torch.Tensor) for t in ids):
            return [self.from_model_ids(t, vocabulary) for t in ids]
        x = _integer_tensor(ids, "ids")
        if self.kind == "offset":
            lo, hi = self.id_range()
            if x.numel() and (int(x.min()) < lo or int(x.max()) > hi):
                bad = int(x.min()) if int(x.min()) < lo else int(x.max())
                raise ValueError(f"id {bad} is not an image token of this model: valid ids are {lo}..{hi}")
            return x - self.record["offset"]
        table = self.table(vocabulary).to(x.device)
        ordered, codes = torch.sort(table)
        flat = x.reshape(-1)
        where = torch.searchsorted(ordered, flat).clamp(max=len(ordered) - 1)
        found = ordered[where] == flat
        if not bool(found.all()):
            bad = int(flat[~found][0])
            raise ValueError(
                f"id {bad} is not an image token of this model: valid ids are the {self.codebook_size} ids of its "
                f"table, between {int(ordered[0])} and {int(ordered[-1])}"
            )
        return codes[where].reshape(x.shape)


def _integer_tensor(values: Any, what: str) -> torch.Tensor:
    x = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{what} must be integers, got a {x.dtype} tensor")
    return x.to(torch.int64)


def model_id_map(metadata: Mapping[str, Any] | None, codebook_size: int) -> ModelIdMap:
    """The :class:`ModelIdMap` a config's metadata records; :class:`ModelIdsUnavailableError` (naming the zoo
    entries that have one) when it records none."""
    record = (metadata or {}).get(RECORD_KEY)
    if record is None:
        raise ModelIdsUnavailableError(
            "this tokenizer records no model vocabulary ids (config.metadata['model_ids']): it is not the tokenizer "
            "of a multimodal model, or its conversion did not say how that model numbers image tokens. Zoo entries "
            f"that record them: {', '.join(entries_with_model_ids()) or 'none'}"
        )
    return ModelIdMap(record, codebook_size)


def entries_with_model_ids() -> list[str]:
    """Names of the zoo entries whose converted config records model ids (the entries' ``model_ids`` field)."""
    from .families.catalogue import all_entries

    return [entry.name for entry in all_entries() if entry.model_ids]

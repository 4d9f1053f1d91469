"""Loading tokenizers by name for the Space: bundled names, Hub repo ids or local folders, kept in a small LRU cache.

A name that cannot be loaded raises :class:`TokenizerLoadError` with a message for the user and is not cached, so
the tokenizers that did load (the default first of all) keep working.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlparse

import torch

import vistok
from vistok import list_pretrained
from vistok.hub import list_bundled, resolve_bundled

DEFAULT_TOKENIZER = "vistok/default"
# Lets a deployment (or a test) serve another default, e.g. a local folder; the bundled one otherwise.
DEFAULT_TOKENIZER_ENV = "VISTOK_SPACE_TOKENIZER"
MAX_CACHED_TOKENIZERS = 4
# huggingface_hub retries an unreachable Hub for ~25 s; the Space checks reachability once in a while instead and
# falls back to the local cache at once, so one bad repo id does not hold up the queue.
HUB_PROBE_TIMEOUT_S = 3.0
HUB_PROBE_TTL_S = 60.0
_hub_probe: dict[str, float | bool] = {}


class TokenizerLoadError(RuntimeError):
    """A tokenizer name could not be loaded; the message says why and what still works."""


def default_tokenizer_name() -> str:
    return os.environ.get(DEFAULT_TOKENIZER_ENV, "").strip() or DEFAULT_TOKENIZER


def tokenizer_choices() -> list[tuple[str, str]]:
    """The dropdown's ``(label, name)`` entries: the default first, then the other bundled tokenizers, then the zoo
    entries published on the Hub, labelled with tokens per image, codebook size, licence and download size."""
    default = default_tokenizer_name()
    names = [default, *(name for name in list_bundled() if name != default)]
    choices = [(name, name) for name in names]
    for row in list_pretrained():
        if row["source"].startswith("not on the Hub"):
            continue  # must be downloaded and converted by hand: `vistok zoo info` says how
        choices.append((zoo_label(row), row["name"]))
    return choices


def zoo_label(row: dict) -> str:
    """``name — zoo: 256 tokens, 16,384 codes, MIT, weights ≥ 288 MB`` for a :func:`vistok.list_pretrained` row.
    The size is the tokenizer's fp32 weights; a release file can be larger (training state), and a tokenizer inside
    a larger model (Janus) downloads that model's files."""
    size = f", weights ≥ {row['weights_bytes'] / 1e6:,.0f} MB" if row.get("weights_bytes") else ""
    if row.get("whole_release_download"):
        size += ", downloads the whole multimodal release (GBs) once"
    licence = row["license"] + ("" if row["permissive_license"] else " (restrictive licence)")
    shape = (
        f"{row['tokens_per_image']} tokens, {row['codebook_size']:,} codes, " if "tokens_per_image" in row else ""
    )
    return f"{row['name']} — zoo: {shape}{licence}{size}"


class TokenizerCache:
    """Thread-safe ``name → VisTokenizer`` (eval mode, CPU) with least-recently-used eviction."""

    def __init__(self, max_size: int = MAX_CACHED_TOKENIZERS):
        self.max_size = max_size
        self._models: OrderedDict[str, vistok.VisTokenizer] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, name: str | None) -> vistok.VisTokenizer:
        """The tokenizer called ``name`` (a bundled name, Hub repo id or local folder), loaded once."""
        name = (name or "").strip()
        if not name:
            raise TokenizerLoadError(
                f"No tokenizer chosen: pick {default_tokenizer_name()} or type a Hub repo id or a local folder."
            )
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            name_lock = self._loading.setdefault(name, threading.Lock())
        with name_lock:  # one load per name, even when several requests ask for it at once
            with self._lock:
                if name in self._models:
                    return self._models[name]
            model = self._load(name)
            with self._lock:
                self._models[name] = model
                while len(self._models) > self.max_size:
                    self._models.popitem(last=False)
                self._loading.pop(name, None)
            return model

    @staticmethod
    def _load(name: str) -> vistok.VisTokenizer:
        fallback = default_tokenizer_name()
        still = (
            ""
            if name == fallback
            else f" The default tokenizer {fallback} still works: select it to continue."
        )
        is_local = Path(str(resolve_bundled(name))).exists()
        try:
            model = vistok.VisTokenizer.from_pretrained(
                name, local_files_only=not is_local and not hub_reachable()
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            message = _short(err)
            if not message.startswith("Could not load"):
                message = f"Could not load the tokenizer {name!r}: {message}"
            raise TokenizerLoadError(f"{message}{still}") from err
        return model.to(torch.device("cpu")).eval()


def hub_reachable() -> bool:
    """Whether a TCP connection to the Hub endpoint opens (``False`` at once when HF_HUB_OFFLINE is set);
    the answer is remembered for ``HUB_PROBE_TTL_S`` seconds."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return False
    now = time.monotonic()
    if now - float(_hub_probe.get("time", -HUB_PROBE_TTL_S)) < HUB_PROBE_TTL_S:
        return bool(_hub_probe["reachable"])
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=HUB_PROBE_TIMEOUT_S):
            reachable = True
    except OSError:
        reachable = False
    _hub_probe.update(time=now, reachable=reachable)
    return reachable


def _short(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) < 1000 else text[:1000] + "…"

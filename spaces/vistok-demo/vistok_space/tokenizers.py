"""Loading tokenizers by name for the Space: the ones its owner serves, kept in a small LRU cache.

By default the Space serves the bundled tokenizers (``vistok/default``) and the names its owner lists in
``VISTOK_SPACE_TOKENIZERS`` (comma-separated zoo names, Hub repo ids or folders): a :class:`TokenizerPolicy`. Any
other name, an arbitrary server path or an unlisted multi-GB zoo download above all, is refused with a short
message, unless the demo runs with ``--allow-any-tokenizer`` (or ``VISTOK_SPACE_ALLOW_ANY=1``), for local use.

A name that cannot be loaded raises :class:`TokenizerLoadError` with a message for the user and is not cached, so
the tokenizers that did load (the default first of all) keep working.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

import vistok
from vistok import list_pretrained
from vistok.hub import list_bundled, resolve_bundled

DEFAULT_TOKENIZER = "vistok/default"
# Lets a deployment (or a test) serve another default, e.g. a local folder; the bundled one otherwise.
DEFAULT_TOKENIZER_ENV = "VISTOK_SPACE_TOKENIZER"
# The other names a deployment serves besides the default and the bundled tokenizers: comma-separated zoo names,
# Hub repo ids or folders, offered in this order.
SERVED_TOKENIZERS_ENV = "VISTOK_SPACE_TOKENIZERS"
# "1" (or true / yes / on): serve any name typed in, Hub repo ids and server folders included. For local use only.
ALLOW_ANY_ENV = "VISTOK_SPACE_ALLOW_ANY"
ALLOW_ANY_FLAG = "--allow-any-tokenizer"
MAX_CACHED_TOKENIZERS = 4
# How much of a refused name a message repeats.
MAX_NAME_SHOWN = 80
# huggingface_hub retries an unreachable Hub for ~25 s; the Space checks reachability once in a while instead and
# falls back to the local cache at once, so one bad repo id does not hold up the queue.
HUB_PROBE_TIMEOUT_S = 3.0
HUB_PROBE_TTL_S = 60.0
_hub_probe: dict[str, float | bool] = {}


class TokenizerLoadError(RuntimeError):
    """A tokenizer name could not be loaded (or is not served here); the message says why and what still works."""


def default_tokenizer_name() -> str:
    return os.environ.get(DEFAULT_TOKENIZER_ENV, "").strip() or DEFAULT_TOKENIZER


def split_names(text: str | Iterable[str] | None) -> list[str]:
    """``"a, b,,c"`` (or an iterable of names) → ``["a", "b", "c"]``: stripped, empty ones dropped, duplicates once."""
    if text is None:
        return []
    parts = text.split(",") if isinstance(text, str) else list(text)
    return list(dict.fromkeys(part.strip() for part in parts if part and part.strip()))


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to 1 / true / yes / on (any case)."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class TokenizerPolicy:
    """Which tokenizer names the Space loads: ``names`` (the default first, then the bundled tokenizers, then the
    owner's list), or anything with ``allow_any``."""

    names: tuple[str, ...]
    allow_any: bool = False

    @classmethod
    def from_environment(
        cls, tokenizers: str | Iterable[str] | None = None, allow_any: bool | None = None
    ) -> TokenizerPolicy:
        """The default (``VISTOK_SPACE_TOKENIZER`` or ``vistok/default``), the bundled tokenizers and ``tokenizers``
        (comma-separated or a list; ``VISTOK_SPACE_TOKENIZERS`` when ``None``); ``allow_any`` from
        ``VISTOK_SPACE_ALLOW_ANY`` when ``None``."""
        default = default_tokenizer_name()
        listed = split_names(os.environ.get(SERVED_TOKENIZERS_ENV) if tokenizers is None else tokenizers)
        names = split_names([default, *list_bundled(), *listed])
        return cls(names=tuple(names), allow_any=env_flag(ALLOW_ANY_ENV) if allow_any is None else bool(allow_any))

    def allows(self, name: str) -> bool:
        return self.allow_any or name in self.names

    def refusal(self, name: str) -> str:
        shown = name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "…"
        return (
            f"{shown!r} is not one of the tokenizers this Space serves ({', '.join(self.names)}). To try any Hub "
            f"repo id or local folder, run the demo on your own machine: python app.py {ALLOW_ANY_FLAG}"
        )

    def nothing_chosen(self) -> str:
        if self.allow_any:
            return f"No tokenizer chosen: pick {self.names[0]} or type a Hub repo id or a local folder."
        return f"No tokenizer chosen: pick one of {', '.join(self.names)}."

    def choices(self) -> list[tuple[str, str]]:
        """The dropdown's ``(label, name)`` entries: the served names in order (zoo entries labelled with tokens per
        image, codebook size, licence and download size); with ``allow_any`` also every other zoo entry published
        on the Hub."""
        rows = {row["name"]: row for row in list_pretrained()}
        choices = [(zoo_label(rows[name]) if name in rows else name, name) for name in self.names]
        if self.allow_any:
            for name, row in rows.items():
                if name in self.names or row["source"].startswith("not on the Hub"):
                    continue  # the second: must be downloaded and converted by hand (`vistok zoo info` says how)
                choices.append((zoo_label(row), name))
        return choices


def tokenizer_choices(policy: TokenizerPolicy | None = None) -> list[tuple[str, str]]:
    """The dropdown's ``(label, name)`` entries under ``policy`` (the environment's by default): see
    :meth:`TokenizerPolicy.choices`."""
    return (policy or TokenizerPolicy.from_environment()).choices()


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


class _Loading:
    """One name being loaded: the lock its loaders take turns on, how many requests hold or wait for it, and the
    error of a load that failed while others waited (they get it instead of failing the same way again)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.error: TokenizerLoadError | None = None


class TokenizerCache:
    """Thread-safe ``name → VisTokenizer`` (eval mode, CPU) with least-recently-used eviction, loading only the names
    its :class:`TokenizerPolicy` serves (the environment's by default)."""

    def __init__(self, max_size: int = MAX_CACHED_TOKENIZERS, policy: TokenizerPolicy | None = None):
        self.max_size = max_size
        self.policy = policy or TokenizerPolicy.from_environment()
        self._models: OrderedDict[str, vistok.VisTokenizer] = OrderedDict()
        self._lock = threading.Lock()
        # Only while a name is being loaded: a failed load leaves nothing behind (no lock, no slot).
        self._loading: dict[str, _Loading] = {}

    def get(self, name: str | None) -> vistok.VisTokenizer:
        """The tokenizer called ``name`` (one the policy serves), loaded once; :class:`TokenizerLoadError` for an
        empty name, one the policy refuses (before anything is looked up) or one that cannot be loaded."""
        name = (name or "").strip()
        if not name:
            raise TokenizerLoadError(self.policy.nothing_chosen())
        if not self.policy.allows(name):
            raise TokenizerLoadError(self.policy.refusal(name))
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            loading = self._loading.get(name)
            if loading is None:
                loading = self._loading[name] = _Loading()
            loading.users += 1
        try:
            with loading.lock:  # one load per name, even when several requests ask for it at once
                with self._lock:
                    if name in self._models:
                        return self._models[name]
                if loading.error is not None:  # it failed while this request waited: same answer, no second try
                    raise TokenizerLoadError(str(loading.error))
                try:
                    model = self._load(name)
                except TokenizerLoadError as err:
                    loading.error = err
                    raise
                with self._lock:
                    self._models[name] = model
                    while len(self._models) > self.max_size:
                        self._models.popitem(last=False)
                return model
        finally:
            with self._lock:
                loading.users -= 1
                if loading.users == 0 and self._loading.get(name) is loading:
                    del self._loading[name]

    def loading_names(self) -> list[str]:
        """Names some request is loading or waiting for right now (empty once every request has its answer)."""
        with self._lock:
            return sorted(self._loading)

    def _load(self, name: str) -> vistok.VisTokenizer:
        fallback = self.policy.names[0]
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

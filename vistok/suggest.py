"""Which known names a mistyped one is probably a typo or a reordering of: one rule for every name vistok suggests."""

from __future__ import annotations

import difflib


def closest_names(typed: str, candidates: list[str], prefix: str = "") -> list[str]:
    """Up to three of ``candidates``: those sharing most of ``typed``'s dash-separated words first (a reordered
    name: ``taming-vqgan-f16-16384`` → ``vqgan-taming-f16-16384``), then close spellings. A candidate starting
    with ``prefix`` is compared without it (``defualt`` → ``vistok/default``)."""
    def bare(name: str) -> str:
        return name[len(prefix) :] if prefix and name.startswith(prefix) else name

    typed = bare(typed).lower()
    words = set(typed.replace("_", "-").split("-"))

    def similarity(candidate: str) -> float:
        return difflib.SequenceMatcher(None, typed, bare(candidate).lower()).ratio()

    def shared(candidate: str) -> int:
        return len(words & set(bare(candidate).lower().split("-")))

    candidates = list(dict.fromkeys(candidates))
    reordered = [c for c in candidates if shared(c) >= max(2, (len(words) + 1) // 2)]
    reordered.sort(key=lambda c: (-shared(c), -similarity(c), c))
    spelled = [c for c in candidates if similarity(c) >= 0.75 and c not in reordered]
    spelled.sort(key=lambda c: -similarity(c))
    return (sorted(reordered[:3], key=lambda c: -similarity(c)) + spelled)[:3]

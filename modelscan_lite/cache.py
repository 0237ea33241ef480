"""The user cache of data derived from the shipped rules: the rule files parsed to JSON, the
rules version remembered under the files' stat data, the allowlist as searchable text.

Where it lives (``$XDG_CACHE_HOME`` or ``~/.cache``, under ``modelscan-lite/``; off with
``MODELSCAN_LITE_NO_CACHE``) and how it is written (a temp file, then an atomic rename).
Everything here is an optimisation: a missing, unreadable or read-only cache costs time only.
Every entry is named by a checksum of what it was derived from, so it cannot go stale.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_path(name: str) -> Path | None:
    """The cache file called ``name``, or None when caching is off."""
    if os.environ.get("MODELSCAN_LITE_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modelscan-lite" / name


def read_cache(name: str) -> str | None:
    path = cache_path(name)
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None


def write_cache(name: str, text: str) -> None:
    path = cache_path(name)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home is fine

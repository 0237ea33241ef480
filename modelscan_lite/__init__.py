"""modelscan-lite: a static pre-load scanner for machine-learning model files.

Public API: :func:`scan` (paths -> :class:`Report`) and ``__version__``. Nothing here loads,
unpickles or executes the artifacts it looks at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from .config import Config
    from .model import Report


def scan(paths: Iterable[str | Path], config: Config | None = None) -> Report:
    """Scan files or directories and return a :class:`~modelscan_lite.model.Report`."""
    from .config import Config
    from .scanner import scan_paths

    return scan_paths([str(p) for p in paths], config or Config())


__all__ = ["__version__", "scan"]

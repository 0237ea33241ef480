"""modelscan-lite: a static pre-load scanner for machine-learning model files.

Public API (implemented in :mod:`modelscan_lite.api`, imported on first use): :func:`scan`
(paths -> :class:`Report`), :func:`check` (paths -> Report, or :class:`UnsafeModelError` /
:class:`ScanError`), :class:`ModelScanError`, and ``__version__``. Both read
``[tool.modelscan-lite]`` from the nearest ``pyproject.toml`` when given no config.
:mod:`modelscan_lite.guard` makes ``torch.load`` & co. check before they load. Nothing here
loads, unpickles or executes the artifacts it looks at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import ModelScanError, ScanError, UnsafeModelError, check, scan

_API = frozenset({"scan", "check", "ModelScanError", "UnsafeModelError", "ScanError"})


def __getattr__(name: str) -> object:
    # lazily, so that ``import modelscan_lite`` (and the CLI's start-up) stays cheap
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ModelScanError", "ScanError", "UnsafeModelError", "__version__", "check", "scan"]

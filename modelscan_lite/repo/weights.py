"""Tensor names, dtypes and shapes of a repo's weight files, from the file scan's one parse.

The file scan records each weights file's tensor table (a safetensors header, the symbolic
``_rebuild_tensor_v2`` calls of a PyTorch pickle); the repo analysis looks them up here and
never opens a weights file a second time. A file the scan did not read (over a budget,
unparseable) has no table, and the checks that need it are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..model import TensorTable

TensorMap = TensorTable


def weight_tensors(path: str, tables: Mapping[str, TensorTable | None]) -> TensorMap | None:
    """The tensor table the file scan recorded for ``path`` (None: none recorded)."""
    return tables.get(os.path.abspath(path))


def dominant_dtype(tensors: TensorMap) -> str | None:
    counts: dict[str, int] = {}
    for dtype, _ in tensors.values():
        if dtype in ("F32", "F16", "BF16", "F64"):
            counts[dtype] = counts.get(dtype, 0) + 1
    return max(counts, key=lambda d: counts[d]) if counts else None

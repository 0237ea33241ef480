"""Writing a report or a baseline whole or not at all: a temp file beside the target, flushed
to disk, then renamed over it. A full disk or a failed write leaves any earlier file as it was.

Only a regular file (or a new one) is replaced that way. A target that exists and is not a
regular file (``-o /dev/null``, ``/dev/stdout``, a FIFO) is written in place: renaming over it
would replace the device node itself (as root, ``/dev/null`` became a regular file). A
symbolic link is followed: the file it points to is replaced, the link stays.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path


def write_atomically(path: str | Path, text: str) -> None:
    target = os.fspath(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with open(target, "w", encoding="utf-8") as f:  # a device or FIFO: never replaced
            f.write(text)
        return
    if os.path.islink(target):
        target = os.path.realpath(target)
    folder = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise

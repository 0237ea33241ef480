"""What identifies an artifact's bytes in a report (``ArtifactResult.content_id``), without
reading tensor bytes the scan skipped.

Three kinds, strongest first:

- ``sha256:<hex>``: the SHA-256 of the whole file. Known for free for a Hugging Face cache
  blob of an LFS file (the blob is named by it); computed only when ``--hash`` asks, since it
  reads every byte. It is also put in ``sha256``.
- ``git-sha1:<hex>``: a Hugging Face cache blob of a non-LFS file, named by its git blob id.
- ``etag:<value>``: a remote file's strong ETag (``remote.sources.etag_id``), from the
  listing; an ``hf://`` file gets ``sha256:`` or ``git-sha1:`` from the hub's listing.
- ``read-sha256:<hex>``: the SHA-256 of the file size and of every byte range the scan read
  (offset, length, bytes; ranges merged, in file order): what went through ``read`` calls,
  and what a parser looked at through a memory map and marked (``streams.mark_read``: a
  GGUF's header, metadata and tensor infos; an ONNX, Core ML, SavedModel or TFLite file up to
  16 MiB whole). Two files that differ only in bytes the scan skipped (tensor data) share
  it, as they should. Known gap: an ONNX or TFLite file over 16 MiB (weights embedded) is
  walked through a map without marking, so only its read-call bytes count. It is an identity
  for reports and baselines, not a checksum of the file: ``--hash`` gives one.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from typing import Any

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA1 = re.compile(r"[0-9a-f]{40}")
# the re-read behind read-sha256 stops here: a scan that read more (a big pickle) is
# identified by its first 64 MiB of read ranges plus the full list of ranges
_MAX_REHASH = 64 * 1024 * 1024


class ReadLog(io.BufferedReader):
    """A buffered file that remembers which byte ranges were read through it."""

    def __init__(self, raw: io.RawIOBase) -> None:
        super().__init__(raw, buffer_size=io.DEFAULT_BUFFER_SIZE)
        self.ranges: list[tuple[int, int]] = []

    def _log(self, start: int, n: int) -> None:
        if n > 0:
            self.ranges.append((start, n))

    def mark(self, start: int, n: int) -> None:
        """Bytes a parser looked at through a memory map: part of the identity too."""
        self._log(start, n)

    def read(self, size: int | None = -1) -> bytes:
        start = self.tell()
        data = super().read(size)
        self._log(start, len(data))
        return data

    def read1(self, size: int = -1) -> bytes:
        start = self.tell()
        data = super().read1(size)
        self._log(start, len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        start = self.tell()
        n = super().readinto(buffer)
        self._log(start, n or 0)
        return n

    def readline(self, size: int | None = -1) -> bytes:
        start = self.tell()
        data = super().readline(size)
        self._log(start, len(data))
        return data


def open_logged(path: str) -> ReadLog:
    # open(), not io.FileIO: the one way files are opened, which tests count
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - the ReadLog owns and closes it
    return ReadLog(raw)


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(start, length)`` ranges sorted, overlapping and touching ones joined."""
    out: list[list[int]] = []
    for start, n in sorted(ranges):
        end = start + n
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b - a) for a, b in out]


def read_id(f: ReadLog, size: int) -> str:
    """``read-sha256:`` of what the scan read from ``f`` (re-read from the page cache)."""
    return ranges_id(f.fileno(), size, f.ranges)


def ranges_id(fd: int, size: int, ranges: list[tuple[int, int]]) -> str:
    """``read-sha256:`` of the file ``fd`` of ``size`` bytes over ``ranges``, re-read now:
    the one place the identity is computed (the result cache re-checks a file with it)."""
    digest = hashlib.sha256(f"size {size}\n".encode())
    budget = _MAX_REHASH
    for start, n in merge_ranges(ranges):
        digest.update(f"{start}+{n}\n".encode())
        take = min(n, budget)
        pos = start
        while take > 0:
            chunk = os.pread(fd, min(take, 1 << 20), pos)
            if not chunk:
                break
            digest.update(chunk)
            pos += len(chunk)
            take -= len(chunk)
            budget -= len(chunk)
    return f"read-sha256:{digest.hexdigest()}"


def full_sha256(f: ReadLog) -> str:
    """The SHA-256 of the whole file (``--hash``), read in 1 MiB chunks."""
    return fd_sha256(f.fileno())


def fd_sha256(fd: int) -> str:
    """The SHA-256 of every byte of the open file ``fd``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    pos = 0
    while chunk := os.pread(fd, 1 << 20, pos):
        digest.update(chunk)
        pos += len(chunk)
    return digest.hexdigest()


def blob_id(blob_path: str) -> tuple[str | None, str | None]:
    """(sha256, content_id) from a Hugging Face cache blob's name: the hub names an LFS blob
    by its SHA-256 and any other blob by its git blob id."""
    name = os.path.basename(blob_path)
    if _SHA256.fullmatch(name):
        return name, f"sha256:{name}"
    if _SHA1.fullmatch(name):
        return None, f"git-sha1:{name}"
    return None, None

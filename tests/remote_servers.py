"""Local HTTP servers for remote (range-read) scanning: a plain range server, a Hugging Face Hub
look-alike, and builders for the repos they serve.

This module owns the test and benchmark side of remote scanning; nothing in ``modelscan_lite``
imports it.

* :class:`Repo` describes one commit of a model or dataset repo whose files live on local disk
  (possibly huge *sparse* files): sizes, git blob ids, LFS records (sha256 computed lazily,
  chunk by chunk, or supplied up front so a 16 GiB sparse shard is never hashed).
* :class:`RangeServer` is a ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) serving files by name
  with HTTP/1.1 keep-alive and single-range ``Range`` support (206/416), strong ETags, and knobs
  for tests: ``latency`` (seconds slept per request), ``ignore_range`` (always 200 + whole body),
  ``fail_first`` (the first N requests answer 503). It counts requests, connections and body
  bytes, thread-safely.
* :class:`HubServer` adds the Hub routes that ``huggingface_hub`` 2.4.0's ``HfFileSystem``,
  ``hf_hub_download`` and ``snapshot_download`` call (repo info, tree, paths-info, refs, commits,
  ``resolve`` with the ``X-Repo-Commit``/``ETag``/``X-Linked-*`` headers), for models and datasets,
  at ``main``, any named ref or the commit sha. It never sends Xet headers or ``xetHash`` fields,
  so clients use plain HTTP range requests. ``lfs_redirect=True`` answers LFS files with a 302 to a
  second listener (another origin, like the real CDN).
* :func:`make_repo` builds small deterministic repos of real formats: sharded safetensors with a
  llama-like config and tokenizer (payload sparse), a torch.save-layout ``pytorch_model.bin``
  (optionally with a harmless ``posix.system`` marker payload assembled from pickle opcodes), a
  huge sparse torch zip, GGUF (``gguf.GGUFWriter``) and ONNX (``onnx.helper``).
* :func:`hub_env` points ``huggingface_hub`` at a server (env vars *and* the constants it froze at
  import) with a throw-away ``HF_HOME``.

The servers only ever look files up in their own tables (never join a request path onto a
directory), stream bodies from disk in chunks (the holes of sparse files are sent from memory:
reading them would cost the kernel zero-filled pages), set ``TCP_NODELAY`` (else Nagle plus
delayed ACKs add ~40 ms to every keep-alive response), and swallow client disconnects quietly;
any other server-side exception is recorded in ``errors`` instead of printed. Counters and the
log are updated before the last byte of a response is written, so a client that has read a
response always finds it counted.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import json
import os
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

__all__ = [
    "DEFAULT_DATE",
    "EAGER_HASH_LIMIT",
    "KINDS",
    "LFS_SUFFIXES",
    "LFS_THRESHOLD",
    "MARKER_CMD",
    "HubServer",
    "LfsInfo",
    "PathTally",
    "RangeNotSatisfiable",
    "RangeServer",
    "Repo",
    "RequestRecord",
    "crc32_zeros",
    "git_blob_oid",
    "hub_env",
    "lfs_pointer",
    "make_repo",
    "parse_range",
]

RepoType = Literal["model", "dataset"]

#: files above this size, or with one of LFS_SUFFIXES, get an ``lfs`` record
LFS_THRESHOLD = 1 << 20
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".onnx", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
DEFAULT_DATE = "2024-01-01T00:00:00.000Z"
#: LFS files up to this size are hashed when a Repo derives its revision; larger ones only lazily
EAGER_HASH_LIMIT = 16 << 20
#: the only thing the optional pickle payload does if someone loads it
MARKER_CMD = "touch ${TMPDIR:-/tmp}/modelscan-lite-remote-marker"

_CHUNK = 4 << 20
_MAX_REQUEST_BODY = 1 << 20
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


# --- hashes and small helpers ------------------------------------------------------------------


def git_blob_oid(data: bytes) -> str:
    """The git object id (sha1) of a blob with this content."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file the Hub stores in git for an LFS file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
    ).encode()


def _file_digest(path: Path, algo: str, prefix: bytes = b"") -> str:
    h = hashlib.new(algo, usedforsecurity=False)
    h.update(prefix)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _check_relpath(relpath: str) -> None:
    parts = relpath.split("/")
    if (
        not relpath
        or "\\" in relpath
        or "\x00" in relpath
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ValueError(f"not a clean relative path: {relpath!r}")


_CRC_POLY = 0xEDB88320


def _crc_multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (reflected bit order), as in zlib's crc32.c."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                break
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1
    return p


def _crc_x2nmodp(n: int, k: int) -> int:
    """x ** (n * 2 ** k) modulo the CRC-32 polynomial."""
    p = 1 << 31
    square = 1 << 30  # x ** 1
    for _ in range(k):
        square = _crc_multmodp(square, square)
    while n:
        if n & 1:
            p = _crc_multmodp(square, p)
        n >>= 1
        square = _crc_multmodp(square, square)
    return p


def crc32_zeros(n: int, crc: int = 0) -> int:
    """``zlib.crc32(b"\\0" * n, crc)`` in O(log n), without the zeros (for sparse zip members)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return _crc_multmodp(_crc_x2nmodp(n, 3), crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


# --- the repo store ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LfsInfo:
    """The ``lfs`` record of a file, as the Hub reports it."""

    sha256: str
    size: int
    pointer_size: int


class Repo:
    """One commit of a Hub repo whose files are local paths.

    ``files`` maps a clean relative path (``"a/b.bin"``) to a local file. ``revision`` is the
    commit sha (40 hex); by default it is derived from the type, id, refs, file names, sizes and
    the contents of files up to ``EAGER_HASH_LIMIT`` (larger LFS files count by size, or by their
    supplied sha256), so it is deterministic. ``refs`` are the branch/tag names that point at
    this commit (several ``Repo`` objects may share an id with different refs: one per commit).
    ``sha256`` supplies the LFS sha256 of some files (real or fake) so huge sparse files are never
    hashed; any other LFS file is hashed lazily, chunk by chunk, once.
    """

    def __init__(
        self,
        repo_id: str,
        files: Mapping[str, Path | str],
        *,
        repo_type: RepoType = "model",
        revision: str | None = None,
        refs: Sequence[str] = ("main",),
        sha256: Mapping[str, str] | None = None,
        date: str = DEFAULT_DATE,
    ) -> None:
        if not _REPO_ID.fullmatch(repo_id):
            raise ValueError(f"repo_id must be 'namespace/name': {repo_id!r}")
        if repo_type not in ("model", "dataset"):
            raise ValueError(f"repo_type must be 'model' or 'dataset': {repo_type!r}")
        self.repo_id = repo_id
        self.repo_type: RepoType = repo_type
        self.refs: tuple[str, ...] = tuple(refs)
        self.date = date
        self.files: dict[str, Path] = {}
        for rel, p in sorted(files.items()):
            _check_relpath(rel)
            path = Path(p)
            if not path.is_file():
                raise FileNotFoundError(path)
            self.files[rel] = path
        self._sizes = {rel: p.stat().st_size for rel, p in self.files.items()}
        self._sha256: dict[str, str] = {}
        for rel, digest in (sha256 or {}).items():
            if rel not in self.files or not _HEX64.fullmatch(digest):
                raise ValueError(f"bad sha256 override for {rel!r}")
            self._sha256[rel] = digest
        self._oids: dict[str, str] = {}
        self._lock = threading.Lock()
        dirs: set[str] = set()
        for rel in self.files:
            parts = rel.split("/")[:-1]
            dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        if dirs & set(self.files):
            raise ValueError("a path is both a file and a directory")
        self.directories: frozenset[str] = frozenset(dirs)
        if revision is None:
            revision = self._derive_revision()
        if not _HEX40.fullmatch(revision):
            raise ValueError(f"revision must be 40 lowercase hex digits: {revision!r}")
        self.revision = revision

    def _derive_revision(self) -> str:
        desc: dict[str, Any] = {"type": self.repo_type, "id": self.repo_id, "refs": self.refs}
        desc["files"] = [[rel, self._sizes[rel], self._content_key(rel)] for rel in self.files]
        blob = json.dumps(desc, sort_keys=True).encode()
        return hashlib.sha1(blob, usedforsecurity=False).hexdigest()

    def _content_key(self, relpath: str) -> str:
        """What of a file's content enters the derived revision: its git blob id, or for LFS
        files the sha256 when supplied or cheap (<= EAGER_HASH_LIMIT), else nothing."""
        if not self.is_lfs(relpath):
            return self.oid(relpath)
        if relpath in self._sha256 or self._sizes[relpath] <= EAGER_HASH_LIMIT:
            return self.sha256(relpath)
        return ""

    # -- naming
    @property
    def hf_root(self) -> str:
        """``org/name`` or ``datasets/org/name``: the ``hf://`` path of the repo root."""
        return ("datasets/" if self.repo_type == "dataset" else "") + self.repo_id

    def hf_path(self, relpath: str = "", revision: str | None = None) -> str:
        """An ``HfFileSystem`` path (no protocol), e.g. ``datasets/org/name@v1/data/x.bin``."""
        root = self.hf_root + (f"@{revision}" if revision else "")
        return f"{root}/{relpath}" if relpath else root

    # -- per-file metadata
    def size(self, relpath: str) -> int:
        return self._sizes[relpath]

    def is_lfs(self, relpath: str) -> bool:
        return self._sizes[relpath] > LFS_THRESHOLD or relpath.lower().endswith(LFS_SUFFIXES)

    def sha256(self, relpath: str) -> str:
        """The content sha256 (or the supplied one), computed once, streaming."""
        with self._lock:
            if relpath not in self._sha256:
                self._sha256[relpath] = _file_digest(self.files[relpath], "sha256")
            return self._sha256[relpath]

    def lfs(self, relpath: str) -> LfsInfo | None:
        if not self.is_lfs(relpath):
            return None
        digest, size = self.sha256(relpath), self._sizes[relpath]
        return LfsInfo(digest, size, len(lfs_pointer(digest, size)))

    def oid(self, relpath: str) -> str:
        """The git blob id: of the content, or of the LFS pointer for LFS files."""
        if self.is_lfs(relpath):
            return git_blob_oid(lfs_pointer(self.sha256(relpath), self._sizes[relpath]))
        with self._lock:
            if relpath not in self._oids:
                prefix = b"blob %d\x00" % self._sizes[relpath]
                self._oids[relpath] = _file_digest(self.files[relpath], "sha1", prefix)
            return self._oids[relpath]

    def etag(self, relpath: str) -> str:
        """What the Hub's ``resolve`` sends as ETag (unquoted): the sha256 for LFS files, else
        the git blob id."""
        return self.sha256(relpath) if self.is_lfs(relpath) else self.oid(relpath)

    def tree_oid(self, dirpath: str) -> str:
        key = f"tree:{self.revision}:{dirpath}".encode()
        return hashlib.sha1(key, usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return (
            f"Repo({self.repo_type}:{self.repo_id}@{self.revision[:8]} refs={list(self.refs)}, "
            f"{len(self.files)} files)"
        )


# --- HTTP machinery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it."""

    method: str
    path: str  # percent-decoded, no query
    query: str
    status: int
    range: str | None
    body_bytes: int
    file_bytes: int
    role: str  # "main" or "cdn"


@dataclass
class PathTally:
    requests: int = 0
    bytes_sent: int = 0


class RangeNotSatisfiable(ValueError):
    """A ``Range`` header the server answers with 416."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Parse a ``Range`` header against a resource of ``size`` bytes.

    Returns ``(first, last)`` inclusive for a satisfiable single byte range, ``None`` when the
    header is absent or malformed (RFC 9110: ignore it and send the whole body), and raises
    :class:`RangeNotSatisfiable` (416) for unsatisfiable ranges and for multiple ranges (which
    this server does not support)."""
    if header is None:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    if "," in spec:
        raise RangeNotSatisfiable("multiple ranges are not supported")
    first_s, dash, last_s = spec.partition("-")
    first_s, last_s = first_s.strip(), last_s.strip()
    if not dash or not (first_s or last_s):
        return None
    if (first_s and not first_s.isdigit()) or (last_s and not last_s.isdigit()):
        return None
    if not first_s:  # suffix range: the last N bytes
        n = int(last_s)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable("empty suffix range")
        return max(0, size - n), size - 1
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable("range starts after the end")
    last = min(int(last_s), size - 1) if last_s else size - 1
    return first, last


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0
        self.bytes_sent = 0
        self.file_bytes_sent = 0
        self.per_path: dict[str, PathTally] = {}
        self.log: list[RequestRecord] = []
        self.errors: list[str] = []
        self.generation = 0  # bumped by reset(): log indices of older requests are stale

    def reset(self) -> None:
        with self.lock:
            self.generation += 1
            self.requests = self.connections = self.bytes_sent = self.file_bytes_sent = 0
            self.per_path = {}
            self.log = []
            self.errors = []


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many parallel clients (listing pools, download workers)
    block_on_close = False  # close() joins the handler threads itself, with a timeout

    def __init__(self, app: RangeServer, role: str) -> None:
        self.app = app
        self.role = role
        self.live: dict[threading.Thread, socket.socket] = {}
        self.live_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.app._stats.lock:
            self.app._stats.connections += 1
        t = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"{type(self.app).__name__}-conn",
            daemon=True,
        )
        with self.live_lock:
            self.live[t] = request
        t.start()

    def shutdown_request(self, request: Any) -> None:
        with self.live_lock:
            for t, s in list(self.live.items()):
                if s is request:
                    del self.live[t]
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        import traceback

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        with self.app._stats.lock:
            self.app._stats.errors.append("".join(traceback.format_exception(exc)))

    def drop_connections(self) -> list[threading.Thread]:
        with self.live_lock:
            items = list(self.live.items())
        for _, s in items:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        return [t for t, _ in items]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "modelscan-lite-test/1"
    sys_version = ""
    timeout = 30.0  # idle keep-alive connections are dropped after this

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACKs add
        # ~40 ms to every keep-alive response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _dispatch(self) -> None:
        srv = self.server
        assert isinstance(srv, _HTTPServer)
        srv.app._serve(self, srv.role)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class _Exchange:
    """One request/response: parsed request, response helpers, and what was sent."""

    def __init__(self, handler: _Handler, app: RangeServer, role: str) -> None:
        self.h = handler
        self.app = app
        self.role = role
        self.method = handler.command
        split = urlsplit(handler.path)
        self.raw_path = split.path or "/"
        self.path = unquote(self.raw_path)
        self.raw_query = split.query
        self.query = parse_qs(split.query, keep_blank_values=True)
        self.range_header = handler.headers.get("Range")
        self.status = 0
        self.body_bytes = 0
        self.file_bytes = 0
        self.headers_sent = False
        self.body = b""
        self._log_index: int | None = None
        self._log_gen = -1

    # Accounting happens *before* bytes are written (and is rolled back if a write fails), and
    # the log record is committed before the last write of a response: a client that has read a
    # whole response always finds it in the counters.
    def _account(self, n: int, from_file: bool) -> None:
        st = self.app._stats
        with st.lock:
            st.bytes_sent += n
            st.file_bytes_sent += n if from_file else 0
            st.per_path.setdefault(self.path, PathTally()).bytes_sent += n
        self.body_bytes += n
        self.file_bytes += n if from_file else 0

    def commit(self) -> None:
        """Record (or re-record, after a failed final write) this request in the log."""
        rec = RequestRecord(
            self.method,
            self.path,
            self.raw_query,
            self.status,
            self.range_header,
            self.body_bytes,
            self.file_bytes,
            self.role,
        )
        st = self.app._stats
        with st.lock:
            if self._log_index is not None and self._log_gen == st.generation:
                st.log[self._log_index] = rec
            else:
                self._log_index, self._log_gen = len(st.log), st.generation
                st.log.append(rec)

    def _write(self, n: int, from_file: bool, final: bool, write: Callable[[], int]) -> int:
        """Account ``n`` bytes, commit the record if this is the last write, then write; on a
        failed or short write take back what was not sent."""
        self._account(n, from_file)
        if final:
            self.commit()
        sent = 0
        try:
            sent = write()
        finally:
            if sent != n:
                self._account(sent - n, from_file)
                if final:
                    self.commit()
        return sent

    def read_body(self) -> None:
        length = self.h.headers.get("Content-Length")
        if length is None:
            if self.h.headers.get("Transfer-Encoding"):
                self.h.close_connection = True  # chunked request bodies are not supported
            return
        n = int(length)
        if n > _MAX_REQUEST_BODY:
            self.h.close_connection = True
            raise _BadRequest(413, "request body too large")
        self.body = self.h.rfile.read(n)

    def q(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    def q_bool(self, name: str) -> bool:
        return self.q(name).lower() in ("1", "true", "yes")

    def _start(self, status: int, headers: Mapping[str, str], length: int) -> None:
        self.status = status
        self.h.send_response(status)
        for k, v in headers.items():
            self.h.send_header(k, v)
        self.h.send_header("Content-Length", str(length))
        if self.h.close_connection:
            self.h.send_header("Connection", "close")
        if self.method == "HEAD" or length == 0:
            self.commit()  # the headers are the whole response
        self.headers_sent = True
        self.h.end_headers()

    def send(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        all_headers = {"Content-Type": content_type, **(headers or {})}
        self._start(status, all_headers, len(body))
        if self.method != "HEAD" and body:

            def write() -> int:
                self.h.wfile.write(body)
                return len(body)

            self._write(len(body), False, True, write)

    def send_json(
        self, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send(status, body, headers, "application/json; charset=utf-8")

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_json({"error": message}, status, {"X-Error-Message": message, **(headers or {})})

    def send_file(self, path: Path, etag: str, headers: Mapping[str, str] | None = None) -> None:
        """Serve a file (or a byte range of it) from disk, streaming it in chunks."""
        try:
            f = path.open("rb")
        except OSError:
            self.error(404, "file vanished")
            return
        with f:
            st = os.fstat(f.fileno())
            size = st.st_size
            out: dict[str, str] = {
                "Content-Type": "application/octet-stream",
                "ETag": f'"{etag}"',
                "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                **(headers or {}),
            }
            if not self.app.ignore_range:
                out["Accept-Ranges"] = "bytes"
            try:
                rng = None if self.app.ignore_range else parse_range(self.range_header, size)
            except RangeNotSatisfiable as e:
                out["Content-Range"] = f"bytes */{size}"
                body = f"416 Range Not Satisfiable: {e}\n".encode()
                self.send(416, body, out)
                return
            if rng is None:
                first, length, status = 0, size, 200
            else:
                first, length, status = rng[0], rng[1] - rng[0] + 1, 206
                out["Content-Range"] = f"bytes {rng[0]}-{rng[1]}/{size}"
            self._start(status, out, length)
            if self.method == "HEAD":
                return
            offset, end = first, first + length
            while offset < end:
                n = min(end - offset, _CHUNK)
                data_at, hole = _data_or_hole(f.fileno(), offset)
                conn = self.h.connection
                write: Callable[[], int]
                if data_at is not None and data_at > offset:
                    # inside a hole of a sparse file: the kernel would zero-fill pages (slow),
                    # send zeros from memory instead
                    n = min(n, data_at - offset, len(_ZEROS))
                    write = partial(_send_zeros, conn, n)
                else:
                    if hole is not None:
                        n = min(n, max(hole - offset, 1))
                    write = partial(conn.sendfile, f, offset, n)
                sent = self._write(n, True, offset + n >= end, write)
                if sent <= 0:  # the file shrank under us: the body cannot be completed
                    self.h.close_connection = True
                    return
                offset += sent

    def redirect(
        self, status: int, location: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send(status, b"", {"Location": location, **(headers or {})})


_ZEROS = memoryview(bytes(1 << 20))


def _data_or_hole(fd: int, offset: int) -> tuple[int | None, int | None]:
    """``(next data offset, next hole offset)`` from ``offset`` (``SEEK_DATA``/``SEEK_HOLE``);
    ``(end of file, None)`` past the last data; ``(None, None)`` where unsupported."""
    try:
        data_at = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as e:
        if e.errno == errno.ENXIO:  # only a hole (or EOF) from here on
            return os.fstat(fd).st_size, None
        return None, None
    if data_at > offset:
        return data_at, None
    try:
        return data_at, os.lseek(fd, offset, os.SEEK_HOLE)
    except OSError:
        return data_at, None


def _send_zeros(conn: socket.socket, n: int) -> int:
    conn.sendall(_ZEROS[:n])
    return n


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _unsafe_path(path: str) -> bool:
    return "\x00" in path or "\\" in path or any(seg in (".", "..") for seg in path.split("/"))


class RangeServer:
    """Serves local files over HTTP/1.1 with single-range support, on 127.0.0.1 (port 0).

    ``files`` maps a name (``"a/b.bin"``, served at ``/a/b.bin``) to a local path; each ``repos``
    entry adds ``/<repo_id>/<relpath>`` (``/datasets/<repo_id>/<relpath>`` for datasets).
    ``latency`` (seconds, slept before every response), ``ignore_range`` and ``fail_first`` can
    also be changed while running (``fail_next(n)`` re-arms failures). Use as a context manager,
    or ``start()``/``close()``."""

    def __init__(
        self,
        files: Mapping[str, Path | str] | None = None,
        *,
        repos: Iterable[Repo] = (),
        latency: float = 0.0,
        ignore_range: bool = False,
        fail_first: int = 0,
    ) -> None:
        self.latency = latency
        self.ignore_range = ignore_range
        self._fail_left = fail_first
        self._stats = _Stats()
        self._files: dict[str, Path] = {}
        self._etags: dict[str, str] = {}
        for name, p in (files or {}).items():
            self.add_file(name, p)
        for repo in repos:
            for rel, p in repo.files.items():
                self.add_file(f"{repo.hf_root}/{rel}", p)
        self._servers: list[_HTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.url = ""

    # -- lifecycle
    def add_file(self, name: str, path: Path | str) -> None:
        """Serve ``path`` at ``/<name>`` (name is a clean relative path)."""
        _check_relpath(name)
        self._files[name] = Path(path)

    def start(self) -> Self:
        if self._servers:
            return self
        self.url = self._listen("main")
        return self

    def _listen(self, role: str) -> str:
        srv = _HTTPServer(self, role)
        t = threading.Thread(
            target=srv.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{role}",
            daemon=True,
        )
        t.start()
        self._servers.append(srv)
        self._threads.append(t)
        host, port = srv.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        """Stop listening, drop open keep-alive connections and join every thread."""
        handlers: list[threading.Thread] = []
        for srv in self._servers:
            srv.shutdown()
            handlers += srv.drop_connections()
            srv.server_close()
        for t in self._threads + handlers:
            t.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- counters
    @property
    def requests(self) -> int:
        with self._stats.lock:
            return self._stats.requests

    @property
    def connections(self) -> int:
        """TCP connections accepted (keep-alive reuse keeps this below ``requests``)."""
        with self._stats.lock:
            return self._stats.connections

    @property
    def bytes_sent(self) -> int:
        """Response body bytes of every response (files, JSON, errors)."""
        with self._stats.lock:
            return self._stats.bytes_sent

    @property
    def file_bytes_sent(self) -> int:
        """Response body bytes that came from served files."""
        with self._stats.lock:
            return self._stats.file_bytes_sent

    @property
    def per_path(self) -> dict[str, PathTally]:
        """Requests and body bytes by decoded request path."""
        with self._stats.lock:
            return {k: PathTally(v.requests, v.bytes_sent) for k, v in self._stats.per_path.items()}

    @property
    def log(self) -> list[RequestRecord]:
        with self._stats.lock:
            return list(self._stats.log)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of unexpected server-side exceptions (a correct run leaves it empty)."""
        with self._stats.lock:
            return list(self._stats.errors)

    def reset(self) -> None:
        """Zero every counter and clear the log and errors (does not re-arm ``fail_first``)."""
        self._stats.reset()

    def fail_next(self, n: int) -> None:
        """Make the next ``n`` requests answer 503."""
        with self._stats.lock:
            self._fail_left = n

    def url_for(self, name: str) -> str:
        return f"{self.url}/{quote(name)}"

    def etag_for(self, name: str) -> str:
        """The (unquoted) strong ETag of a served name: sha256 of path, size and mtime."""
        path = self._files[name]
        st = path.stat()
        key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()
        return hashlib.sha256(key).hexdigest()

    # -- request handling
    def _serve(self, handler: _Handler, role: str) -> None:
        ex = _Exchange(handler, self, role)
        with self._stats.lock:
            self._stats.requests += 1
            self._stats.per_path.setdefault(ex.path, PathTally()).requests += 1
            fail = self._fail_left > 0
            if fail:
                self._fail_left -= 1
        try:
            ex.read_body()
            if self.latency > 0:
                time.sleep(self.latency)
            if fail:
                ex.error(503, "Service Unavailable (fail_first)", {"Retry-After": "0"})
            elif _unsafe_path(ex.path):
                ex.error(403, "Forbidden path")
            else:
                self._route(ex)
        except _BadRequest as e:
            if not ex.headers_sent:
                ex.error(e.status, e.message, e.headers)
        except (ConnectionError, TimeoutError):
            handler.close_connection = True
        except Exception:
            import traceback

            with self._stats.lock:
                self._stats.errors.append(traceback.format_exc())
            if ex.headers_sent:
                handler.close_connection = True
            else:
                try:
                    handler.close_connection = True
                    ex.error(500, "Internal Server Error")
                except OSError:
                    pass
        finally:
            if ex._log_index is None:
                ex.commit()

    def _route(self, ex: _Exchange) -> None:
        self._serve_named(ex)

    def _serve_named(self, ex: _Exchange) -> None:
        if ex.method not in ("GET", "HEAD"):
            ex.error(405, "Method Not Allowed", {"Allow": "GET, HEAD"})
            return
        name = ex.path.lstrip("/")
        path = self._files.get(name)
        if path is None:
            ex.error(404, "Not Found")
            return
        try:
            etag = self.etag_for(name)
        except OSError:
            ex.error(404, "Not Found")
            return
        ex.send_file(path, etag)


# --- the Hub look-alike ------------------------------------------------------------------------


class _HubError(_BadRequest):
    pass


def _repo_not_found(repo_type: str, repo_id: str) -> _HubError:
    msg = f"Repository Not Found: {repo_type} {repo_id}"
    return _HubError(404, msg, {"X-Error-Code": "RepoNotFound"})


class HubServer(RangeServer):
    """A Hugging Face Hub look-alike serving :class:`Repo` objects (models and datasets).

    Routes (``{type}`` is ``models`` or ``datasets``; revisions are ``main``/any ref/the sha,
    percent-encoded as huggingface_hub sends them)::

        GET  /api/{type}/{ns}/{name}[/revision/{rev}]        repo info (sha, siblings; ?blobs=1)
        GET  /api/{type}/{ns}/{name}/tree/{rev}[/{path}]     ?recursive=&expand=, paginated (Link)
        POST /api/{type}/{ns}/{name}/paths-info/{rev}        form or JSON: paths=..., expand=
        GET  /api/{type}/{ns}/{name}/refs                    branches (every ref)
        GET  /api/{type}/{ns}/{name}/commits/{rev}           the one commit
        GET|HEAD /{ns}/{name}/resolve/{rev}/{path}           file, Range, X-Repo-Commit, ETag
        GET|HEAD /datasets/{ns}/{name}/resolve/{rev}/{path}

    Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) so the client
    raises its specific exceptions. ``page_size``/``expand_page_size`` default to the Hub's
    1000/50 entries per tree page. With ``lfs_redirect=True`` LFS files are answered by a 302
    (``X-Linked-Etag``, ``X-Linked-Size``, ``Location``) to a second listener at ``cdn_url``; its
    requests are counted in the same counters (``RequestRecord.role == "cdn"``). ``files`` are
    also served by name, as by :class:`RangeServer`.
    """

    def __init__(
        self,
        repos: Iterable[Repo],
        *,
        files: Mapping[str, Path | str] | None = None,
        latency: float = 0.0,
        ignore_range: bool = False,
        fail_first: int = 0,
        page_size: int = 1000,
        expand_page_size: int = 50,
        lfs_redirect: bool = False,
    ) -> None:
        super().__init__(files, latency=latency, ignore_range=ignore_range, fail_first=fail_first)
        if page_size < 1 or expand_page_size < 1:
            raise ValueError("page sizes must be >= 1")
        self.page_size = page_size
        self.expand_page_size = expand_page_size
        self.lfs_redirect = lfs_redirect
        self.cdn_url = ""
        self.repos: list[Repo] = list(repos)
        seen: dict[tuple[str, str, str], Repo] = {}
        for repo in self.repos:
            for key in [repo.revision, *repo.refs]:
                k = (repo.repo_type, repo.repo_id, key)
                if k in seen and seen[k] is not repo:
                    raise ValueError(f"{repo.repo_type} {repo.repo_id}: {key!r} names two commits")
                seen[k] = repo

    def start(self) -> Self:
        if self._servers:
            return self
        super().start()
        if self.lfs_redirect:
            self.cdn_url = self._listen("cdn")
        return self

    # -- lookups
    def lookup(self, repo_type: str, repo_id: str, revision: str | None) -> Repo:
        """The commit a revision names (``None`` is ``main``); raises the Hub's 404s."""
        candidates = [r for r in self.repos if r.repo_type == repo_type and r.repo_id == repo_id]
        if not candidates:
            raise _repo_not_found(repo_type, repo_id)
        rev = revision or "main"
        for r in candidates:
            if rev == r.revision or rev in r.refs:
                return r
        raise _HubError(404, f"Invalid rev id: {rev}", {"X-Error-Code": "RevisionNotFound"})

    def file_url(self, repo: Repo, relpath: str, revision: str | None = None) -> str:
        """The ``resolve`` URL of a file (what ``hf_hub_url`` builds)."""
        prefix = "datasets/" if repo.repo_type == "dataset" else ""
        rev = quote(revision or (repo.refs[0] if repo.refs else repo.revision), safe="")
        return f"{self.url}/{prefix}{repo.repo_id}/resolve/{rev}/{quote(relpath)}"

    def filesystem(self, **kwargs: Any) -> Any:
        """A fresh ``HfFileSystem`` on this server (no instance cache, no token)."""
        from huggingface_hub import HfFileSystem

        kwargs.setdefault("token", False)
        return HfFileSystem(endpoint=self.url, skip_instance_cache=True, **kwargs)

    # -- JSON shapes
    def _entry(self, repo: Repo, path: str, expand: bool) -> dict[str, Any]:
        out: dict[str, Any]
        if path in repo.files:
            out = {"type": "file", "oid": repo.oid(path), "size": repo.size(path), "path": path}
            lfs = repo.lfs(path)
            if lfs is not None:
                out["lfs"] = {"oid": lfs.sha256, "size": lfs.size, "pointerSize": lfs.pointer_size}
        else:
            out = {"type": "directory", "oid": repo.tree_oid(path), "size": 0, "path": path}
        if expand:
            out["lastCommit"] = {"id": repo.revision, "title": "Upload", "date": repo.date}
        return out

    def _info(self, repo: Repo, blobs: bool) -> dict[str, Any]:
        siblings: list[dict[str, Any]] = []
        for rel in repo.files:
            sib: dict[str, Any] = {"rfilename": rel}
            if blobs:
                sib["size"] = repo.size(rel)
                sib["blobId"] = repo.oid(rel)
                lfs = repo.lfs(rel)
                if lfs is not None:
                    sib["lfs"] = {
                        "sha256": lfs.sha256,
                        "size": lfs.size,
                        "pointerSize": lfs.pointer_size,
                    }
            siblings.append(sib)
        out: dict[str, Any] = {
            "_id": hashlib.sha1(repo.repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": repo.revision,
            "lastModified": repo.date,
            "createdAt": repo.date,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(repo.size(r) for r in repo.files),
        }
        if repo.repo_type == "model":
            out["modelId"] = repo.repo_id
        return out

    def _tree(self, repo: Repo, path: str, recursive: bool) -> list[str]:
        path = path.strip("/")
        if path and path not in repo.directories:
            # a file path or a missing one: the client then lists the parent (HfFileSystem.ls)
            raise _HubError(404, f"Entry not found: {path}", {"X-Error-Code": "EntryNotFound"})
        prefix = f"{path}/" if path else ""
        names = sorted(
            n
            for n in (*repo.directories, *repo.files)
            if n.startswith(prefix) and (recursive or "/" not in n[len(prefix) :])
        )
        return names

    # -- routing
    def _route(self, ex: _Exchange) -> None:
        if self.lfs_redirect and ex.role == "cdn":
            self._route_cdn(ex)
            return
        segs = ex.raw_path.split("/")[1:]
        if len(segs) >= 4 and segs[0] == "api" and segs[1] in ("models", "datasets"):
            self._route_api(ex, segs)
        elif len(segs) >= 6 and segs[0] == "datasets" and segs[3] == "resolve":
            self._resolve(ex, "dataset", segs[1:])
        elif len(segs) >= 5 and segs[2] == "resolve":
            self._resolve(ex, "model", segs)
        else:
            self._serve_named(ex)

    def _route_api(self, ex: _Exchange, segs: list[str]) -> None:
        repo_type = "model" if segs[1] == "models" else "dataset"
        repo_id = f"{unquote(segs[2])}/{unquote(segs[3])}"
        rest = segs[4:]
        action = rest[0] if rest else ""
        if ex.method == "POST" and action != "paths-info":
            raise _HubError(405, "Method Not Allowed")
        if action == "":
            repo = self.lookup(repo_type, repo_id, None)
            ex.send_json(self._info(repo, ex.q_bool("blobs")))
        elif action == "revision" and len(rest) >= 2:
            repo = self.lookup(repo_type, repo_id, unquote("/".join(rest[1:])))
            ex.send_json(self._info(repo, ex.q_bool("blobs")))
        elif action == "tree" and len(rest) >= 2:
            repo = self.lookup(repo_type, repo_id, unquote(rest[1]))
            self._send_tree(ex, repo, unquote("/".join(rest[2:])))
        elif action == "paths-info" and len(rest) >= 2:
            if ex.method != "POST":
                raise _HubError(405, "Method Not Allowed", {"Allow": "POST"})
            repo = self.lookup(repo_type, repo_id, unquote("/".join(rest[1:])))
            self._send_paths_info(ex, repo)
        elif action == "refs" and len(rest) == 1:
            commits = [r for r in self.repos if r.repo_type == repo_type and r.repo_id == repo_id]
            if not commits:
                raise _repo_not_found(repo_type, repo_id)
            branches = [
                {"name": ref, "ref": f"refs/heads/{ref}", "targetCommit": r.revision}
                for r in commits
                for ref in r.refs
            ]
            ex.send_json({"branches": branches, "converts": [], "tags": [], "pullRequests": []})
        elif action == "commits" and len(rest) >= 2:
            repo = self.lookup(repo_type, repo_id, unquote("/".join(rest[1:])))
            commit = {
                "id": repo.revision,
                "title": "Upload",
                "message": "",
                "authors": [{"user": "modelscan-lite"}],
                "date": repo.date,
            }
            ex.send_json([commit])
        else:
            raise _HubError(404, f"Not Found: {ex.path}")

    def _send_tree(self, ex: _Exchange, repo: Repo, path: str) -> None:
        expand = ex.q_bool("expand")
        names = self._tree(repo, path, ex.q_bool("recursive"))
        limit = self.expand_page_size if expand else self.page_size
        try:
            cursor = int(ex.q("cursor", "0"))
        except ValueError as e:
            raise _HubError(400, "bad cursor") from e
        page = names[cursor : cursor + limit]
        headers: dict[str, str] = {}
        if cursor + limit < len(names):
            params = {k: v[0] for k, v in ex.query.items() if k != "cursor"}
            params["cursor"] = str(cursor + limit)
            nxt = f"{self.url}{ex.raw_path}?{urlencode(params)}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        ex.send_json([self._entry(repo, n, expand) for n in page], headers=headers)

    def _send_paths_info(self, ex: _Exchange, repo: Repo) -> None:
        ctype = ex.h.headers.get("Content-Type", "")
        paths: list[str]
        if "json" in ctype:
            try:
                doc = json.loads(ex.body or b"{}")
            except ValueError as e:
                raise _HubError(400, "bad JSON body") from e
            raw = doc.get("paths", []) if isinstance(doc, dict) else []
            paths = [p for p in (raw if isinstance(raw, list) else [raw]) if isinstance(p, str)]
            expand = bool(doc.get("expand")) if isinstance(doc, dict) else False
        else:
            form = parse_qs(ex.body.decode("utf-8", "replace"), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = form.get("expand", ["false"])[0].lower() in ("1", "true")
        out = []
        for p in paths:
            p = p.strip("/")
            if p in repo.files or p in repo.directories:
                out.append(self._entry(repo, p, expand))
        ex.send_json(out)

    def _resolve(self, ex: _Exchange, repo_type: str, segs: list[str]) -> None:
        # segs: ns, name, "resolve", rev, *path
        if ex.method not in ("GET", "HEAD"):
            raise _HubError(405, "Method Not Allowed", {"Allow": "GET, HEAD"})
        repo = self.lookup(repo_type, f"{unquote(segs[0])}/{unquote(segs[1])}", unquote(segs[3]))
        rel = unquote("/".join(segs[4:]))
        commit = {"X-Repo-Commit": repo.revision}
        if rel not in repo.files:
            raise _HubError(
                404, f"Entry not found: {rel}", {"X-Error-Code": "EntryNotFound", **commit}
            )
        lfs = repo.lfs(rel)
        if lfs is not None and self.lfs_redirect:
            location = (
                f"{self.cdn_url}/lfs/{repo.repo_type}s/{repo.repo_id}/{repo.revision}/{quote(rel)}"
            )
            ex.redirect(
                302,
                location,
                {
                    **commit,
                    "ETag": f'"{repo.oid(rel)}"',
                    "X-Linked-Etag": f'"{lfs.sha256}"',
                    "X-Linked-Size": str(lfs.size),
                },
            )
            return
        ex.send_file(repo.files[rel], repo.etag(rel), commit)

    def _route_cdn(self, ex: _Exchange) -> None:
        # /lfs/{type}s/{ns}/{name}/{rev}/{path...}
        segs = ex.raw_path.split("/")[1:]
        if (
            ex.method not in ("GET", "HEAD")
            or len(segs) < 6
            or segs[0] != "lfs"
            or segs[1] not in ("models", "datasets")
        ):
            ex.error(404, "Not Found")
            return
        repo_type = "model" if segs[1] == "models" else "dataset"
        repo = self.lookup(repo_type, f"{unquote(segs[2])}/{unquote(segs[3])}", unquote(segs[4]))
        rel = unquote("/".join(segs[5:]))
        if rel not in repo.files or not repo.is_lfs(rel):
            ex.error(404, "Not Found")
            return
        ex.send_file(repo.files[rel], repo.sha256(rel))


@contextmanager
def hub_env(server: HubServer | str, home: Path) -> Iterator[None]:
    """Point ``huggingface_hub`` at a server for the duration: sets ``HF_ENDPOINT``, ``HF_HOME``,
    ``HF_HUB_CACHE``, ``HF_HUB_DISABLE_TELEMETRY=1``, unsets ``HF_HUB_OFFLINE`` and tokens, and
    patches the values ``huggingface_hub.constants`` froze at import (``ENDPOINT``, the resolve
    URL template, cache paths, offline flag, token path). Everything is restored on exit."""
    from huggingface_hub import constants

    endpoint = server.url if isinstance(server, HubServer) else server
    endpoint = endpoint.rstrip("/")
    home = Path(home)
    env = {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    unset = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    patch = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
    }
    old_env = {k: os.environ.get(k) for k in (*env, *unset)}
    missing = object()
    old_const = {k: getattr(constants, k, missing) for k in patch}
    try:
        os.environ.update(env)
        for k in unset:
            os.environ.pop(k, None)
        for k, v in patch.items():
            if old_const[k] is not missing:
                setattr(constants, k, v)
        yield
    finally:
        for k, old in old_env.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
        for k, oldc in old_const.items():
            if oldc is not missing:
                setattr(constants, k, oldc)


# --- repo builders -----------------------------------------------------------------------------

KINDS = ("safetensors-sharded", "pickle-bin", "pytorch-zip", "gguf", "onnx")


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


def _fake_sha256(repo_type: str, repo_id: str, relpath: str, size: int) -> str:
    return hashlib.sha256(f"fake-lfs:{repo_type}/{repo_id}/{relpath}:{size}".encode()).hexdigest()


_GITATTRIBUTES = b"".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n".encode()
    for suffix in (".bin", ".gguf", ".onnx", ".pt", ".safetensors")
)


# tokenizer.json: byte-level BPE with 3 specials, the 256 byte symbols and a few merges


def _bytes_to_unicode() -> list[str]:
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    out: dict[int, str] = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + n)
            n += 1
    return [out[b] for b in range(256)]


_MERGES = [
    ("Ġ", "t"), ("h", "e"), ("Ġ", "a"), ("i", "n"), ("Ġt", "he"), ("e", "r"), ("o", "n"),
    ("Ġ", "s"), ("r", "e"), ("a", "t"), ("e", "n"), ("o", "r"), ("in", "g"), ("Ġ", "w"),
    ("e", "s"), ("a", "n"), ("Ġ", "c"), ("e", "d"), ("Ġ", "o"), ("Ġ", "m"), ("l", "l"),
]  # fmt: skip
_SPECIALS = ("<unk>", "<s>", "</s>")


def _tokenizer_json() -> bytes:
    vocab: dict[str, int] = {s: i for i, s in enumerate(_SPECIALS)}
    for sym in _bytes_to_unicode():
        vocab[sym] = len(vocab)
    for a, b in _MERGES:
        assert a in vocab and b in vocab, (a, b)
        vocab.setdefault(a + b, len(vocab))
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": s,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, s in enumerate(_SPECIALS)
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", **byte_level},
        "post_processor": {"type": "ByteLevel", **byte_level},
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [[a, b] for a, b in _MERGES],
        },
    }
    return _json_bytes(doc)


_TOKENIZER_CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "clean_up_tokenization_spaces": False,
    "model_max_length": 2048,
    "tokenizer_class": "PreTrainedTokenizerFast",
}


@dataclass
class _LlamaShape:
    hidden: int
    inter: int
    layers: int
    vocab: int
    heads: int
    tensors: list[tuple[str, list[int]]] = field(default_factory=list)


def _llama_shape(total_size: int) -> _LlamaShape:
    """A llama-like architecture whose bf16 weights take about ``total_size`` bytes."""
    vocab = 32000 if total_size >= 64 << 20 else 512

    def inter_of(h: int) -> int:
        return -(-(8 * h // 3) // 64) * 64

    def sizes(h: int) -> tuple[int, int]:
        embed = (2 * vocab * h + h) * 2
        layer = (4 * h * h + 3 * h * inter_of(h) + 2 * h) * 2
        return embed, layer

    hidden = 64
    for h in (8192, 4096, 2048, 1024, 512, 256, 128, 64):
        embed, layer = sizes(h)
        if embed + 4 * layer <= total_size:
            hidden = h
            break
    embed, layer = sizes(hidden)
    layers = max(1, (total_size - embed) // layer)
    shape = _LlamaShape(hidden, inter_of(hidden), layers, vocab, max(1, hidden // 64))
    h, i = hidden, shape.inter
    shape.tensors.append(("model.embed_tokens.weight", [vocab, h]))
    for n in range(layers):
        p = f"model.layers.{n}."
        shape.tensors += [
            (p + "input_layernorm.weight", [h]),
            (p + "self_attn.q_proj.weight", [h, h]),
            (p + "self_attn.k_proj.weight", [h, h]),
            (p + "self_attn.v_proj.weight", [h, h]),
            (p + "self_attn.o_proj.weight", [h, h]),
            (p + "post_attention_layernorm.weight", [h]),
            (p + "mlp.gate_proj.weight", [i, h]),
            (p + "mlp.up_proj.weight", [i, h]),
            (p + "mlp.down_proj.weight", [h, i]),
        ]
    shape.tensors += [("model.norm.weight", [h]), ("lm_head.weight", [vocab, h])]
    return shape


def _write_sparse_safetensors(path: Path, tensors: list[tuple[str, list[int]]]) -> int:
    """A real safetensors header (bf16) followed by a sparse all-zero payload; returns size."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        nbytes = 2
        for d in shape:
            nbytes *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    total = 8 + len(raw) + offset
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(total)
    return total


def _build_safetensors(dest: Path, total_size: int, shards: int) -> tuple[dict[str, Path], Any]:
    shape = _llama_shape(total_size)
    if not 1 <= shards <= len(shape.tensors):
        raise ValueError(f"shards must be between 1 and {len(shape.tensors)}")

    def nbytes(s: list[int]) -> int:
        n = 2
        for d in s:
            n *= d
        return n

    data_total = sum(nbytes(s) for _, s in shape.tensors)
    groups: list[list[tuple[str, list[int]]]] = [[] for _ in range(shards)]
    acc = 0
    for name, s in shape.tensors:
        idx = min(shards - 1, acc * shards // data_total)
        groups[idx].append((name, s))
        acc += nbytes(s)
    # every shard gets at least one tensor
    for k in range(shards):
        if not groups[k]:
            donor = max(range(shards), key=lambda j: len(groups[j]))
            groups[k].append(groups[donor].pop(-1 if donor < k else 0))
    groups = [sorted(g, key=lambda t: shape.tensors.index(t)) for g in groups]
    files: dict[str, Path] = {}
    weight_map: dict[str, str] = {}
    for k, group in enumerate(groups):
        name = (
            "model.safetensors" if shards == 1 else f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        )
        _write_sparse_safetensors(dest / name, group)
        files[name] = dest / name
        weight_map.update({t: name for t, _ in group})
    if shards > 1:
        index = {"metadata": {"total_size": data_total}, "weight_map": weight_map}
        (dest / "model.safetensors.index.json").write_bytes(_json_bytes(index))
        files["model.safetensors.index.json"] = dest / "model.safetensors.index.json"
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": shape.hidden,
        "intermediate_size": shape.inter,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.heads,
        "vocab_size": shape.vocab,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.0",
    }
    for name, blob in (
        ("config.json", _json_bytes(config)),
        ("tokenizer.json", _tokenizer_json()),
        ("tokenizer_config.json", _json_bytes(_TOKENIZER_CONFIG)),
    ):
        (dest / name).write_bytes(blob)
        files[name] = dest / name
    return files, config


# torch.save's zip layout, by hand: miniz-style local headers (flags 0x0808, data descriptors),
# "FB" extra-field padding so every member's data starts on a 64-byte boundary


def _p_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _p_str(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _p_int(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 1 << 31:
        return b"J" + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def _p_tuple(*items: bytes) -> bytes:
    if len(items) == 1:
        return items[0] + b"\x85"
    if len(items) == 2:
        return b"".join(items) + b"\x86"
    return b"(" + b"".join(items) + b"t"


def _p_tensor(key: str, storage: str, shape: list[int]) -> bytes:
    """``key -> torch._utils._rebuild_tensor_v2(<persistent storage>, 0, shape, stride, ...)``"""
    numel = 1
    for d in shape:
        numel *= d
    stride = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        stride[i] = stride[i + 1] * shape[i + 1]
    pid = _p_tuple(
        _p_str("storage"),
        _p_global("torch", "FloatStorage"),
        _p_str(storage),
        _p_str("cpu"),
        _p_int(numel),
    )
    args = (
        b"("
        + pid
        + b"Q"  # BINPERSID
        + _p_int(0)
        + _p_tuple(*(_p_int(d) for d in shape))
        + _p_tuple(*(_p_int(s) for s in stride))
        + b"\x89"  # NEWFALSE
        + _p_global("collections", "OrderedDict")
        + b")R"  # EMPTY_TUPLE REDUCE
        + b"t"
    )
    return _p_str(key) + _p_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_dict_pickle(tensors: list[tuple[str, str, list[int]]], payload: bool) -> bytes:
    """A protocol-2 state dict; with ``payload`` one more item whose value is
    ``posix.system(MARKER_CMD)`` (GLOBAL + REDUCE), assembled from opcodes, never pickled."""
    items = b"".join(_p_tensor(k, s, shape) for k, s, shape in tensors)
    if payload:
        items += _p_str("_marker") + _p_global("posix", "system") + b"(" + _p_str(MARKER_CMD)
        items += b"tR"
    return b"\x80\x02}(" + items + b"u."


def _write_torch_zip(path: Path, members: list[tuple[str, bytes | int]]) -> None:
    """Write a torch.save-layout zip; an ``int`` member is that many zero bytes, left sparse."""
    central: list[bytes] = []
    with path.open("wb") as f:
        for name, data in members:
            raw_name = f"archive/{name}".encode()
            offset = f.tell()
            if offset > 0xFFFFFFFF:
                raise ValueError("zip64 is not supported: keep members under 4 GiB in total")
            pad = -(offset + 30 + len(raw_name) + 4) % 64
            extra = b"FB" + struct.pack("<H", pad) + b"\x00" * pad
            # signature, version needed, flags, method, time, date, crc, sizes (in the descriptor)
            local = struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 0, 0x0808, *(0,) * 6, len(raw_name), len(extra)
            )
            f.write(local + raw_name + extra)
            if isinstance(data, int):
                size, crc = data, crc32_zeros(data)
                f.seek(size, os.SEEK_CUR)
            else:
                size, crc = len(data), zlib.crc32(data)
                f.write(data)
            if size > 0xFFFFFFFF:
                raise ValueError("zip64 is not supported: keep members under 4 GiB")
            f.write(struct.pack("<IIII", 0x08074B50, crc, size, size))
            # signature, made by, needed, flags, method, time, date, crc, sizes, name length,
            # extra, comment, disk, internal and external attributes, local header offset
            head = struct.pack("<IHHHHHH", 0x02014B50, 0, 0, 0x0808, 0, 0, 0)
            tail = struct.pack("<IIIHHHHHII", crc, size, size, len(raw_name), 0, 0, 0, 0, 0, offset)
            central.append(head + tail + raw_name)
        cd_offset = f.tell()
        if cd_offset > 0xFFFFFFFF:
            raise ValueError("zip64 is not supported: keep members under 4 GiB in total")
        cd = b"".join(central)
        f.write(cd)
        n = len(central)
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), cd_offset, 0))


def _torch_members(
    pkl: bytes, storages: list[tuple[str, bytes | int]]
) -> list[tuple[str, bytes | int]]:
    return [
        ("data.pkl", pkl),
        (".format_version", b"1"),
        (".storage_alignment", b"64"),
        ("byteorder", b"little"),
        *((f"data/{key}", data) for key, data in storages),
        ("version", b"3\n"),
        (".data/serialization_id", b"0123456789012345678901234567890123456789"),
    ]


def _build_pickle_bin(dest: Path, payload: bool) -> dict[str, Path]:
    weight = struct.pack("<4f", 0.5, -1.0, 2.0, 0.25)
    bias = struct.pack("<2f", 0.125, -0.125)
    pkl = _state_dict_pickle([("linear.weight", "0", [2, 2]), ("linear.bias", "1", [2])], payload)
    _write_torch_zip(dest / "pytorch_model.bin", _torch_members(pkl, [("0", weight), ("1", bias)]))
    config = {"architectures": ["TinyLinear"], "model_type": "tiny-linear", "in_features": 2}
    (dest / "config.json").write_bytes(_json_bytes(config))
    return {"pytorch_model.bin": dest / "pytorch_model.bin", "config.json": dest / "config.json"}


def _build_pytorch_zip(dest: Path, total_size: int, payload: bool) -> dict[str, Path]:
    numel = max(1, total_size // 4)
    pkl = _state_dict_pickle([("embed.weight", "0", [numel])], payload)
    _write_torch_zip(dest / "pytorch_model.bin", _torch_members(pkl, [("0", numel * 4)]))
    config = {"architectures": ["TinyEmbedding"], "model_type": "tiny-embedding", "numel": numel}
    (dest / "config.json").write_bytes(_json_bytes(config))
    return {"pytorch_model.bin": dest / "pytorch_model.bin", "config.json": dest / "config.json"}


def _build_gguf(dest: Path) -> dict[str, Path]:
    import numpy as np
    from gguf import GGUFWriter

    path = dest / "model.gguf"
    n_vocab, n_embd = 32, 16
    w = GGUFWriter(str(path), arch="llama")
    w.add_name("tiny-llama-test")
    w.add_context_length(128)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", *(f"tok{i}" for i in range(n_vocab - 3))])
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types([2, 3, 3, *([1] * (n_vocab - 3))])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    grid = np.arange(n_vocab * n_embd, dtype=np.float32).reshape(n_vocab, n_embd) / 512
    w.add_tensor("token_embd.weight", grid)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output.weight", grid[::-1].copy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"model.gguf": path}


def _build_onnx(dest: Path) -> dict[str, Path]:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4) / 16, name="W")
    b = numpy_helper.from_array(np.full(4, 0.5, dtype=np.float32), name="B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "B"], ["Y"]),
        ],
        "tiny_linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
        initializer=[w, b],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="modelscan-lite-tests"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = dest / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return {"model.onnx": path}


def make_repo(
    root: Path,
    repo_id: str,
    kind: str,
    *,
    repo_type: RepoType = "model",
    total_size: int | None = None,
    shards: int = 2,
    payload: bool = False,
    refs: Sequence[str] = ("main",),
    fake_sha256_over: int = 64 << 20,
) -> Repo:
    """Build a small deterministic repo of one ``kind`` under ``root`` and describe it.

    Kinds (every repo also gets ``README.md`` and ``.gitattributes``):

    * ``"safetensors-sharded"``: ``shards`` bf16 shards of a llama-like model totalling about
      ``total_size`` bytes (default 8 MiB; real headers, sparse zero payload), plus
      ``model.safetensors.index.json`` (when shards > 1), ``config.json`` consistent with the
      tensors, ``tokenizer.json`` (byte-level BPE) and ``tokenizer_config.json``.
    * ``"pickle-bin"``: a torch.save-layout ``pytorch_model.bin`` of a 2x2 linear layer;
      ``payload=True`` adds an item calling ``posix.system(MARKER_CMD)`` (touches a marker file).
    * ``"pytorch-zip"``: the same layout with one float32 tensor whose ``data/0`` member is
      ``total_size`` bytes (default 1 GiB), sparse, CRC computed without the zeros; ``payload``
      as above. Must stay under 4 GiB (no zip64).
    * ``"gguf"``: a tiny llama GGUF written with ``gguf.GGUFWriter``.
    * ``"onnx"``: a tiny MatMul+Add model built with ``onnx.helper``.

    LFS files larger than ``fake_sha256_over`` get a deterministic *fake* sha256 (so nothing
    hashes gigabytes of zeros): anything that verifies LFS checksums would reject them.
    Files go to ``root/<type>s/<ns>--<name>--<first ref>/``."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")
    ref_tag = re.sub(r"[^A-Za-z0-9._-]", "_", refs[0] if refs else "norefs")
    dest = Path(root) / f"{repo_type}s" / f"{repo_id.replace('/', '--')}--{ref_tag}"
    dest.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path]
    if kind == "safetensors-sharded":
        files, _ = _build_safetensors(dest, total_size or 8 << 20, shards)
    elif kind == "pickle-bin":
        files = _build_pickle_bin(dest, payload)
    elif kind == "pytorch-zip":
        files = _build_pytorch_zip(dest, total_size or 1 << 30, payload)
    elif kind == "gguf":
        files = _build_gguf(dest)
    else:
        files = _build_onnx(dest)
    readme = (
        f"---\nlicense: apache-2.0\ntags:\n- test-fixture\n---\n# {repo_id}\n\n"
        f"A `{kind}` fixture built by tests/remote_servers.py for modelscan-lite.\n"
    )
    (dest / "README.md").write_text(readme)
    (dest / ".gitattributes").write_bytes(_GITATTRIBUTES)
    files["README.md"] = dest / "README.md"
    files[".gitattributes"] = dest / ".gitattributes"
    fakes = {
        rel: _fake_sha256(repo_type, repo_id, rel, p.stat().st_size)
        for rel, p in files.items()
        if p.stat().st_size > fake_sha256_over
    }
    return Repo(repo_id, files, repo_type=repo_type, refs=refs, sha256=fakes)

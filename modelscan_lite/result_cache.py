"""The result cache: an unchanged file's :class:`~.model.ArtifactResult` is reused instead of
parsing the file again. It owns the SQLite database (``results.sqlite3`` in the user cache
directory of :mod:`.cache`, off with ``MODELSCAN_LITE_NO_CACHE`` or ``Config(cache=False)``),
the key of an entry, what a hit must re-check, and the exact JSON form of a result.

A cache bug is a missed finding, so an entry is reused only when everything the result was
computed from is the same:

- the **settings** (:func:`settings_key`): tool version, a stat key of the package's own
  source files (an edited checkout), the rules checksum (``RuleSet.version``: every rule file
  and data file, so an edited rule misses without a version bump) of the shipped rules and of
  the policy's, the policy (rules, severities, per-path ignores and their root, extra
  allowlist), every :class:`~.config.Config` field except the few that act only before or
  after the per-file scans (:data:`NOT_RESULTS`: a new field is in the key until listed
  there), the Python version and the optional modules that change evidence or coverage
  (fickling, PyYAML, lz4, py7zr);
- the **file as named**: its path as given and the working directory (fingerprints and
  relative per-path ignores depend on both);
- the **file's state**: on a hit the file is opened and its ``(st_dev, st_ino, size,
  st_mtime_ns, st_ctime_ns)`` must be those it had when the scan opened it, and the byte
  ranges the scan read (:attr:`.content_id.ReadLog.ranges`, memory-mapped ones marked) are
  re-read and must hash to the stored digest (:func:`.content_id.ranges_id`, the one way the
  ``read-sha256`` content id is computed; with ``--hash`` the whole file's SHA-256). Like the
  content id, the re-hash covers the first 64 MiB of read ranges, and not a graph over 16 MiB
  walked through an unmarked memory map: there the stat identity is the guard (its ctime
  changes with every write and no user can set it back);
- every **other path the parsers consulted** (:meth:`.formats.base.Context.consult`: ONNX
  external data, the ``.bin`` beside an OpenVINO ``.xml``, Core ML weights, a Hugging Face
  cache's ``blobs`` folders): absent, or which file or folder it resolves to with its stat
  identity, the same as when the result was stored.

What is never stored: a result with an ``error``; a scan that met the time or memory budget or
an internal error (:data:`UNREPEATABLE`; another run may go further); a file or consulted path
changed during the scan or less than :data:`RACY_NS` before it began (a "racy" entry, as git
calls it: a second write within the file system's timestamp granularity could leave the
stat identity unchanged while the bytes the parsers saw are gone).

Content-addressed entries (:meth:`ResultCache.lookup_content`) are for bytes named by their
hash: a Hugging Face blob's SHA-256, an ETag or an LFS oid of a remote file. Their key is the
identity, the file name, a signature of the siblings and the settings; nothing is re-hashed
(consulted paths, if any, are recorded and re-checked as for a file).

``seconds``: a stored result keeps the scan's time in the database, but a hit reports the time
the lookup took (a hit must not claim the parse it skipped).

The database: WAL mode, a busy timeout, one short transaction per write (``INSERT OR
REPLACE``), so several processes, pool workers or Dask workers read and write it at once.
A ``meta`` table holds the schema version; another version is dropped and recreated. A
connection is opened lazily, once per process (a forked child never uses its parent's). A
database that cannot be created, read or written costs time only: a lookup misses, a store is
skipped, never an error and never a wrong hit; a file that is not a database is replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import json
import os
import stat
import sys
import threading
import time
import types
import typing
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import __version__
from .cache import cache_path
from .content_id import fd_sha256, merge_ranges, ranges_id
from .model import ArtifactResult

if TYPE_CHECKING:
    import sqlite3

    from .config import Config
    from .engine import Policy
    from .formats.base import Context

DB_NAME = "results.sqlite3"
SCHEMA_VERSION = "1"
BUSY_TIMEOUT = 10.0  # seconds a write waits for another process's
# a file or consulted path whose newest timestamp is this close to the scan's start is not
# stored (2 s: file systems with 1 s or 2 s timestamps included)
RACY_NS = 2_000_000_000
# anomalies another run of the same scan may not repeat
UNREPEATABLE = frozenset({"budget-time", "budget-memory", "internal-error"})
# Config fields that act before or after the per-file scans (which files, how many at once,
# the verdict, waivers, the sandboxed loads): not in the key; every other field is
NOT_RESULTS = frozenset(
    {
        "source",
        "jobs",
        "executor",
        "scheduler",
        "fail_on",
        "dynamic",
        "sandbox",
        "baseline",
        "write_baseline",
        "suppress",
        "cache",
        "remote_jobs",
        "download",
    }
)
# optional modules whose presence or version changes a result (evidence, coverage)
OPTIONAL_MODULES = ("fickling", "yaml", "lz4", "py7zr")

_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE files (key TEXT PRIMARY KEY, path BLOB NOT NULL, stat TEXT NOT NULL,"
    " ranges TEXT NOT NULL, digest TEXT NOT NULL, consulted TEXT NOT NULL,"
    " result TEXT NOT NULL, stored REAL NOT NULL) WITHOUT ROWID",
    "CREATE TABLE contents (key TEXT PRIMARY KEY, consulted TEXT NOT NULL,"
    " result TEXT NOT NULL, stored REAL NOT NULL) WITHOUT ROWID",
)
_TABLES = ("files", "contents", "meta")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
# connections a forked child inherited: never used, never closed (closing could checkpoint
# or remove the parent's write-ahead log), kept from the garbage collector
_INHERITED: list[Any] = []
_ALL: weakref.WeakSet[ResultCache] = weakref.WeakSet()


class ResultCache:
    """The results database at ``path``: lookups and stores of local files by path and of
    content-addressed bytes by identity. Never raises for a database problem."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._start()
        _ALL.add(self)

    def _start(self) -> None:
        """This process's state: no connection yet, counters at zero."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._failed = False
        self._replaced = False
        self.hits = self.misses = 0

    def _forked(self) -> None:
        if self._conn is not None:
            _INHERITED.append(self._conn)
        self._start()

    # -- the connection ----------------------------------------------------------------

    def _locked(self) -> threading.Lock:
        """This process's lock (a child forked without the at-fork hook starts afresh)."""
        if self._pid != os.getpid():
            self._forked()
        return self._lock

    def _connection(self) -> sqlite3.Connection | None:
        """The open database, or None when it cannot be used in this process. Call it with
        :meth:`_locked` held."""
        if self._conn is None and not self._failed:
            import sqlite3

            try:
                self._conn = self._open_patiently()
            except sqlite3.DatabaseError:
                if self._replaced or not self._not_a_database():
                    self._failed = True
                    return None
                self._replaced = True  # garbage bytes: remove it and start again, once
                self._remove_files()
                return self._connection()
            except (sqlite3.Error, OSError):
                self._failed = True
        return self._conn

    def _open_patiently(self) -> sqlite3.Connection:
        """:meth:`_open`, again while another process holds the lock: switching a new
        database to WAL does not wait for the busy timeout (processes that start at once)."""
        import sqlite3

        deadline = time.monotonic() + BUSY_TIMEOUT
        pause = 0.002
        while True:
            try:
                return self._open()
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF in _BUSY_CODES
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _open(self) -> sqlite3.Connection:
        import sqlite3

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if _schema_version(conn) != SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if _schema_version(conn) != SCHEMA_VERSION:  # no other process did it
                        for table in _TABLES:
                            conn.execute(f"DROP TABLE IF EXISTS {table}")
                        for statement in _SCHEMA:
                            conn.execute(statement)
                        conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _not_a_database(self) -> bool:
        """True when the file holds bytes that are not SQLite's (never a live database)."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except OSError:
            return False
        return len(head) > 0 and head != _SQLITE_MAGIC

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(self.path + suffix)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any] | None:
        """The rows of one statement, or None when the database cannot answer."""
        import sqlite3

        with self._locked():
            conn = self._connection()
            if conn is None:
                return None
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.Error:
                return None

    # -- local files -------------------------------------------------------------------

    def lookup(self, path: str, settings: str) -> ArtifactResult | None:
        """The stored result of the file ``path`` under ``settings`` when the file, the
        bytes the scan read and every consulted path are unchanged; else None."""
        started = time.perf_counter()
        key = _file_key(path, settings)
        rows = key and self._query(
            "SELECT stat, ranges, digest, consulted, result FROM files WHERE key = ?", (key,)
        )
        hit = None
        if rows and _fresh_file(path, *rows[0][:4]):
            hit = _decoded(rows[0][4])
        return self._counted(hit, started)

    def store(
        self,
        path: str,
        settings: str,
        result: ArtifactResult,
        ranges: list[tuple[int, int]],
        ctx: Context,
        *,
        opened: os.stat_result,
    ) -> bool:
        """Keep ``result``, the scan of the file ``path`` under ``settings``: ``ranges`` are
        the byte ranges it read, ``ctx`` its parse context (consulted paths, facts),
        ``opened`` the file's stat when the scan opened it. Returns whether it was stored
        (see the module docstring for what never is)."""
        key = _file_key(path, settings)
        began = time.time_ns() - int(result.seconds * 1e9)
        if not key or not cacheable(result, ctx) or _racy(opened, began):
            return False
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return False
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode) or _stat_id(now) != _stat_id(opened):
                return False  # changed while it was scanned
            digest = result.content_id or ""
            if not digest.startswith(("read-sha256:", "sha256:")):
                digest = ranges_id(fd, now.st_size, ranges)
        except OSError:
            return False
        finally:
            os.close(fd)
        consulted = _consulted_states(ctx, began)
        record = _encoded(result)
        if consulted is None or record is None:
            return False
        return self._write(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                os.fsencode(path),
                _stat_id(opened),
                json.dumps(merge_ranges(ranges), separators=(",", ":")),
                digest,
                consulted,
                record,
                time.time(),
            ),
        )

    # -- content-addressed bytes -------------------------------------------------------

    def lookup_content(
        self,
        identity: str,
        name: str,
        siblings_signature: str,
        settings: str,
        *,
        path: str | None = None,
    ) -> ArtifactResult | None:
        """The stored result of the bytes named ``identity`` (``sha256:<hex>``, an ETag, an
        LFS oid: a name that changes with the bytes) scanned as a file called ``name`` among
        siblings summed up by ``siblings_signature``, under ``settings``. ``path``: report
        it there (fingerprints recomputed); by default the path it was stored under."""
        started = time.perf_counter()
        key = _content_key(identity, name, siblings_signature, settings)
        rows = self._query("SELECT consulted, result FROM contents WHERE key = ?", (key,))
        hit = None
        if rows and _consulted_same(rows[0][0]):
            hit = _decoded(rows[0][1])
        if hit is not None and path is not None and path != hit.path:
            from .hfcache import relocate

            hit = relocate(hit, path)
        return self._counted(hit, started)

    def store_content(
        self,
        identity: str,
        name: str,
        siblings_signature: str,
        settings: str,
        result: ArtifactResult,
        ctx: Context,
    ) -> bool:
        """Keep ``result``, the scan (with context ``ctx``) of the bytes named ``identity``
        as the file ``name`` among siblings ``siblings_signature``. Returns whether it was
        stored: not when :func:`cacheable` says no, or a consulted path is racy."""
        if not cacheable(result, ctx):
            return False
        consulted = _consulted_states(ctx, time.time_ns() - int(result.seconds * 1e9))
        record = _encoded(result)
        if consulted is None or record is None:
            return False
        key = _content_key(identity, name, siblings_signature, settings)
        return self._write(
            "INSERT OR REPLACE INTO contents VALUES (?, ?, ?, ?)",
            (key, consulted, record, time.time()),
        )

    # -- bookkeeping -------------------------------------------------------------------

    def _counted(self, hit: ArtifactResult | None, started: float) -> ArtifactResult | None:
        with self._locked():
            if hit is None:
                self.misses += 1
                return None
            self.hits += 1
        return dataclasses.replace(hit, seconds=time.perf_counter() - started)

    def _write(self, sql: str, args: tuple[Any, ...]) -> bool:
        import sqlite3

        with self._locked():
            conn = self._connection()
            if conn is None:
                return False
            try:
                conn.execute(sql, args)
            except sqlite3.Error:
                return False  # busy past the timeout, read-only, full disk: not kept
        return True

    def stats(self) -> dict[str, Any]:
        """``path``, ``entries`` (``files`` + ``contents``), ``bytes`` on disk (database and
        log), this process's ``hits`` and ``misses``, and ``usable``: whether it opens."""
        counts = self._query("SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM contents)")
        files, contents = counts[0] if counts else (0, 0)
        size = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                size += os.stat(self.path + suffix).st_size
        return {
            "path": self.path,
            "entries": files + contents,
            "files": files,
            "contents": contents,
            "bytes": size,
            "hits": self.hits,
            "misses": self.misses,
            "usable": counts is not None,
        }

    def clear(self) -> int:
        """Remove every entry; returns how many there were. A database that cannot be
        opened or read (corrupt) is removed."""
        import sqlite3

        with self._locked():
            conn = self._connection()
            try:
                if conn is None:
                    raise sqlite3.DatabaseError("cannot be opened")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    removed = conn.execute("DELETE FROM files").rowcount
                    removed += conn.execute("DELETE FROM contents").rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError:
                return 0  # busy, read-only: nothing removed
            except sqlite3.DatabaseError:
                self._close()
                self._remove_files()
                self._failed = self._replaced = False
                return 0
            with contextlib.suppress(sqlite3.Error):  # give the space back when alone
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def close(self) -> None:
        """Close this process's connection (the next use opens it again)."""
        with self._locked():
            self._close()
            self._failed = False

    def _close(self) -> None:
        import sqlite3

        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def _after_fork() -> None:
    _DEFAULT_LOCK[0] = threading.Lock()
    for cache in list(_ALL):
        cache._forked()


_DEFAULT: list[ResultCache] = []  # the one in use: a new cache folder closes the old one
_DEFAULT_LOCK = [threading.Lock()]  # scans in threads (remote files) ask for it at once
os.register_at_fork(after_in_child=_after_fork)


def default_cache() -> ResultCache | None:
    """The cache in the user cache directory (``$XDG_CACHE_HOME/modelscan-lite``), or None
    when ``MODELSCAN_LITE_NO_CACHE`` is set. The same object while that path stays the same;
    when it changes, the previous one's connection is closed (no open files pile up)."""
    path = cache_path(DB_NAME)
    if path is None:
        return None
    with _DEFAULT_LOCK[0]:
        if _DEFAULT and _DEFAULT[0].path == str(path):
            return _DEFAULT[0]
        if _DEFAULT:
            _DEFAULT.pop().close()
        _DEFAULT.append(ResultCache(path))
        return _DEFAULT[0]


def open_cache(config: Config) -> ResultCache | None:
    """The cache a scan with ``config`` uses: None when ``config.cache`` is off."""
    return default_cache() if config.cache else None


def cacheable(result: ArtifactResult, ctx: Context) -> bool:
    """Whether another scan of the same bytes is sure to give ``result``: not with an
    error, nor when the scan met the time or memory budget or an internal error."""
    if result.error is not None or ctx.deadline.expired():
        return False
    return not any(f.kind == "anomaly" and f.value in UNREPEATABLE for f in ctx.facts)


# -- the CLI's ``cache clear`` and ``cache stats`` ---------------------------------------


def clear_text() -> str:
    """``modelscan-lite cache clear``: empty the cache, say what was removed."""
    cache = default_cache()
    if cache is None:
        return "the result cache is off (MODELSCAN_LITE_NO_CACHE is set)"
    removed = cache.clear()
    return f"removed {removed} cached result{'' if removed == 1 else 's'} from {cache.path}"


def stats_text() -> str:
    """``modelscan-lite cache stats``: where the cache is, its entries and size."""
    cache = default_cache()
    if cache is None:
        return "the result cache is off (MODELSCAN_LITE_NO_CACHE is set)"
    info = cache.stats()
    lines = [
        f"result cache: {info['path']}",
        f"entries: {info['entries']} ({info['files']} files, {info['contents']} by content)",
        f"size on disk: {info['bytes'] / 1024 / 1024:.1f} MiB",
    ]
    if not info["usable"]:
        lines.append("cannot be opened here: scans run without it")
    return "\n".join(lines)


# -- the settings key --------------------------------------------------------------------

_SETTINGS: dict[tuple[int, int], tuple[Policy, Config, str]] = {}


def settings_key(policy: Policy, config: Config) -> str:
    """A digest of everything besides the file that a result depends on (see the module
    docstring). Computed once per policy and config in a process."""
    memo = _SETTINGS.get((id(policy), id(config)))
    if memo is not None and memo[0] is policy and memo[1] is config:
        return memo[2]
    from .engine import load_rules

    parts = {
        "schema": SCHEMA_VERSION,
        "tool": __version__,
        "code": _code_identity(),
        "python": sys.version,
        "modules": _optional_modules(),
        "rules": load_rules().version,
        "policy": {
            "rules-version": policy.allowlist.version,
            "rules-root": policy.allowlist.root,
            "rules": [[r.id, int(policy.severity.get(r.id, r.severity))] for r in policy.rules],
            "per-path-ignore": _canonical(policy.per_path_ignore),
            "root": policy.path_root,
            "allow": sorted(":".join(ident) for ident in policy.allowlist.extra),
        },
        "config": {
            f.name: _canonical(getattr(config, f.name))
            for f in dataclasses.fields(config)
            if f.name not in NOT_RESULTS
        },
    }
    text = json.dumps(parts, sort_keys=True, default=repr)
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if len(_SETTINGS) >= 8:
        _SETTINGS.clear()
    _SETTINGS[(id(policy), id(config))] = (policy, config, key)  # kept alive: ids stay theirs
    return key


def _canonical(value: Any) -> Any:
    """``value`` as JSON data that is equal exactly when the values are."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, dict):
        return sorted([repr(k), _canonical(v)] for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return sorted(repr(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return repr(value)


@functools.lru_cache(maxsize=1)
def _code_identity() -> str:
    """Names, sizes and mtimes of this package's source files: an edited checkout is
    another tool."""
    digest = hashlib.sha256()
    root = os.path.dirname(os.path.abspath(__file__))
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                full = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    st = os.stat(full)
                    digest.update(f"{full}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _optional_modules() -> list[str]:
    """Where each optional module would be imported from, and that file's size and mtime
    (found, not imported)."""
    import importlib.util

    out = []
    for name in OPTIONAL_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        try:
            st = os.stat(origin) if origin else None
        except OSError:
            st = None
        out.append(f"{name} {origin} {st and st.st_size} {st and st.st_mtime_ns}")
    return out


# -- keys and checks ---------------------------------------------------------------------


def _digest(*parts: str) -> str:
    text = "\0".join(parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _file_key(path: str, settings: str) -> str | None:
    try:
        cwd = os.getcwd()
    except OSError:  # no working directory any more: fingerprints cannot be the same
        return None
    return _digest("file", settings, cwd, path)


def _content_key(identity: str, name: str, siblings: str, settings: str) -> str:
    return _digest("content", settings, identity, name, siblings)


def _stat_id(st: os.stat_result) -> str:
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def _schema_version(conn: sqlite3.Connection) -> str | None:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if found is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
    return str(row[0]) if row else None


def _racy(st: os.stat_result, began_ns: int) -> bool:
    return max(st.st_mtime_ns, st.st_ctime_ns) >= began_ns - RACY_NS


def _fresh_file(path: str, stat_id: str, ranges: str, digest: str, consulted: str) -> bool:
    """The file at ``path`` is the one stored (same stat identity), the stored byte ranges
    re-read now hash to ``digest``, and the consulted paths are as they were."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or _stat_id(st) != stat_id:
            return False
        if digest.startswith("sha256:"):
            same = digest == f"sha256:{fd_sha256(fd)}"
        else:
            spans = [(int(a), int(n)) for a, n in json.loads(ranges)]
            same = digest == ranges_id(fd, st.st_size, spans)
    except (OSError, ValueError, TypeError):
        return False
    finally:
        os.close(fd)
    return same and _consulted_same(consulted)


def _path_state(path: str) -> tuple[str, int]:
    """What a parser sees at ``path`` (absent; else where links take it, what it is and,
    for a file, its stat identity and link count) and its newest timestamp (ns)."""
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        return "absent", 0
    except OSError as exc:
        return f"error {exc.errno}", 0
    newest = max(lst.st_mtime_ns, lst.st_ctime_ns)
    link = "link" if stat.S_ISLNK(lst.st_mode) else "name"
    real = os.path.realpath(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{link} {real!r} dangling {exc.errno}", newest
    newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    if stat.S_ISDIR(st.st_mode):  # which folder: its entries come and go
        return f"{link} {real!r} dir {st.st_dev} {st.st_ino}", newest
    return f"{link} {real!r} {stat.filemode(st.st_mode)} {st.st_nlink} {_stat_id(st)}", newest


def folder_state(root: str, began_ns: int) -> str | None:
    """A digest of everything below the folder ``root`` as the repo analysis would see it:
    every entry's name and :func:`_path_state` (where links take it, its stat identity), in
    walk order. The key of a cached repo analysis (its files' bytes are read whole by the
    analysis, so the stat identity, whose ctime changes with every write, stands for them).
    None when an entry is racy or the folder cannot be walked."""
    digest = hashlib.sha256()
    errors: list[OSError] = []
    for dirpath, dirs, files in os.walk(root, onerror=errors.append):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            full = os.path.join(dirpath, name)
            state, newest = _path_state(full)
            if newest >= began_ns - RACY_NS:
                return None
            rel = os.path.relpath(full, root)
            digest.update(f"{rel}\0{state}\n".encode("utf-8", "surrogateescape"))
    return None if errors else digest.hexdigest()


def _consulted_states(ctx: Context, began_ns: int) -> str | None:
    """The consulted paths with their state, as JSON; None when one is racy."""
    states = []
    for path in dict.fromkeys(ctx.consulted):
        state, newest = _path_state(path)
        if newest >= began_ns - RACY_NS:
            return None
        states.append([path, state])
    return json.dumps(states)


def _consulted_same(record: str) -> bool:
    try:
        return all(_path_state(str(path))[0] == state for path, state in json.loads(record))
    except (ValueError, TypeError):
        return False


# -- ArtifactResult <-> JSON -------------------------------------------------------------


def encode_result(result: ArtifactResult) -> str:
    """``result`` as JSON text, every field included (TypeError for a value JSON cannot
    carry exactly)."""
    return json.dumps(_encode(result), separators=(",", ":"))


def decode_result(text: str) -> ArtifactResult:
    """The result :func:`encode_result` wrote; ValueError, TypeError or KeyError when the
    text is not one."""
    return typing.cast(ArtifactResult, _decoder(ArtifactResult)(json.loads(text)))


def _encoded(result: ArtifactResult) -> str | None:
    try:
        return encode_result(result)
    except (TypeError, ValueError):
        return None


def _decoded(text: str) -> ArtifactResult | None:
    try:
        return decode_result(text)
    except (ValueError, TypeError, KeyError):
        return None


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return _encode(value.value)
    if isinstance(value, (int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode(v) for k, v in value.items()}
    raise TypeError(f"a result holds a {type(value).__name__}")


@functools.cache
def _decoder(tp: Any) -> Callable[[Any], Any]:
    """The function that turns JSON data into a value of the result field type ``tp``,
    checking it all the way (TypeError, ValueError or KeyError when it is not one); built
    once per type."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"cannot decode {tp}")
        inner, nullable = _decoder(options[0]), len(options) < len(typing.get_args(tp))
        return lambda v: None if v is None and nullable else inner(v)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            return lambda v: tuple(item(x) for x in _typed(v, list))
        items = [_decoder(a) for a in args]

        def fixed(v: Any) -> tuple[Any, ...]:
            if len(_typed(v, list)) != len(items):
                raise ValueError(f"{tp}: {len(v)} items")
            return tuple(f(x) for f, x in zip(items, v, strict=True))

        return fixed
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if key_type is not str:
            raise TypeError(f"cannot decode {tp}")
        value = _decoder(value_type)
        return lambda v: {_typed(k, str): value(x) for k, x in _typed(v, dict).items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        cls: Any = tp
        hints = typing.get_type_hints(cls)
        fields = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls)]
        names = {name for name, _ in fields}

        def instance(v: Any) -> Any:
            if _typed(v, dict).keys() != names:
                raise ValueError(f"{cls.__name__}: other fields")
            return cls(**{name: f(v[name]) for name, f in fields})

        return instance
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: tp(_typed(v, int))
    if tp is float:
        return lambda v: float(v if type(v) is int else _typed(v, float))
    if tp in (str, int, bool):
        return lambda v: _typed(v, tp)
    raise TypeError(f"cannot decode {tp}")


def _typed(value: Any, tp: type) -> Any:
    """``value`` when it is exactly a ``tp`` (not a bool for an int); TypeError if not."""
    if type(value) is not tp:
        raise TypeError(f"{tp.__name__} expected, not {type(value).__name__}")
    return value

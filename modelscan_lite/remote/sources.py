"""What a remote spec names, and how to read its files by ranges (through fsspec).

- ``hf://ORG/NAME[@REV][/PATH]`` (``hf://datasets/...``, ``hf://spaces/...``): listed with
  huggingface_hub's ``HfFileSystem`` at the commit the revision resolves to when the scan
  starts, so every file is read from that one commit. ``HF_ENDPOINT`` and ``HF_TOKEN`` are
  honoured (they are huggingface_hub's own settings). Files are read by range requests to
  their ``resolve`` URL through the hub client's session, streamed and cut at the asked
  length: a server that ignores ranges is an error, never a whole download.
- ``https://`` and ``http://``: one file, listed (size, ETag) through fsspec's
  ``HTTPFileSystem`` and read by the same bounded range requests as the hub's files (fsspec's
  own range read keeps a whole ``206`` body in memory, however long a server makes it).
- ``s3://``, ``gs://``, ``az://`` (and any other fsspec protocol whose backend is installed):
  a file, or a folder listed recursively, read with ``cat_file`` ranges.

A listing gives every file's size and, where the store has one, its content identity (the
LFS SHA-256 or git blob id on the hub, an ETag elsewhere): the report's ``content_id``.
"""

from __future__ import annotations

import os
import posixpath
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import RemoteError
from .ranges import Fetch, with_retries

# the fsspec backend each object-store protocol needs, for the error that names it
BACKENDS = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
}
TIMEOUT = 30.0
REQUEST_DEADLINE = 120.0  # seconds one range request may take in all, however it trickles


@dataclass(frozen=True)
class RemoteFile:
    """One file of a remote tree: ``rel`` inside it ('' for a single URL)."""

    rel: str
    size: int
    sha256: str | None = None
    content_id: str | None = None
    locator: str = ""  # what the opener needs (a URL, a path in the filesystem)


@dataclass
class RemoteTree:
    """A remote spec resolved: its files, how to open them, and the name findings carry."""

    spec: str
    display: str
    files: list[RemoteFile]
    opener: Callable[[RemoteFile], Fetch]
    single: bool = False  # the spec names one file: its findings carry ``display`` itself
    repo_id: str | None = None
    revision: str | None = None
    notes: list[str] = field(default_factory=list)


def resolve(spec: str) -> RemoteTree:
    """List ``spec``; RemoteError with a clear message when that cannot be done. The scheme
    is case-insensitive (RFC 3986): ``HF://`` and ``HTTPS://`` are ``hf://`` and ``https://``."""
    scheme, sep, rest = spec.partition("://")
    spec = scheme.lower() + sep + rest
    if spec.startswith("hf://"):
        return _resolve_hf(spec)
    if spec.startswith(("https://", "http://")):
        return _resolve_http(spec)
    return _resolve_fsspec(spec)


def redact(url: str) -> str:
    """A URL fit for a report: no user, password or query (a signed URL carries a token)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    query = "?..." if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")) + query


# -- Hugging Face -------------------------------------------------------------------------


def _resolve_hf(spec: str) -> RemoteTree:
    """Two requests before the first byte: the revision to its commit (``repo_info``), then
    the tree at that commit (``list_repo_tree``, paginated). huggingface_hub's API rather than
    its ``HfFileSystem``, whose ``find`` checks the repo and revision again on the way (four
    round trips instead of two); the reads and the identities are the same."""
    try:
        from huggingface_hub import HfApi, constants
        from huggingface_hub.hf_api import RepoFile
        from huggingface_hub.utils import (  # type: ignore[attr-defined]
            build_hf_headers,
            parse_hf_uri,
        )
    except ImportError:
        raise RemoteError(
            f"{spec}: scanning remote repos needs the remote extra: "
            "pip install 'modelscan-lite[remote]'"
        ) from None
    try:
        uri = parse_hf_uri(spec)
    except Exception as exc:
        raise RemoteError(
            f"{spec}: expected hf://[datasets/]ORG/NAME[@REV][/PATH] ({exc})"
        ) from None
    if getattr(uri, "type", None) not in ("model", "dataset", "space"):
        raise RemoteError(f"{spec}: not a model, dataset or space repo")
    repo_type, repo_id = uri.type, uri.id
    sub = (uri.path_in_repo or "").strip("/")
    api = HfApi(endpoint=constants.ENDPOINT)
    try:
        info = with_retries(
            lambda: api.repo_info(repo_id, repo_type=repo_type, revision=uri.revision)
        )
        commit = info.sha or uri.revision or "main"
        entries = with_retries(
            lambda: list(
                api.list_repo_tree(
                    repo_id, sub or None, recursive=True, revision=commit, repo_type=repo_type
                )
            )
        )
    except Exception as exc:  # the hub client raises many types: all mean "not listed"
        if sub and "EntryNotFound" in type(exc).__name__:
            entries = []  # a file, not a folder: found below
        else:
            raise RemoteError(f"{spec}: {_hub_why(exc, constants.ENDPOINT)}") from None
    single = False
    if sub and not entries:
        try:
            entries = with_retries(
                lambda: list(
                    api.get_paths_info(repo_id, [sub], revision=commit, repo_type=repo_type)
                )
            )
        except Exception as exc:
            raise RemoteError(f"{spec}: {_hub_why(exc, constants.ENDPOINT)}") from None
        single = len(entries) == 1 and isinstance(entries[0], RepoFile)
        if not single:
            raise RemoteError(f"{spec}: no such file or folder in the repo")
    kind = "" if repo_type == "model" else f"{repo_type}s/"
    prefix = constants.REPO_TYPES_URL_PREFIXES.get(repo_type, "")
    files: list[RemoteFile] = []
    for entry in sorted(entries, key=lambda e: e.path):
        if not isinstance(entry, RepoFile):
            continue  # a folder: its files are listed too
        lfs = getattr(entry, "lfs", None)
        sha256 = getattr(lfs, "sha256", None) if lfs is not None else None
        if sha256 is None and isinstance(lfs, dict):
            sha256 = lfs.get("sha256")
        blob = getattr(entry, "blob_id", None)
        content = f"sha256:{sha256}" if sha256 else (f"git-sha1:{blob}" if blob else None)
        url = (  # the hub's resolve route (hf_hub_url's, built from the endpoint in force)
            f"{constants.ENDPOINT.rstrip('/')}/{prefix}{repo_id}/resolve/"
            f"{urllib.parse.quote(commit, safe='')}/{urllib.parse.quote(entry.path)}"
        )
        files.append(RemoteFile(entry.path, int(entry.size or 0), sha256, content, url))
    headers = build_hf_headers()
    display = f"hf://{kind}{repo_id}@{commit}"  # files are named below it, folders included
    if single:
        display += f"/{sub}"

    def opener(rf: RemoteFile) -> Fetch:
        return _http_stream_fetch(rf.locator, headers)

    return RemoteTree(spec, display, files, opener, single, f"{kind}{repo_id}", commit)


def _hub_why(exc: BaseException, endpoint: str) -> str:
    """The hub client's exception as one clear line."""
    name = type(exc).__name__
    if "RepositoryNotFound" in name:
        return "repository not found (a private or gated repo needs HF_TOKEN)"
    if "RevisionNotFound" in name:
        return "revision not found"
    if "GatedRepo" in name:
        return "a gated repo: accept its terms on the hub and set HF_TOKEN"
    if any(word in name for word in ("Connect", "Timeout", "Network", "Offline")) or isinstance(
        exc, ConnectionError | TimeoutError
    ):
        return (
            f"cannot reach {endpoint} ({_why(exc)}); offline? HF_HUB_OFFLINE=1 scans the "
            "copy in the local Hugging Face cache"
        )
    return f"cannot list: {_why(exc)}"


def _http_stream_fetch(url: str, headers: dict[str, str]) -> Fetch:
    """One range request per call, through huggingface_hub's HTTP session (connections kept
    alive, proxies and certificates as the hub client has them). The answer must be 206 (or
    200 for a whole file asked from its start); its body is streamed and cut at the asked
    length, so a server that sends more, or ignores the range, costs at most one chunk past
    it; a request that has not finished after :data:`REQUEST_DEADLINE` seconds is abandoned
    (a server trickling bytes never holds the scan)."""
    from huggingface_hub import constants, get_session

    session = get_session()

    def fetch(start: int, end: int) -> bytes:
        want = end - start
        deadline = time.monotonic() + REQUEST_DEADLINE
        asked = {**headers, "Range": f"bytes={start}-{end - 1}"}
        with session.stream(
            "GET",
            url,
            headers=asked,
            timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
            follow_redirects=True,
        ) as r:
            status = r.status_code
            if status == 200 and start == 0 and _length(r) == want:
                pass  # the whole file was asked for
            elif status != 206:
                if status == 200:
                    raise ValueError(
                        "the server ignored the range request (200 instead of 206); "
                        "refusing to download the whole file"
                    )
                raise _HTTPStatusError(status, f"HTTP {status} for {redact(str(r.url))}")
            chunks: list[bytes] = []
            got = 0
            for chunk in r.iter_bytes():
                chunks.append(chunk)
                got += len(chunk)
                if got >= want:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{got} of {want} bytes after {REQUEST_DEADLINE:.0f} s; abandoned"
                    )
        return b"".join(chunks)[:want]

    return fetch


class _HTTPStatusError(OSError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _length(r: Any) -> int:
    try:
        return int(r.headers.get("content-length", -1))
    except ValueError:
        return -1


# -- plain HTTP(S) --------------------------------------------------------------------------


def _resolve_http(spec: str) -> RemoteTree:
    fs = _filesystem("https" if spec.startswith("https://") else "http", spec)
    try:
        info = fs.info(spec)
    except FileNotFoundError:
        raise RemoteError(f"{redact(spec)}: not found (HTTP 404)") from None
    except Exception as exc:
        raise RemoteError(f"{redact(spec)}: cannot reach: {_why(exc)}") from None
    size = info.get("size")
    if size is None:
        raise RemoteError(
            f"{redact(spec)}: the server gives no size for it (no Content-Length), so it "
            "cannot be read by ranges"
        )
    etag = etag_id(info.get("ETag") or info.get("etag"))
    name = posixpath.basename(urllib.parse.urlsplit(spec).path) or "index"
    rf = RemoteFile(name, int(size), None, etag, spec)

    def opener(f: RemoteFile) -> Fetch:
        # fsspec's own range read keeps a whole 206 body in memory, however long the server
        # makes it: reads go through the bounded streaming fetch instead
        return _http_stream_fetch(f.locator, {})

    return RemoteTree(spec, redact(spec), [rf], opener, single=True)


# -- object stores and any other fsspec protocol ---------------------------------------------


def _resolve_fsspec(spec: str) -> RemoteTree:
    protocol = spec.split("://", 1)[0]
    fs = _filesystem(protocol, spec)
    try:
        single = bool(fs.isfile(spec))
        if single:
            entries = {spec: fs.info(spec)}
            base = posixpath.dirname(fs._strip_protocol(spec))
        else:
            entries = fs.find(spec, detail=True)
            base = fs._strip_protocol(spec).rstrip("/")
    except Exception as exc:
        raise RemoteError(f"{spec}: cannot list: {_why(exc)}") from None
    files = []
    for name, entry in sorted(entries.items()):
        if entry.get("type", "file") != "file":
            continue
        rel = fs._strip_protocol(name)[len(base) :].lstrip("/")
        content = etag_id(entry.get("ETag") or entry.get("etag") or entry.get("md5Hash"))
        files.append(RemoteFile(rel, int(entry.get("size") or 0), None, content, name))
    if not entries:
        raise RemoteError(f"{spec}: no such file or folder")

    def opener(f: RemoteFile) -> Fetch:
        def fetch(start: int, end: int) -> bytes:
            data: bytes = fs.cat_file(f.locator, start=start, end=end)
            return data

        return fetch

    return RemoteTree(spec, spec.rstrip("/"), files, opener, single)


def etag_id(etag: object) -> str | None:
    """``etag:<value>`` for a strong ETag: it changes whenever the bytes do. A weak one
    (``W/...``) only promises an equivalent resource, so it identifies nothing (and nothing
    is cached by it); neither does one with characters a report should not carry."""
    if not isinstance(etag, str):
        return None
    value = etag.strip()
    if value.startswith("W/"):
        return None
    value = value.strip('"')
    if not value or len(value) > 200 or not all("!" <= c <= "~" for c in value):
        return None
    return f"etag:{value}"


def _filesystem(protocol: str, spec: str) -> Any:
    try:
        import fsspec
    except ImportError:
        raise RemoteError(
            f"{redact(spec)}: scanning remote files needs the remote extra: "
            "pip install 'modelscan-lite[remote]'"
        ) from None
    kwargs: dict[str, Any] = {"skip_instance_cache": True}
    if protocol in ("http", "https"):
        try:
            import aiohttp
        except ImportError:
            raise RemoteError(
                f"{redact(spec)}: scanning https URLs needs the remote extra: "
                "pip install 'modelscan-lite[remote]'"
            ) from None
        kwargs["client_kwargs"] = {
            "timeout": aiohttp.ClientTimeout(total=None, sock_read=TIMEOUT, sock_connect=TIMEOUT)
        }
    try:
        return fsspec.filesystem(protocol, **kwargs)
    except (ImportError, ValueError) as exc:
        backend = BACKENDS.get(protocol)
        hint = f" (pip install {backend})" if backend else ""
        raise RemoteError(
            f"{spec}: no fsspec backend for {protocol}://{hint}: {_why(exc)}"
        ) from None


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    name = type(exc).__name__
    if isinstance(exc, OSError) and not text:
        text = os.strerror(exc.errno) if exc.errno else ""
    return f"{name}: {text}" if text else name

"""Tests for tests/remote_servers.py: the local range server and Hub look-alike work with the real
clients (fsspec's HTTPFileSystem, huggingface_hub 2.4.0's HfFileSystem, hf_hub_download and
snapshot_download), and the repo builders write valid files of each format.

Expected listings are computed here from the files' bytes (sha256, git blob ids of content or of
the LFS pointer), independently of the ``Repo`` methods the server uses.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import pickletools
import socket
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.remote_servers import (
    LFS_SUFFIXES,
    LFS_THRESHOLD,
    HubServer,
    RangeNotSatisfiable,
    RangeServer,
    Repo,
    crc32_zeros,
    hub_env,
    make_repo,
    parse_range,
)

MiB = 1 << 20


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def _expected(repo: Repo) -> dict[str, tuple[int, str, str | None]]:
    """relpath -> (size, blob id, lfs sha256 or None), from the bytes on disk."""
    out: dict[str, tuple[int, str, str | None]] = {}
    for rel, path in repo.files.items():
        data = path.read_bytes()
        if len(data) > LFS_THRESHOLD or rel.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            pointer = (
                f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n"
            )
            out[rel] = (len(data), _git_blob(pointer.encode()), sha)
        else:
            out[rel] = (len(data), _git_blob(data), None)
    return out


def _pattern(n: int, seed: int = 1) -> bytes:
    """Deterministic non-repeating bytes (a range read at the wrong offset cannot match)."""
    out = bytearray()
    block = seed.to_bytes(8, "little")
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def _wait_for(pred: Any, what: str) -> None:
    """Wait for server-side bookkeeping to land (not a timing assertion: a generous bound)."""
    deadline = time.monotonic() + 10
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Repo]:
    root = tmp_path_factory.mktemp("repos")
    tiny = make_repo(root, "acme/tiny", "safetensors-sharded", total_size=3 * MiB, shards=2)
    old = make_repo(root, "acme/tiny", "pickle-bin", payload=True, refs=("v1",))
    ds_dir = root / "corpus"
    (ds_dir / "data" / "nested").mkdir(parents=True)
    files = {
        "README.md": ds_dir / "README.md",
        "data/train-00000-of-00001.bin": ds_dir / "data" / "train.bin",
        "data/nested/labels.json": ds_dir / "data" / "nested" / "labels.json",
        "data/big.txt": ds_dir / "data" / "big.txt",  # LFS by size, not by suffix
    }
    files["README.md"].write_text("# corpus\n")
    files["data/train-00000-of-00001.bin"].write_bytes(_pattern(5000, 2))
    files["data/nested/labels.json"].write_text('{"labels": [0, 1]}\n')
    files["data/big.txt"].write_bytes(_pattern(LFS_THRESHOLD + 17, 3))
    corpus = Repo("acme/corpus", files, repo_type="dataset")
    return {"tiny": tiny, "old": old, "corpus": corpus}


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """A 4 GiB sharded safetensors repo, sparse on disk, with fake LFS sha256s."""
    return make_repo(
        tmp_path_factory.mktemp("big"), "acme/big", "safetensors-sharded", total_size=4 << 30
    )


@pytest.fixture
def hub_home(tmp_path: Path) -> Path:
    home = tmp_path / "hf-home"
    home.mkdir()
    return home


@pytest.fixture
def hub(repos: dict[str, Repo], hub_home: Path) -> Iterator[HubServer]:
    with HubServer(repos.values()) as srv, hub_env(srv, hub_home):
        yield srv
    assert srv.errors == []


# --- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=95-1000", (95, 99)),
        ("bytes=99-99", (99, 99)),
        (None, None),
        ("bytes=9-3", None),  # malformed: ignored (whole body)
        ("items=0-9", None),
        ("bytes=a-b", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=0-1,5-6"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


@pytest.mark.parametrize("n", [0, 1, 7, 64, 4096, MiB + 3])
def test_crc32_zeros_matches_zlib(n: int) -> None:
    assert crc32_zeros(n) == zlib.crc32(bytes(n))
    assert crc32_zeros(n, 0xDEADBEEF) == zlib.crc32(bytes(n), 0xDEADBEEF)


def test_repo_rejects_unclean_paths(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"x")
    for bad in ("../x", "/x", "a//x", "a/./x", "a\\x"):
        with pytest.raises(ValueError):
            Repo("acme/x", {bad: f})
    with pytest.raises(ValueError):
        Repo("no-namespace", {"x": f})


def test_revision_is_deterministic_and_follows_content(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 100)
    r1, r2 = Repo("acme/x", {"w.bin": f}), Repo("acme/x", {"w.bin": f})
    assert r1.revision == r2.revision and len(r1.revision) == 40
    assert Repo("acme/x", {"w.bin": f}, refs=("v1",)).revision != r1.revision
    f.write_bytes(b"b" * 100)  # same size, new content (small LFS files are hashed)
    assert Repo("acme/x", {"w.bin": f}).revision != r1.revision


# --- RangeServer over raw HTTP -----------------------------------------------------------------


def test_range_server_protocol_on_one_keepalive_connection(tmp_path: Path) -> None:
    data = _pattern(100_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    with RangeServer({"dir/blob.bin": path}) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]))
        received: list[bytes] = []

        def get(method: str, rng: str | None = None) -> http.client.HTTPResponse:
            conn.request(method, "/dir/blob.bin", headers={"Range": rng} if rng else {})
            resp = conn.getresponse()
            received.append(resp.read())
            return resp

        head = get("HEAD")
        assert head.status == 200 and received[-1] == b""
        assert head.getheader("Content-Length") == str(len(data))
        assert head.getheader("Accept-Ranges") == "bytes"
        etag = head.getheader("ETag")
        assert etag == f'"{srv.etag_for("dir/blob.bin")}"'
        cases = [
            ("bytes=10-19", 206, data[10:20], "bytes 10-19/100000"),
            ("bytes=99990-", 206, data[99990:], "bytes 99990-99999/100000"),
            ("bytes=-7", 206, data[-7:], "bytes 99993-99999/100000"),
            ("bytes=0-999999", 206, data, "bytes 0-99999/100000"),
            ("bytes=100000-", 416, None, "bytes */100000"),
            (None, 200, data, None),
        ]
        for rng, status, body, content_range in cases:
            resp = get("GET", rng)
            assert resp.status == status, rng
            assert resp.getheader("Content-Range") == content_range
            assert resp.getheader("ETag") == etag
            if body is not None:
                assert received[-1] == body
        conn.close()
        file_bodies = sum(len(b) for (_, s, b, _) in cases if b is not None and s != 416)
        assert srv.requests == 1 + len(cases)
        assert srv.connections == 1  # keep-alive: every request on the same connection
        assert srv.bytes_sent == sum(len(b) for b in received)
        assert srv.file_bytes_sent == file_bodies
        tally = srv.per_path["/dir/blob.bin"]
        assert (tally.requests, tally.bytes_sent) == (srv.requests, srv.bytes_sent)
        srv.reset()
        assert (srv.requests, srv.bytes_sent, srv.log) == (0, 0, [])
        assert srv.errors == []


def test_counters_already_include_a_response_the_client_has(tmp_path: Path) -> None:
    """Counters and the log are committed before a response's last byte goes out: reading them
    right after a response never races the server thread (this lagged ~half the time when
    accounting followed the write)."""
    path = tmp_path / "f.bin"
    path.write_bytes(_pattern(1000))
    with RangeServer({"f.bin": path}) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]))
        for i in range(1, 301):
            method = "HEAD" if i % 3 == 0 else "GET"
            conn.request(method, "/f.bin", headers={"Range": "bytes=0-9"})
            conn.getresponse().read()
            assert len(srv.log) == srv.requests == i
            assert srv.file_bytes_sent == 10 * (i - i // 3)
        # the server side of the connection has Nagle off (else ~40 ms per keep-alive response)
        (listener,) = srv._servers
        (sock,) = listener.live.values()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        conn.close()


def test_fail_first_then_serves(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    with RangeServer({"f.bin": path}, fail_first=2) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]))
        statuses = []
        for _ in range(3):
            conn.request("GET", "/f.bin", headers={"Range": "bytes=2-4"})
            resp = conn.getresponse()
            statuses.append((resp.status, resp.read()))
        assert [s for s, _ in statuses] == [503, 503, 206]
        assert statuses[-1][1] == b"234"
        srv.fail_next(1)
        conn.request("HEAD", "/f.bin")
        assert conn.getresponse().status == 503
        conn.close()
        assert srv.requests == 4 and srv.connections == 1 and srv.errors == []


def test_bad_paths_and_disconnects_are_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    big = _sparse(tmp_path / "big.bin", 256 * MiB, b"HEAD")
    secret = tmp_path / "secret.txt"
    secret.write_text("nope")
    with RangeServer({"big.bin": big}) as srv:
        port = int(srv.url.rsplit(":", 1)[1])

        def raw(request: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(request)
                return s.recv(4096)

        assert raw(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404")
        for target in (b"/../secret.txt", b"/big.bin/../../secret.txt", b"/%2e%2e/secret.txt"):
            assert raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
                b"HTTP/1.1 403"
            )
        assert raw(b"POST /big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").startswith(
            b"HTTP/1.1 405"
        )
        assert b"400" in raw(b"garbage\r\n\r\n")  # answered (as HTTP/0.9), not crashed
        # a client that hangs up in the middle of a 256 MiB body
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        _wait_for(lambda: any(r.path == "/big.bin" and r.status == 200 for r in srv.log), "log")
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/big.bin", headers={"Range": "bytes=0-3"})
        assert conn.getresponse().read() == b"HEAD"  # still serving
        conn.close()
        dropped = next(r for r in srv.log if r.path == "/big.bin" and r.status == 200)
        assert dropped.body_bytes < 256 * MiB
        assert srv.errors == []
    assert capfd.readouterr().err == ""


# --- fsspec HTTPFileSystem ---------------------------------------------------------------------


def test_fsspec_http_range_reads_are_exact(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    data = _pattern(3 * MiB + 123)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    with RangeServer({"m/model.bin": path}) as srv:
        fs = fsspec.filesystem("http", skip_instance_cache=True)
        reads = [(0, 8), (1_000_000, 4096), (3 * MiB, 123), (17, 1)]
        with fs.open(srv.url_for("m/model.bin"), "rb", cache_type="none", block_size=4096) as f:
            assert f.size == len(data)
            for offset, n in reads:
                f.seek(offset)
                assert f.read(n) == data[offset : offset + n]
        gets = [r for r in srv.log if r.method == "GET"]
        assert [r.status for r in gets] == [206] * len(reads)
        assert [r.range for r in gets] == [f"bytes={o}-{o + n - 1}" for o, n in reads]
        assert srv.requests == 1 + len(reads)  # one HEAD for the size, one GET per read
        assert srv.file_bytes_sent == sum(n for _, n in reads)
        assert srv.per_path["/m/model.bin"].requests == srv.requests
        assert srv.connections < srv.requests  # aiohttp reused a connection
        assert srv.errors == []


def test_fsspec_refuses_a_server_that_ignores_range(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    size = 256 * MiB
    path = _sparse(tmp_path / "huge.bin", size, b"magic")
    with RangeServer({"huge.bin": path}, ignore_range=True) as srv:
        fs = fsspec.filesystem("http", skip_instance_cache=True)
        with fs.open(srv.url_for("huge.bin"), "rb", cache_type="none", block_size=4096) as f:
            f.seek(MiB)
            with pytest.raises(ValueError, match="support range requests"):
                f.read(16)
        _wait_for(lambda: any(r.method == "GET" for r in srv.log), "the GET to be logged")
        get = next(r for r in srv.log if r.method == "GET")
        assert get.status == 200 and get.range == f"bytes={MiB}-{MiB + 15}"
        assert get.file_bytes < size // 2  # the client hung up instead of downloading
        assert srv.errors == []


# --- HfFileSystem ------------------------------------------------------------------------------


# (hf path of the repo root, which commit it names); "SHA" stands for that commit's sha
LISTING_CASES = [
    ("acme/tiny", "tiny"),
    ("acme/tiny@main", "tiny"),
    ("acme/tiny@v1", "old"),
    ("acme/tiny@SHA", "old"),
    ("datasets/acme/corpus", "corpus"),
    ("datasets/acme/corpus@main", "corpus"),
    ("datasets/acme/corpus@SHA", "corpus"),
]


@pytest.mark.parametrize(("root", "key"), LISTING_CASES)
def test_hffs_find_lists_exactly_the_repo(
    hub: HubServer, repos: dict[str, Repo], root: str, key: str
) -> None:
    root = root.replace("SHA", repos[key].revision)
    fs = hub.filesystem()
    found = fs.find(root, detail=True)
    expected = _expected(repos[key])
    assert set(found) == {f"{root}/{rel}" for rel in expected}
    for rel, (size, blob_id, sha) in expected.items():
        info = found[f"{root}/{rel}"]
        assert (info["type"], info["size"], info["blob_id"]) == ("file", size, blob_id)
        assert info["xet_hash"] is None
        if sha is None:
            assert info["lfs"] is None
        else:
            assert (info["lfs"]["sha256"], info["lfs"]["size"]) == (sha, size)
    # info() of a file answers from the listing of its parent, lfs record included
    rel = max(expected, key=lambda r: expected[r][0])
    info = hub.filesystem().info(f"{root}/{rel}")
    assert info["size"] == expected[rel][0]
    assert (info["lfs"] or {}).get("sha256") == expected[rel][2]


def test_hffs_ls_info_and_missing_paths(hub: HubServer, repos: dict[str, Repo]) -> None:
    fs = hub.filesystem()
    top = {o["name"]: o["type"] for o in fs.ls("datasets/acme/corpus")}
    assert top == {
        "datasets/acme/corpus/README.md": "file",
        "datasets/acme/corpus/data": "directory",
    }
    assert fs.ls("datasets/acme/corpus/data/nested", detail=False) == [
        "datasets/acme/corpus/data/nested/labels.json"
    ]
    assert fs.info("datasets/acme/corpus/data")["type"] == "directory"
    assert (
        fs.info("acme/tiny@v1/pytorch_model.bin")["size"]
        == repos["old"].files["pytorch_model.bin"].stat().st_size
    )
    for missing in (
        "acme/tiny/nope.bin",
        "acme/nope",
        "acme/tiny@nope/config.json",
        "datasets/acme/tiny",
    ):
        with pytest.raises(FileNotFoundError):
            hub.filesystem().info(missing)
    # expand_info goes through paths-info (POST) and commits
    info = hub.filesystem(expand_info=True).info("acme/tiny/config.json")
    assert info["last_commit"].oid == repos["tiny"].revision
    assert any(r.method == "POST" and "/paths-info/" in r.path for r in hub.log)


def test_hffs_range_read_is_exact_and_small(hub: HubServer, repos: dict[str, Repo]) -> None:
    fs = hub.filesystem()
    rel = "data/big.txt"
    data = repos["corpus"].files[rel].read_bytes()
    path = f"datasets/acme/corpus@main/{rel}"
    fs.info(path)
    hub.reset()
    with fs.open(path, "rb", block_size=1024, cache_type="none") as f:
        f.seek(LFS_THRESHOLD)
        assert f.read(17) == data[LFS_THRESHOLD:]
        f.seek(5)
        assert f.read(100) == data[5:105]
    assert [(r.method, r.status, r.range) for r in hub.log] == [
        ("GET", 206, f"bytes={LFS_THRESHOLD}-{LFS_THRESHOLD + 16}"),
        ("GET", 206, "bytes=5-104"),
    ]
    assert hub.file_bytes_sent == 117


def test_hffs_range_reads_of_a_4gib_sparse_shard(big_repo: Repo, hub_home: Path) -> None:
    shard = "model-00001-of-00002.safetensors"
    path = big_repo.files[shard]
    assert path.stat().st_size > 1 << 30
    with path.open("rb") as f:
        head = f.read(8)
        header_len = struct.unpack("<Q", head)[0]
        header = f.read(header_len)
    with HubServer([big_repo]) as hub, hub_env(hub, hub_home):
        fs = hub.filesystem()
        info = fs.find("acme/big", detail=True)[f"acme/big/{shard}"]
        assert info["size"] == path.stat().st_size
        assert info["lfs"]["sha256"] == big_repo.sha256(shard)  # the supplied (fake) one
        hub.reset()
        with fs.open(f"acme/big/{shard}", "rb", block_size=4096, cache_type="none") as f:
            assert struct.unpack("<Q", f.read(8))[0] == header_len
            assert json.loads(f.read(header_len))["model.embed_tokens.weight"]["dtype"] == "BF16"
            f.seek(info["size"] - 4)
            assert f.read(4) == b"\0\0\0\0"
        assert json.loads(header)  # the same bytes as on disk
        assert hub.file_bytes_sent == 8 + header_len + 4
        assert hub.errors == []


def test_hffs_does_not_check_for_206_known_hazard(repos: dict[str, Repo], hub_home: Path) -> None:
    """huggingface_hub 2.4.0's HfFileSystemFile._fetch_range accepts a 200: a server (or proxy)
    that ignores Range makes it download the whole file and return it from offset 0. Remote
    scanning must check the length/status itself; if this test fails, the client got stricter."""
    repo = repos["corpus"]
    rel = "data/big.txt"
    data = repo.files[rel].read_bytes()
    with HubServer([repo], ignore_range=True) as hub, hub_env(hub, hub_home):
        fs = hub.filesystem()
        with fs.open(f"datasets/acme/corpus/{rel}", "rb", block_size=64, cache_type="none") as f:
            f.seek(1000)
            got = f.read(20)
        assert got != data[1000:1020] and got == data  # wrong bytes, whole body
        assert hub.file_bytes_sent >= len(data)


# --- downloads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lfs_redirect", [False, True], ids=["direct", "cdn-redirect"])
def test_snapshot_download_is_byte_exact(
    repos: dict[str, Repo], hub_home: Path, lfs_redirect: bool
) -> None:
    from huggingface_hub import snapshot_download

    with HubServer(repos.values(), lfs_redirect=lfs_redirect) as hub, hub_env(hub, hub_home):
        for key, repo_id, repo_type, revision in [
            ("tiny", "acme/tiny", "model", None),
            ("old", "acme/tiny", "model", "v1"),
            ("corpus", "acme/corpus", "dataset", "main"),
        ]:
            repo = repos[key]
            folder = Path(
                snapshot_download(
                    repo_id,
                    repo_type=repo_type,
                    revision=revision,
                    cache_dir=hub_home / "cache",
                    endpoint=hub.url,
                    token=False,
                )
            )
            assert folder.name == repo.revision
            got = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
            assert got == set(repo.files)
            for rel, path in repo.files.items():
                assert (folder / rel).read_bytes() == path.read_bytes(), rel
        cdn = [r for r in hub.log if r.role == "cdn"]
        lfs_gets = sum(
            1
            for repo in repos.values()
            for rel in repo.files
            if _expected(repo)[rel][2] is not None
        )
        assert len(cdn) == (lfs_gets if lfs_redirect else 0)
        assert hub.errors == []


def test_hf_hub_download_uses_hub_env_endpoint(repos: dict[str, Repo], hub_home: Path) -> None:
    from huggingface_hub import constants, hf_hub_download

    before = constants.ENDPOINT
    with HubServer(repos.values()) as hub, hub_env(hub, hub_home):
        assert os.environ["HF_ENDPOINT"] == hub.url == constants.ENDPOINT
        path = hf_hub_download("acme/tiny", "config.json", token=False)  # no endpoint argument
        assert Path(path).read_bytes() == repos["tiny"].files["config.json"].read_bytes()
        assert Path(path).is_relative_to(hub_home)
        heads = [r for r in hub.log if r.method == "HEAD"]
        assert len(heads) == 1 and heads[0].path == "/acme/tiny/resolve/main/config.json"
    assert before == constants.ENDPOINT


def test_resolve_headers_and_no_xet(hub: HubServer, repos: dict[str, Repo]) -> None:
    tiny = repos["tiny"]
    shard = "model-00001-of-00002.safetensors"
    expected = _expected(tiny)
    conn = http.client.HTTPConnection("127.0.0.1", int(hub.url.rsplit(":", 1)[1]))
    for rel, etag in ((shard, expected[shard][2]), ("config.json", expected["config.json"][1])):
        conn.request("HEAD", f"/acme/tiny/resolve/main/{rel}")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        assert resp.getheader("X-Repo-Commit") == tiny.revision
        assert resp.getheader("ETag") == f'"{etag}"'
        assert resp.getheader("Content-Length") == str(expected[rel][0])
        assert not [h for h in resp.headers if h.lower().startswith("x-xet")]
    conn.request("GET", "/api/models/acme/tiny/tree/main?recursive=true")
    tree = json.loads(conn.getresponse().read())
    assert tree and all("xetHash" not in e for e in tree)
    conn.request("GET", "/acme/tiny/resolve/main/missing.bin")
    resp = conn.getresponse()
    resp.read()
    assert (resp.status, resp.getheader("X-Error-Code")) == (404, "EntryNotFound")
    conn.close()


def test_odd_file_names_round_trip(tmp_path: Path, hub_home: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    from huggingface_hub import snapshot_download

    names = ["a b#c?.bin", "dir name/ü.json", "x%20y.txt", "[x].pt", "k;v=1&2+3.txt", "@at"]
    files = {}
    for i, name in enumerate(names):
        files[name] = tmp_path / f"f{i}"
        files[name].write_bytes(_pattern(100 + i, i))
    repo = Repo("acme/odd", files)
    with HubServer([repo]) as hub, hub_env(hub, hub_home):
        fs = hub.filesystem()
        assert sorted(fs.find("acme/odd")) == sorted(f"acme/odd/{n}" for n in names)
        for name in names:
            assert fs.cat_file(f"acme/odd/{name}") == files[name].read_bytes(), name
        folder = Path(snapshot_download("acme/odd", cache_dir=hub_home / "c", token=False))
        for name in names:
            assert (folder / name).read_bytes() == files[name].read_bytes(), name
        assert hub.errors == []
    with RangeServer(files) as srv:
        http = fsspec.filesystem("http", skip_instance_cache=True)
        for name in names:
            assert http.cat_file(srv.url_for(name)) == files[name].read_bytes(), name
        assert srv.errors == []


def test_tree_pagination(repos: dict[str, Repo], hub_home: Path) -> None:
    with HubServer(repos.values(), page_size=2) as hub, hub_env(hub, hub_home):
        found = hub.filesystem().find("acme/tiny", detail=False)
        assert found == sorted(f"acme/tiny/{rel}" for rel in repos["tiny"].files)
        pages = [r for r in hub.log if "/tree/" in r.path]
        assert len(pages) == 4 and sum("cursor=" in r.query for r in pages) == 3


# --- builders ----------------------------------------------------------------------------------


def _safetensors_header(path: Path) -> tuple[int, dict[str, Any]]:
    with path.open("rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header: dict[str, Any] = json.loads(f.read(n))
    return n, header


def test_safetensors_sharded_repo_is_consistent(repos: dict[str, Repo], big_repo: Repo) -> None:
    for repo in (repos["tiny"], big_repo):
        files = repo.files
        index = json.loads(files["model.safetensors.index.json"].read_bytes())
        config = json.loads(files["config.json"].read_bytes())
        seen: dict[str, str] = {}
        data_total = 0
        for shard in sorted(set(index["weight_map"].values())):
            hlen, header = _safetensors_header(files[shard])
            assert header.pop("__metadata__") == {"format": "pt"}
            end = max(t["data_offsets"][1] for t in header.values())
            assert files[shard].stat().st_size == 8 + hlen + end
            data_total += end
            seen.update({name: shard for name in header})
            embed = header.get("model.embed_tokens.weight")
            if embed:
                assert embed["shape"] == [config["vocab_size"], config["hidden_size"]]
        assert seen == index["weight_map"]
        assert index["metadata"]["total_size"] == data_total
        layers = {n.split(".")[2] for n in seen if n.startswith("model.layers.")}
        assert len(layers) == config["num_hidden_layers"]
    big_shard = next(p for r, p in big_repo.files.items() if r.endswith(".safetensors"))
    assert big_shard.stat().st_blocks * 512 < big_shard.stat().st_size // 100  # sparse
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(repos["tiny"].files["tokenizer.json"]))
    assert tok.decode(tok.encode("the cat").ids) == "the cat"


def test_pickle_bin_and_sparse_pytorch_zip(repos: dict[str, Repo], tmp_path: Path) -> None:
    with zipfile.ZipFile(repos["old"].files["pytorch_model.bin"]) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names[0] == "archive/data.pkl" and "archive/data/0" in names
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(z.read("archive/data.pkl"))]
        assert ("GLOBAL", "posix system") in ops
        for info in z.infolist():  # torch.save alignment: data starts on a 64-byte boundary
            raw = repos["old"].files["pytorch_model.bin"].read_bytes()
            nlen, elen = struct.unpack_from("<HH", raw, info.header_offset + 26)
            assert (info.header_offset + 30 + nlen + elen) % 64 == 0
    clean = make_repo(tmp_path, "acme/clean", "pickle-bin")
    with zipfile.ZipFile(clean.files["pytorch_model.bin"]) as z:
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(z.read("archive/data.pkl"))]
        assert ("GLOBAL", "posix system") not in ops
    size = 40 * MiB
    sparse = make_repo(tmp_path, "acme/sparse", "pytorch-zip", total_size=size)
    path = sparse.files["pytorch_model.bin"]
    assert path.stat().st_blocks * 512 < MiB
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("archive/data/0")
        assert info.file_size == size and info.compress_type == zipfile.ZIP_STORED
        assert zlib.crc32(bytes(size)) == info.CRC
        assert z.testzip() is None


def test_gguf_and_onnx_repos(repos: dict[str, Repo], tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    onnx = pytest.importorskip("onnx")
    g = make_repo(tmp_path, "acme/g", "gguf")
    reader = gguf.GGUFReader(str(g.files["model.gguf"]))
    assert [t.name for t in reader.tensors] == [
        "token_embd.weight",
        "blk.0.attn_norm.weight",
        "output_norm.weight",
        "output.weight",
    ]
    again = make_repo(tmp_path / "again", "acme/g", "gguf")
    assert again.revision == g.revision  # deterministic bytes
    o = make_repo(tmp_path, "acme/o", "onnx")
    model = onnx.load(str(o.files["model.onnx"]))
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Add"]
    assert {".gitattributes", "README.md"} <= set(g.files) & set(o.files)

"""Builds every sample under ``samples/<RULE-ID>/`` from bytes, deterministically.

``bad-*`` samples must produce their folder's rule ID, ``ok-*`` samples must not, and
``todo-*`` samples document known gaps (expected to fail, with a reason). Payloads are
harmless: the worst they would do if someone loaded them is create an empty marker file in
the temp directory. Nothing here imports pickle to write a sample: streams are assembled from
opcodes, archives with ``zipfile``/``tarfile`` and fixed timestamps, headers with ``struct``.

Usage: ``python samples/make_samples.py [OUTDIR]`` (default: this folder).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import sys
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

MARKER_CMD = "touch ${TMPDIR:-/tmp}/modelscan-lite-sample-marker"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# --- a tiny pickle assembler --------------------------------------------------------------


def PROTO(n: int) -> bytes:
    return b"\x80" + bytes([n])


def FRAME(n: int) -> bytes:
    return b"\x95" + struct.pack("<Q", n)


def GLOBAL(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def INST(module: str, name: str) -> bytes:
    return b"i" + module.encode() + b"\n" + name.encode() + b"\n"


def U(s: str) -> bytes:
    data = s.encode()
    if len(data) < 256:
        return b"\x8c" + bytes([len(data)]) + data
    return b"X" + struct.pack("<I", len(data)) + data


def SHORT_BINSTRING(s: str) -> bytes:
    return b"U" + bytes([len(s)]) + s.encode("latin-1")


def BINSTRING(s: str) -> bytes:
    return b"T" + struct.pack("<i", len(s)) + s.encode("latin-1")


def STRING(s: str) -> bytes:
    return b"S'" + s.encode("latin-1") + b"'\n"


def UNICODE(s: str) -> bytes:
    return b"V" + s.encode("raw-unicode-escape") + b"\n"


def BINBYTES(b: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(b)) + b


def BINBYTES8(b: bytes) -> bytes:
    return b"\x8e" + struct.pack("<Q", len(b)) + b


def BININT1(n: int) -> bytes:
    return b"K" + bytes([n])


def BININT(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def LONG1(n: int) -> bytes:
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def BINPUT(i: int) -> bytes:
    return b"q" + bytes([i])


def LONG_BINPUT(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)


def PUT(i: int) -> bytes:
    return b"p" + str(i).encode() + b"\n"


def BINGET(i: int) -> bytes:
    return b"h" + bytes([i])


def LONG_BINGET(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)


def GET(i: int) -> bytes:
    return b"g" + str(i).encode() + b"\n"


MARK, STOP, POP, NONE, REDUCE, BUILD = b"(", b".", b"0", b"N", b"R", b"b"
TUPLE, EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"t", b")", b"\x85", b"\x86", b"\x87"
EMPTY_DICT, SETITEM, SETITEMS, EMPTY_LIST, APPEND = b"}", b"s", b"u", b"]", b"a"
STACK_GLOBAL, MEMOIZE, NEWOBJ, NEWOBJ_EX, OBJ = b"\x93", b"\x94", b"\x81", b"\x92", b"o"
NEWTRUE, NEWFALSE, BINPERSID = b"\x88", b"\x89", b"Q"
NEXT_BUFFER, READONLY_BUFFER = b"\x97", b"\x98"


def EXT1(code: int) -> bytes:
    return b"\x82" + bytes([code])


def call(module: str, name: str, *args: bytes) -> bytes:
    """GLOBAL module.name, then args as a MARKed tuple, then REDUCE."""
    return GLOBAL(module, name) + MARK + b"".join(args) + TUPLE + REDUCE


def pk(*parts: bytes, proto: int = 2) -> bytes:
    return (PROTO(proto) if proto >= 2 else b"") + b"".join(parts) + STOP


def payload_system(module: str = "posix", name: str = "system") -> bytes:
    return pk(call(module, name, U(MARKER_CMD)), proto=2)


BENIGN_DICT = pk(
    EMPTY_DICT, BINPUT(0), MARK, U("epoch"), BININT1(3), U("lr"), U("0.001"), SETITEMS, proto=2
)

# --- PyTorch zip layout ---------------------------------------------------------------------


def tensor_entry(key: str, storage_key: str = "0") -> bytes:
    """One ``key -> _rebuild_tensor_v2(persistent storage, ...)`` pair of a state dict."""
    return (
        U(key)
        + GLOBAL("torch._utils", "_rebuild_tensor_v2")
        + MARK
        + MARK
        + U("storage")
        + GLOBAL("torch", "FloatStorage")
        + U(storage_key)
        + U("cpu")
        + BININT1(4)
        + TUPLE
        + BINPERSID
        + BININT1(0)
        + BININT1(2)
        + BININT1(2)
        + TUPLE2
        + BININT1(2)
        + BININT1(1)
        + TUPLE2
        + NEWFALSE
        + GLOBAL("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + TUPLE
        + REDUCE
    )


STATE_DICT = pk(
    GLOBAL("collections", "OrderedDict"),
    EMPTY_TUPLE,
    REDUCE,
    BINPUT(0),
    MARK,
    tensor_entry("linear.weight"),
    SETITEMS,
    proto=2,
)
FLOATS = struct.pack("<4f", 0.5, -1.0, 2.0, 0.25)


def torch_zip(
    members: list[tuple[str, bytes]],
    *,
    deflate: frozenset[str] = frozenset(),
    root: str = "archive",
) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are on purpose in some samples
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members:
                full = f"{root}/{name}"
                info = zipfile.ZipInfo(full, ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
    return buf.getvalue()


def torch_members(data_pkl: bytes = STATE_DICT) -> list[tuple[str, bytes]]:
    return [
        ("data.pkl", data_pkl),
        ("byteorder", b"little"),
        ("data/0", FLOATS),
        ("version", b"3\n"),
        (".data/serialization_id", b"1234567890"),
    ]


def patch_zip_entry(data: bytes, name: str, fn: Callable[[bytearray, int, bool], None]) -> bytes:
    """Apply ``fn(buffer, header_offset, is_central)`` to the local and central headers of
    ``name``."""
    out = bytearray(data)
    raw = name.encode()
    pos = 0
    while True:
        i = out.find(b"PK\x03\x04", pos)
        if i < 0:
            break
        nlen = struct.unpack_from("<H", out, i + 26)[0]
        if bytes(out[i + 30 : i + 30 + nlen]) == raw:
            fn(out, i, False)
        pos = i + 4
    pos = 0
    while True:
        i = out.find(b"PK\x01\x02", pos)
        if i < 0:
            break
        nlen = struct.unpack_from("<H", out, i + 28)[0]
        if bytes(out[i + 46 : i + 46 + nlen]) == raw:
            fn(out, i, True)
        pos = i + 4
    return bytes(out)


def set_flag(buf: bytearray, at: int, central: bool) -> None:
    off = at + (8 if central else 6)
    struct.pack_into("<H", buf, off, struct.unpack_from("<H", buf, off)[0] | 0x1)


def break_crc(buf: bytearray, at: int, central: bool) -> None:
    off = at + (16 if central else 14)
    struct.pack_into("<I", buf, off, struct.unpack_from("<I", buf, off)[0] ^ 0xDEADBEEF)


def rename_local(buf: bytearray, at: int, central: bool) -> None:
    if not central:
        nlen = struct.unpack_from("<H", buf, at + 26)[0]
        buf[at + 30 + nlen - 1] = ord("X")


def generic_zip(
    members: list[tuple[str, bytes]],
    *,
    symlinks: frozenset[str] = frozenset(),
    deflate: bool = False,
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            mode = 0o120777 if name in symlinks else 0o100644
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def tar_bytes(members: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """``(name, data, link_target)``: data None with a target makes a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data, target in members:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uname = info.gname = ""
            if target is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = target
                tf.addfile(info)
            else:
                assert data is not None
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


# --- NumPy and joblib ---------------------------------------------------------------------


def npy(descr: str, shape: tuple[int, ...], body: bytes, *, header: str | None = None) -> bytes:
    text = header or f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1") + body


def joblib_array(shape_n: int, dtype: str, *, then: bytes) -> bytes:
    """A joblib-style pickle: a NumpyArrayWrapper, its raw buffer inline, then ``then``."""
    wrapper = (
        PROTO(4)
        + EMPTY_DICT
        + MEMOIZE
        + MARK
        + U("a")
        + U("joblib.numpy_pickle")
        + U("NumpyArrayWrapper")
        + STACK_GLOBAL
        + EMPTY_TUPLE
        + NEWOBJ
        + EMPTY_DICT
        + MARK
        + U("subclass")
        + U("numpy")
        + U("ndarray")
        + STACK_GLOBAL
        + U("shape")
        + (BININT1(shape_n) if shape_n < 256 else BININT(shape_n))
        + TUPLE1
        + U("order")
        + U("C")
        + U("dtype")
        + U("numpy")
        + U("dtype")
        + STACK_GLOBAL
        + U(dtype)
        + NEWFALSE
        + NEWTRUE
        + TUPLE3
        + REDUCE
        + MARK
        + BININT1(3)
        + U("<")
        + NONE
        + NONE
        + NONE
        + BININT(-1)
        + BININT(-1)
        + BININT1(0)
        + TUPLE
        + BUILD
        + U("allow_mmap")
        + NEWTRUE
        + U("numpy_array_alignment_bytes")
        + BININT1(16)
        + SETITEMS
        + BUILD
    )
    body = bytes([3]) + b"\0" * 3 + b"\x07" * (8 * shape_n)  # padding length, padding, data
    return wrapper + body + then


# --- the samples -----------------------------------------------------------------------------


def samples() -> dict[str, bytes]:
    s: dict[str, bytes] = {}
    cmd = U(MARKER_CMD)

    # P101 code execution
    s["P101/bad-posix-system.pkl"] = payload_system()
    s["P101/bad-os-system-proto0.pkl"] = (
        GLOBAL("os", "system") + MARK + STRING(MARKER_CMD) + TUPLE + REDUCE + STOP
    )
    s["P101/bad-dotted-pathlib-os-system.pkl"] = pk(
        U("pathlib"), U("os.system"), STACK_GLOBAL, cmd, TUPLE1, REDUCE, proto=4
    )
    s["P101/bad-dotted-tempfile-_os-system.pkl"] = pk(
        U("tempfile"), U("_os.system"), STACK_GLOBAL, cmd, TUPLE1, REDUCE, proto=4
    )
    s["P101/bad-stack-global-from-memo.pkl"] = pk(
        U("posix"),
        BINPUT(1),
        U("system"),
        LONG_BINPUT(2),
        POP,
        POP,
        EMPTY_DICT,
        POP,
        BINGET(1),
        LONG_BINGET(2),
        STACK_GLOBAL,
        cmd,
        TUPLE1,
        REDUCE,
        proto=4,
    )
    s["P101/bad-stack-global-string-opcodes.pkl"] = pk(
        SHORT_BINSTRING("subprocess"),
        MEMOIZE,
        BINSTRING("check_output"),
        MEMOIZE,
        STACK_GLOBAL,
        MARK,
        STRING("touch"),
        UNICODE("/tmp/modelscan-lite-sample-marker"),
        TUPLE,
        TUPLE1,
        REDUCE,
        proto=4,
    )
    s["P101/bad-stack-global-at-offset-0.pkl"] = (
        U("builtins") + U("exec") + STACK_GLOBAL + U("pass") + TUPLE1 + REDUCE + STOP
    )
    s["P101/bad-inst-subprocess.pkl"] = MARK + STRING("touch") + INST("subprocess", "Popen") + STOP
    s["P101/bad-obj-os-system.pkl"] = pk(MARK, GLOBAL("os", "system"), cmd, OBJ, proto=1)
    s["P101/bad-newobj-ex-popen.pkl"] = pk(
        GLOBAL("subprocess", "Popen"), MARK, U("true"), TUPLE, EMPTY_DICT, NEWOBJ_EX, proto=4
    )
    s["P101/bad-call-result-popped.pkl"] = pk(
        call("posix", "system", cmd), POP, EMPTY_DICT, proto=2
    )
    s["P101/bad-pip-main.pkl"] = pk(call("pip", "main", MARK, U("install"), U("x"), TUPLE), proto=2)
    s["P101/bad-pydoc-pipepager.pkl"] = pk(call("pydoc", "pipepager", U("x"), cmd), proto=2)
    s["P101/bad-timeit.pkl"] = pk(
        call("timeit", "timeit", U("pass"), U("pass"), BININT1(1)), proto=2
    )
    s["P101/bad-runpy.pkl"] = pk(call("runpy", "run_path", U("/tmp/x.py")), proto=2)
    s["P101/bad-torch-inductor.pkl"] = pk(
        call("torch._inductor.codecache", "compile_file", U("x"), U("y")), proto=2
    )
    s["P101/bad-builtin-py2-alias.pkl"] = (
        GLOBAL("__builtin__", "eval") + MARK + STRING("1+1") + TUPLE + REDUCE + STOP
    )
    s["P101/bad-torch-zip.pt"] = torch_zip(torch_members(payload_system()))
    s["P101/bad-torchscript-constants.pt"] = torch_zip(
        [("data.pkl", STATE_DICT), ("constants.pkl", payload_system()), ("code/m.py", b"")],
        root="ts",
    )
    s["P101/bad-deflated-member.pt"] = torch_zip(
        torch_members(payload_system()), deflate=frozenset({"data.pkl"})
    )
    s["P101/bad-protocol0-member-no-pkl-name.pt"] = torch_zip(
        [
            *torch_members(),
            (
                "extra/notes.bin",
                GLOBAL("os", "system") + MARK + STRING(MARKER_CMD) + TUPLE + REDUCE + STOP,
            ),
        ]
    )
    s["P101/bad-legacy-payload-in-fourth.pt"] = legacy_torch(main=payload_system())
    s["P101/bad-legacy-tar-layout.tar"] = legacy_tar(main=payload_system())
    s["P101/bad-raw-pickle-named-pytorch_model.bin"] = payload_system()
    s["P101/bad-joblib-payload-after-buffer.joblib"] = joblib_array(
        4, "f8", then=U("b") + call("posix", "system", cmd) + SETITEMS + STOP
    )
    s["P101/bad-gzip-joblib.joblib"] = gz(payload_system())
    s["P101/bad-zlib.pkl.z"] = zlib.compress(payload_system(), 6)
    s["P101/bad-bz2.pkl.bz2"] = bz2.compress(payload_system(), 9)
    s["P101/bad-xz.pkl.xz"] = lzma.compress(payload_system(), preset=6)
    s["P101/bad-lzma-alone.pkl.lzma"] = lzma.compress(payload_system(), format=lzma.FORMAT_ALONE)
    s["P101/bad-zip-in-zip.zip"] = generic_zip(
        [("inner.zip", generic_zip([("model.pkl", payload_system())]))]
    )
    s["P101/bad-tar-gz.tar.gz"] = gz(tar_bytes([("model/weights.pkl", payload_system(), None)]))
    s["P101/bad-npz-object-array.npz"] = generic_zip(
        [("arr.npy", npy("|O", (1,), payload_system()))]
    )
    s["P101/bad-payload-no-extension"] = payload_system()
    s["P101/bad-persistent-id-carrier.pkl"] = pk(
        MARK, U("storage"), GLOBAL("posix", "system"), TUPLE, BINPERSID, proto=2
    )
    s["P101/ok-state-dict.pt"] = torch_zip(torch_members())
    s["P101/ok-plain-dict.pkl"] = BENIGN_DICT

    # P102 resolvers
    s["P102/bad-getattr-import-module.pkl"] = pk(
        GLOBAL("builtins", "getattr"),
        MARK,
        call("importlib", "import_module", U("os")),
        U("system"),
        TUPLE,
        REDUCE,
        MARK,
        cmd,
        TUPLE,
        REDUCE,
        proto=2,
    )
    s["P102/bad-pkgutil-resolve-name.pkl"] = pk(
        call("pkgutil", "resolve_name", U("os:system")), MARK, cmd, TUPLE, REDUCE, proto=2
    )
    s["P102/bad-operator-attrgetter.pkl"] = pk(
        call("operator", "attrgetter", U("system")),
        MARK,
        GLOBAL("os", "path"),
        TUPLE,
        REDUCE,
        proto=2,
    )
    s["P102/bad-functools-partial.pkl"] = pk(
        call("functools", "partial", GLOBAL("os", "system"), cmd), EMPTY_TUPLE, REDUCE, proto=2
    )
    s["P101/bad-stash-in-dict-then-memo.pkl"] = pk(
        GLOBAL("collections", "OrderedDict"),
        EMPTY_TUPLE,
        REDUCE,
        BINPUT(0),
        U("os"),
        BINPUT(1),
        U("system"),
        BINPUT(2),
        SETITEM,
        POP,
        BINGET(1),
        BINGET(2),
        STACK_GLOBAL,
        cmd,
        TUPLE1,
        REDUCE,
        proto=4,
    )
    s["P102/ok-plain-dict.pkl"] = BENIGN_DICT

    # P103 nested deserializers
    s["P103/bad-pickle-loads-embedded.pkl"] = pk(
        call("pickle", "loads", BINBYTES(payload_system())), proto=3
    )
    s["P103/bad-marshal-loads.pkl"] = pk(call("marshal", "loads", BINBYTES(b"\xe3\0\0\0")), proto=3)
    s["P103/bad-torch-load.pkl"] = pk(call("torch", "load", U("/tmp/other.pt")), proto=2)
    s["P101/bad-legacy-magic-from-eval.pt"] = legacy_torch(
        magic=call("builtins", "eval", U("0x1950a86a20f9469cfc6c"))
    )
    s["P103/ok-plain-dict.pkl"] = BENIGN_DICT

    # P104 system access
    s["P104/bad-builtins-open.pkl"] = pk(call("builtins", "open", U("/tmp/x"), U("w")), proto=2)
    s["P104/bad-io-fileio.pkl"] = pk(call("_io", "FileIO", U("/tmp/x"), U("w")), proto=2)
    s["P104/bad-socket.pkl"] = pk(
        call("socket", "create_connection", MARK, U("127.0.0.1"), BININT(9), TUPLE), proto=2
    )
    s["P104/bad-http-client.pkl"] = pk(
        call("http.client", "HTTPConnection", U("example.com")), proto=2
    )
    s["P104/bad-logging-filehandler.pkl"] = pk(call("logging", "FileHandler", U("/tmp/x")), proto=2)
    s["P104/ok-plain-dict.pkl"] = BENIGN_DICT

    # P105 unknown globals
    s["P105/bad-unknown-module.pkl"] = pk(call("shelve_helpers", "run", U("x")), proto=2)
    s["P105/bad-main-class.pkl"] = pk(GLOBAL("__main__", "MyNet"), EMPTY_TUPLE, NEWOBJ, proto=2)
    s["P105/ok-allowlisted-ordered-dict.pkl"] = pk(
        GLOBAL("collections", "OrderedDict"), EMPTY_TUPLE, REDUCE, proto=2
    )

    # P106..P108
    s["P106/bad-ext1.pkl"] = pk(EXT1(42), EMPTY_TUPLE, REDUCE, proto=2)
    s["P106/ok-plain-dict.pkl"] = BENIGN_DICT
    s["P107/bad-computed-global-name.pkl"] = pk(
        U("os"), call("builtins", "str", U("system")), STACK_GLOBAL, cmd, TUPLE1, REDUCE, proto=4
    )
    s["P107/ok-plain-dict.pkl"] = BENIGN_DICT
    s["P108/bad-build-on-global.pkl"] = pk(
        GLOBAL("torch.nn.functional", "softmax"),
        NONE,
        EMPTY_DICT,
        U("__doc__"),
        U("patched"),
        SETITEM,
        TUPLE2,
        BUILD,
        proto=2,
    )
    s["P108/ok-build-on-instance.pkl"] = pk(
        GLOBAL("collections", "OrderedDict"), EMPTY_TUPLE, REDUCE, EMPTY_DICT, BUILD, proto=2
    )

    # P2xx stream structure
    s["P201/bad-payload-then-invalid-opcode.pkl"] = (
        PROTO(2) + call("posix", "system", cmd) + b"\xff\xfe" + STOP
    )
    s["P201/bad-memo-key-never-set.pkl"] = pk(BINGET(7), proto=2)
    s["P201/bad-truncated.pkl"] = payload_system()[:-8]
    s["P201/ok-plain-dict.pkl"] = BENIGN_DICT
    inner = U("hidden") + TUPLE1
    s["P202/bad-frame-straddle.pkl"] = (
        PROTO(4) + FRAME(6) + EMPTY_DICT + U("k") + U("x" * 40) + SETITEM + STOP
    )
    s["P202/ok-framed.pkl"] = PROTO(4) + FRAME(len(inner) + 1) + inner + STOP
    s["P203/bad-second-pickle.pkl"] = BENIGN_DICT + payload_system()
    s["P203/bad-trailing-data.pkl"] = BENIGN_DICT + b"\x00\x01garbage\xff" * 4
    s["P203/ok-legacy-torch.pt"] = legacy_torch()
    s["P204/bad-misplaced-proto.pkl"] = EMPTY_DICT + PROTO(4) + STOP
    s["P204/ok-plain-dict.pkl"] = BENIGN_DICT
    s["P205/bad-next-buffer.pkl"] = PROTO(5) + NEXT_BUFFER + READONLY_BUFFER + STOP
    s["P205/ok-plain-dict.pkl"] = BENIGN_DICT

    # A2xx containers
    s["A201/bad-truncated-zip.pt"] = torch_zip(torch_members())[:-30]
    s["A201/bad-npy-header.npy"] = npy("", (), b"", header="__import__('os')")
    s["A201/bad-npy-size-mismatch.npy"] = npy("<f8", (4,), b"\0" * 8)
    s["A201/ok-array.npy"] = npy("<f8", (2,), b"\0" * 16)
    dup = torch_members()
    s["A202/bad-duplicate-data-pkl.pt"] = torch_zip([*dup, ("data.pkl", payload_system())])
    s["A202/ok-state-dict.pt"] = torch_zip(torch_members())
    s["A203/bad-pickle-named.safetensors"] = payload_system()
    s["A203/bad-pickle-named.npy"] = BENIGN_DICT
    s["A203/bad-pickle-named.txt"] = BENIGN_DICT
    s["A203/bad-pickle-named.model"] = BENIGN_DICT
    s["A203/ok-pickle-named.pkl"] = BENIGN_DICT
    good = torch_zip(torch_members())
    s["A204/bad-crc-mismatch.pt"] = patch_zip_entry(good, "archive/data.pkl", break_crc)
    s["A204/bad-encrypted-flag.pt"] = patch_zip_entry(good, "archive/data.pkl", set_flag)
    s["A204/bad-local-name-mismatch.pt"] = patch_zip_entry(good, "archive/data.pkl", rename_local)
    s["A204/ok-state-dict.pt"] = good
    s["A205/bad-extra-pkl-member.pt"] = torch_zip([*torch_members(), ("extra.pkl", BENIGN_DICT)])
    s["A205/ok-state-dict.pt"] = good
    s["A206/bad-object-array.npy"] = npy("|O", (1,), pk(EMPTY_LIST, proto=3))
    s["A206/ok-numeric.npy"] = npy("<i4", (3,), b"\1\0\0\0" * 3)
    big = pk(BINBYTES8(b"\0" * (20 << 20)), POP, call("posix", "system", cmd), proto=4)
    s["A301/bad-bz2-ratio-bomb.pkl.bz2"] = bz2.compress(big, 9)
    s["A301/ok-bz2.pkl.bz2"] = bz2.compress(BENIGN_DICT, 9)
    s["A401/bad-zip-slip.zip"] = generic_zip([("../../evil.pkl", BENIGN_DICT)])
    s["A401/bad-absolute-tar.tar"] = tar_bytes([("/etc/cron.d/model", b"* * * * * true\n", None)])
    s["A401/ok-relative.zip"] = generic_zip([("models/weights.pkl", BENIGN_DICT)])
    s["A402/bad-symlink.tar"] = tar_bytes([("model.bin", None, "/home/user/.ssh/id_rsa")])
    s["A402/bad-symlink.zip"] = generic_zip(
        [("model.bin", b"/etc/passwd")], symlinks=frozenset({"model.bin"})
    )
    s["A402/ok-regular.tar"] = tar_bytes([("model.pkl", BENIGN_DICT, None)])

    # X9xx, X2xx scanner level
    s["X201/bad-random.bin"] = bytes((i * 73 + 41) % 256 for i in range(256)) + b"\0"
    s["X201/ok-readme.md"] = b"# A model card\n\nNothing to see here.\n"
    s["X901/bad-joblib-unknown-dtype.joblib"] = joblib_array(2, "weird", then=STOP)
    s["X901/ok-joblib-array.joblib"] = joblib_array(2, "f8", then=SETITEMS + STOP)
    lz4_frame = b"\x04\x22\x4d\x18\x64\x40\xa7" + b"\x05\x00\x00\x80"
    s["X902/bad-lz4.joblib"] = lz4_frame + BENIGN_DICT[:5]
    s["X902/ok-gzip.joblib"] = gz(BENIGN_DICT)
    s["X903/bad-safetensors.safetensors"] = safetensors_stub()
    s["X903/ok-plain-dict.pkl"] = BENIGN_DICT
    return s


def legacy_torch(*, main: bytes = STATE_DICT, magic: bytes | None = None) -> bytes:
    """torch.save(..., _use_new_zipfile_serialization=False): five pickles, then storages."""
    sys_info = pk(
        EMPTY_DICT,
        MARK,
        U("protocol_version"),
        BININT(1001),
        U("little_endian"),
        NEWTRUE,
        SETITEMS,
        proto=2,
    )
    head = magic if magic is not None else LONG1(0x1950A86A20F9469CFC6C)
    return (
        pk(head, proto=2)
        + pk(b"M\xe9\x03", proto=2)
        + sys_info
        + main
        + pk(MARK, U("0"), b"l", proto=2)
        + struct.pack("<q", 4)
        + FLOATS
    )


def legacy_tar(*, main: bytes = STATE_DICT) -> bytes:
    """The PyTorch 0.1.x tar layout: sys_info, pickle, storages and tensors members."""
    storages = (
        pk(BININT1(1), proto=2)
        + pk(U("0"), U("cpu"), GLOBAL("torch", "FloatStorage"), TUPLE3, proto=2)
        + struct.pack("<q", 4)
        + FLOATS
        + pk(EMPTY_LIST, proto=2)
    )
    tensors = (
        pk(BININT1(1), proto=2)
        + pk(U("t0"), U("0"), GLOBAL("torch", "FloatTensor"), TUPLE3, proto=2)
        + struct.pack("<i", 1)
        + b"\0" * 4
        + struct.pack("<qqq", 4, 1, 0)
    )
    return tar_bytes(
        [
            ("sys_info", pk(EMPTY_DICT, proto=2), None),
            ("pickle", main, None),
            ("storages", storages, None),
            ("tensors", tensors, None),
        ]
    )


def safetensors_stub() -> bytes:
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    return struct.pack("<Q", len(header)) + header + b"\0" * 8


def write(outdir: Path) -> list[Path]:
    written = []
    for rel, data in sorted(samples().items()):
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    paths = write(target)
    print(f"wrote {len(paths)} samples under {target}")

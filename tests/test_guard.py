"""The Python API (``check``/``scan`` and their exceptions) and ``modelscan_lite.guard``, with
the real libraries: a bad file is refused before any byte of it is deserialized (its payload
would leave a marker; the original loader, a spy, is never called), a good one loads.

These tests load artifacts for real (that is the guard's job), so they put the real loaders
back over the conftest tripwire; the payloads are harmless (they create an empty folder).
"""

from __future__ import annotations

import _pickle
import bz2
import contextlib
import gc
import gzip
import hashlib
import http.server
import io
import json
import lzma
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import torch
import torch.serialization

import modelscan_lite
from modelscan_lite import ScanError, UnsafeModelError, check
from modelscan_lite import guard as guard_mod
from modelscan_lite.config import ConfigError
from modelscan_lite.guard import guard, install, installed, uninstall
from modelscan_lite.model import Severity

from .conftest import ROOT

# the real loaders, kept in a dict: the guard's sweep replaces module globals, not dict values
REAL: dict[tuple[object, str], object] = {
    (mod, attr): getattr(mod, attr)
    for mod, attrs in (
        (pickle, ("load", "loads", "Unpickler", "_load", "_loads")),
        (_pickle, ("load", "loads", "Unpickler")),
        (torch, ("load",)),
        (torch.serialization, ("load",)),
        (joblib, ("load",)),
        (np, ("load",)),
    )
    for attr in attrs
}


@pytest.fixture(autouse=True)
def real_loaders(
    no_load_tripwire: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    for (mod, attr), fn in REAL.items():
        monkeypatch.setattr(mod, attr, fn)
    monkeypatch.chdir(tmp_path)  # no pyproject above: the default config
    yield
    while uninstall():
        pass
    assert not installed(), "a test left a guard() open"


class Payload:
    """Pickles to ``os.mkdir(marker)``: loading it leaves a visible, harmless trace."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.mkdir, (self.marker,))


class Spy:
    """Stands for a loader: counts the calls, then calls the real one."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.calls = 0
        self.__wrapped__ = fn  # inspect.signature() sees the real one (joblib looks)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


def _spy(monkeypatch: pytest.MonkeyPatch, mod: object, attr: str) -> Spy:
    spy = Spy(getattr(mod, attr))
    monkeypatch.setattr(mod, attr, spy)
    return spy


# --- raw loaders ------------------------------------------------------------------------


def _torch_files(tmp: Path, marker: Path) -> tuple[Path, Path]:
    torch.save({"w": torch.zeros(3), "x": Payload(marker)}, tmp / "bad.pt")
    torch.save({"w": torch.ones(3)}, tmp / "good.pt")
    return tmp / "bad.pt", tmp / "good.pt"


def _joblib_files(tmp: Path, marker: Path) -> tuple[Path, Path]:
    joblib.dump({"a": Payload(marker)}, tmp / "bad.joblib")
    joblib.dump({"a": np.arange(3)}, tmp / "good.joblib")
    return tmp / "bad.joblib", tmp / "good.joblib"


def _pickle_files(tmp: Path, marker: Path) -> tuple[Path, Path]:
    (tmp / "bad.pkl").write_bytes(pickle.dumps(Payload(marker), protocol=4))
    (tmp / "good.pkl").write_bytes(pickle.dumps({"a": [1, 2]}, protocol=4))
    return tmp / "bad.pkl", tmp / "good.pkl"


def _numpy_files(tmp: Path, marker: Path) -> tuple[Path, Path]:
    np.save(tmp / "bad.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    np.save(tmp / "good.npy", np.arange(4))
    return tmp / "bad.npy", tmp / "good.npy"


def _load_torch(path: Any) -> Any:
    return torch.load(path, weights_only=False)  # the unsafe call the guard must stop


def _load_pickle(path: Any) -> Any:
    if isinstance(path, Path):
        with open(path, "rb") as f:  # a real file object with a name
            return pickle.load(f)
    return pickle.load(path)


LOADERS = {
    "torch": (torch, "load", _torch_files, _load_torch, lambda v: v["w"].tolist() == [1.0] * 3),
    "joblib": (
        joblib,
        "load",
        _joblib_files,
        lambda p: joblib.load(p),
        lambda v: v["a"].tolist() == [0, 1, 2],
    ),
    "pickle": (pickle, "load", _pickle_files, _load_pickle, lambda v: v == {"a": [1, 2]}),
    "numpy": (
        np,
        "load",
        _numpy_files,
        lambda p: np.load(p, allow_pickle=True),
        lambda v: v.tolist() == [0, 1, 2, 3],
    ),
}


@pytest.mark.parametrize("lib", list(LOADERS))
def test_payload_is_live_without_the_guard(lib: str, tmp_path: Path) -> None:
    """The control: the same bad file, loaded without the guard, runs its payload."""
    _mod, _attr, make, load, _ok = LOADERS[lib]
    marker = tmp_path / "marker"
    bad, _good = make(tmp_path, marker)
    load(bad)
    assert marker.exists()


@pytest.mark.parametrize("lib", list(LOADERS))
def test_guard_refuses_bad_file_before_loading(
    lib: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod, attr, make, load, _ok = LOADERS[lib]
    marker = tmp_path / "marker"
    bad, _good = make(tmp_path, marker)
    spy = _spy(monkeypatch, mod, attr)
    with guard(), pytest.raises(UnsafeModelError) as info:
        load(bad)
    assert not marker.exists()
    assert spy.calls == 0, "the original loader was called"
    exc = info.value
    assert [f.rule for f in exc.findings] == ["P104"]
    assert exc.report is not None and exc.report.failing() == exc.findings
    assert f"{lib}.load" in str(exc) and "P104" in str(exc) and str(bad) in str(exc)


@pytest.mark.parametrize("lib", list(LOADERS))
def test_guard_loads_good_file(lib: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod, attr, make, load, ok = LOADERS[lib]
    _bad, good = make(tmp_path, tmp_path / "marker")
    spy = _spy(monkeypatch, mod, attr)
    with guard():
        value = load(good)
    assert ok(value)
    assert spy.calls == 1


def test_torch_load_of_a_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file object without a path: its bytes are scanned from a private copy, then the
    stream is rewound and handed to the loader."""
    marker = tmp_path / "marker"
    bad, good = _torch_files(tmp_path, marker)
    spy = _spy(monkeypatch, torch, "load")
    with guard():
        with pytest.raises(UnsafeModelError, match="P104"):
            torch.load(io.BytesIO(bad.read_bytes()), weights_only=False)
        assert spy.calls == 0 and not marker.exists()
        stream = io.BytesIO(b"junk" + good.read_bytes())
        stream.seek(4)
        assert torch.load(stream)["w"].tolist() == [1.0] * 3
    assert spy.calls == 1


def test_unseekable_stream_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _bad, good = _pickle_files(tmp_path, tmp_path / "marker")
    spy = _spy(monkeypatch, pickle, "load")
    read, write = os.pipe()
    os.write(write, good.read_bytes())
    os.close(write)
    with open(read, "rb", buffering=0) as pipe, guard(), pytest.raises(ScanError) as info:
        pickle.load(pipe)
    assert spy.calls == 0
    assert "cannot be rewound" in str(info.value) and info.value.report is None


def test_missing_file_raises_file_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _spy(monkeypatch, torch, "load")
    with guard(), pytest.raises(FileNotFoundError):
        torch.load("no-such-file.pt")
    assert spy.calls == 0


def test_numpy_without_allow_pickle_is_not_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """allow_pickle=False reads no pickle: nothing to scan, NumPy refuses the object array."""
    marker = tmp_path / "marker"
    bad, _good = _numpy_files(tmp_path, marker)
    scans = _count_scans(monkeypatch)
    with guard(), pytest.raises(ValueError, match="allow_pickle"):
        np.load(bad)
    assert scans.calls == 0 and not marker.exists()


def _count_scans(monkeypatch: pytest.MonkeyPatch) -> Spy:
    import modelscan_lite.scanner

    return _spy(monkeypatch, modelscan_lite.scanner, "scan_paths")


def test_a_loader_inside_a_loader_is_not_scanned_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy.load(allow_pickle=True) calls pickle.load on its own stream: one scan, no
    recursion; a clean verdict is remembered until the file changes."""
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1, "a"], dtype=object), allow_pickle=True)
    scans = _count_scans(monkeypatch)
    inner = _spy(monkeypatch, pickle, "load")
    with guard():
        assert np.load(path, allow_pickle=True).tolist() == [1, "a"]
        assert (scans.calls, inner.calls) == (1, 1)
        np.load(path, allow_pickle=True)
        assert scans.calls == 1
        np.save(path, np.array([2, "b"], dtype=object), allow_pickle=True)
        assert np.load(path, allow_pickle=True).tolist() == [2, "b"]
        assert scans.calls == 2


# --- what is scanned is what the loader reads (red team 13) ------------------------------

HEADER = b"MYFORMAT v1\n" + b"harmless text metadata\n" * 4


def _behind_a_header(path: Path) -> Path:
    out = path.with_name(f"header-{path.stem}.dat")
    out.write_bytes(HEADER + path.read_bytes())
    return out


@pytest.mark.parametrize("lib", list(LOADERS))
def test_file_object_past_a_header_is_scanned_from_its_position(
    lib: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain file object the caller sought past a harmless header: every loader reads
    from there (torch's zip reader counts its offsets from there), so that is what must be
    scanned, not the whole file by its name (an "unrecognised binary" from byte 0)."""
    mod, attr, make, load, ok = LOADERS[lib]
    marker = tmp_path / "marker"
    bad, good = (_behind_a_header(p) for p in make(tmp_path, marker))
    spy = _spy(monkeypatch, mod, attr)
    with guard():
        with open(bad, "rb") as stream:
            stream.seek(len(HEADER))
            with pytest.raises(UnsafeModelError, match=f"from byte {len(HEADER)}"):
                load(stream)
            assert stream.tell() == len(HEADER)
        assert spy.calls == 0 and not marker.exists()
        with open(good, "rb") as stream:
            stream.seek(len(HEADER))
            assert ok(load(stream))
    assert spy.calls == 1
    # the control: unguarded, the loader does read the payload from there
    with open(bad, "rb") as stream, contextlib.suppress(Exception):
        stream.seek(len(HEADER))
        load(stream)
    assert marker.exists()


def test_compressed_stream_is_scanned_as_decoded_from_its_position(tmp_path: Path) -> None:
    """gzip, bz2 and lzma file objects: the loader reads the decoded bytes from the position
    (a ``GzipFile`` names the .gz file and has its descriptor, yet is no plain file)."""
    marker = tmp_path / "marker"
    bad, good = _pickle_files(tmp_path, marker)
    codecs: list[tuple[Any, Callable[[bytes], bytes]]] = [
        (gzip.open, gzip.compress),
        (bz2.open, bz2.compress),
        (lzma.open, lzma.compress),
    ]
    for opener, compress in codecs:
        for path, at in ((bad, len(HEADER)), (good, len(HEADER)), (bad, 0), (good, 0)):
            packed = tmp_path / f"{path.stem}-{at}.{opener.__module__}"
            packed.write_bytes(compress((HEADER if at else b"") + path.read_bytes()))
            with guard(), opener(packed, "rb") as stream:
                stream.seek(at)
                if path == good:
                    assert pickle.load(stream) == {"a": [1, 2]}
                    continue
                with pytest.raises(UnsafeModelError, match="P104") as info:
                    pickle.load(stream)
                assert type(stream).__name__ in str(info.value)
    assert not marker.exists()


def _npz_reaching_back(tmp: Path, marker: Path) -> tuple[Path, int]:
    """An .npz a caller would open past a header: at the position, a harmless member; its
    directory names a member *before* the position (zipfile reads the whole stream)."""
    import struct
    import zlib

    def npy(array: Any) -> bytes:
        out = io.BytesIO()
        np.save(out, array, allow_pickle=True)
        return out.getvalue()

    def local(name: str, data: bytes) -> bytes:
        sizes = (zlib.crc32(data), len(data), len(data))
        head = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, *sizes, len(name), 0)
        return head + name.encode() + data

    evil = npy(np.array([Payload(marker)], dtype=object))
    body = HEADER + local("x.npy", evil) + local("y.npy", npy(np.arange(3)))
    position = len(HEADER) + len(local("x.npy", evil))
    sizes = (zlib.crc32(evil), len(evil), len(evil))
    # the one directory entry: x.npy, at an offset before the position
    fields = (20, 20, 0, 0, 0, 0, *sizes, 5, 0, 0, 0, 0, 0, len(HEADER))
    entry = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", *fields) + b"x.npy"
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(entry), len(body), 0)
    path = tmp / "reaching-back.dat"
    path.write_bytes(body + entry + end)
    return path, position


def test_npz_in_a_stream_past_its_start_is_refused(tmp_path: Path) -> None:
    """numpy.load of an .npz reads the whole stream (members before the position too), not
    what a copy from the position holds; even a lenient threshold refuses it. An .npz that
    a stream holds from its start loads."""
    marker = tmp_path / "marker"
    path, position = _npz_reaching_back(tmp_path, marker)
    with guard(fail_on="high"), open(path, "rb") as stream:
        stream.seek(position)
        with pytest.raises(ScanError, match="npz"):
            np.load(stream, allow_pickle=True)
        assert stream.tell() == position
        plain = io.BytesIO()
        np.savez(plain, y=np.arange(3))
        plain.seek(0)
        assert np.load(plain, allow_pickle=True)["y"].tolist() == [0, 1, 2]
    assert not marker.exists()
    # the control: unguarded (or past the guard block), the member before the position runs
    with open(path, "rb") as stream:
        stream.seek(position)
        archive = np.load(stream, allow_pickle=True)
        assert archive.files == ["x"]
        archive["x"]
    assert marker.exists()


def test_plain_file_at_its_start_is_scanned_by_path_and_offsets_are_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No copy for a plain file at byte 0; a copy past a header, remembered with the offset;
    a legacy torch file past a header loads with one scan (torch.load's own pickle.load
    calls read the stream it scanned)."""
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    headed = _behind_a_header(path)
    scans = _count_scans(monkeypatch)
    copies = _spy(monkeypatch, tempfile, "mkdtemp")
    inner = _spy(monkeypatch, pickle, "load")
    with guard():
        with open(path, "rb") as stream:
            assert torch.load(stream, weights_only=False)["w"].tolist() == [1.0, 1.0]
        assert (scans.calls, copies.calls) == (1, 0)
        for expected_scans in (2, 2):
            with open(headed, "rb") as stream:
                stream.seek(len(HEADER))
                assert torch.load(stream, weights_only=False)["w"].tolist() == [1.0, 1.0]
            assert (scans.calls, copies.calls) == (expected_scans, 1)
    assert inner.calls > 3  # the legacy format is several pickles, read through pickle.load


def _old_joblib(folder: Path, payload: object) -> Path:
    """joblib's pre-0.10 format: the pickle names a sidecar .npy that joblib then reads with
    numpy.load(allow_pickle=True)."""
    from joblib.numpy_pickle_compat import NDArrayWrapper

    main = folder / "model.pkl"
    wrapper = NDArrayWrapper("model.pkl_01.npy", np.ndarray, allow_mmap=False)
    main.write_bytes(pickle.dumps({"weights": wrapper}, protocol=2))
    np.save(folder / "model.pkl_01.npy", np.array([payload], dtype=object), allow_pickle=True)
    return main


def test_joblib_sidecar_is_scanned_before_joblib_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "marker"
    main = _old_joblib(tmp_path, Payload(marker))
    assert [f.rule for f in check(main).findings] == ["P402"]  # low: the pickle alone passes
    loads = _spy(monkeypatch, joblib, "load")
    with guard():
        with pytest.raises(UnsafeModelError, match=r"model\.pkl_01\.npy' too") as info:
            joblib.load(main)
        assert {Path(f.location.path).name for f in info.value.findings} == {"model.pkl_01.npy"}
        # a stream: joblib looks for the sidecar in the working directory (here tmp_path)
        with open(main, "rb") as plain, pytest.raises(UnsafeModelError, match="pkl_01"):
            joblib.load(plain)
        with pytest.raises(UnsafeModelError, match="pkl_01"):
            joblib.load(io.BytesIO(main.read_bytes()))
    assert loads.calls == 0 and not marker.exists()
    # the control: unguarded, joblib runs the sidecar's pickle
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
        joblib.load(main)
    assert marker.exists()


def test_loader_inside_a_loader_on_another_file_is_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the P402 finding (ignored in the config) nothing is scanned ahead: joblib's
    own numpy.load of the sidecar, inside the guarded joblib.load, is scanned as any call."""
    marker = tmp_path / "marker"
    main = _old_joblib(tmp_path, Payload(marker))
    (tmp_path / "pyproject.toml").write_text('[tool.modelscan-lite]\nignore = ["P402"]\n')
    assert check(main).findings == ()
    loads = _spy(monkeypatch, joblib, "load")
    npy_loads = _spy(monkeypatch, np, "load")
    with guard(), pytest.raises(UnsafeModelError, match=r"numpy\.load\(.*model\.pkl_01\.npy"):
        joblib.load(main)
    assert (loads.calls, npy_loads.calls) == (1, 0) and not marker.exists()


def test_old_joblib_with_a_clean_sidecar_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = _old_joblib(tmp_path, "just a string")
    scans = _count_scans(monkeypatch)
    with guard(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert joblib.load(main)["weights"].tolist() == ["just a string"]
        joblib.load(main)
    assert scans.calls == 2  # the pickle, then its sidecar; remembered after that


def test_a_blocks_clean_verdicts_end_with_it(tmp_path: Path) -> None:
    """A lenient block's verdicts are dropped when it exits: a later strict block (whose
    settings may sit at the same address) scans again and refuses."""
    path = tmp_path / "objects.npy"  # A206 (low): an object array
    np.save(path, np.array([1, "a"], dtype=object), allow_pickle=True)
    install(fail_on="critical")  # keeps the guard, and its cache, alive between the blocks
    for _round in range(30):
        with guard(fail_on="never"):
            assert np.load(path, allow_pickle=True).tolist() == [1, "a"]
            assert guard_mod._clean
        assert not guard_mod._clean, "a block's clean verdicts outlived it"
        gc.collect()
        with guard(fail_on="low"), pytest.raises(UnsafeModelError, match="A206"):
            np.load(path, allow_pickle=True)
    uninstall()


def test_pickle_pure_python_load_is_guarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "marker"
    bad, good = _pickle_files(tmp_path, marker)
    spy = _spy(monkeypatch, pickle, "_load")
    with guard():
        with open(bad, "rb") as stream, pytest.raises(UnsafeModelError, match=r"pickle\._load"):
            pickle._load(stream)  # type: ignore[attr-defined]
        assert spy.calls == 0 and not marker.exists()
        with open(good, "rb") as stream:
            assert pickle._load(stream) == {"a": [1, 2]}  # type: ignore[attr-defined]
    assert spy.calls == 1 and pickle._load is spy  # type: ignore[attr-defined]


# --- install / uninstall ----------------------------------------------------------------


def _targets() -> dict[str, object]:
    import huggingface_hub.file_download
    import transformers.utils.hub

    return {
        "torch.load": torch.load,
        "torch.serialization.load": torch.serialization.load,
        "joblib.load": joblib.load,
        "numpy.load": np.load,
        "pickle.load": pickle.load,
        "pickle._load": pickle._load,  # type: ignore[attr-defined]
        "hf_hub_download": huggingface_hub.file_download.hf_hub_download,
        "cached_files": transformers.utils.hub.cached_files,
    }


def test_uninstall_restores_the_originals_exactly() -> None:
    before = _targets()
    # a module that bound the loader by name before the guard came
    bound = types.ModuleType("guard_test_bound")
    bound.load = torch.load  # type: ignore[attr-defined]
    sys.modules[bound.__name__] = bound
    try:
        install()
        during = _targets()
        assert all(during[k] is not before[k] for k in before), "not every loader is guarded"
        assert bound.load is torch.load  # type: ignore[attr-defined]
        assert sys.meta_path[0] is guard_mod._hook
        assert uninstall() is True
        after = _targets()
        assert all(after[k] is before[k] for k in before)
        assert bound.load is before["torch.load"]  # type: ignore[attr-defined]
        assert not any(isinstance(f, guard_mod._ImportHook) for f in sys.meta_path)
        assert uninstall() is False
    finally:
        del sys.modules[bound.__name__]


def test_nested_guards(tmp_path: Path) -> None:
    """The innermost settings apply; the originals come back when the last one exits."""
    path = tmp_path / "objects.npy"  # A206 (low): an object array
    np.save(path, np.array([1, "a"], dtype=object), allow_pickle=True)
    original = np.load
    install(fail_on="critical")
    with guard(fail_on="low"):
        with pytest.raises(UnsafeModelError, match="A206"):
            np.load(path, allow_pickle=True)
        with guard(fail_on="never"):
            np.load(path, allow_pickle=True)
        with pytest.raises(UnsafeModelError, match="A206"):
            np.load(path, allow_pickle=True)
    assert np.load(path, allow_pickle=True).tolist() == [1, "a"]  # install()'s "critical"
    assert installed() and np.load is not original
    uninstall()
    assert np.load is original and not installed()


def test_guard_respects_pyproject_config(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1, "a"], dtype=object), allow_pickle=True)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.modelscan-lite]\nfail-on = "low"\n')
    with guard(), pytest.raises(UnsafeModelError, match="A206"):
        np.load(path, allow_pickle=True)
    pyproject.write_text('[tool.modelscan-lite]\nfail-on = "low"\nignore = ["A206"]\n')
    with guard():
        assert np.load(path, allow_pickle=True).tolist() == [1, "a"]
    pyproject.write_text('[tool.modelscan-lite]\nfail-on = "sometimes"\n')
    with pytest.raises(ConfigError, match="fail-on"):
        install()
    assert not installed()


def test_guard_works_across_threads(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    bad, good = _torch_files(tmp_path, marker)
    results: list[str] = []

    def load(path: Path) -> None:
        try:
            torch.load(path, weights_only=False)
            results.append("loaded")
        except UnsafeModelError:
            results.append("refused")

    with guard():
        threads = [threading.Thread(target=load, args=(p,)) for p in (bad, good) * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == ["loaded"] * 3 + ["refused"] * 3
    assert not marker.exists()


_LAZY = """
import sys, modelscan_lite.guard as g
from modelscan_lite import UnsafeModelError
g.install()
assert "torch" not in sys.modules and "transformers" not in sys.modules
import torch, torch.serialization
assert torch.load.__wrapped__ is not None  # the guard's wrapper
assert torch.serialization.load is torch.load
try:
    torch.load(sys.argv[1], weights_only=False)
except UnsafeModelError as exc:
    print("refused", type(exc).__name__)
g.uninstall()
assert not hasattr(torch.load, "__wrapped__") and torch.load.__module__ == "torch.serialization"
"""


def test_install_imports_no_heavy_library_and_patches_on_import(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    bad, _good = _torch_files(tmp_path, marker)
    timing = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import modelscan_lite.guard as g; g.install()"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in timing.stderr.splitlines()}
    heavy = {"torch", "transformers", "diffusers", "huggingface_hub", "joblib", "numpy"}
    assert not heavy & imported
    run = subprocess.run(
        [sys.executable, "-c", _LAZY, str(bad)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "refused UnsafeModelError"
    assert not marker.exists()


# --- check() and scan() -----------------------------------------------------------------


def test_check_returns_the_report_when_clean(tmp_path: Path) -> None:
    _bad, good = _pickle_files(tmp_path, tmp_path / "marker")
    report = check(good)
    assert report.findings == () and report.errors == ()
    assert modelscan_lite.check([str(good)]).artifacts[0].path == str(good)


def test_check_raises_with_the_findings(tmp_path: Path) -> None:
    bad, _good = _torch_files(tmp_path, tmp_path / "marker")
    with pytest.raises(UnsafeModelError) as info:
        check(bad, fail_on="high")
    exc = info.value
    assert isinstance(exc, modelscan_lite.ModelScanError)
    assert [f.rule for f in exc.findings] == ["P104"]
    text = str(exc)
    assert "P104" in text and "critical" in text and str(bad) in text and "data.pkl" in text
    assert check(bad, fail_on="never").findings  # never fail: the report, findings and all
    assert check(bad, fail_on=None).findings


def test_check_scan_error_never_masks_a_finding(tmp_path: Path) -> None:
    bad, good = _pickle_files(tmp_path, tmp_path / "marker")
    missing = tmp_path / "missing.pkl"
    with pytest.raises(ScanError) as info:
        check([good, missing])
    assert info.value.errors and str(missing) in str(info.value)
    with pytest.raises(UnsafeModelError):
        check([bad, missing])
    with pytest.raises(ScanError):
        check(missing, fail_on="never")  # nothing passes silently


def test_check_and_scan_read_the_pyproject(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1, "a"], dtype=object), allow_pickle=True)
    (tmp_path / "pyproject.toml").write_text('[tool.modelscan-lite]\nfail-on = "low"\n')
    with pytest.raises(UnsafeModelError, match="A206"):
        check(path)
    assert check(path, fail_on="medium").findings
    assert modelscan_lite.scan([path]).fail_on == Severity.LOW
    (tmp_path / "pyproject.toml").write_text('[tool.modelscan-lite]\nignore = ["A206"]\n')
    assert modelscan_lite.scan([path]).findings == ()
    with pytest.raises(TypeError):
        check(path, fail_on=3)  # type: ignore[arg-type]


# --- huggingface_hub downloads, through a local hub -------------------------------------


class _Hub(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]


class _HubHandler(http.server.BaseHTTPRequestHandler):
    """Just enough of the hub's HTTP API for hf_hub_download and snapshot_download."""

    server: _Hub
    COMMIT = "c" * 40

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, body: bytes, head: bool, headers: dict[str, str]) -> None:
        self.send_response(200)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _answer(self, head: bool) -> None:
        path = self.path.split("?")[0]
        files = self.server.files
        if path.startswith("/api/models/") and "/tree/" in path:
            tree = [
                {"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for n, b in files.items()
            ]
            return self._send(json.dumps(tree).encode(), head, {})
        if path.startswith("/api/models/"):
            info = {
                "id": "org/m",
                "sha": self.COMMIT,
                "siblings": [{"rfilename": n} for n in files],
            }
            return self._send(json.dumps(info).encode(), head, {})
        name = path.split("/resolve/", 1)[-1].split("/", 1)[-1]
        if "/resolve/" in path and name in files:
            body = files[name]
            etag = f'"{hashlib.sha256(body).hexdigest()}"'
            return self._send(body, head, {"ETag": etag, "X-Repo-Commit": self.COMMIT})
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[_Hub]:
    """A local hub at HF_ENDPOINT's place, with its own cache: the real download code runs."""
    import huggingface_hub.constants as constants

    server = _Hub(("127.0.0.1", 0), _HubHandler)
    server.files = {}
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_hf_hub_download_is_scanned_before_the_path_is_returned(hub: _Hub, tmp_path: Path) -> None:
    import huggingface_hub as hf  # by attribute: a name imported before install stays unguarded

    marker = tmp_path / "marker"
    bad, good = _torch_files(tmp_path, marker)
    hub.files.update({"bad.pt": bad.read_bytes(), "good.pt": good.read_bytes()})
    cache = tmp_path / "hf-cache"
    with guard():
        with pytest.raises(UnsafeModelError, match="hf_hub_download") as info:
            hf.hf_hub_download("org/m", "bad.pt", cache_dir=cache)
        assert "P104" in str(info.value)
        got = hf.hf_hub_download("org/m", "good.pt", cache_dir=cache)
        assert torch.load(got)["w"].tolist() == [1.0] * 3
        # the refused file is in the cache: asked again, it is refused again
        with pytest.raises(UnsafeModelError):
            hf.hf_hub_download("org/m", "bad.pt", cache_dir=cache)
    assert not marker.exists()
    assert hf.hf_hub_download("org/m", "bad.pt", cache_dir=cache).endswith("bad.pt")  # unguarded


def test_snapshot_download_is_scanned_as_a_repo(hub: _Hub, tmp_path: Path) -> None:
    import huggingface_hub as hf

    bad, good = _torch_files(tmp_path, tmp_path / "marker")
    hub.files.update({"config.json": b"{}", "good.pt": good.read_bytes()})
    with guard():
        folder = hf.snapshot_download("org/m", cache_dir=tmp_path / "c1")
        assert sorted(os.listdir(folder)) == ["config.json", "good.pt"]
        hub.files["bad.pt"] = bad.read_bytes()
        with pytest.raises(UnsafeModelError, match="snapshot_download"):
            hf.snapshot_download("org/m", cache_dir=tmp_path / "c2")


# --- transformers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny BERT with its tokenizer, saved by transformers; and a copy whose weights are a
    ``pytorch_model.bin`` carrying a payload (as a hostile upload would)."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel, BertTokenizer

    root = tmp_path_factory.mktemp("bert")
    good, bad = root / "good", root / "bad"
    config = BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
    )
    BertModel(config).save_pretrained(good)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "alpha", "beta", "gamma", "delta"]
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(good)
    bad.mkdir()
    for item in good.iterdir():
        if item.name != "model.safetensors":
            (bad / item.name).write_bytes(item.read_bytes())
    state: dict[str, Any] = dict(load_file(good / "model.safetensors"))
    state["x"] = Payload(root / "marker")
    torch.save(state, bad / "pytorch_model.bin")
    return good, bad


@pytest.mark.slow
def test_transformers_local_folder(
    tiny_bert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers.utils.hub
    from transformers import AutoModel, AutoTokenizer, BertModel

    good, bad = tiny_bert
    marker = good.parent / "marker"
    loads = _spy(monkeypatch, torch, "load")
    resolves = _spy(monkeypatch, transformers.utils.hub, "cached_files")
    with guard():
        for cls in (AutoModel, AutoTokenizer, BertModel):
            with pytest.raises(UnsafeModelError) as info:
                cls.from_pretrained(bad)
            assert "pytorch_model.bin" in str(info.value) and "P104" in str(info.value)
        # refused on the way in: transformers never resolved a file, torch never loaded one
        assert (loads.calls, resolves.calls) == (0, 0)
        model = AutoModel.from_pretrained(good)
        tokenizer = AutoTokenizer.from_pretrained(good)
    assert type(model).__name__ == "BertModel" and model.config.hidden_size == 8
    assert tokenizer("alpha beta")["input_ids"] == [2, 5, 6, 3]
    assert resolves.calls > 0 and not marker.exists()


@pytest.mark.slow
def test_transformers_control_reaches_torch_load(
    tiny_bert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the guard, transformers hands the bad file to torch.load (which its
    weights_only mode then stops, this time): the spy above could have seen it."""
    from transformers import AutoModel

    _good, bad = tiny_bert
    loads = _spy(monkeypatch, torch, "load")
    with pytest.raises(Exception):  # whatever torch's weights_only mode says
        AutoModel.from_pretrained(bad)
    assert loads.calls == 1


@pytest.mark.slow
def test_transformers_from_the_hub(
    hub: _Hub, tiny_bert: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AutoModel.from_pretrained("org/m") through the local hub: the resolver scans the
    downloaded weights and the refusal reaches the caller as itself, not as transformers'
    OSError, before torch.load is called."""
    from transformers import AutoModel

    _good, bad = tiny_bert
    hub.files.update({n: (bad / n).read_bytes() for n in ("config.json", "pytorch_model.bin")})
    loads = _spy(monkeypatch, torch, "load")
    with guard(), pytest.raises(UnsafeModelError, match=r"pytorch_model\.bin"):
        AutoModel.from_pretrained("org/m", cache_dir=tmp_path / "hf-cache")
    assert loads.calls == 0

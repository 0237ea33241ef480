"""Sandbox loaders of the issue-12 formats (``--dynamic``).

Where the format's library is installed in this interpreter (xgboost, lightgbm, catboost,
torch: torch.package, torch.export ``.pt2``, TorchScript), a benign fixture is really loaded in
the sandbox and must end ``done`` with no D finding, and each format that runs code on load
has a harmful case the sandbox must refuse and report (D1xx). For the loaders whose library is
missing here (skops, TFLite, TensorFlow SavedModel, OpenVINO, Flax, ExecuTorch, NeMo), the
registry must still name the loader, and the sandboxed run must end as the documented missing
library (status ``unsupported``, D901 naming the package), never a crash.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from modelscan_lite.config import Config, SandboxOptions
from modelscan_lite.engine import Policy
from modelscan_lite.model import ArtifactResult
from modelscan_lite.scanner import build_policy, scan_file

if not sys.platform.startswith("linux"):
    pytest.skip("the sandbox is Linux-only", allow_module_level=True)

from modelscan_lite import sandbox
from modelscan_lite.sandbox import paths, supervisor

ROOT = Path(__file__).parent
DATA = ROOT / "data" / "formats"
SAMPLES = ROOT.parent / "samples"
POLICY: Policy = build_policy(Config())


def _no_backend() -> str | None:
    try:
        supervisor.choose("auto")
    except sandbox.SandboxUnavailable as exc:
        return str(exc)
    return None


needs_sandbox = pytest.mark.skipif(bool(_no_backend()), reason=str(_no_backend()))


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def dynamic(path: Path | str, **opts: object) -> ArtifactResult:
    """Static scan + sandboxed load of one file, as ``scan --dynamic require`` does."""
    static = scan_file(str(path), POLICY, Config())
    options = SandboxOptions(backend="auto", **opts)  # type: ignore[arg-type]
    (result,) = sandbox.run_dynamic([static], POLICY, options)
    return result


def d_rules(result: ArtifactResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in result.findings:
        if f.rule.startswith("D"):
            out.setdefault(f.rule, []).append(f.message)
    return out


def outside_the_repo(tmp_path: Path, fixture: Path) -> Path:
    """A copy under tmp_path: the repo is readable in the sandbox (it holds the package), a
    user's file is not, so only the artifact's own path policy lets the loader read it."""
    copy = tmp_path / fixture.name
    shutil.copyfile(fixture, copy)
    return copy


# -- loader choice: every issue-12 format that has a real loader names it ----------------------

LOADER_OF = [
    (DATA / "others" / "xgb-gbtree.json", "xgboost"),
    (DATA / "others" / "xgb-gbtree.ubj", "xgboost"),
    (SAMPLES / "M220" / "ok-xgboost-legacy.bin", "xgboost-binary"),
    (DATA / "others" / "lgb-binary.txt", "lightgbm"),
    (DATA / "others" / "cb-symmetric.cbm", "catboost"),
    (DATA / "configs" / "ok-logreg.skops", "skops"),
    (DATA / "torch" / "package-with-source.pt", "torch-package"),
    (DATA / "torch" / "exported.pt2", "pt2"),
    (DATA / "torch" / "scripted-module.pt", "torchscript"),
    (DATA / "tensorflow" / "dense.tflite", "tflite"),
    (DATA / "tensorflow" / "savedmodel-module" / "saved_model.pb", "tf-savedmodel"),
    (DATA / "others" / "openvino-mlp.xml", "openvino"),
    (DATA / "others" / "flax-params.msgpack", "flax"),
    (SAMPLES / "T111" / "ok-program.pte", "executorch"),
    (DATA / "configs" / "ok-conformer-ctc.nemo", "nemo"),
    (DATA / "configs" / "ok-conformer-ctc-gz.nemo", "nemo"),  # gzip+nemo: restore_from reads it
]


@pytest.mark.parametrize(("path", "loader"), LOADER_OF, ids=lambda v: getattr(v, "name", v))
def test_loader_for_names_the_formats_loader(path: Path, loader: str) -> None:
    result = scan_file(str(path), POLICY, Config())
    assert sandbox.loader_for(result) == loader, (result.format, result.layers)


def test_every_registry_loader_exists() -> None:
    from modelscan_lite.formats import registry
    from modelscan_lite.sandbox.loaders import LOADERS

    named = {f.loader for f in registry.FORMATS.values() if f.loader}
    assert named <= set(LOADERS), named - set(LOADERS)


# -- benign fixtures, really loaded: done, no D finding ----------------------------------------

BENIGN = [
    pytest.param("others/xgb-gbtree.json", "xgboost", True, "xgboost"),
    pytest.param("others/xgb-categorical.ubj", "xgboost", True, "xgboost"),
    pytest.param("others/xgb-multi.ubj", "xgboost", True, "xgboost"),
    pytest.param("others/lgb-categorical.txt", "lightgbm", True, "lightgbm"),
    pytest.param("others/lgb-multiclass.txt", "lightgbm", True, "lightgbm"),
    pytest.param("others/cb-categorical.cbm", "catboost", True, "catboost"),
    pytest.param("others/cb-multiclass.cbm", "catboost", True, "catboost"),
    pytest.param("torch/package-with-source.pt", "torch-package", False, "torch"),
    pytest.param("torch/package-extern-only.pt", "torch-package", False, "torch"),
    pytest.param("torch/exported.pt2", "pt2", True, "torch", marks=pytest.mark.slow),
    # TorchScript archives with code/ (scripted) and traced ones: torch.jit.load
    pytest.param("torch/scripted-module.pt", "torchscript", False, "torch"),
    pytest.param("torch/scripted-function.pt", "torchscript", False, "torch"),
    pytest.param("torch/traced-module.pt", "torchscript", False, "torch"),
]


@needs_sandbox
@pytest.mark.parametrize(("fixture", "loader", "inference", "library"), BENIGN)
def test_benign_fixture_loads_with_no_dynamic_finding(
    tmp_path: Path, fixture: str, loader: str, inference: bool, library: str
) -> None:
    if not installed(library):
        pytest.skip(f"{library} is not installed here")
    source = DATA / fixture
    if loader == "torchscript":
        assert any(n.endswith(".py") and "/code/" in n for n in zipfile.ZipFile(source).namelist())
    result = dynamic(outside_the_repo(tmp_path, source))
    run = result.dynamic
    assert run is not None
    assert (run.status, run.loader) == ("done", loader), (run, result.findings)
    assert not d_rules(result), d_rules(result)
    assert run.load is not None and run.peak_rss > 0
    assert (run.inference is not None) == inference, run


# -- code on load: refused and reported ----------------------------------------------------------


def _evil_package(path: Path, source: str) -> None:
    """A torch.package whose pickle names a class of its own module ``evil``: load_pickle
    imports the module from the archive, which runs ``source``."""
    from torch.package import PackageExporter

    with PackageExporter(str(path)) as exporter:
        exporter.extern(["os"])  # the host's os module, as a real package externs torch
        exporter.save_source_string("evil", source + "\nclass Thing:\n    pass\n")
        exporter.save_binary("model", "model.pkl", b"\x80\x02cevil\nThing\n)\x81.")


@needs_sandbox
def test_torch_package_module_code_is_refused_and_d103(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    marker = tmp_path / "marker-package"
    path = tmp_path / "evil-package.pt"
    _evil_package(path, f"open({str(marker)!r}, 'w').close()")
    assert sandbox.loader_for(scan_file(str(path), POLICY, Config())) == "torch-package"
    result = dynamic(path)
    assert not marker.exists()
    rules = d_rules(result)
    assert any(str(marker) in m for m in rules["D103"]), rules
    finding = next(f for f in result.findings if f.rule == "D103")
    assert finding.location.path == str(path)
    assert result.dynamic is not None and result.dynamic.loader == "torch-package"


@needs_sandbox
def test_torch_package_module_spawn_is_refused_and_d101(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    marker = tmp_path / "marker-package-spawn"
    path = tmp_path / "spawn-package.pt"
    _evil_package(path, f"import os\nos.system('touch {marker}')")
    result = dynamic(path)
    assert not marker.exists()
    assert any(f"touch {marker}" in m for m in d_rules(result)["D101"]), result.findings


class _Spawn:
    """Pickles as ``os.system(cmd)`` (nothing runs when it is saved)."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.cmd,))


@needs_sandbox
@pytest.mark.slow
def test_pt2_pickled_weight_is_refused_and_d101(tmp_path: Path) -> None:
    # torch.export.load unpickles a weight marked use_pickle with weights_only=False
    # (torch/export/pt2_archive/_package.py)
    torch = pytest.importorskip("torch")
    marker = tmp_path / "marker-pt2"
    payload = io.BytesIO()
    torch.save(_Spawn(f"touch {marker}"), payload)
    path = tmp_path / "evil.pt2"
    with (
        zipfile.ZipFile(DATA / "torch" / "exported.pt2") as src,
        zipfile.ZipFile(path, "w") as out,
    ):
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data/weights/model_weights_config.json"):
                config = json.loads(data)
                config["config"]["b"]["use_pickle"] = True
                data = json.dumps(config).encode()
            elif info.filename.endswith("data/weights/weight_2"):
                data = payload.getvalue()
            out.writestr(info, data)
    result = dynamic(path)
    assert not marker.exists()
    assert result.dynamic is not None and result.dynamic.loader == "pt2"
    assert any(f"touch {marker}" in m for m in d_rules(result)["D101"]), result.findings


# -- libraries missing here: the documented result, not a crash ---------------------------------

MISSING = [
    ("configs/ok-logreg.skops", "skops", "skops", "pip install skops"),
    ("tensorflow/dense.tflite", "tflite", "ai_edge_litert", "pip install ai-edge-litert"),
    (
        "tensorflow/savedmodel-module/saved_model.pb",
        "tf-savedmodel",
        "tensorflow",
        "pip install tensorflow",
    ),
    ("others/openvino-mlp.xml", "openvino", "openvino", "pip install openvino"),
    ("others/flax-params.msgpack", "flax", "flax", "pip install flax"),
    (SAMPLES / "T111" / "ok-program.pte", "executorch", "executorch", "pip install executorch"),
    ("configs/ok-conformer-ctc.nemo", "nemo", "nemo", "pip install nemo_toolkit"),
]


@needs_sandbox
@pytest.mark.parametrize(("fixture", "loader", "module", "hint"), MISSING)
def test_missing_library_is_d901_not_a_crash(
    fixture: str | Path, loader: str, module: str, hint: str
) -> None:
    if installed(module) or (loader == "tflite" and installed("tensorflow")):
        pytest.skip(f"{module} is installed here: the real load is exercised instead")
    result = dynamic(DATA / fixture)
    run = result.dynamic
    assert run is not None and run.loader == loader
    assert run.status == "unsupported", (run, result.findings)
    (message,) = d_rules(result)["D901"]
    assert hint in message, message
    assert set(d_rules(result)) == {"D901"}


@needs_sandbox
def test_xgboost_legacy_binary_with_a_new_xgboost_is_d901(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    if tuple(int(p) for p in xgb.__version__.split(".")[:2]) < (3, 1):
        pytest.skip("this xgboost still reads the legacy binary format")
    result = dynamic(outside_the_repo(tmp_path, SAMPLES / "M220" / "ok-xgboost-legacy.bin"))
    assert result.dynamic is not None and result.dynamic.status == "unsupported"
    (message,) = d_rules(result)["D901"]
    assert "legacy binary format" in message and "xgboost<3.1" in message


# -- what the loaders may read of the artifact ---------------------------------------------------


def test_artifact_parts_name_the_companions_only(tmp_path: Path) -> None:
    model = tmp_path / "m"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"")
    outside = tmp_path / "secret"
    outside.mkdir()
    (model / "assets").symlink_to(outside)  # a part pointing away is never made readable
    parts = paths.artifact_parts("tf-savedmodel", str(model / "saved_model.pb"))
    assert str(model / "variables") in parts
    assert str(model / "assets") not in parts
    assert all(p.startswith(str(model) + "/") for p in parts)
    assert paths.artifact_parts("tf-savedmodel", str(tmp_path / "packed.zip")) == []
    assert paths.artifact_parts("openvino", str(tmp_path / "net.xml")) == [
        str(tmp_path / "net.bin")
    ]
    (tmp_path / "away.bin").symlink_to(outside)
    assert paths.artifact_parts("openvino", str(tmp_path / "away.xml")) == []
    assert paths.artifact_parts("xgboost", str(tmp_path / "x.json")) == []
    policy = paths.PathPolicy.for_artifact(
        [str(tmp_path / "net.xml")], str(tmp_path / "s"), "openvino"
    )
    assert policy.may_read(str(tmp_path / "net.bin"))
    assert not policy.may_read(str(tmp_path / "other.bin"))


def test_naming_a_thread_is_not_a_write_outside_scratch() -> None:
    # tf.data names its threads through /proc/self/task/N/comm: not D103; real files are
    from modelscan_lite.sandbox.paths import PathPolicy

    policy = PathPolicy.for_artifact([], "/tmp/scratch-x", "tf-savedmodel")
    assert policy.may_write("/proc/self/task/123/comm")
    assert policy.may_write("/proc/thread-self/comm")
    assert not policy.may_write("/proc/self/mem")
    assert not policy.may_write("/proc/self/task/123/comm/../../attr/current")
    assert not policy.may_write("/etc/comm")

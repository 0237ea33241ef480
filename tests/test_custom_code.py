"""Custom code wherever the ecosystem runs it (issue 11 point 4): the shared list of dangerous
callables (rules/callables/dangerous.json) and the pickle rules that take it, the code check
seeing through aliasing and construction, and every file that names code to import."""

from __future__ import annotations

import glob
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from modelscan_lite import scan as scan_tree
from modelscan_lite.callables import load_callables
from modelscan_lite.config import Config
from modelscan_lite.engine import GlobSet, Policy, dotted_tails, load_rules, rules_dir
from modelscan_lite.model import Finding
from modelscan_lite.repo.code import AUTO_MAP_FILES, analyse_source
from modelscan_lite.scanner import scan_file

from .conftest import ROOT, SAMPLES

RULES = ROOT / "rules"

# ---- the shared list ----------------------------------------------------------------------

# P101-P104 `glob:` lists as they were before the shared list (git 8310f95)
OLD_GLOBS: dict[str, list[str]] = {
    "P101": [
        "os.system",
        "os.popen",
        "os.exec*",
        "os.spawn*",
        "os.posix_spawn*",
        "os.fork*",
        "os.startfile",
        "posix.system",
        "posix.popen",
        "posix.exec*",
        "posix.spawn*",
        "posix.posix_spawn*",
        "posix.fork*",
        "nt.system",
        "nt.popen",
        "nt.exec*",
        "nt.spawn*",
        "nt.startfile",
        "subprocess.**",
        "_posixsubprocess.**",
        "_winapi.**",
        "pty.**",
        "popen2.**",
        "commands.**",
        "multiprocessing.util.spawnv_passfds",
        "multiprocessing.popen_*.**",
        "asyncio.**",
        "uuid._get_command_stdout",
        "uuid._popen",
        "imaplib.IMAP4_stream",
        "_osx_support.**",
        "_aix_support.**",
        "platform._syscmd_*",
        "platform.popen",
        "builtins.eval",
        "builtins.exec",
        "builtins.execfile",
        "builtins.compile",
        "builtins.breakpoint",
        "runpy.**",
        "code.**",
        "codeop.**",
        "pydoc.**",
        "timeit.**",
        "cProfile.**",
        "profile.**",
        "trace.**",
        "pdb.**",
        "bdb.**",
        "doctest.**",
        "idlelib.**",
        "lib2to3.**",
        "test.support.**",
        "venv.**",
        "ensurepip.**",
        "pip.**",
        "setuptools.**",
        "distutils.**",
        "webbrowser.**",
        "atexit.register",
        "_thread.**",
        "threading.**",
        "types.CodeType",
        "types.FunctionType",
        "types.LambdaType",
        "cloudpickle.**",
        "dill.**",
        "ctypes.**",
        "_ctypes.**",
        "cffi.**",
        "numpy.f2py.**",
        "numpy.testing.**",
        "numpy.distutils.**",
        "torch._inductor.**",
        "torch._dynamo.**",
        "torch.utils.collect_env.**",
        "torch.utils.cpp_extension.**",
        "torch.jit.unsupported_tensor_ops.**",
        "torch.fx.**",
        "torch.hub.**",
        "torch.package.**",
        "mlflow.**",
        "IPython.**",
    ],
    "P102": [
        "builtins.getattr",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.__import__",
        "builtins.globals",
        "builtins.locals",
        "builtins.vars",
        "builtins.object.__getattribute__",
        "builtins.type.__getattribute__",
        "builtins.type",
        "importlib.**",
        "_imp.**",
        "pkgutil.**",
        "inspect.**",
        "operator.**",
        "_operator.**",
        "functools.partial",
        "functools.reduce",
        "functools.partialmethod",
        "_functools.**",
        "copyreg.add_extension",
        "copyreg._extension_registry",
        "sys.modules",
        "site.**",
        "zipimport.**",
        "logging.config.**",
    ],
    "P103": [
        "pickle.**",
        "_pickle.**",
        "cPickle.**",
        "marshal.**",
        "shelve.**",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "joblib.numpy_pickle_compat.**",
        "torch.load",
        "torch.serialization.load",
        "torch.serialization._load",
        "torch.serialization._legacy_load",
        "torch.jit.load",
        "torch.jit._serialization.load",
        "numpy.load",
        "numpy.lib.npyio.load",
        "numpy.lib._npyio_impl.load",
        "pandas.read_pickle",
        "pandas.io.pickle.**",
        "yaml.load",
        "yaml.unsafe_load",
        "yaml.full_load",
        "yaml.load_all",
        "jsonpickle.**",
        "keras.models.load_model",
        "keras.saving.**",
    ],
    "P104": [
        "os.**",
        "posix.**",
        "nt.**",
        "io.**",
        "_io.**",
        "builtins.open",
        "builtins.input",
        "builtins.exit",
        "builtins.quit",
        "shutil.**",
        "tempfile.**",
        "glob.**",
        "fileinput.**",
        "pathlib.**",
        "sys.**",
        "signal.**",
        "resource.**",
        "mmap.**",
        "fcntl.**",
        "socket.**",
        "_socket.**",
        "ssl.**",
        "select.**",
        "selectors.**",
        "http.**",
        "urllib.**",
        "urllib2.**",
        "httplib.**",
        "ftplib.**",
        "smtplib.**",
        "telnetlib.**",
        "poplib.**",
        "imaplib.**",
        "nntplib.**",
        "xmlrpc.**",
        "socketserver.**",
        "requests.**",
        "httpx.**",
        "aiohttp.**",
        "urllib3.**",
        "logging.FileHandler",
        "logging.handlers.**",
        "sqlite3.**",
        "dbm.**",
        "zipfile.**",
        "tarfile.**",
        "gzip.open",
        "bz2.open",
        "lzma.open",
        "huggingface_hub.**",
    ],
}
# names of the in-component wildcards on platforms other than this one (nt: Windows)
OTHER_PLATFORMS = {
    "nt": ["system", "popen", "execv", "execve", "spawnv", "spawnve", "startfile"],
    "os": ["startfile"],
    "platform": ["_syscmd_uname", "_syscmd_file", "_syscmd_ver"],
}


def _real_names() -> set[str]:
    """Dotted names that exist: the attributes of the modules the old globs name, their
    tails through other modules, every allowlisted pickle global, and the list's entries."""
    names: set[str] = set()
    modules = {p.split(".*")[0].split("*")[0].rstrip(".") for ps in OLD_GLOBS.values() for p in ps}
    modules |= {"os", "posix", "platform", "builtins", "torch", "numpy", "collections", "json"}
    for mod in sorted(modules):
        while mod:
            try:
                m = importlib.import_module(mod)
            except Exception:  # not installed, or not a module (``builtins.object``)
                mod = mod.rpartition(".")[0]
                continue
            names.update(f"{mod}.{n}" for n in dir(m))
            break
    for mod, extra in OTHER_PLATFORMS.items():
        names.update(f"{mod}.{n}" for n in extra)
    for ps in OLD_GLOBS.values():
        names.update(p for p in ps if "*" not in p)
        names.update(
            p.replace(".**", ".anything") for p in ps if p.endswith(".**") and "*" not in p[:-3]
        )
    for m in ("popen_fork", "popen_forkserver", "popen_spawn_posix", "popen_spawn_win32"):
        names.add(f"multiprocessing.{m}.Popen")
    names.update(e.dotted for e in load_callables().entries)
    names.update(f"pathlib.{n}" for n in list(names) if n.startswith("os."))  # tails
    allow = json.loads((RULES / "allowlist" / "pickle-globals.json").read_text())
    for section in allow.values():
        if isinstance(section, dict):
            for module, quals in section.items():
                if isinstance(quals, dict | list):
                    names.update(f"{module}.{q}" for q in quals)
    return names


def test_callables_file_validates_against_its_schema() -> None:
    schema = json.loads((RULES / "callables" / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads((RULES / "callables" / "dangerous.json").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    assert not errors, [e.message for e in errors]
    table = load_callables()
    assert {e.category for e in table.entries} == set(table.categories)
    # decided by identity: no wildcard anywhere
    assert all("*" not in e.dotted for e in table.entries)


def test_pickle_rules_take_their_lists_from_the_shared_file() -> None:
    for path in sorted((RULES / "pickle").glob("P10[1-4]-*.yaml")):
        match = yaml.safe_load(path.read_text())["match"]
        assert "glob" not in match and match["callables"], path.name


@pytest.mark.parametrize("rule_id", sorted(OLD_GLOBS))
def test_new_lists_match_exactly_what_the_old_globs_matched(rule_id: str) -> None:
    """Over every real dotted name (and its dotted tails, as ``suffixes: true`` tests them),
    the rule built from the shared list matches exactly what the old glob list matched."""
    rule = load_rules().by_id()[rule_id]
    old = GlobSet(OLD_GLOBS[rule_id])
    differ = [
        name
        for name in sorted(_real_names())
        if any(old.match(t) for t in dotted_tails(name)) != rule.value_matches(name)
    ]
    assert not differ, differ[:20]


def test_old_wildcards_are_spelled_out() -> None:
    """Each in-component wildcard (``os.exec*``) expanded over the real module (and other
    platforms' names) is in the shared list, as an exact entry or inside a module-wide one."""
    table = load_callables()
    for patterns in OLD_GLOBS.values():
        for pattern in patterns:
            head, _, tail = pattern.rpartition(".")
            if "*" not in tail or tail == "**":
                continue
            prefix = tail.split("*")[0]
            try:
                real = set(dir(importlib.import_module(head)))
            except ImportError:
                real = set()
            real |= set(OTHER_PLATFORMS.get(head, []))
            for name in sorted(n for n in real if n.startswith(prefix)):
                assert table.lookup(f"{head}.{name}") is not None, f"{head}.{name} ({pattern})"
    expected = {f"multiprocessing.{m}" for m in ("popen_fork", "popen_spawn_posix")}
    assert expected <= {e.module for e in table.entries if e.name is None}


def _with_old_globs(tmp_path: Path) -> Policy:
    root = tmp_path / "rules"
    shutil.copytree(rules_dir(), root)
    for rule_id, globs in OLD_GLOBS.items():
        path = next(root.glob(f"pickle/{rule_id}-*.yaml"))
        data = yaml.safe_load(path.read_text())
        del data["match"]["callables"]
        data["match"]["glob"] = globs
        path.write_text(yaml.safe_dump(data))
    load_rules.cache_clear()
    try:
        return Policy.build(load_rules(str(root)))
    finally:
        load_rules.cache_clear()


def _findings(sample: Path, policy: Policy) -> list[tuple[str, str, str | None, str]]:
    result = scan_file(str(sample), policy, Config(jobs=1))
    return sorted((f.rule, f.location.path, f.location.member, f.message) for f in result.findings)


def test_every_pickle_sample_gives_the_same_findings_as_with_the_old_globs(
    tmp_path: Path,
) -> None:
    old = _with_old_globs(tmp_path)
    new = Policy.build(load_rules())
    samples = sorted(p for p in SAMPLES.glob("P10[1-4]/*") if p.is_file())
    assert len(samples) > 50
    for sample in samples:
        before, after = _findings(sample, old), _findings(sample, new)
        assert before == after, sample
        if sample.name.startswith("bad-"):
            assert sample.parent.name in {f[0] for f in after}, sample


def test_lookup_prefers_the_most_specific_entry() -> None:
    table = load_callables()
    system, join = table.lookup("os.system"), table.lookup("os.path.join")
    assert system is not None and system.code and system.category == "process"
    assert join is not None and not join.code and join.name is None  # the module-wide `os`
    assert table.lookup("subprocess.run").code  # type: ignore[union-attr]
    assert table.lookup("collections.OrderedDict") is None


# ---- the code check: one test per construction --------------------------------------------

PAD = "import torch\n\n\nclass XModel(torch.nn.Module):\n    pass\n\n\n"
# name -> (source after PAD, rule, reported name, text the message must hold)
CONSTRUCTIONS: dict[str, tuple[str, str, str, str]] = {
    "import-as": ("import subprocess as sp\nsp.run(['id'])\n", "H103", "subprocess.run", ""),
    "from-import-as": (
        "from subprocess import run as r\nr(['id'])\n",
        "H103",
        "subprocess.run",
        "",
    ),
    "module-alias": (
        "import subprocess\ns = subprocess\ns.Popen(['id'])\n",
        "H103",
        "subprocess.Popen",
        "",
    ),
    "function-alias": ("import os\nf = os.system\nf('id')\n", "H103", "os.system", ""),
    "getattr-concat": (
        "import builtins\ngetattr(builtins, 'ex' + 'ec')('x = 1')\n",
        "H103",
        "builtins.exec",
        "computed name",
    ),
    "getattr-builtins-join": (
        'getattr(__builtins__, "".join(["e", "v", "a", "l"]))("1")\n',
        "H103",
        "builtins.eval",
        "",
    ),
    "builtins-dict": (
        "import builtins\nbuiltins.__dict__['exec']('x = 1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "globals-builtins": ("globals()['__builtins__']['eval']('1')\n", "H103", "builtins.eval", ""),
    "vars-builtins": (
        "import builtins\nvars(builtins)['exec']('x = 1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "dunder-import": ("__import__('o' + 's').system('id')\n", "H103", "os.system", ""),
    "dunder-import-itself": (
        "m = __import__('o' + 's')\n",
        "H103",
        "builtins.__import__",
        "imports `os`",
    ),
    "import-module": (
        "import importlib\nimportlib.import_module('subprocess').run('id')\n",
        "H103",
        "subprocess.run",
        "",
    ),
    "methodcaller": (
        "import operator, os\noperator.methodcaller('system', 'id')(os)\n",
        "H103",
        "os.system",
        "methodcaller",
    ),
    "attrgetter": (
        "import operator, os\noperator.attrgetter('system')(os)\n",
        "H103",
        "os.system",
        "",
    ),
    "base64-into-exec": (
        "import base64\nexec(base64.b64decode(PAYLOAD))\n",
        "H103",
        "builtins.exec",
        "`base64.b64decode`",
    ),
    "zlib-into-eval": (
        "import zlib\neval(zlib.decompress(DATA))\n",
        "H103",
        "builtins.eval",
        "`zlib.decompress`",
    ),
    "marshal-into-function-type": (
        "import marshal, types\ntypes.FunctionType(marshal.loads(CODE), {})()\n",
        "H103",
        "types.FunctionType",
        "`marshal.loads`",
    ),
    "rot13-into-compile": (
        "import codecs\ncompile(codecs.decode(SRC, 'rot13'), 'x', 'exec')\n",
        "H103",
        "builtins.compile",
        "`codecs.decode`",
    ),
    "exec-renamed": ("run_it = exec\nrun_it('x = 1')\n", "H103", "builtins.exec", ""),
    "exec-imported-renamed": (
        "from builtins import exec as go\ngo('x = 1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "dynamic-getattr": (
        "import os\ndef call(name, arg):\n    return getattr(os, name)(arg)\n",
        "H105",
        "os",
        "computed at run time",
    ),
    "dynamic-import": (
        "import importlib\ndef load(name):\n    return importlib.import_module(name)\n",
        "H105",
        "importlib.import_module",
        "computed at run time",
    ),
    # spellings beyond the list in the issue
    "f-string": (
        "import builtins\na = 'ex'\ngetattr(builtins, f'{a}ec')('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "percent-format": (
        "import builtins\ngetattr(builtins, '%s%s' % ('ev', 'al'))('1')\n",
        "H103",
        "builtins.eval",
        "",
    ),
    "str-format": (
        "import builtins\ngetattr(builtins, '{}{}'.format('ex', 'ec'))('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "str-join-tuple": (
        "import builtins\ngetattr(builtins, str.join('', ('e', 'x', 'e', 'c')))('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "chr-sum": (
        "import builtins\ngetattr(builtins, chr(101) + chr(120) + chr(101) + chr(99))('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "map-chr": (
        "import builtins\ngetattr(builtins, ''.join(map(chr, [101, 120, 101, 99])))('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "bytes-fromhex": (
        "import builtins\ngetattr(builtins, bytes.fromhex('65786563').decode())('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "reversed-slice": (
        "import builtins\ngetattr(builtins, 'cexe'[::-1])('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "reversed-join": (
        "import builtins\ngetattr(builtins, ''.join(reversed('cexe')))('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "augmented-assignment": (
        "import builtins\ns = 'ex'\ns += 'ec'\ngetattr(builtins, s)('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "base64-constant-name": (
        "import base64, builtins\ngetattr(builtins, base64.b64decode('ZXhlYw==').decode())('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "rot13-constant-name": (
        "import codecs, os\ngetattr(os, codecs.decode('flfgrz', 'rot13'))('id')\n",
        "H103",
        "os.system",
        "",
    ),
    "sys-modules": ("import sys\nsys.modules['os'].system('id')\n", "H103", "os.system", ""),
    "functools-partial": (
        "import functools, os\nfunctools.partial(os.system, 'id')()\n",
        "H103",
        "os.system",
        "",
    ),
    "star-import": ("from os import *\nsystem('id')\n", "H103", "os.system", ""),
    "through-another-module": (
        "import pathlib\npathlib.os.system('id')\n",
        "H103",
        "pathlib.os.system",
        "",
    ),
    "dunder-getattribute": (
        "import os\nos.__getattribute__('system')('id')\n",
        "H103",
        "os.system",
        "",
    ),
    "dict-get": (
        "import builtins\nbuiltins.__dict__.get('exec')('1')\n",
        "H103",
        "builtins.exec",
        "",
    ),
    "dunder-call": ("exec.__call__('x = 1')\n", "H103", "builtins.exec", ""),
    "xor-generator": (
        "import builtins\nK = [98, 127, 98, 100]\n"
        "getattr(builtins, ''.join(chr(c ^ 7) for c in K))('1')\n",
        "H105",
        "builtins",
        "",
    ),
    "globals-dynamic": ("def f(k):\n    return globals()[k]\n", "H105", "<globals>", ""),
    "write-outside": (
        "open('/home/user/.bashrc', 'a').write('curl x | sh')\n",
        "H103",
        "builtins.open",
        "/home/user/.bashrc",
    ),
}


def _repo(tmp_path: Path, source: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text(
        json.dumps({"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}})
    )
    (repo / "modeling_x.py").write_text(PAD + source)
    return repo


def _last_code_line(source: str) -> int:
    lines = (PAD + source).splitlines()
    return max(i for i, ln in enumerate(lines, 1) if ln.strip())


@pytest.mark.parametrize("case", sorted(CONSTRUCTIONS))
def test_construction_is_seen_through(tmp_path: Path, case: str) -> None:
    source, rule, name, text = CONSTRUCTIONS[case]
    repo = _repo(tmp_path, source)
    line = _last_code_line(source)
    if case == "dunder-import-itself":
        line = PAD.count("\n") + 1
    findings = scan_tree([repo], Config(jobs=1)).findings
    hits = [f for f in findings if f.rule == rule and f.location.key == f"line {line}"]
    assert hits, [(f.rule, f.location.key, f.message) for f in findings]
    hit = next((f for f in hits if f"`{name}`" in f.message), hits[0])
    assert f"`{name}`" in hit.message or name in hit.message, hit.message
    assert text in hit.message, hit.message
    assert hit.location.path == str(repo / "modeling_x.py")
    quoted = (PAD + source).splitlines()[line - 1].strip()
    assert hit.evidence is not None and quoted[:150] in hit.evidence
    assert hit.evidence.startswith(f"modeling_x.py:{line}: ")


def test_benign_lookalikes_are_not_reported() -> None:
    source = (
        "import torch, re\n"
        "dtype = getattr(torch, config_dtype)\n"  # computed, but torch holds no code entry
        "x = getattr(self, 'proj')\n"
        "model.eval()\n"
        "pattern = re.compile('a+')\n"
        "import os\n"
        "path = os.path.join(a, 'vocab.txt')\n"
        "with open(os.path.join(save_directory, 'vocab.txt'), 'w') as f:\n"
        "    f.write('x')\n"
        "mod = sys.modules[__name__]\n"
        "kw = {k: locals()[k] for k in names}\n"
        "m = importlib.import_module(f'.{name}', 'transformers.models')\n"
    )
    hits, incomplete = analyse_source(source.encode(), "x.py")
    assert hits == [] and incomplete is None


def test_folding_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strings doubled 400 times stay under the string cap; a file that needs more
    evaluation steps than the budget is reported incomplete (H901), not a hang; deep nesting
    is not a crash."""
    chain = "s0 = 'a'\n" + "".join(f"s{i} = s{i - 1} + s{i - 1}\n" for i in range(1, 400))
    hits, incomplete = analyse_source(chain.encode(), "x.py")
    assert incomplete is None and hits == []
    monkeypatch.setattr("modelscan_lite.repo.code.MAX_STEPS", 2000)
    many = "".join(f"x = x + getattr(os, 'a{i}')\n" for i in range(2000))
    hits, incomplete = analyse_source(("import os\nx = ''\n" + many).encode(), "y.py")
    assert incomplete is not None and "budget" in incomplete
    repo = _repo(tmp_path, "import os\nx = ''\n" + many)
    findings = scan_tree([repo], Config(jobs=1)).findings
    assert any(f.rule == "H901" and "budget" in f.message for f in findings)
    deep = "x = " + "(" * 150 + "1" + ")" * 150 + "\n"
    analyse_source(deep.encode(), "z.py")  # no exception escapes


# ---- files that name code -----------------------------------------------------------------


def _scan(repo: Path) -> list[Finding]:
    return scan_tree([repo], Config(jobs=1)).findings


def _base_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return repo


@pytest.mark.parametrize("name", AUTO_MAP_FILES)
def test_auto_map_in_every_config_transformers_reads(tmp_path: Path, name: str) -> None:
    repo = _base_repo(tmp_path)
    data = json.loads((repo / name).read_text()) if (repo / name).exists() else {}
    data["auto_map"] = {"AutoProcessor": ["proc_x.XProcessor", None], "AutoModel": "other/r--m.X"}
    (repo / name).write_text(json.dumps(data))
    findings = _scan(repo)
    h101 = [f for f in findings if f.rule == "H101"]
    assert h101 and h101[0].location.path == str(repo / name)
    assert h101[0].location.key == "auto_map"
    assert f"`{name}`" in h101[0].message and "proc_x.XProcessor" in h101[0].message
    h102 = [f for f in findings if f.rule == "H102"]
    assert h102 and "`other/r--m.X`" in h102[0].message and h102[0].location.path.endswith(name)


def test_auto_map_names_match_transformers() -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.utils import (
        AUDIO_TOKENIZER_NAME,
        CONFIG_NAME,
        FEATURE_EXTRACTOR_NAME,
        IMAGE_PROCESSOR_NAME,
        PROCESSOR_NAME,
        VIDEO_PROCESSOR_NAME,
    )

    assert transformers.__version__.split(".")[0] >= "5"
    names = {
        CONFIG_NAME,
        FEATURE_EXTRACTOR_NAME,
        IMAGE_PROCESSOR_NAME,
        PROCESSOR_NAME,
        VIDEO_PROCESSOR_NAME,
        AUDIO_TOKENIZER_NAME,
        "tokenizer_config.json",
    }
    assert names == set(AUTO_MAP_FILES)


def test_nested_processor_auto_map(tmp_path: Path) -> None:
    repo = _base_repo(tmp_path)
    (repo / "processor_config.json").write_text(
        json.dumps({"image_processor": {"auto_map": {"AutoImageProcessor": "ip.X"}}})
    )
    hit = next(f for f in _scan(repo) if f.rule == "H101")
    assert hit.location.key == "image_processor.auto_map" and "`ip.X`" in hit.message


def test_custom_pipelines_in_config(tmp_path: Path) -> None:
    repo = _base_repo(tmp_path)
    (repo / "config.json").write_text(
        json.dumps(
            {
                "model_type": "bert",
                "custom_pipelines": {
                    "pair-classification": {"impl": "custom_pipe.PairPipeline", "pt": ["X"]}
                },
            }
        )
    )
    hit = next(f for f in _scan(repo) if f.rule == "H101")
    assert hit.location.path == str(repo / "config.json")
    assert hit.location.key == "custom_pipelines.pair-classification.impl"
    assert "`custom_pipe.PairPipeline`" in hit.message


def test_sentence_transformers_custom_module_type(tmp_path: Path) -> None:
    repo = tmp_path / "st"
    repo.mkdir()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Custom", "type": "custom_st.MyPooling"},
        {"idx": 2, "name": "2", "path": "2_X", "type": "sentence_transformers.util.misc.Oops"},
    ]
    (repo / "modules.json").write_text(json.dumps(modules))
    findings = _scan(repo)
    h101 = [f for f in findings if f.rule == "H101"]
    assert [f.location.key for f in h101] == ["[1].type"]
    assert "`custom_st.MyPooling`" in h101[0].message and "`modules.json`" in h101[0].message
    assert h101[0].location.path == str(repo / "modules.json")
    h104 = [f for f in findings if f.rule == "H104"]
    assert [f.location.key for f in h104] == ["[2].type"]
    assert "`sentence_transformers.util.misc.Oops`" in h104[0].message


def test_sentence_transformers_types_match_the_installed_package() -> None:
    """Every module class the installed sentence-transformers ships, at its own path and at
    its package path, is in the data file (H104 would otherwise fire on a real save)."""
    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("sentence-transformers not installed")
    from modelscan_lite.repo.code import st_module_types

    proc = subprocess.run(
        [sys.executable, "-c", _ST_CLASSES],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    installed = set(json.loads(proc.stdout))
    assert len(installed) > 20
    assert installed <= st_module_types(), sorted(installed - st_module_types())


_ST_CLASSES = r"""
import importlib, inspect, json, pkgutil, warnings
warnings.simplefilter("ignore")
import sentence_transformers as st
from sentence_transformers.base.modules import Module
out = set()
for info in pkgutil.walk_packages(st.__path__, "sentence_transformers."):
    try:
        mod = importlib.import_module(info.name)
    except Exception:
        continue
    for attr, obj in vars(mod).items():
        if inspect.isclass(obj) and issubclass(obj, Module) and obj.__module__.startswith(
            "sentence_transformers."
        ):
            out.add(f"{obj.__module__}.{obj.__qualname__}")
            if info.name.endswith((".models", ".modules")):
                out.add(f"{info.name}.{attr}")
print(json.dumps(sorted(out)))
"""


def test_diffusers_custom_pipeline_and_components(tmp_path: Path) -> None:
    repo = tmp_path / "pipe"
    repo.mkdir()
    (repo / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": ["pipeline", "MyPipeline"],
                "_diffusers_version": "0.30.0",
                "scheduler": ["diffusers", "DDPMScheduler"],
                "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
                "text_encoder": ["transformers", "CLIPTextModel"],
                "unet": ["my_unet", "MyUNet"],
                "vae": ["someone/vae-repo", "MyVAE"],
                "feature_extractor": [None, None],
            }
        )
    )
    (repo / "pipeline.py").write_text("from diffusers import DiffusionPipeline\n")
    findings = _scan(repo)
    keys = {(f.rule, f.location.key) for f in findings if f.rule in ("H101", "H102")}
    assert keys == {
        ("H101", "_class_name"),
        ("H101", "unet"),
        ("H101", "vae"),
        ("H102", "vae"),
        ("H101", "pipeline.py"),
    }, keys
    unet = next(f for f in findings if f.rule == "H101" and f.location.key == "unet")
    assert "`my_unet.MyUNet`" in unet.message and unet.location.path == str(
        repo / "model_index.json"
    )


def test_diffusers_pipeline_modules_match_the_installed_package() -> None:
    spec = importlib.util.find_spec("diffusers")  # not imported: it imports torch._dynamo
    if spec is None or spec.origin is None:
        pytest.skip("diffusers not installed")
    from modelscan_lite.repo.code import DIFFUSERS_PIPELINE_MODULES

    folder = Path(spec.origin).parent / "pipelines"
    installed = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert installed <= DIFFUSERS_PIPELINE_MODULES, sorted(installed - DIFFUSERS_PIPELINE_MODULES)


MAKE_REAL = r"""
import os, sys, warnings
warnings.simplefilter("ignore")
os.environ["HF_HUB_OFFLINE"] = "1"
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast
out = sys.argv[1]
texts = ["hello world", "the quick brown fox jumps over the lazy dog"] * 50
t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
t.pre_tokenizer = pre_tokenizers.Whitespace()
special = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]
t.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=200, special_tokens=special))
tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]",
                              cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
base = os.path.join(out, "bert")
BertModel(BertConfig(num_hidden_layers=1, num_attention_heads=2, hidden_size=16,
                     intermediate_size=32, vocab_size=len(tok))).save_pretrained(base)
tok.save_pretrained(base)
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import (Dense, Normalize, Pooling,
                                                               Transformer)
SentenceTransformer(modules=[Transformer(base), Pooling(16), Dense(16, 8), Normalize()]).save(
    os.path.join(out, "st"))
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                   block_out_channels=(8, 8), norm_num_groups=4,
                   down_block_types=("DownBlock2D", "DownBlock2D"),
                   up_block_types=("UpBlock2D", "UpBlock2D"))
DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=10)).save_pretrained(
    os.path.join(out, "ddpm"))
"""


@pytest.mark.slow
def test_real_sentence_transformers_and_diffusers_saves_pass(tmp_path: Path) -> None:
    if not all(importlib.util.find_spec(m) for m in ("sentence_transformers", "diffusers")):
        pytest.skip("sentence-transformers or diffusers not installed")
    subprocess.run(
        [sys.executable, "-c", MAKE_REAL, str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    st_types = [m["type"] for m in json.loads((tmp_path / "st" / "modules.json").read_text())]
    assert len(st_types) == 4 and all(t.startswith("sentence_transformers.") for t in st_types)
    index = json.loads((tmp_path / "ddpm" / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DModel"]
    for name in ("st", "ddpm"):
        findings = _scan(tmp_path / name)
        assert not [(f.rule, f.message) for f in findings if f.rule.startswith("H1")], name
        assert not [f for f in findings if f.severity >= 2], name  # nothing at medium or above


# ---- real custom-code-like modules --------------------------------------------------------

_TRANSFORMERS = importlib.util.find_spec("transformers")
SITE = Path(_TRANSFORMERS.origin).parents[1] if _TRANSFORMERS and _TRANSFORMERS.origin else Path()
# what the check reports in real library sources, each genuinely doing what it says
# (file relative to site-packages -> reported names); everything else must be silent
EXPECTED_REAL: dict[str, set[str]] = {
    # sentence-transformers' own library code: pushing to the Hub, pruning checkpoints,
    # a deliberate pickle round-trip of an exception, downloading a file
    "sentence_transformers/backend/utils.py": {"huggingface_hub.upload_folder"},
    "sentence_transformers/sentence_transformer/fit_mixin.py": {"shutil.rmtree"},
    "sentence_transformers/base/model.py": {"pickle.loads", "<modules>"},  # sys.modules[ref]
    # resolving a class named in a config or a modules.json (what H101/H104 judge in files)
    "sentence_transformers/base/modules/transformer.py": {"importlib.import_module"},
    "sentence_transformers/util/misc.py": {"importlib.import_module"},
    "sentence_transformers/util/deprecated_import.py": {"importlib.import_module"},
    # downloading model files (and removing a partial download)
    "sentence_transformers/util/file_io.py": {
        "httpx.stream",
        "huggingface_hub.utils.httpx.stream",
        "huggingface_hub.hf_hub_download",
        "huggingface_hub.snapshot_download",
        "os.remove",
    },
}


def _real_files() -> list[str]:
    base = str(SITE)
    files = sorted(glob.glob(f"{base}/transformers/models/*/modeling_*.py"))
    files += sorted(glob.glob(f"{base}/transformers/models/*/tokenization_*.py"))
    files += sorted(glob.glob(f"{base}/transformers/models/*/configuration_*.py"))
    files = [f for f in files if "/models/auto/" not in f]
    files += sorted(glob.glob(f"{base}/sentence_transformers/**/*.py", recursive=True))
    files += sorted(glob.glob(f"{base}/diffusers/pipelines/*/pipeline_*.py"))
    return files


@pytest.mark.slow
def test_real_custom_code_like_modules_are_not_flagged() -> None:
    if _TRANSFORMERS is None:
        pytest.skip("transformers not installed")
    files = _real_files()
    assert len([f for f in files if "/modeling_" in f]) >= 30, len(files)
    found: dict[str, set[str]] = {}
    incomplete = []
    for path in files:
        hits, why = analyse_source(Path(path).read_bytes(), path)
        if why:
            incomplete.append((path, why))
        for h in hits:
            found.setdefault(os.path.relpath(path, SITE), set()).add(h.name)
    assert not incomplete
    sentence_transformers_only = {k: v for k, v in found.items() if "sentence_transformers" in k}
    assert {k: v for k, v in found.items() if k not in sentence_transformers_only} == {}
    for rel, names in sentence_transformers_only.items():
        assert names <= EXPECTED_REAL.get(rel, set()), rel

"""The composite GitHub Action (``action.yml``): its structure, and its ``run:`` steps run for
real in a simulated GitHub environment (workspace, ``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``,
``RUNNER_TEMP``, the runner's ``bash --noprofile --norc -eo pipefail``).

The simulator evaluates the few expression forms the action uses (``inputs.*``,
``steps.ID.outputs.*``, ``github.action_path``, string literals, ``==``, ``!=``, ``&&``,
``||``, ``!``), stops at the first failing step as the runner does, and does not run
``uses:`` steps: it checks they are the pinned setup-python and upload-sarif actions and
records their inputs. The install step is replaced by a ``bin`` folder whose
``modelscan-lite`` runs this checkout (the package is already installed here), except in the
``slow`` test, which runs it for real: a venv and ``pip install`` of the action's folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, SAMPLES

ACTION = ROOT / "action.yml"
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
PINNED = {
    "actions/setup-python": "setup-python",
    "github/codeql-action/upload-sarif": "upload-sarif",
}


def _action() -> dict[str, Any]:
    doc = yaml.safe_load(ACTION.read_text())
    assert isinstance(doc, dict)
    return doc


# --- a tiny evaluator for the expressions the action uses -------------------------------------

_TOKEN = re.compile(r"\s*(?:(==|!=|&&|\|\||!|\(|\))|'((?:[^']|'')*)'|([A-Za-z_][\w.-]*))")


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos, expr = [], 0, expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        assert m and m.end() > pos, f"expression not understood: {expr!r} at {pos}"
        op, string, name = m.groups()
        if op:
            out.append(("op", op))
        elif string is not None:
            out.append(("str", string.replace("''", "'")))
        else:
            out.append(("name", name))
        pos = m.end()
    return out


def evaluate(expr: str, ctx: dict[str, Any]) -> Any:
    tokens = _tokens(expr)

    def lookup(name: str) -> Any:
        if name in ("true", "false"):
            return name == "true"
        value: Any = ctx
        for part in name.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def atom(i: int) -> tuple[Any, int]:
        kind, text = tokens[i]
        if (kind, text) == ("op", "!"):
            value, i = atom(i + 1)
            return not value, i
        if (kind, text) == ("op", "("):
            value, i = either(i + 1)
            assert tokens[i] == ("op", ")")
            return value, i + 1
        assert kind in ("str", "name"), f"unexpected {text!r} in {expr!r}"
        return (text if kind == "str" else lookup(text)), i + 1

    def compare(i: int) -> tuple[Any, int]:
        left, i = atom(i)
        if i < len(tokens) and tokens[i] in (("op", "=="), ("op", "!=")):
            right, j = atom(i + 1)
            same = str(left).lower() == str(right).lower()  # GitHub compares case-blind
            return (same if tokens[i][1] == "==" else not same), j
        return left, i

    def both(i: int) -> tuple[Any, int]:
        value, i = compare(i)
        while i < len(tokens) and tokens[i] == ("op", "&&"):
            right, i = compare(i + 1)
            value = value and right
        return value, i

    def either(i: int) -> tuple[Any, int]:
        value, i = both(i)
        while i < len(tokens) and tokens[i] == ("op", "||"):
            right, i = both(i + 1)
            value = value or right
        return value, i

    value, end = either(0)
    assert end == len(tokens), f"trailing tokens in {expr!r}"
    return value


def interpolate(text: str, ctx: dict[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        value = evaluate(m.group(1), ctx)
        return str(value).lower() if isinstance(value, bool) else str(value)

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def test_evaluator() -> None:
    ctx = {"inputs": {"a": "true", "b": ""}, "steps": {"s": {"outputs": {"x": "1"}}}}
    assert evaluate("inputs.a == 'true' && steps.s.outputs.x != ''", ctx) is True
    assert evaluate("inputs.b != ''", ctx) is False
    assert evaluate("!(inputs.b == '') || inputs.a == 'TRUE'", ctx) is True
    assert interpolate("v=${{ steps.s.outputs.x }}/${{ inputs.missing }}", ctx) == "v=1/"


# --- the simulated runner ------------------------------------------------------------------------


def _read_outputs(path: Path) -> dict[str, str]:
    """``key=value`` lines and ``key<<DELIM`` blocks, as the runner reads GITHUB_OUTPUT."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            out[key] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        key, _, value = line.partition("=")
        out[key] = value
        i += 1
    return out


@dataclass
class Run:
    steps: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> outputs
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    uses: dict[str, dict[str, str]] = field(default_factory=dict)  # which action -> with:
    failed: tuple[str, int] | None = None  # step name, exit code
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


def run_action(
    workspace: Path, tmp: Path, inputs: dict[str, str], *, real_install: bool = False
) -> Run:
    action = _action()
    values = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    assert set(inputs) <= set(values), f"unknown inputs {set(inputs) - set(values)}"
    values.update(inputs)
    runner_temp = tmp / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    summary = tmp / "step-summary.md"
    summary.write_text("")
    run = Run()
    ctx: dict[str, Any] = {
        "inputs": values,
        "steps": {},
        "github": {"action_path": str(ROOT), "workspace": str(workspace)},
        "runner": {"temp": str(runner_temp)},
    }

    def done(sid: str, outputs: dict[str, str]) -> None:
        run.steps[sid] = outputs
        ctx["steps"][sid] = {"outputs": outputs}

    for number, step in enumerate(action["runs"]["steps"]):
        name = step.get("name", f"step {number}")
        sid = step.get("id", f"__{number}")
        if "if" in step and not evaluate(str(step["if"]), ctx):
            run.skipped.append(name)
            continue
        if "uses" in step:
            ref = step["uses"].split("@")[0]
            assert ref in PINNED, f"unexpected action {ref}"
            args = {k: interpolate(str(v), ctx) for k, v in step.get("with", {}).items()}
            run.uses[PINNED[ref]] = args
            # what setup-python reports: the interpreter it set up
            done(sid, {"python-path": sys.executable} if ref.endswith("python") else {})
            run.ran.append(name)
            continue
        if sid == "install" and not real_install:
            done(sid, {"bin": str(_fake_bin(tmp))})
            run.skipped.append(name)
            continue
        output_file = tmp / f"output-{number}"
        output_file.write_text("")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))},
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(runner_temp),
            "NO_COLOR": "1",
            **{k: interpolate(str(v), ctx) for k, v in step.get("env", {}).items()},
        }
        assert step.get("shell") == "bash"
        script = tmp / f"step-{number}.sh"
        script.write_text(interpolate(step["run"], ctx))
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        run.stdout += proc.stdout
        run.stderr += proc.stderr
        done(sid, _read_outputs(output_file))
        run.ran.append(name)
        if proc.returncode != 0:
            run.failed = (name, proc.returncode)
            break
    run.outputs = {k: interpolate(str(v["value"]), ctx) for k, v in action["outputs"].items()}
    run.summary = summary.read_text()
    return run


def _fake_bin(tmp: Path) -> Path:
    """What the install step leaves: ``python`` and ``modelscan-lite`` in a folder."""
    folder = tmp / "fake-venv-bin"
    if not folder.exists():
        folder.mkdir()
        (folder / "python").symlink_to(sys.executable)
        tool = folder / "modelscan-lite"
        tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m modelscan_lite "$@"\n')
        tool.chmod(0o755)
    return folder


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    (ws / "models").mkdir(parents=True)
    shutil.copy(SAMPLES / "P101" / "bad-posix-system.pkl", ws / "models" / "bad.pkl")
    shutil.copy(SAMPLES / "P101" / "ok-plain-dict.pkl", ws / "models" / "clean.pkl")
    (ws / "README.md").write_text("# a repo with models\n")
    return ws


# --- structure -----------------------------------------------------------------------------------


def test_action_structure() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    assert {"paths", "fail-on", "format", "upload-sarif", "args"} <= set(action["inputs"])
    assert action["inputs"]["paths"]["default"] == "."
    assert action["inputs"]["fail-on"]["default"] == "medium"
    text = ACTION.read_text()
    used = set(re.findall(r"inputs\.([\w-]+)", text))
    assert used <= set(action["inputs"]), used - set(action["inputs"])
    assert set(action["inputs"]) <= used, "an input nothing uses"
    ids = {s.get("id") for s in action["runs"]["steps"]}
    for sid in re.findall(r"steps\.([\w-]+)\.outputs", text):
        assert sid in ids, sid
    for step in action["runs"]["steps"]:
        if "uses" in step:
            assert SHA_PIN.match(step["uses"]), step["uses"]
            assert step["uses"].split("@")[0] in PINNED
        else:
            assert step["shell"] == "bash"
            # expressions go through env:, never into the script (script injection)
            assert "${{" not in step["run"], step.get("name")
    for line in text.splitlines():
        if re.search(r"uses:\s*\S+@[0-9a-f]{40}", line):
            assert re.search(r"# v\d+\.\d+\.\d+\s*$", line), f"no version comment: {line}"


# --- runs ----------------------------------------------------------------------------------------


def test_findings_fail_after_the_sarif_is_written_and_uploaded(
    workspace: Path, tmp_path: Path
) -> None:
    run = run_action(workspace, tmp_path, {"paths": "models", "upload-sarif": "true"})
    assert run.failed == ("Verdict", 1), (run.failed, run.stderr)
    assert run.steps["scan"]["exit-code"] == "1"
    assert run.outputs["exit-code"] == "1"
    sarif = Path(run.outputs["sarif-file"])
    assert sarif.parent == tmp_path / "runner-temp"
    doc = json.loads(sarif.read_text())
    assert doc["version"] == "2.1.0"
    assert {r["ruleId"] for r in doc["runs"][0]["results"]} >= {"P101"}
    # the upload ran before the verdict, with the file the scan wrote
    assert run.uses["upload-sarif"]["sarif_file"] == str(sarif)
    assert run.uses["upload-sarif"]["category"] == "modelscan-lite"
    assert run.uses["setup-python"]["python-version"] == "3.12"
    assert run.ran.index("Upload SARIF to code scanning") < run.ran.index("Verdict")
    # annotations in the log, attached to the file relative to the workspace
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error ")]
    assert any(line.startswith("::error file=models/bad.pkl,line=1,") for line in errors)
    assert not any("clean.pkl" in line for line in errors)
    assert "### modelscan-lite: FAIL" in run.summary and "`P101`" in run.summary


def test_clean_files_pass(workspace: Path, tmp_path: Path) -> None:
    run = run_action(workspace, tmp_path, {"paths": "models/clean.pkl README.md"})
    assert run.failed is None, (run.stdout, run.stderr)
    assert run.outputs["exit-code"] == "0"
    assert Path(run.outputs["sarif-file"]).is_file()
    assert "upload-sarif" not in run.uses  # not asked for
    assert "Upload SARIF to code scanning" in run.skipped
    assert "### modelscan-lite: PASS" in run.summary
    assert not [line for line in run.stdout.splitlines() if line.startswith(("::error", "::warn"))]


def test_inputs_reach_the_scan(workspace: Path, tmp_path: Path) -> None:
    # fail-on never: findings reported, the step passes; format and args are honoured
    run = run_action(
        workspace,
        tmp_path,
        {
            "paths": "models\nREADME.md",
            "fail-on": "never",
            "format": "json",
            "args": "--select P1",
            "python-version": "",
        },
    )
    assert run.failed is None and run.outputs["exit-code"] == "0"
    assert "setup-python" not in run.uses and "Set up Python" in run.skipped
    lines = run.stdout.splitlines()
    assert lines[0].startswith("::stop-commands::")  # a JSON report is not commands
    end = lines.index(f"::{lines[0].split('::')[2]}::")
    doc = json.loads("\n".join(lines[1:end]))
    rules = {f["rule"] for a in doc["artifacts"] for f in a["findings"]}
    assert rules and all(r.startswith("P1") for r in rules)


def test_paths_are_not_glob_expanded_or_option_injected(workspace: Path, tmp_path: Path) -> None:
    (workspace / "-h").write_bytes((SAMPLES / "P101" / "bad-posix-system.pkl").read_bytes())
    run = run_action(workspace, tmp_path, {"paths": "-h models/*.pkl"})
    # "-h" is a path (after --), "models/*.pkl" a literal name that does not exist
    assert run.outputs["exit-code"] == "1" and run.failed == ("Verdict", 1)
    assert "::error file=-h,line=1," in run.stdout
    assert "models/*.pkl: no such file" in run.stderr


def test_scan_error_fails_with_exit_2(workspace: Path, tmp_path: Path) -> None:
    run = run_action(workspace, tmp_path, {"paths": "no-such-dir", "upload-sarif": "true"})
    assert run.outputs["exit-code"] == "2" and run.failed == ("Verdict", 2)
    assert "ERROR" in run.summary


@pytest.mark.slow
def test_real_install_from_the_action_path(workspace: Path, tmp_path: Path) -> None:
    """The install step as it runs on GitHub: a venv, ``pip install`` of the action's own
    folder (its dependencies come from the package index)."""
    run = run_action(
        workspace,
        tmp_path,
        {"paths": "models", "python-version": ""},
        real_install=True,
    )
    assert "Install modelscan-lite" in run.ran, run.stderr
    assert run.steps["install"]["bin"].startswith(str(tmp_path / "runner-temp"))
    assert run.failed == ("Verdict", 1), run.stderr[-3000:]
    assert "::error file=models/bad.pkl,line=1," in run.stdout


def test_baselined_findings_pass_and_are_counted(workspace: Path, tmp_path: Path) -> None:
    base = workspace / ".modelscan-baseline.json"
    wrote = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelscan_lite",
            "scan",
            "-q",
            "--write-baseline",
            str(base),
            "models",
        ],
        cwd=workspace,
        capture_output=True,
        text=True,
    )
    assert wrote.returncode == 0 and base.is_file(), wrote.stderr
    run = run_action(workspace, tmp_path, {"paths": "models", "args": f"--baseline {base.name}"})
    assert run.failed is None and run.outputs["exit-code"] == "0"
    assert "0 suppressed, 1 baselined" in run.stdout
    assert "| 0 | 0 | 0 | 0 | 0 | 1 |" in run.summary


def test_documented_workflow_pins_everything_by_commit() -> None:
    doc = (ROOT / "docs" / "github-action.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    workflow = yaml.safe_load(blocks[0])
    steps = workflow["jobs"]["scan-models"]["steps"]
    ours = [s for s in steps if s["uses"].startswith("modelscan-lite/modelscan-lite@")]
    assert len(ours) == 1
    assert set(ours[0]["with"]) <= set(_action()["inputs"])
    for step in steps:
        ref = step["uses"].split("@", 1)[1]
        if step in ours and ref == "<commit-sha>":
            assert "`<commit-sha>` is a placeholder" in doc
            continue
        assert re.fullmatch(r"[0-9a-f]{40}", ref), step["uses"]
        if step in ours:  # a real pin must be a commit of this repository with the action
            proc = subprocess.run(
                ["git", "-C", str(ROOT), "cat-file", "-e", f"{ref}:action.yml"],
                capture_output=True,
            )
            assert proc.returncode == 0, f"{ref} is not a commit here with action.yml"
    # the SHAs the doc quotes for the action's own dependencies are the ones it uses
    for step in _action()["runs"]["steps"]:
        if "uses" in step:
            assert step["uses"].split("@")[1] in doc


def test_other_formats_cannot_issue_workflow_commands(workspace: Path, tmp_path: Path) -> None:
    """A file named like a workflow command starts a line of the text report (its header);
    the runner must not act on it: the step stops command processing around the report."""
    hostile = "::error::pwned.pkl"
    (workspace / hostile).write_bytes((SAMPLES / "P101" / "bad-posix-system.pkl").read_bytes())
    run = run_action(workspace, tmp_path, {"paths": hostile, "format": "text"})
    assert run.failed == ("Verdict", 1)
    lines = run.stdout.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("::stop-commands::"))
    token = lines[start].split("::")[2]
    assert len(token) == 32
    end = lines.index(f"::{token}::")
    # the text report itself defuses the name (first colon shown as \x3a); the stopped region
    # is a second wall
    assert any(x.startswith("\\x3a:error::pwned.pkl") for x in lines[start + 1 : end])
    # outside the stopped region, no line is a workflow command
    outside = lines[:start] + lines[end + 1 :]
    assert not [x for x in outside if x.lstrip().startswith("::")]
    # with format github, nothing is stopped (the annotations are the point), and the name
    # is escaped inside our own command
    gh = run_action(workspace, tmp_path, {"paths": hostile})
    assert "::stop-commands::" not in gh.stdout
    assert not [x for x in gh.stdout.splitlines() if x.startswith(hostile)]
    assert "::error file=%3A%3Aerror%3A%3Apwned.pkl,line=1," in gh.stdout

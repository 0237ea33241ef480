"""Custom code in a Hugging Face repo: ``auto_map`` entries and the repo's Python files.

``auto_map`` in ``config.json`` / ``tokenizer_config.json`` makes ``from_pretrained`` import
the repo's own modules when the user passes ``trust_remote_code=True``; an entry of the form
``other/repo--module.Class`` imports code from a *different* repo. Python files are parsed with
``ast`` (never imported) and every call that starts processes, opens sockets or URLs, writes
files, evaluates code, imports by computed name, downloads, or deserializes is reported with
the offending line as evidence.
"""

from __future__ import annotations

import ast
import os
from typing import Any

from ..formats.base import Context
from ..model import Location

MAX_SOURCE = 2 << 20
# dotted call target (as written, aliases resolved) -> what it does
DANGEROUS_CALLS: dict[str, str] = {
    "os.system": "runs a shell command",
    "os.popen": "runs a shell command",
    "os.execv": "replaces the process",
    "os.execve": "replaces the process",
    "os.execl": "replaces the process",
    "os.execlp": "replaces the process",
    "os.execvp": "replaces the process",
    "os.spawnv": "starts a process",
    "os.spawnl": "starts a process",
    "os.posix_spawn": "starts a process",
    "os.fork": "forks the process",
    "os.remove": "deletes a file",
    "os.unlink": "deletes a file",
    "os.rmdir": "deletes a directory",
    "os.chmod": "changes permissions",
    "shutil.rmtree": "deletes a directory tree",
    "shutil.move": "moves files",
    "subprocess.run": "starts a process",
    "subprocess.Popen": "starts a process",
    "subprocess.call": "starts a process",
    "subprocess.check_call": "starts a process",
    "subprocess.check_output": "starts a process",
    "subprocess.getoutput": "runs a command",
    "subprocess.getstatusoutput": "runs a command",
    "pty.spawn": "starts a process",
    "eval": "evaluates code",
    "exec": "executes code",
    "compile": "compiles code",
    "__import__": "imports a module by computed name",
    "importlib.import_module": "imports a module by computed name",
    "importlib.util.spec_from_file_location": "imports code from a file",
    "runpy.run_path": "runs a file",
    "runpy.run_module": "runs a module",
    "socket.socket": "opens a socket",
    "socket.create_connection": "opens a connection",
    "urllib.request.urlopen": "fetches a URL",
    "urllib.request.urlretrieve": "downloads a URL",
    "requests.get": "fetches a URL",
    "requests.post": "sends data to a URL",
    "requests.request": "fetches a URL",
    "httpx.get": "fetches a URL",
    "httpx.post": "sends data to a URL",
    "http.client.HTTPConnection": "opens a connection",
    "http.client.HTTPSConnection": "opens a connection",
    "huggingface_hub.hf_hub_download": "downloads files",
    "huggingface_hub.snapshot_download": "downloads a repo",
    "hf_hub_download": "downloads files",
    "snapshot_download": "downloads a repo",
    "pickle.load": "deserializes a pickle",
    "pickle.loads": "deserializes a pickle",
    "marshal.loads": "loads code objects",
    "dill.load": "deserializes a pickle",
    "dill.loads": "deserializes a pickle",
    "joblib.load": "deserializes a pickle",
    "ctypes.CDLL": "loads a native library",
    "ctypes.cdll.LoadLibrary": "loads a native library",
    "base64.b64decode": "decodes hidden data",
    "codecs.decode": "decodes hidden data",
    "zlib.decompress": "decodes hidden data",
}


def check_auto_map(data: Any, where: Location, ctx: Context) -> None:
    auto_map = data.get("auto_map") if isinstance(data, dict) else None
    if not isinstance(auto_map, dict) or not auto_map:
        return
    refs: list[str] = []
    for value in auto_map.values():
        refs.extend(
            v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)
        )
    ctx.emit(
        "repo.remote-code",
        ", ".join(sorted(auto_map))[:200],
        where.at(key="auto_map"),
        classes=", ".join(refs)[:300],
    )
    for ref in refs:
        if "--" in ref:
            ctx.emit(
                "repo.cross-repo-code", ref, where.at(key="auto_map"), repo=ref.split("--", 1)[0]
            )


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted name for ``import x as y`` and ``from x import y as z``."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    head = aliases.get(node.id, node.id)
    return ".".join([head, *reversed(parts)])


def check_python(path: str, where: Location, ctx: Context) -> None:
    try:
        with open(path, "rb") as f:
            source = f.read(MAX_SOURCE + 1)
    except OSError as exc:
        ctx.emit(
            "repo.unanalysed", os.path.basename(path), where, message=f"cannot read: {exc.strerror}"
        )
        return
    if len(source) > MAX_SOURCE:
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(path),
            where,
            message="Python file over 2 MiB was not analysed",
        )
        return
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        ctx.emit(
            "repo.unanalysed",
            os.path.basename(path),
            where,
            message=f"Python file does not parse: {type(exc).__name__}",
        )
        return
    lines = source.decode("utf-8", "replace").splitlines()
    aliases = _aliases(tree)
    seen: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        if name is None:
            continue
        what = DANGEROUS_CALLS.get(name)
        if what is None and name == "open" and _writes(node):
            what = "writes a file"
        if what is None or name in seen:
            continue
        seen.add(name)
        line = lines[node.lineno - 1].strip() if 0 < node.lineno <= len(lines) else ""
        ctx.emit(
            "repo.code-call",
            name,
            where.at(key=f"line {node.lineno}"),
            f"{os.path.basename(path)}:{node.lineno}: {line[:160]}",
            what=what,
            line=node.lineno,
        )


def _writes(call: ast.Call) -> bool:
    mode = (
        call.args[1]
        if len(call.args) > 1
        else next((k.value for k in call.keywords if k.arg == "mode"), None)
    )
    return (
        isinstance(mode, ast.Constant)
        and isinstance(mode.value, str)
        and any(c in mode.value for c in "wax+")
    )

"""Start one sandboxed load, watch it, enforce its wall clock, and collect what happened.

Backends, strongest first: ``bwrap`` (bubblewrap's namespaces and a read-only bind of ``/``),
``namespaces`` (the built-in jail, :mod:`.jail`) and ``landlock`` (no namespaces: Landlock,
seccomp and rlimits only). Every backend runs the same child (:mod:`.child`), so Landlock,
seccomp, rlimits, the cleared environment and the process-group kill hold in all three;
:func:`choose` probes which the machine allows. A backend that fails its probe is never used,
and no backend means no load: the sandbox never runs an artifact unconfined.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import SandboxOptions
from . import landlock, seccomp
from .paths import PathPolicy
from .syscalls import pidfd_getfd
from .watch import Event, Watcher

BACKENDS = ("bwrap", "namespaces", "landlock")
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(statement: str, *args: str) -> list[str]:
    """An isolated interpreter (``-I``) that runs ``statement`` with this package importable
    (``sys.argv[1]`` is its parent folder, whatever installed it); ``args`` follow."""
    boot = f"import json, sys; sys.path.insert(0, sys.argv[1]); {statement}"
    return [sys.executable, "-I", "-c", boot, _PACKAGE_PARENT, *args]


Options = SandboxOptions


@dataclass
class Outcome:
    """One sandboxed load: its verdict (``status``), the refused attempts and the numbers."""

    target: str
    loader: str
    backend: str
    status: str = "crash"  # done, load, inference, memory, timeout, crash, unsupported, error
    error: str | None = None
    events: list[Event] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss: int = 0
    landlock_abi: int = 0


class SandboxUnavailable(RuntimeError):
    """No isolation backend works on this machine."""


def _clean_env(scratch: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": scratch,
        "LANG": "C.UTF-8",
        "HF_HOME": os.path.join(scratch, "hf"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _bwrap_prefix(scratch: str) -> list[str]:
    bwrap = shutil.which("bwrap") or "bwrap"
    return [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--bind", scratch, scratch,
        "--hostname", "modelscan-lite-sandbox",
        "--chdir", scratch,
        "--",
    ]  # fmt: skip


@functools.cache
def probe(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or ``None`` when it can (cached per process)."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux (this is {sys.platform})"
    if landlock.abi_version() < 1:
        return "Landlock is not available (kernel older than 5.13, or disabled)"
    if not seccomp.available():
        return "seccomp user notification is not supported on this CPU architecture"
    if backend == "landlock":
        return None
    if backend == "bwrap":
        if shutil.which("bwrap") is None:
            return "bwrap (bubblewrap) is not installed"
        cmd = [*_bwrap_prefix(tempfile.gettempdir())[:-1], "--", "/bin/true"]
    elif backend == "namespaces":
        cmd = _python("from modelscan_lite.sandbox.jail import enter; enter()")
    else:
        return f"unknown sandbox backend {backend!r} (expected one of {', '.join(BACKENDS)})"
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{backend}: {exc}"
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        return f"{backend} cannot create namespaces here: {tail[0]}"
    return None


def choose(requested: str) -> str:
    """The backend to use; raises :class:`SandboxUnavailable` with every reason otherwise."""
    candidates = BACKENDS if requested == "auto" else (requested,)
    reasons = []
    for backend in candidates:
        reason = probe(backend)
        if reason is None:
            return backend
        reasons.append(reason)
    raise SandboxUnavailable("; ".join(dict.fromkeys(reasons)))


def run(target: str, loader: str, backend: str, options: Options) -> Outcome:
    """Load ``target`` with ``loader`` in a fresh sandbox; never raises for the artifact's doing."""
    outcome = Outcome(target, loader, backend)
    scratch = tempfile.mkdtemp(prefix="modelscan-lite-sandbox-")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    policy = PathPolicy.for_artifact([target], scratch, loader)
    spec = {
        "fd": theirs.fileno(),
        "loader": loader,
        "scratch": scratch,
        "target": os.path.abspath(target),
        "jail": "builtin" if backend == "namespaces" else None,
        "read": policy.read,
        "write": policy.write,
        "devices": policy.devices,
        "memory": options.memory,
        "cpu_seconds": int(options.timeout) + 5,
        "file_size": options.file_size,
        "open_files": options.open_files,
        "trust_remote_code": options.trust_remote_code,
    }
    cmd = _python(
        "from modelscan_lite.sandbox.child import main; main(json.loads(sys.argv[2]))",
        json.dumps(spec),
    )
    if backend == "bwrap":
        cmd = _bwrap_prefix(scratch) + cmd
    started = time.perf_counter()
    watcher: Watcher | None = None
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(
                cmd,
                env=_clean_env(scratch),
                cwd=scratch,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        except OSError as exc:
            outcome.status, outcome.error = "error", f"cannot start the sandbox: {exc}"
            return outcome
        finally:
            theirs.close()
        try:
            watcher = _converse(ours, proc, outcome, policy, started + options.timeout, started)
        finally:
            _kill(proc)
            ours.close()
            if watcher is not None:
                watcher.stop()
                outcome.events = watcher.events
            stderr.seek(0, os.SEEK_END)
            stderr.seek(max(0, stderr.tell() - 4000))
            tail = stderr.read().decode("utf-8", "replace")
            shutil.rmtree(scratch, ignore_errors=True)
    if outcome.status == "crash":
        code = proc.returncode
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        lines = [ln for ln in tail.strip().splitlines() if ln.strip()]
        outcome.error = f"the loader process ended without a result ({how})" + (
            f": {lines[-1]}" if lines else ""
        )
        if watcher is None:
            outcome.status = "error"
            outcome.error = "the sandbox could not be set up: " + (lines[-1] if lines else how)
    outcome.timings["total"] = time.perf_counter() - started
    return outcome


def _converse(
    sock: socket.socket,
    proc: subprocess.Popen[bytes],
    outcome: Outcome,
    policy: PathPolicy,
    deadline: float,
    started: float,
) -> Watcher | None:
    """Read the child's messages until its result, its death or the deadline."""
    watcher: Watcher | None = None
    buf = b""
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            outcome.status = "timeout"
            return watcher
        ready, _, _ = select.select([sock], [], [], min(remaining, 0.25))
        if not ready:
            if proc.poll() is not None and not select.select([sock], [], [], 0)[0]:
                return watcher
            continue
        data = sock.recv(1 << 16)
        if not data:
            return watcher  # every copy of the socket closed: the child is gone
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            msg = _parse(line)
            if msg.get("type") == "listener" and watcher is None:
                listener = _take_listener(proc.pid, msg)
                if listener is None:
                    outcome.status, outcome.error = "error", "could not take the seccomp listener"
                    return None
                watcher = Watcher(listener, policy)
                watcher.start()
                outcome.timings["startup"] = time.perf_counter() - started
                sock.sendall(b"k")
            elif _message(msg, outcome):
                return watcher


def _parse(line: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except ValueError:
        return {}
    return msg if isinstance(msg, dict) else {}


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 64:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children", encoding="ascii") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def _take_listener(root: int, msg: dict[str, Any]) -> int | None:
    """Copy the child's seccomp listener fd into this process (``pidfd_getfd``).

    The child names its pid as its own PID namespace sees it; the process is found among our
    descendants by the last entry of ``NSpid``.
    """
    fd, inner = msg.get("fd"), msg.get("pid")
    if not isinstance(fd, int) or not isinstance(inner, int):
        return None
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                nspid = next((ln.split()[1:] for ln in f if ln.startswith("NSpid:")), [])
        except OSError:
            continue
        if nspid and int(nspid[-1]) == inner:
            return pidfd_getfd(pid, fd)
    return None


def _message(msg: dict[str, Any], outcome: Outcome) -> bool:
    """Apply one message to the outcome; True once the final result has arrived."""
    kind = msg.get("type")
    if kind == "layer":
        outcome.landlock_abi = int(msg.get("landlock_abi", 0))
    elif kind == "warm":
        outcome.timings["warm"] = float(msg.get("seconds", 0.0))
    elif kind == "audit" and len(outcome.audit) < 500:
        outcome.audit.append(msg)
    elif kind == "unsupported":
        outcome.status, outcome.error = "unsupported", str(msg.get("reason"))
        return True
    elif kind == "result":
        outcome.status = str(msg.get("stage", "crash"))
        outcome.error = msg.get("error")
        summary = msg.get("summary")
        outcome.summary = summary if isinstance(summary, dict) else {}
        timings = msg.get("timings")
        if isinstance(timings, dict):
            outcome.timings.update({k: float(v) for k, v in timings.items()})
        outcome.peak_rss = int(msg.get("peak_rss", 0))
        if msg.get("traceback"):
            outcome.summary["traceback"] = msg["traceback"]
        return True
    return False


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group (setsid/setpgid are refused inside, so it is whole)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

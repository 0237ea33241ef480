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
MAX_LINE = 1 << 20  # the child's longest legitimate message is a few KiB
MAX_AUDIT = 1000  # distinct audit events kept per kind; more are counted, never dropped silently
AUDIT_KINDS = ("global", "spawn", "native", "network", "write", "read", "atexit")
GRACE = 1.0  # seconds the child has to exit after its result, still watched
STAGES = ("done", "load", "inference", "memory")
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
    # what the child wrote on its channel that the real child never writes: evidence that code
    # running inside tampered with the report (description -> times seen)
    channel: dict[str, int] = field(default_factory=dict)
    audit_over_cap: dict[str, int] = field(default_factory=dict)
    read_only_failed: list[str] = field(default_factory=list)
    bounding_set_dropped: bool | None = None
    _audit_index: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = field(
        default_factory=dict, repr=False
    )
    _audit_kinds: dict[str, int] = field(default_factory=dict, repr=False)


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
    # root outside is an unprivileged id inside, as in the built-in jail
    as_user = ["--unshare-user", "--uid", "1000", "--gid", "1000"] if os.getuid() == 0 else []
    return [
        bwrap,
        *as_user,
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
        "jail": "builtin" if backend == "namespaces" else None,  # read-only but for "write"
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
    """Read the child's messages until it ends (or the deadline), watching all along.

    What the child says is never trusted to end the watch early: after its result it has
    :data:`GRACE` seconds to exit, still watched; if it closes the channel, the watch goes on
    until it exits or the deadline. Messages the real child never sends (malformed, oversized,
    out of order, after the result) are kept in ``outcome.channel``.
    """
    watcher: Watcher | None = None
    buf = b""
    end = deadline
    finished = eof = skipping = False
    while True:
        remaining = end - time.perf_counter()
        if remaining <= 0:
            if not finished:
                outcome.status = "timeout"
            return watcher
        if eof:
            try:  # the channel is closed: keep the watch until the process ends
                proc.wait(timeout=min(remaining, 0.25))
            except subprocess.TimeoutExpired:
                continue
            return watcher
        ready, _, _ = select.select([sock], [], [], min(remaining, 0.25))
        if not ready:
            if proc.poll() is not None and not select.select([sock], [], [], 0)[0]:
                return watcher
            continue
        try:
            data = sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            if watcher is None:
                return None  # it ended before the watch began: nothing of the artifact ran
            eof = True  # every copy of the socket closed
            continue
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if skipping:  # the rest of an oversized message
                skipping = False
                continue
            msg = _parse(line)
            if finished:
                _tamper(outcome, "a message after the result")
                continue
            if msg.get("type") == "listener":
                if watcher is not None:
                    _tamper(outcome, "a second listener message")
                    continue
                listener = _take_listener(proc.pid, msg)
                if listener is None:
                    outcome.status, outcome.error = "error", "could not take the seccomp listener"
                    return None
                watcher = Watcher(listener, policy)
                watcher.start()
                outcome.timings["startup"] = time.perf_counter() - started
                sock.sendall(b"k")
            elif _message(msg, outcome, watching=watcher is not None):
                finished = True
                end = min(deadline, time.perf_counter() + GRACE)
        if len(buf) > MAX_LINE:
            _tamper(outcome, f"a message longer than {MAX_LINE // 1024} KiB")
            buf, skipping = b"", True


def _tamper(outcome: Outcome, what: str) -> None:
    if what in outcome.channel or len(outcome.channel) < 20:
        outcome.channel[what] = outcome.channel.get(what, 0) + 1


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


def _message(msg: dict[str, Any], outcome: Outcome, *, watching: bool) -> bool:
    """Apply one message to the outcome; True once the final result has arrived.

    Never raises: a message that does not have the shape the real child gives it is recorded
    as tampering and ignored.
    """
    kind = msg.get("type")
    try:
        return _apply(kind, msg, outcome, watching)
    except (TypeError, ValueError, AttributeError, OverflowError):
        _tamper(outcome, f"a malformed {str(kind)[:40]!r} message")
        return False


def _apply(kind: object, msg: dict[str, Any], outcome: Outcome, watching: bool) -> bool:
    if kind in ("layer", "warm") and watching:
        _tamper(outcome, f"a {kind!r} message after the watch began")
    elif kind == "layer":
        outcome.landlock_abi = int(msg.get("landlock_abi", 0))
        failed = msg.get("read_only_failed", [])
        outcome.read_only_failed = [str(f)[:300] for f in failed[:50]]
        dropped = msg.get("bounding_set_dropped")
        outcome.bounding_set_dropped = dropped if isinstance(dropped, bool) else None
    elif kind == "warm":
        outcome.timings["warm"] = float(msg.get("seconds", 0.0))
    elif kind == "audit" and watching:
        _audit(msg, outcome)
    elif kind == "unsupported":
        outcome.status, outcome.error = "unsupported", str(msg.get("reason"))[:2000]
        return True
    elif kind == "result" and watching:
        stage = msg.get("stage", "crash")
        if stage not in STAGES:
            raise ValueError(stage)
        timings = msg.get("timings", {})
        timings = {str(k): float(v) for k, v in timings.items()}
        peak = int(msg.get("peak_rss", 0))
        summary = msg.get("summary")
        error = msg.get("error")
        outcome.status = stage
        outcome.error = str(error)[:4000] if error is not None else None
        outcome.summary = summary if isinstance(summary, dict) else {}
        outcome.timings.update(timings)
        outcome.peak_rss = peak
        if msg.get("traceback"):
            outcome.summary["traceback"] = str(msg["traceback"])
        return True
    else:
        _tamper(outcome, "a message the loader never sends" if kind else "a line that is not JSON")
    return False


def _audit(msg: dict[str, Any], outcome: Outcome) -> None:
    """Keep one audit event per distinct (kind, event, args), with a count; past
    :data:`MAX_AUDIT` distinct events of one kind, count the rest."""
    kind, event, args = msg.get("kind"), msg.get("event"), msg.get("args", [])
    if not isinstance(kind, str) or not isinstance(event, str) or not isinstance(args, list):
        raise TypeError("audit")
    kind, event = kind[:40], event[:200]
    args = [str(a)[:300] for a in args[:8]]
    key = (kind, event, tuple(args))
    known = outcome._audit_index.get(key)
    if known is not None:
        known["count"] += 1
        return
    if kind not in AUDIT_KINDS:
        raise ValueError(kind)
    if outcome._audit_kinds.get(kind, 0) >= MAX_AUDIT:
        outcome.audit_over_cap[kind] = outcome.audit_over_cap.get(kind, 0) + 1
        return
    outcome._audit_kinds[kind] = outcome._audit_kinds.get(kind, 0) + 1
    entry = {"type": "audit", "kind": kind, "event": event, "args": args, "count": 1}
    outcome._audit_index[key] = entry
    outcome.audit.append(entry)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group (setsid/setpgid are refused inside, so it is whole)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

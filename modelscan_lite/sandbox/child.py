"""The sandboxed child: confine itself, warm the loader up, hand the watch to the parent, load.

Order matters and is fixed here: (1) the built-in namespace jail when asked (needs one thread;
everything but the scratch dir read-only); (2) rlimits; (3) Landlock, while the process still
has one thread, since Landlock binds the calling thread and its future children only, then
every capability dropped (bounding, ambient, inheritable, permitted, effective) with
``no_new_privs`` already set; (4) the loader's warm-up imports, now already
confined; (5) the seccomp filter on every thread, whose listener fd goes to the parent and is
closed here before any artifact byte is touched; (6) an audit hook that reports Python-level
events (resolved pickle globals, spawns, ctypes loads) to the parent; (7) the load and the one
inference; (8) a report, and ``os._exit`` so that nothing registered at exit ever runs.

Messages to the parent are JSON lines on an inherited UNIX socket. They come from inside the
sandbox, so the parent treats them as enrichment: what the kernel reported through seccomp is
the evidence.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import threading
import time
import traceback
from typing import Any

from .paths import PathPolicy

_out_fd = -1
_lock = threading.Lock()


def send(message: dict[str, Any]) -> None:
    data = (json.dumps(message, default=repr) + "\n").encode()
    with _lock, contextlib.suppress(OSError):
        os.write(_out_fd, data)


def _set_limits(spec: dict[str, Any]) -> None:
    for res, value in (
        (resource.RLIMIT_AS, spec["memory"]),
        (resource.RLIMIT_CPU, spec["cpu_seconds"]),
        (resource.RLIMIT_FSIZE, spec["file_size"]),
        (resource.RLIMIT_NOFILE, spec["open_files"]),
        (resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(res)
        value = min(value, hard) if hard != resource.RLIM_INFINITY else value
        resource.setrlimit(res, (value, value))


_WATCHED = {
    "pickle.find_class": "global",
    "os.system": "spawn",
    "os.exec": "spawn",
    "os.posix_spawn": "spawn",
    "os.spawn": "spawn",
    "subprocess.Popen": "spawn",
    "ctypes.dlopen": "native",
    "socket.connect": "network",
    "socket.bind": "network",
    "socket.sendto": "network",
    "socket.getaddrinfo": "network",
    "open": "open",
}


def _audit_hook(policy: PathPolicy, watching: list[bool]) -> Any:
    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not watching[0]:
            return
        kind = _WATCHED.get(event)
        if kind is None:
            return
        if kind == "open":
            path, mode = args[0], args[1]
            if not isinstance(path, str):
                return
            writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            if isinstance(args[2], int):
                writing = writing or bool(args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            full = os.path.abspath(path)
            if policy.may_write(full) if writing else policy.may_read(full):
                return
            kind = "write" if writing else "read"
            args = (full,)
        watching[0] = False  # no events from our own reporting
        try:
            send(
                {
                    "type": "audit",
                    "kind": kind,
                    "event": event,
                    "args": [repr(a)[:300] for a in args],
                }
            )
        finally:
            watching[0] = True

    return hook


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(spec: dict[str, Any]) -> None:
    global _out_fd
    _out_fd = spec["fd"]
    read_only_failed: list[str] = []
    if spec.get("jail") == "builtin":
        from .jail import enter

        read_only_failed = enter(spec["write"])
    _set_limits(spec)
    policy = PathPolicy(tuple(spec["read"]), tuple(spec["write"]), tuple(spec["devices"]))
    from . import landlock, seccomp
    from .loaders import LOADERS, InferenceError, Unsupported
    from .syscalls import drop_capabilities

    abi = landlock.restrict(policy.read, policy.write, policy.devices)
    bounding = drop_capabilities()
    send(
        {
            "type": "layer",
            "landlock_abi": abi,
            "bounding_set_dropped": bounding,
            "read_only_failed": read_only_failed,
        }
    )
    warm, run = LOADERS[spec["loader"]]
    t0 = time.perf_counter()
    try:
        warm(spec["target"], spec["scratch"])
    except Unsupported as exc:
        send({"type": "unsupported", "reason": str(exc)})
        os._exit(0)
    send({"type": "warm", "seconds": time.perf_counter() - t0, "rss": _peak_rss()})
    import atexit

    registered: list[str] = []

    def record_atexit(func: Any, *args: Any, **kwargs: Any) -> Any:
        name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
        registered.append(f"{name}{tuple(args)!r}"[:300])
        send(
            {
                "type": "audit",
                "kind": "atexit",
                "event": "atexit.register",
                "args": [registered[-1]],
            }
        )
        return func

    callbacks_before = atexit._ncallbacks()
    atexit.register = record_atexit  # type: ignore[assignment]
    listener = seccomp.install()
    # the parent copies the listener out with pidfd_getfd (sendmsg is itself watched), then
    # acknowledges; only then is our copy closed and the artifact touched
    send({"type": "listener", "fd": listener, "pid": os.getpid()})
    if os.read(_out_fd, 1) != b"k":
        os._exit(3)
    os.close(listener)
    watching = [True]
    sys.addaudithook(_audit_hook(policy, watching))
    timings: dict[str, float] = {}
    result: dict[str, Any] = {"type": "result"}
    try:
        kwargs = {"trust_remote_code": True} if spec.get("trust_remote_code") else {}
        result["summary"] = run(spec["target"], timings, **kwargs)
        result["stage"] = "done"
    except InferenceError as exc:
        result.update(stage="inference", error=str(exc))
    except Unsupported as exc:
        watching[0] = False
        send({"type": "unsupported", "reason": str(exc)})
        os._exit(0)
    except MemoryError:
        result.update(stage="memory", error="MemoryError: the memory limit was reached")
    except BaseException as exc:
        watching[0] = False
        tb = traceback.format_exception(exc)
        result.update(
            stage="load", error=f"{type(exc).__name__}: {exc}"[:2000], traceback="".join(tb)[-3000:]
        )
    watching[0] = False
    if atexit._ncallbacks() > callbacks_before:
        send(
            {
                "type": "audit",
                "kind": "atexit",
                "event": "atexit (native)",
                "args": [
                    f"{atexit._ncallbacks() - callbacks_before} callbacks registered "
                    "without atexit.register"
                ],
            }
        )
    result["timings"] = timings
    result["peak_rss"] = _peak_rss()
    send(result)
    os._exit(0)


if __name__ == "__main__":  # pragma: no cover - started by the supervisor
    main(json.loads(sys.argv[1]))

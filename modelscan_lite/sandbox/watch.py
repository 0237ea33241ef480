"""The parent's side of seccomp user notification: read each parked syscall, judge, record.

Runs in a thread of the trusted parent. For every syscall the filter parks it reads the
arguments out of the child's memory (paths, argv, socket addresses), decides with the same
:class:`~.paths.PathPolicy` the child gave Landlock, answers the kernel, and keeps an
:class:`Event` for each attempt that leaves the sandbox. Spawns and network attempts are always
refused; opens inside the allowed paths continue (and Landlock checks them again). Metadata
changes (chmod, chown, utimes, xattrs) are always refused; name changes (rename, link, mkdir,
unlink, truncate...) continue only inside the scratch dir; lookups (stat, access, readlink)
continue only on readable paths and their parent folders; signals reach only the sandbox's own
processes.

Recording never drops an attempt silently: repeats of one kind and target become one event
with a count, every distinct kind and target is kept up to :data:`MAX_TARGETS` per kind, and
attempts beyond that cap are counted in one more event of the same kind that says so.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import struct
import threading
from dataclasses import dataclass, field

from . import seccomp
from .paths import PathPolicy
from .syscalls import NAMES

AT_FDCWD = -100
O_ACCMODE = 3
O_CREAT = 0o100
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_TMPFILE = 0o20000000
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
MAX_ARGV = 64
MAX_TARGETS = 1000  # distinct targets kept per kind; more are counted, never dropped silently
CAP_KEY = "\0cap"

# where each judged call names its target(s): (dirfd argument or None for the working
# directory, path argument or None for "the fd itself")
_TARGETS: dict[str, tuple[tuple[int | None, int | None], ...]] = {
    **dict.fromkeys(
        ("chmod", "chown", "lchown", "utime", "utimes", "setxattr", "lsetxattr", "removexattr"),
        ((None, 0),),
    ),
    **dict.fromkeys(
        ("lremovexattr", "mkdir", "mknod", "unlink", "rmdir", "truncate"), ((None, 0),)
    ),
    **dict.fromkeys(("fchmod", "fchown", "fsetxattr", "fremovexattr"), ((0, None),)),
    **dict.fromkeys(
        ("fchmodat", "fchmodat2", "fchownat", "futimesat", "utimensat", "setxattrat"),
        ((0, 1),),
    ),
    **dict.fromkeys(("removexattrat", "mkdirat", "mknodat", "unlinkat"), ((0, 1),)),
    **dict.fromkeys(("rename", "link"), ((None, 0), (None, 1))),
    **dict.fromkeys(("renameat", "renameat2", "linkat"), ((0, 1), (2, 3))),
    "symlink": ((None, 1),),
    "symlinkat": ((1, 2),),
    **dict.fromkeys(
        ("stat", "lstat", "access", "readlink", "getxattr", "lgetxattr", "listxattr"),
        ((None, 0),),
    ),
    **dict.fromkeys(("llistxattr", "statfs"), ((None, 0),)),
    **dict.fromkeys(
        ("newfstatat", "statx", "faccessat", "faccessat2", "readlinkat", "getxattrat"),
        ((0, 1),),
    ),
    "listxattrat": ((0, 1),),
}
# lookups that act on a symlink itself: (always, or the argument whose AT_SYMLINK_NOFOLLOW says)
_NOFOLLOW: dict[str, int | None] = {
    "lstat": None,
    "readlink": None,
    "readlinkat": None,
    "lgetxattr": None,
    "llistxattr": None,
    "newfstatat": 3,
    "statx": 2,
    "faccessat2": 3,
    "getxattrat": 2,
    "listxattrat": 2,
}
CLONE_FLAGS = {
    0x00000080: "CLONE_NEWTIME",
    0x00020000: "CLONE_NEWNS",
    0x02000000: "CLONE_NEWCGROUP",
    0x04000000: "CLONE_NEWUTS",
    0x08000000: "CLONE_NEWIPC",
    0x10000000: "CLONE_NEWUSER",
    0x20000000: "CLONE_NEWPID",
    0x40000000: "CLONE_NEWNET",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One attempt the sandbox refused: ``kind`` is spawn, network, write, read or escape.

    After aggregation ``syscall`` lists every call seen on that kind and target, and ``detail``
    carries ``count`` when the attempt was repeated.
    """

    kind: str
    syscall: str
    value: str  # what a rule matches and a message quotes: the path, address or command
    pid: int
    detail: tuple[tuple[str, str], ...] = ()


@dataclass
class _Tally:
    first: Event
    count: int = 1
    calls: list[str] = field(default_factory=list)


@dataclass
class Watcher:
    listener: int
    policy: PathPolicy
    _tallies: dict[tuple[str, str], _Tally] = field(default_factory=dict)
    _per_kind: dict[str, int] = field(default_factory=dict)
    _over_cap: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def events(self) -> list[Event]:
        """Every distinct attempt (kind and target) in the order first seen, with its count and
        calls; then, per kind whose cap was reached, one event counting what is not listed."""
        out = []
        for tally in self._tallies.values():
            ev = tally.first
            detail = ev.detail
            if tally.count > 1:
                detail = (*detail, ("count", str(tally.count)))
            out.append(Event(ev.kind, ", ".join(tally.calls), ev.value, ev.pid, detail))
        for kind, more in self._over_cap.items():
            out.append(
                Event(
                    kind,
                    "(several)",
                    f"{more} more attempt(s) on other targets, not listed: the recording cap "
                    f"of {MAX_TARGETS} distinct targets per kind was reached",
                    0,
                    (("count", str(more)), ("recording", "cap reached")),
                )
            )
        return out

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="seccomp-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self.listener)

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        while True:
            stopping = self._stop.is_set()
            # once asked to stop, take what is still queued (without waiting) and leave
            ready = poller.poll(0 if stopping else 100)
            if not ready:
                if stopping:
                    return
                continue
            if any(ev & (select.POLLHUP | select.POLLERR) for _, ev in ready) and not any(
                ev & select.POLLIN for _, ev in ready
            ):
                return  # every watched process is gone
            note = seccomp.receive(self.listener)
            if note is not None:
                self._handle(note)
            elif stopping:
                return

    def _record(self, event: Event) -> None:
        key = (event.kind, event.value)
        tally = self._tallies.get(key)
        if tally is None:
            if self._per_kind.get(event.kind, 0) >= MAX_TARGETS:
                self._over_cap[event.kind] = self._over_cap.get(event.kind, 0) + 1
                return
            self._per_kind[event.kind] = self._per_kind.get(event.kind, 0) + 1
            tally = self._tallies[key] = _Tally(event)
        else:
            tally.count += 1
        for call in event.syscall.split(", "):
            if call not in tally.calls and len(tally.calls) < 16:
                tally.calls.append(call)

    def _handle(self, note: seccomp.Notification) -> None:
        name = NAMES.get(note.nr, str(note.nr))
        try:
            allow, events, err = self._judge(name, note)
        except Exception as exc:  # never leave the child parked: refuse what cannot be read
            allow, events, err = (
                False,
                [Event("escape", name, f"unreadable {name}: {exc}", note.pid)],
                errno.EPERM,
            )
        if events and not seccomp.still_valid(self.listener, note.id):
            # the caller was killed while its call was judged: the attempt happened all the same
            events = [
                Event(e.kind, e.syscall, e.value, e.pid, (*e.detail, ("caller", "ended meanwhile")))
                for e in events
            ]
        for event in events:
            self._record(event)
        seccomp.answer(self.listener, note.id, allow=allow, errno=err)

    def _judge(self, name: str, note: seccomp.Notification) -> tuple[bool, list[Event], int]:
        pid, a = note.pid, note.args
        if name in ("open", "creat", "openat", "openat2"):
            allow, event, err = self._judge_open(name, note)
            return allow, [event] if event else [], err
        if name in seccomp.META or name in seccomp.CHANGES:
            return self._judge_change(name, note)
        if name in seccomp.LOOKUPS:
            return self._judge_lookup(name, note)
        if name in seccomp.SIGNALS:
            return self._judge_signal(name, note)
        if name in ("clone", "clone3"):
            if name == "clone":
                flags = a[0]
            else:
                raw = seccomp.read_memory(pid, a[0], 8)
                flags = struct.unpack("=Q", raw)[0] if len(raw) == 8 else 0
            names = [n for bit, n in CLONE_FLAGS.items() if flags & bit]
            if name == "clone" and not names:
                return True, [], 0
            events = [Event("escape", name, f"{name}({'|'.join(names)})", pid)] if names else []
            # clone3 is always refused with ENOSYS: the C library falls back to clone(2)
            return False, events, errno.ENOSYS if name == "clone3" else errno.EPERM
        if name in ("execve", "execveat"):
            path_arg, argv_arg = (a[0], a[1]) if name == "execve" else (a[1], a[2])
            path = seccomp.read_string(pid, path_arg)
            argv = _read_argv(pid, argv_arg)
            return (
                False,
                [
                    Event(
                        "spawn",
                        name,
                        " ".join(argv) or path,
                        pid,
                        (("path", path), ("argv", repr(argv))),
                    )
                ],
                errno.EPERM,
            )
        if name == "socket":
            family, kind = a[0] & 0xFFFF, a[1] & 0xF
            if family in (socket.AF_INET, socket.AF_INET6) and kind == socket.SOCK_STREAM:
                return True, [], 0  # a TCP socket does nothing until connect/sendto, watched
            label = f"socket({_family(family)}, {_socktype(kind)})"
            return False, [Event("network", name, label, pid)], errno.EACCES
        if name in ("connect", "bind", "sendto"):
            addr_ptr, addr_len = (a[1], a[2]) if name != "sendto" else (a[4], a[5])
            if name == "sendto" and not addr_ptr:
                return True, [], 0
            address = _sockaddr(seccomp.read_memory(pid, addr_ptr, min(addr_len & 0xFFFF, 128)))
            return False, [Event("network", name, address, pid)], errno.EACCES
        if name in ("sendmsg", "sendmmsg"):
            raw = seccomp.read_memory(pid, a[1], 12)
            if len(raw) == 12:
                name_ptr, name_len = struct.unpack("=QI", raw)
                if not name_ptr and name == "sendmsg":
                    return True, [], 0
                address = _sockaddr(seccomp.read_memory(pid, name_ptr, min(name_len, 128)))
                return False, [Event("network", name, address, pid)], errno.EACCES
            event = Event("network", name, "unreadable message header", pid)
            return False, [event], errno.EACCES
        return False, [Event("escape", name, name, pid)], errno.EPERM

    def _judge_open(self, name: str, note: seccomp.Notification) -> tuple[bool, Event | None, int]:
        pid, a = note.pid, note.args
        if name == "open":
            dirfd, path_arg, flags = AT_FDCWD, a[0], a[1]
        elif name == "creat":
            dirfd, path_arg, flags = AT_FDCWD, a[0], O_CREAT | O_TRUNC | 1
        elif name == "openat":
            dirfd, path_arg, flags = _int32(a[0]), a[1], a[2]
        else:  # openat2: struct open_how {u64 flags; u64 mode; u64 resolve}
            dirfd, path_arg = _int32(a[0]), a[1]
            raw = seccomp.read_memory(pid, a[2], 8)
            flags = struct.unpack("=Q", raw)[0] if len(raw) == 8 else O_ACCMODE
        path = seccomp.read_string(pid, path_arg)
        full = _resolve(pid, dirfd, path)
        writing = (
            bool(flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND))
            or (flags & O_TMPFILE) == O_TMPFILE
        )
        if writing:
            if self.policy.may_write(full):
                return True, None, 0
            return False, Event("write", name, full, pid, (("flags", oct(flags)),)), errno.EACCES
        if self.policy.may_read(full):
            return True, None, 0
        return False, Event("read", name, full, pid), errno.EACCES

    def _targets(self, name: str, note: seccomp.Notification) -> list[str]:
        """The absolute paths a judged call names (the fd's own path for fd-based calls)."""
        out = []
        for dirfd_arg, path_arg in _TARGETS[name]:
            dirfd = AT_FDCWD if dirfd_arg is None else _int32(note.args[dirfd_arg])
            path = "" if path_arg is None else seccomp.read_string(note.pid, note.args[path_arg])
            out.append(_resolve(note.pid, dirfd, path))
        return out

    def _judge_change(self, name: str, note: seccomp.Notification) -> tuple[bool, list[Event], int]:
        paths = self._targets(name, note)
        if name == "truncate":  # follows symlinks: judge where it lands too
            paths += [_real(p) for p in paths]
        outside = [p for p in dict.fromkeys(paths) if not self.policy.may_write(p)]
        both = (("paths", ", ".join(paths)),) if len(paths) > 1 else ()
        events = [Event("write", name, p, note.pid, both) for p in outside]
        if name in seccomp.META:
            # refused even inside scratch: a racing thread could swap the path after this check,
            # and nothing after seccomp would stop a metadata change on a file the child owns
            return False, events, errno.EPERM
        return not outside, events, errno.EACCES

    def _judge_lookup(self, name: str, note: seccomp.Notification) -> tuple[bool, list[Event], int]:
        a = note.args
        dirfd_arg, path_arg = _TARGETS[name][0]
        assert path_arg is not None
        if not a[path_arg]:
            return True, [], 0  # NULL path: the fd itself (opened, and so judged, before)
        path = seccomp.read_string(note.pid, a[path_arg])
        if not path and dirfd_arg is not None:
            return True, [], 0  # "" with AT_EMPTY_PATH: fstat of an fd judged when opened
        dirfd = AT_FDCWD if dirfd_arg is None else _int32(a[dirfd_arg])
        full = _resolve(note.pid, dirfd, path)
        flag_arg = _NOFOLLOW.get(name, -1)
        nofollow = flag_arg is None or (
            isinstance(flag_arg, int) and flag_arg >= 0 and bool(a[flag_arg] & AT_SYMLINK_NOFOLLOW)
        )
        if not self._may_look(full):
            return False, [Event("read", name, full, note.pid)], errno.EACCES
        real = _real(full, nofollow)
        if self._may_look(real):
            return True, [], 0
        # a symlink from an allowed place (the scratch dir) to a refused one: name the target
        return False, [Event("read", name, real, note.pid, (("through", full),))], errno.EACCES

    def _may_look(self, path: str) -> bool:
        """Readable, or a folder on the way to something readable (``/``, ``/usr``...)."""
        if self.policy.may_read(path):
            return True
        prefix = path.rstrip("/") + "/"
        return any(root.startswith(prefix) for root in self.policy.read + self.policy.write)

    def _judge_signal(self, name: str, note: seccomp.Notification) -> tuple[bool, list[Event], int]:
        a = note.args
        sig = a[2] if name in ("tgkill", "rt_tgsigqueueinfo") else a[1]
        if name == "pidfd_send_signal":
            host = _pidfd_target(note.pid, _int32(a[0]))
            target = host if host is not None else -1
            inside = host is not None and host in self._sandbox_pids(note.pid, host_view=True)
        else:
            target = _int32(a[0])
            if target == 0:
                inside = True  # the caller's own process group
            elif target == -1:
                inside = False  # every process the caller may signal
            elif target < -1:
                inside = -target == _status_id(note.pid, "NSpgid")
            else:
                inside = target in self._sandbox_pids(note.pid, host_view=False)
        if inside:
            return True, [], 0
        label = f"{name}(pid {target}, {_signal(sig & 0xFFFFFFFF)})"
        return False, [Event("escape", name, label, note.pid)], errno.EPERM

    @staticmethod
    def _sandbox_pids(caller: int, *, host_view: bool) -> set[int]:
        """The process and thread ids of the caller's sandbox: its session (``setsid`` is
        refused inside), in its PID namespace, numbered as the caller sees them (or as this
        process does with ``host_view``)."""
        session = _stat_field(caller, 3)
        try:
            ns = os.readlink(f"/proc/{caller}/ns/pid")
        except OSError:
            return set()
        ids: set[int] = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or _stat_field(int(entry), 3) != session:
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                    continue
                tasks = os.listdir(f"/proc/{entry}/task")
            except OSError:
                continue
            for tid in tasks:
                if host_view:
                    ids.add(int(tid))
                    continue
                inner = _status_id(int(tid), "NSpid")
                if inner is not None:
                    ids.add(inner)
        return ids


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _stat_field(pid: int, index: int) -> int | None:
    """A numeric field of ``/proc/PID/stat`` after the command name (0 = state, 3 = session)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[index])
    except (OSError, IndexError, ValueError):
        return None


def _status_id(pid: int, key: str) -> int | None:
    """The innermost id of ``NSpid``/``NSpgid`` in ``/proc/PID/status`` (as PID sees it)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _pidfd_target(pid: int, fd: int) -> int | None:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Pid:"):
                    target = int(line.split()[1])
                    return target if target > 0 else None
    except (OSError, ValueError, IndexError):
        return None
    return None


def _signal(sig: int) -> str:
    if sig == 0:
        return "signal 0"
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _real(path: str, nofollow: bool = False) -> str:
    """Where ``path`` lands through symlinks (its last part kept as is with ``nofollow``)."""
    if path.startswith("/proc/") or not path.startswith("/"):
        return path
    if nofollow:
        head, tail = os.path.split(path)
        return os.path.join(os.path.realpath(head), tail) if tail else os.path.realpath(path)
    return os.path.realpath(path)


def _resolve(pid: int, dirfd: int, path: str) -> str:
    if path.startswith("/"):
        return os.path.normpath(path)
    try:
        base = os.readlink(f"/proc/{pid}/cwd" if dirfd == AT_FDCWD else f"/proc/{pid}/fd/{dirfd}")
    except OSError:
        base = "?"
    return os.path.normpath(os.path.join(base, path)) if path else base


def _read_argv(pid: int, address: int) -> list[str]:
    argv: list[str] = []
    raw = seccomp.read_memory(pid, address, 8 * MAX_ARGV)
    for (ptr,) in struct.iter_unpack("=Q", raw[: len(raw) // 8 * 8]):
        if not ptr:
            break
        argv.append(seccomp.read_string(pid, ptr, 1024))
    return argv


def _family(family: int) -> str:
    try:
        return socket.AddressFamily(family).name
    except ValueError:
        return str(family)


def _socktype(kind: int) -> str:
    try:
        return socket.SocketKind(kind).name
    except ValueError:
        return str(kind)


def _sockaddr(raw: bytes) -> str:
    """A sockaddr as people write it: ``127.0.0.1:8080``, ``[::1]:80``, ``unix:/path``."""
    if len(raw) < 2:
        return "unreadable address"
    family = struct.unpack("=H", raw[:2])[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack("!H", raw[2:4])[0]
        return f"{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{port}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack("!H", raw[2:4])[0]
        return f"[{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{port}"
    if family == socket.AF_UNIX:
        path = raw[2:]
        if path.startswith(b"\0"):
            return "unix:@" + path[1:].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
        return "unix:" + path.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
    return f"{_family(family)} address"

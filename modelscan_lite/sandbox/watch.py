"""The parent's side of seccomp user notification: read each parked syscall, judge, record.

Runs in a thread of the trusted parent. For every syscall the filter parks it reads the
arguments out of the child's memory (paths, argv, socket addresses), decides with the same
:class:`~.paths.PathPolicy` the child gave Landlock, answers the kernel, and keeps an
:class:`Event` for each attempt that leaves the sandbox. Spawns and network attempts are always
refused; opens inside the allowed paths continue (and Landlock checks them again).
"""

from __future__ import annotations

import errno
import os
import select
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
MAX_ARGV = 64
MAX_EVENTS = 500


@dataclass(frozen=True, slots=True)
class Event:
    """One attempt the sandbox refused: ``kind`` is spawn, network, write, read or escape."""

    kind: str
    syscall: str
    value: str  # what a rule matches and a message quotes: the path, address or command
    pid: int
    detail: tuple[tuple[str, str], ...] = ()


@dataclass
class Watcher:
    listener: int
    policy: PathPolicy
    events: list[Event] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

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
        while not self._stop.is_set():
            ready = poller.poll(100)
            if not ready:
                continue
            if any(ev & (select.POLLHUP | select.POLLERR) for _, ev in ready) and not any(
                ev & select.POLLIN for _, ev in ready
            ):
                return  # every watched process is gone
            note = seccomp.receive(self.listener)
            if note is not None:
                self._handle(note)

    def _record(self, event: Event) -> None:
        key = (event.kind, event.value)
        if key not in self.seen and len(self.events) < MAX_EVENTS:
            self.seen.add(key)
            self.events.append(event)

    def _handle(self, note: seccomp.Notification) -> None:
        name = NAMES.get(note.nr, str(note.nr))
        try:
            allow, event, err = self._judge(name, note)
        except Exception as exc:  # never leave the child parked: refuse what cannot be read
            allow, event, err = (
                False,
                Event("escape", name, f"unreadable {name}: {exc}", note.pid),
                errno.EPERM,
            )
        # the target may have died (and its pid been reused) while its memory was read
        if event is not None and seccomp.still_valid(self.listener, note.id):
            self._record(event)
        seccomp.answer(self.listener, note.id, allow=allow, errno=err)

    def _judge(self, name: str, note: seccomp.Notification) -> tuple[bool, Event | None, int]:
        pid, a = note.pid, note.args
        if name in ("open", "creat", "openat", "openat2"):
            return self._judge_open(name, note)
        if name in ("execve", "execveat"):
            path_arg, argv_arg = (a[0], a[1]) if name == "execve" else (a[1], a[2])
            path = seccomp.read_string(pid, path_arg)
            argv = _read_argv(pid, argv_arg)
            return (
                False,
                Event(
                    "spawn",
                    name,
                    " ".join(argv) or path,
                    pid,
                    (("path", path), ("argv", repr(argv))),
                ),
                errno.EPERM,
            )
        if name == "socket":
            family, kind = a[0] & 0xFFFF, a[1] & 0xF
            if family in (socket.AF_INET, socket.AF_INET6) and kind == socket.SOCK_STREAM:
                return True, None, 0  # a TCP socket does nothing until connect/sendto, watched
            label = f"socket({_family(family)}, {_socktype(kind)})"
            return False, Event("network", name, label, pid), errno.EACCES
        if name in ("connect", "bind", "sendto"):
            addr_ptr, addr_len = (a[1], a[2]) if name != "sendto" else (a[4], a[5])
            if name == "sendto" and not addr_ptr:
                return True, None, 0
            address = _sockaddr(seccomp.read_memory(pid, addr_ptr, min(addr_len & 0xFFFF, 128)))
            return False, Event("network", name, address, pid), errno.EACCES
        if name in ("sendmsg", "sendmmsg"):
            raw = seccomp.read_memory(pid, a[1], 12)
            if len(raw) == 12:
                name_ptr, name_len = struct.unpack("=QI", raw)
                if not name_ptr and name == "sendmsg":
                    return True, None, 0
                address = _sockaddr(seccomp.read_memory(pid, name_ptr, min(name_len, 128)))
                return False, Event("network", name, address, pid), errno.EACCES
            return False, Event("network", name, "unreadable message header", pid), errno.EACCES
        return False, Event("escape", name, name, pid), errno.EPERM

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


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


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

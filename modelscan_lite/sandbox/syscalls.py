"""Syscall numbers and the libc handle the sandbox layers need, per CPU architecture.

Only x86_64 and aarch64 are known; elsewhere every number is ``None`` and the layers that need
them report themselves unavailable (the sandbox then refuses to run rather than run bare).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

_MACHINE = platform.machine().lower()

# name: (x86_64, aarch64); the Landlock and io_uring numbers are shared by every architecture
_TABLE: dict[str, tuple[int | None, int | None]] = {
    "open": (2, None),
    "creat": (85, None),
    "openat": (257, 56),
    "openat2": (437, 437),
    "execve": (59, 221),
    "execveat": (322, 281),
    "socket": (41, 198),
    "connect": (42, 203),
    "bind": (49, 200),
    "sendto": (44, 206),
    "sendmsg": (46, 211),
    "sendmmsg": (307, 269),
    "ptrace": (101, 117),
    "process_vm_writev": (311, 271),
    "io_uring_setup": (425, 425),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "setsid": (112, 157),
    "setpgid": (109, 154),
    "seccomp": (317, 277),
    "landlock_create_ruleset": (444, 444),
    "landlock_add_rule": (445, 445),
    "landlock_restrict_self": (446, 446),
}
_COLUMN = {"x86_64": 0, "amd64": 0, "aarch64": 1, "arm64": 1}.get(_MACHINE)

AUDIT_ARCH = {0: 0xC000003E, 1: 0xC00000B7}.get(_COLUMN) if _COLUMN is not None else None
X32_SYSCALL_BIT = 0x40000000 if _COLUMN == 0 else None


def number(name: str) -> int | None:
    """The syscall number of ``name`` on this machine, ``None`` if unknown or absent."""
    if _COLUMN is None:
        return None
    return _TABLE[name][_COLUMN]


NAMES: dict[int, str] = {nr: name for name in _TABLE if (nr := number(name)) is not None}

LANDLOCK_CREATE_RULESET = number("landlock_create_ruleset")
LANDLOCK_ADD_RULE = number("landlock_add_rule")
LANDLOCK_RESTRICT_SELF = number("landlock_restrict_self")
SECCOMP = number("seccomp")


@functools.cache
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


PR_SET_NO_NEW_PRIVS = 38


def no_new_privs() -> None:
    """Set ``no_new_privs`` (needed by Landlock and by an unprivileged seccomp filter)."""
    if libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")


def syscall(nr: int, *args: object) -> int:
    """``syscall(2)`` with integer arguments widened to ``long`` (varargs need full registers);
    returns the result, or ``-errno`` on failure."""
    widened = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    rc = int(libc().syscall(ctypes.c_long(nr), *widened))
    return -ctypes.get_errno() if rc == -1 else rc


PIDFD_OPEN = 434  # the same number on every architecture
PIDFD_GETFD = 438


def pidfd_getfd(pid: int, fd: int) -> int | None:
    """A copy of file descriptor ``fd`` of process ``pid`` (``None`` if the kernel refuses)."""
    pidfd = syscall(PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        return None
    try:
        got = syscall(PIDFD_GETFD, pidfd, fd, 0)
    finally:
        os.close(pidfd)
    return got if got >= 0 else None

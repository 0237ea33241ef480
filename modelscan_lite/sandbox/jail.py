"""The built-in namespace jail, used when ``bwrap`` is not installed.

Run first thing in the sandboxed child, while it has one thread: new user, mount, PID, network,
IPC, UTS and cgroup namespaces through ``unshare(2)``, the caller's uid/gid mapped to
themselves, mounts made private, then a fork so that the loader runs as PID 1 of its own PID
namespace (with a fresh ``/proc`` when the kernel allows it) and everything it starts dies with
it. The process outside waits and passes the exit status on.
"""

from __future__ import annotations

import ctypes
import os
import socket

from .syscalls import libc

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
ALL = (
    CLONE_NEWUSER
    | CLONE_NEWNS
    | CLONE_NEWPID
    | CLONE_NEWNET
    | CLONE_NEWIPC
    | CLONE_NEWUTS
    | CLONE_NEWCGROUP
)


class JailError(OSError):
    """The kernel (or its configuration) refused a namespace."""


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


def enter() -> None:
    """Move this (single-threaded) process into fresh namespaces; returns in the jailed child.

    The process that called it never returns: it waits for the jailed child and exits with its
    status (a signal death becomes 128 + signal, as a shell reports it).
    """
    lib = libc()
    uid, gid = os.getuid(), os.getgid()
    if lib.unshare(ALL) != 0:
        err = ctypes.get_errno()
        raise JailError(err, f"unshare: {os.strerror(err)}")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    if lib.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise JailError(err, f"making mounts private: {os.strerror(err)}")
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(
            os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        )
    # PID 1 of the new namespace; a fresh /proc shows only this namespace's processes
    lib.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    socket.sethostname("modelscan-lite-sandbox")

"""The built-in namespace jail, used when ``bwrap`` is not installed.

Run first thing in the sandboxed child, while it has one thread: new user, mount, PID, network,
IPC, UTS and cgroup namespaces through ``unshare(2)``, the caller's uid/gid mapped to an
unprivileged id (themselves, or 1000 when the caller is root: nothing inside is uid 0), mounts
made private, then every mount made read-only except the writable folders (the scratch dir,
bound onto itself first), as bubblewrap's ``--ro-bind / /`` does, then a fork so that the loader
runs as PID 1 of its own PID namespace (with a fresh, read-only ``/proc``) and everything it
starts dies with it. The process outside waits and passes the exit status on. The child drops
every capability afterwards (:func:`~.syscalls.drop_capabilities`).
"""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Sequence

from .syscalls import libc

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
# a remount must keep the flags a less privileged namespace cannot change (locked mounts)
_KEPT = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "nodiratime": MS_NODIRATIME}
UNPRIVILEGED_ID = 1000  # the id root is mapped to inside: the child is never uid 0
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


def _unescape(field: str) -> str:
    """A mountinfo path (``\\040`` for a space...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts() -> list[tuple[str, set[str]]]:
    """Every mount point of this mount namespace, parents first, with its per-mount options."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6:
                out.append((_unescape(fields[4]), set(fields[5].split(","))))
    return out


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def make_read_only(writable: Sequence[str]) -> list[str]:
    """Bind each writable folder onto itself, then remount every other mount read-only.

    Returns the mount points that could not be made read-only, with the reason (mount points
    hidden under another mount cannot be reached by path, and are hidden from the child too).
    """
    lib = libc()
    keep = sorted({os.path.realpath(w) for w in writable} | set(writable))
    for path in keep:
        if os.path.isdir(path) and lib.mount(path.encode(), path.encode(), None, MS_BIND, None):
            err = ctypes.get_errno()
            raise JailError(err, f"binding {path}: {os.strerror(err)}")
    failed = []
    for point, options in _mounts():
        if _under(point, keep) or "ro" in options:
            continue
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        flags |= sum(bit for name, bit in _KEPT.items() if name in options)
        if "noatime" in options:
            flags |= MS_NOATIME
        elif "relatime" in options:
            flags |= MS_RELATIME
        else:
            flags |= MS_STRICTATIME
        if lib.mount(None, point.encode("utf-8", "surrogateescape"), None, flags, None) != 0:
            err = ctypes.get_errno()
            failed.append(f"{point}: {os.strerror(err)}")
    return failed


def enter(writable: Sequence[str] = ()) -> list[str]:
    """Move this (single-threaded) process into fresh namespaces; returns in the jailed child
    the mount points that could not be made read-only (see :func:`make_read_only`).

    Everything but ``writable`` is read-only in the jail. The process that called it never
    returns: it waits for the jailed child and exits with its status (a signal death becomes
    128 + signal, as a shell reports it).
    """
    lib = libc()
    uid, gid = os.getuid(), os.getgid()
    if lib.unshare(ALL) != 0:
        err = ctypes.get_errno()
        raise JailError(err, f"unshare: {os.strerror(err)}")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid or UNPRIVILEGED_ID} {uid} 1")
    _write("/proc/self/gid_map", f"{gid or UNPRIVILEGED_ID} {gid} 1")
    if lib.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise JailError(err, f"making mounts private: {os.strerror(err)}")
    failed = make_read_only(writable)
    # the working directory (the scratch dir) still points below the new bind: enter it again
    os.chdir(os.getcwd())
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(
            os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        )
    # PID 1 of the new namespace; a fresh /proc shows only this namespace's processes
    lib.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, None)
    socket.sethostname("modelscan-lite-sandbox")
    return failed

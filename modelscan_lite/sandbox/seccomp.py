"""The seccomp filter and its user-notification channel (ctypes, no libseccomp).

The sandboxed child installs :func:`install` after its warm-up imports. Syscalls that can reach
outside the sandbox (spawns, opens, connects, binds, addressed sends, non-UNIX sockets) are not
decided by the child: the kernel parks them and hands them to the trusted parent through the
listener fd (:class:`Notification`), which reads the arguments from the child's memory,
records the attempt and answers allow or deny. Metadata changes (chmod, chown, utimes, xattrs),
name changes (rename, link, symlink, mkdir, unlink, truncate), lookups (stat, access, readlink)
and signals are parked and judged too. Syscalls that only ever serve an escape or tamper with
the host (``ptrace``, ``process_vm_*``, ``pidfd_getfd``, ``open_by_handle_at``, ``mount``,
``unshare``, ``chroot``, ``sethostname``, ``setsid``...) are parked, always refused and recorded.

The parent's view is evidence, not enforcement: memory it reads may change before the kernel
acts (TOCTOU), which is why every "allow" answer is followed by Landlock's own check, and every
answer for a network or spawn attempt is "deny".
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .syscalls import AUDIT_ARCH, SECCOMP, X32_SYSCALL_BIT, no_new_privs, number, syscall

SECCOMP_SET_MODE_FILTER = 1
FLAG_TSYNC = 1
FLAG_NEW_LISTENER = 1 << 3
FLAG_TSYNC_ESRCH = 1 << 4
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_ALLOW = 0x7FFF0000
USER_NOTIF_FLAG_CONTINUE = 1
EPERM = 1
AF_UNIX = 1

# BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

# ioctls: _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp),
# _IOW('!', 2, __u64)
IOCTL_NOTIF_RECV = 0xC0502100
IOCTL_NOTIF_SEND = 0xC0182101
IOCTL_NOTIF_ID_VALID = 0x40082102

# what the parent must see and decide (it allows only opens within the allowed paths)
NOTIFY = (
    "execve",
    "execveat",
    "open",
    "creat",
    "openat",
    "openat2",
    "connect",
    "bind",
    "sendto",
    "sendmsg",
    "sendmmsg",
)
# metadata changes: always refused (no second layer could stop a racing thread), recorded when
# the target is outside the scratch dir
META = (
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "setxattrat",
    "removexattrat",
)
# name changes: allowed in the scratch dir (Landlock checks again), refused and recorded elsewhere
CHANGES = (
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "unlink",
    "unlinkat",
    "rmdir",
    "truncate",
)
# lookups: allowed on readable paths and their parent folders, refused and recorded elsewhere
LOOKUPS = (
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "getxattrat",
    "listxattrat",
    "statfs",
)
# signals: allowed to the sandbox's own processes only
SIGNALS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal")
# syscalls that only serve an escape or tamper with the host: always refused, and recorded
ESCAPES = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "io_uring_setup",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "setsid",
    "setpgid",
    "sethostname",
    "setdomainname",
    "unshare",
    "setns",
    "chroot",
    "pivot_root",
    "mount",
    "umount2",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "iopl",
    "ioperm",
    "quotactl",
    "vhangup",
)
# clone(2) with any of these flags makes namespaces: parked (and refused); clone3(2) passes its
# flags in memory, so it is always parked: the parent records namespace flags and answers ENOSYS
# (the C library then falls back to clone, whose flags the filter can see)
CLONE_NAMESPACES = 0x7E020000
ALL_NOTIFIED = NOTIFY + META + CHANGES + LOOKUPS + SIGNALS + ("clone3",) + ESCAPES


class SeccompError(OSError):
    """seccomp is missing or refused the filter."""


class _SockFilter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


def available() -> bool:
    return SECCOMP is not None and AUDIT_ARCH is not None


def program(notify: Iterable[str] = ALL_NOTIFIED) -> list[tuple[int, int, int, int]]:
    """The BPF program as ``(code, jt, jf, k)`` tuples (exposed for tests)."""
    assert AUDIT_ARCH is not None
    prog: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 1, 0, AUDIT_ARCH),
        (_RET_K, 0, 0, RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if X32_SYSCALL_BIT is not None:
        prog += [(_JGE_K, 0, 1, X32_SYSCALL_BIT), (_RET_K, 0, 0, RET_ERRNO | EPERM)]
    sock = number("socket")
    if sock is not None:
        # socket(AF_UNIX, ...) is local; every other family goes to the parent
        prog += [
            (_JEQ_K, 0, 4, sock),
            (_LD_W_ABS, 0, 0, 16),  # low half of args[0]
            (_JEQ_K, 0, 1, AF_UNIX),
            (_RET_K, 0, 0, RET_ALLOW),
            (_RET_K, 0, 0, RET_USER_NOTIF),
        ]
    clone = number("clone")
    if clone is not None:
        prog += [
            (_JEQ_K, 0, 4, clone),
            (_LD_W_ABS, 0, 0, 16),  # low half of args[0]: the flags
            (_JSET_K, 0, 1, CLONE_NAMESPACES),
            (_RET_K, 0, 0, RET_USER_NOTIF),
            (_RET_K, 0, 0, RET_ALLOW),
        ]
    for name in notify:
        nr = number(name)
        if nr is not None:
            prog += [(_JEQ_K, 0, 1, nr), (_RET_K, 0, 0, RET_USER_NOTIF)]
    prog.append((_RET_K, 0, 0, RET_ALLOW))
    return prog


def install() -> int:
    """Apply the filter to every thread of this process; return the listener fd.

    Requires ``no_new_privs`` (set by Landlock's :func:`~.landlock.restrict`, or here).
    """
    if not available():
        raise SeccompError("seccomp user notification is not supported on this machine")
    ops = program()
    arr = (_SockFilter * len(ops))(*(_SockFilter(*op) for op in ops))
    fprog = _SockFprog(len(ops), arr)
    no_new_privs()
    assert SECCOMP is not None
    fd = syscall(
        SECCOMP,
        SECCOMP_SET_MODE_FILTER,
        FLAG_NEW_LISTENER | FLAG_TSYNC | FLAG_TSYNC_ESRCH,
        ctypes.byref(fprog),
    )
    if fd < 0:
        raise SeccompError(-fd, "seccomp(SET_MODE_FILTER, NEW_LISTENER) failed")
    return fd


@dataclass(frozen=True, slots=True)
class Notification:
    """One parked syscall, as the kernel reports it to the listener."""

    id: int
    pid: int
    nr: int
    args: tuple[int, ...]


_NOTIF = struct.Struct("=QII iIQ 6Q")  # id, pid, flags, nr, arch, ip, args[6]
_RESP = struct.Struct("=QqiI")  # id, val, error, flags


def receive(listener: int) -> Notification | None:
    """The next parked syscall, or ``None`` when the target went away meanwhile."""
    buf = bytearray(_NOTIF.size)
    try:
        fcntl.ioctl(listener, IOCTL_NOTIF_RECV, buf)
    except OSError:
        return None
    nid, pid, _flags, nr, _arch, _ip, *args = _NOTIF.unpack(buf)
    return Notification(nid, pid, nr, tuple(args))


def still_valid(listener: int, notification_id: int) -> bool:
    try:
        fcntl.ioctl(listener, IOCTL_NOTIF_ID_VALID, struct.pack("=Q", notification_id))
    except OSError:
        return False
    return True


def answer(listener: int, notification_id: int, *, allow: bool, errno: int = EPERM) -> None:
    """Let the syscall go on (still subject to Landlock) or fail it with ``errno``."""
    if allow:
        buf = _RESP.pack(notification_id, 0, 0, USER_NOTIF_FLAG_CONTINUE)
    else:
        buf = _RESP.pack(notification_id, 0, -errno, 0)
    with contextlib.suppress(OSError):  # the target died meanwhile: nothing to answer
        fcntl.ioctl(listener, IOCTL_NOTIF_SEND, bytearray(buf))


def read_memory(pid: int, address: int, size: int) -> bytes:
    """Bytes of another process's memory (empty when unreadable)."""
    if not address:
        return b""
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.pread(fd, size, address)
    except OSError:
        # a string near the end of a mapping: read what is there, page by page
        out = bytearray()
        while len(out) < size:
            chunk = 4096 - (address + len(out)) % 4096
            try:
                part = os.pread(fd, min(chunk, size - len(out)), address + len(out))
            except OSError:
                break
            if not part:
                break
            out += part
        return bytes(out)
    finally:
        os.close(fd)


def read_string(pid: int, address: int, limit: int = 4096) -> str:
    raw = read_memory(pid, address, limit)
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")

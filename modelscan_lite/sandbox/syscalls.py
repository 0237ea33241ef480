"""Syscall numbers and the libc handle the sandbox layers need, per CPU architecture.

Only x86_64 and aarch64 are known; elsewhere every number is ``None`` and the layers that need
them report themselves unavailable (the sandbox then refuses to run rather than run bare).
"""

from __future__ import annotations

import ctypes
import errno
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
    # metadata changes and name changes (judged against the scratch dir)
    "chmod": (90, None),
    "fchmod": (91, 52),
    "fchmodat": (268, 53),
    "fchmodat2": (452, 452),
    "chown": (92, None),
    "fchown": (93, 55),
    "lchown": (94, None),
    "fchownat": (260, 54),
    "utime": (132, None),
    "utimes": (235, None),
    "futimesat": (261, None),
    "utimensat": (280, 88),
    "setxattr": (188, 5),
    "lsetxattr": (189, 6),
    "fsetxattr": (190, 7),
    "removexattr": (197, 14),
    "lremovexattr": (198, 15),
    "fremovexattr": (199, 16),
    "setxattrat": (463, 463),
    "removexattrat": (466, 466),
    "rename": (82, None),
    "renameat": (264, 38),
    "renameat2": (316, 276),
    "link": (86, None),
    "linkat": (265, 37),
    "symlink": (88, None),
    "symlinkat": (266, 36),
    "mkdir": (83, None),
    "mkdirat": (258, 34),
    "mknod": (133, None),
    "mknodat": (259, 33),
    "unlink": (87, None),
    "unlinkat": (263, 35),
    "rmdir": (84, None),
    "truncate": (76, 45),
    # lookups that reveal a file without opening it (judged against the readable paths)
    "stat": (4, None),
    "lstat": (6, None),
    "newfstatat": (262, 79),
    "statx": (332, 291),
    "access": (21, None),
    "faccessat": (269, 48),
    "faccessat2": (439, 439),
    "readlink": (89, None),
    "readlinkat": (267, 78),
    "getxattr": (191, 8),
    "lgetxattr": (192, 9),
    "listxattr": (194, 11),
    "llistxattr": (195, 12),
    "getxattrat": (464, 464),
    "listxattrat": (465, 465),
    "statfs": (137, 43),
    # signals (judged: only the sandbox's own processes may be signalled)
    "kill": (62, 129),
    "tkill": (200, 130),
    "tgkill": (234, 131),
    "rt_sigqueueinfo": (129, 138),
    "rt_tgsigqueueinfo": (297, 240),
    "pidfd_send_signal": (424, 424),
    # process creation: namespace flags are refused
    "clone": (56, 220),
    "clone3": (435, 435),
    # escapes and host tampering: always refused
    "process_vm_readv": (310, 270),
    "pidfd_getfd": (438, 438),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "unshare": (272, 97),
    "setns": (308, 268),
    "chroot": (161, 51),
    "pivot_root": (155, 41),
    "mount": (165, 40),
    "umount2": (166, 39),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "reboot": (169, 142),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "acct": (163, 89),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "iopl": (172, None),
    "ioperm": (173, None),
    "quotactl": (179, 60),
    "vhangup": (153, 58),
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


PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def drop_capabilities() -> bool:
    """Give up every capability for good: ambient, bounding, effective, permitted, inheritable.

    Returns whether the bounding set could be emptied: that needs ``CAP_SETPCAP``, which an
    unprivileged process outside a user namespace lacks (with ``no_new_privs`` set and every
    exec refused, such a process can never gain what its bounding set would allow).
    """
    lib = libc()
    if lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL:  # EINVAL: a kernel without ambient capabilities
            raise OSError(err, f"prctl(PR_CAP_AMBIENT_CLEAR_ALL): {os.strerror(err)}")
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    bounding = True
    for cap in range(last + 1):
        if lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            bounding = False
            break
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if lib.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")
    return bounding


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

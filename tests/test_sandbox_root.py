"""The sandbox as root (as CI and containers run it) and as an unprivileged user (issue 10, 7).

Every test runs the real ``scan --dynamic require`` CLI in a subprocess, on each backend this
machine supports, twice: as the user running the tests (root here, as in CI) and dropped to
uid/gid 65534 with no supplementary groups. The payloads are pickles whose ``__reduce__`` runs
a few lines of Python (``exec``); they only ever touch files in a folder the test creates, and
each effect is checked from outside: modes, owners, times, xattrs, existence, a ``sleep`` the
test owns, the host's mounts and hostname.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if not sys.platform.startswith("linux"):
    pytest.skip("the sandbox is Linux-only", allow_module_level=True)

from modelscan_lite import sandbox
from modelscan_lite.sandbox import jail, seccomp, supervisor, watch
from modelscan_lite.sandbox.paths import PathPolicy
from modelscan_lite.sandbox.syscalls import number

NOBODY = 65534
BACKENDS = [
    pytest.param(
        b, marks=pytest.mark.skipif(bool(supervisor.probe(b)), reason=str(supervisor.probe(b)))
    )
    for b in sandbox.BACKENDS
]
USERS = ["invoker", "unprivileged"]
ROOT = os.geteuid() == 0


class Exec:
    """A pickle that runs ``code`` when loaded (built here, never loaded by the test)."""

    def __init__(self, code: str) -> None:
        self.code = textwrap.dedent(code)

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.code, {}))


@pytest.fixture
def area() -> Iterator[Path]:
    """A folder outside the sandbox's scratch dir that uid 65534 can use (not under the
    0700 pytest tmp dirs of root), owned by 65534 so that an unconfined payload could change
    everything in it."""
    path = Path(tempfile.mkdtemp(prefix="msl-root-test-", dir="/tmp"))
    path.chmod(0o755)
    if ROOT:
        os.chown(path, NOBODY, NOBODY)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir() and os.path.ismount(sub):  # only if a mount escaped (it must not)
            subprocess.run(["umount", "-l", str(sub)], check=False)
    shutil.rmtree(path, ignore_errors=True)


def own(path: Path) -> Path:
    if ROOT:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    return path


def write_payload(area: Path, code: str, name: str = "payload.pkl") -> Path:
    path = area / name
    path.write_bytes(pickle.dumps(Exec(code), protocol=2))
    return own(path)


def _hidden_parents() -> list[tuple[str, str]]:
    """(folder 65534 cannot enter, its child on the way to the interpreter or this package)."""
    needed = {
        os.path.realpath(sys.prefix),
        os.path.realpath(sys.base_prefix),
        os.path.dirname(os.path.dirname(os.path.abspath(sandbox.__file__))),
    }
    out = []
    for path in needed:
        parts = Path(path).parts
        for i in range(1, len(parts) - 1):
            folder = os.path.join(*parts[: i + 1])
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                out.append((folder, os.path.join(folder, parts[i + 1])))
                break
    return sorted(set(out))


def _unprivileged(cmd: list[str], area: Path) -> tuple[list[str], dict[str, Any]]:
    """``cmd`` run as 65534:65534 without groups. When the interpreter lives under a folder
    that user cannot enter (pyenv under a 0700 /root), a private mount namespace hides that
    folder behind an empty world-readable tmpfs and binds back only the interpreter's tree."""
    if not ROOT:
        pytest.skip("cannot drop to uid 65534 without root; the invoker run is unprivileged")
    hidden = _hidden_parents()
    if not hidden:
        return cmd, {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    tools = [shutil.which(t) for t in ("unshare", "setpriv", "mount")]
    if not all(tools):
        pytest.skip(
            f"the interpreter is under {hidden[0][0]} (not enterable by uid 65534), and "
            "unshare/setpriv/mount are missing to expose it"
        )
    lines = ["set -e"]
    for i, (folder, child) in enumerate(hidden):
        hold = area / f".hold{i}"
        lines += [
            f"mkdir -p '{hold}'",
            f"mount --bind '{child}' '{hold}'",
            f"mount -t tmpfs -o mode=0755 none '{folder}'",
            f"mkdir -p '{child}'",
            f"mount --bind '{hold}' '{child}'",
            f"umount '{hold}'",
        ]
    lines.append(f'exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups -- "$@"')
    wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines)]
    return [*wrapper, "sh", *cmd], {}


def scan(path: Path, backend: str, user: str, area: Path, timeout: int = 60) -> dict[str, Any]:
    """``scan PATH --dynamic require --sandbox-backend BACKEND -f json`` as ``user``; the one
    artifact's JSON."""
    cmd = [
        sys.executable, "-m", "modelscan_lite", "scan", str(path), "--dynamic", "require",
        "--sandbox-backend", backend, "--sandbox-timeout", str(timeout), "-f", "json",
    ]  # fmt: skip
    kwargs: dict[str, Any] = {}
    if user == "unprivileged":
        cmd, kwargs = _unprivileged(cmd, area)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(area), "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    done = subprocess.run(
        cmd, capture_output=True, cwd=area, env=env, timeout=timeout + 60, check=False, **kwargs
    )
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode == 2 and "no sandbox backend can run here" in err:
        pytest.skip(f"{backend} cannot run as {user} here: {err.strip().splitlines()[-1]}")
    assert done.returncode in (0, 1), err[-3000:]
    (artifact,) = json.loads(done.stdout)["artifacts"]
    assert artifact["dynamic"]["backend"] == backend, artifact["dynamic"]
    return dict(artifact)


def d_findings(artifact: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in artifact["findings"] if f["rule"] == rule]


def calls(finding: dict[str, Any]) -> set[str]:
    """The syscalls a D103/D104 message names (``via `a, b```)."""
    match = re.search(r"via `([^`]*)`", finding["message"])
    assert match, finding["message"]
    return set(match.group(1).split(", "))


def finding_for(artifact: dict[str, Any], rule: str, value: str) -> dict[str, Any]:
    hits = [f for f in d_findings(artifact, rule) if f"`{value}`" in f["message"]]
    assert hits, (value, [f["message"] for f in artifact["findings"] if f["rule"][0] == "D"])
    return hits[0]


def reported(artifact: dict[str, Any]) -> dict[str, Any]:
    """What the payload reported about itself (it raises ``ValueError(REPORT<json>)``: D201)."""
    for f in d_findings(artifact, "D201"):
        match = re.search(r"REPORT(\{.*\})", f["message"])
        if match:
            return dict(json.loads(match.group(1)))
    raise AssertionError([f["message"] for f in artifact["findings"]])


# -- 1. metadata and name changes outside scratch, the artifact included --------------------

KERNEL_NAMES = {
    "chmod": {"chmod", "fchmodat", "fchmodat2"},
    "chown": {"chown", "lchown", "fchownat"},
    "utime": {"utime", "utimes", "utimensat", "futimesat"},
    "setxattr": {"setxattr", "setxattrat"},
    "removexattr": {"removexattr", "removexattrat"},
    "rename": {"rename", "renameat", "renameat2"},
    "link": {"link", "linkat"},
    "symlink": {"symlink", "symlinkat"},
    "mkdir": {"mkdir", "mkdirat"},
    "unlink": {"unlink", "unlinkat"},
    "truncate": {"truncate"},
    "fchmod": {"fchmod"},
    "fchown": {"fchown"},
    "fsetxattr": {"fsetxattr"},
}
TRIES = """
import json, os
done = {}
def attempt(label, func, *args):
    try:
        func(*args)
        done[label] = "succeeded"
    except OSError as exc:
        done[label] = exc.errno
"""


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_metadata_and_name_changes_outside_scratch_are_refused_and_d103(
    area: Path, backend: str, user: str
) -> None:
    victim = area / "victim.txt"
    victim.write_text("keep me\n")
    own(victim)
    victim.chmod(0o640)
    os.setxattr(victim, "user.keep", b"1")
    os.utime(victim, (1_000_000_000, 1_000_000_000))
    sub = area / "sub"
    sub.mkdir()
    own(sub)
    v, s = str(victim), str(sub)
    payload = area / "payload.pkl"
    a = str(payload)
    code = (
        TRIES
        + f"""
V, S, A = {v!r}, {s!r}, {a!r}
attempt("chmod", os.chmod, V, 0o777)
attempt("chown", os.chown, V, 4321, 4321)
attempt("utime", os.utime, V, (0, 0))
attempt("setxattr", os.setxattr, V, "user.evil", b"1")
attempt("removexattr", os.removexattr, V, "user.keep")
attempt("rename", os.rename, V, S + "/renamed")
attempt("link", os.link, V, S + "/hardlink")
attempt("symlink", os.symlink, "/etc/passwd", S + "/symlink")
attempt("mkdir", os.mkdir, S + "/newdir")
attempt("truncate", os.truncate, V, 0)
attempt("unlink", os.unlink, V)
attempt("artifact chmod", os.chmod, A, 0o777)
attempt("artifact utime", os.utime, A, (0, 0))
attempt("artifact truncate", os.truncate, A, 0)
fd = os.open(A, os.O_RDONLY)
attempt("artifact fchmod", os.fchmod, fd, 0o777)
attempt("artifact fchown", os.fchown, fd, 4321, 4321)
attempt("artifact futimens", os.utime, fd, (0, 0))
attempt("artifact fsetxattr", os.setxattr, fd, "user.evil", b"1")
attempt("artifact rename", os.rename, A, S + "/moved.pkl")
attempt("artifact unlink", os.unlink, A)
raise ValueError("REPORT" + json.dumps(done))
"""
    )
    write_payload(area, code)
    payload.chmod(0o644)
    os.utime(payload, (1_000_000_000, 1_000_000_000))
    before = {p: os.stat(p) for p in (victim, payload)}
    content = payload.read_bytes()

    art = scan(payload, backend, user, area)

    # nothing changed, seen from outside
    for path, old in before.items():
        new = os.stat(path)
        assert (new.st_mode, new.st_uid, new.st_gid) == (old.st_mode, old.st_uid, old.st_gid)
        assert (new.st_mtime_ns, new.st_size, new.st_ino) == (
            old.st_mtime_ns,
            old.st_size,
            old.st_ino,
        )
    assert os.listxattr(victim) == ["user.keep"] and not os.listxattr(payload)
    assert victim.read_text() == "keep me\n" and payload.read_bytes() == content
    assert sorted(os.listdir(sub)) == []
    # every attempt failed inside (the payload's own view, for the record)
    assert "succeeded" not in reported(art).values(), reported(art)
    # and each was reported: D103 naming the path and the calls
    expect = {
        v: {"chmod", "chown", "utime", "setxattr", "removexattr", "rename", "link", "truncate",
            "unlink"},
        a: {"chmod", "utime", "truncate", "fchmod", "fchown", "fsetxattr", "rename", "unlink"},
        f"{s}/renamed": {"rename"},
        f"{s}/hardlink": {"link"},
        f"{s}/symlink": {"symlink"},
        f"{s}/newdir": {"mkdir"},
        f"{s}/moved.pkl": {"rename"},
    }  # fmt: skip
    for path, wanted in expect.items():
        seen = calls(finding_for(art, "D103", path))
        for call in wanted:
            # the kernel call may be the *at variant (fchmodat, renameat2, utimensat...)
            assert seen & KERNEL_NAMES[call], (path, call, seen)


# -- 2. host tampering and reaching other processes -----------------------------------------


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_host_tampering_and_other_processes_are_refused_and_d107(
    area: Path, backend: str, user: str, sleeper: subprocess.Popen[bytes]
) -> None:
    mnt = area / "mnt"
    mnt.mkdir()
    own(mnt)
    hostname = socket.gethostname()  # set to itself: harmless even if it got through
    nr = {n: number(n) for n in ("process_vm_readv", "process_vm_writev", "pidfd_getfd",
                                 "open_by_handle_at", "clone")}  # fmt: skip
    code = (
        TRIES
        + f"""
import ctypes, signal, socket
libc = ctypes.CDLL(None, use_errno=True)
def raw(label, nr, *args):
    rc = libc.syscall(nr, *args)
    if rc == 0 and label == "clone":
        os._exit(0)  # the clone child, had it been made
    done[label] = "succeeded" if rc >= 0 else ctypes.get_errno()
attempt("sethostname", socket.sethostname, {hostname!r})
raw("unshare", {number("unshare")}, 0x10000000)
raw("clone", {nr["clone"]}, 0x10000000 | 17, 0, 0, 0, 0)
attempt("chroot", os.chroot, {str(area)!r})
raw("mount", {number("mount")}, b"none", {str(mnt).encode()!r}, b"tmpfs", 0, None)
attempt("kill", os.kill, {sleeper.pid}, signal.SIGTERM)
attempt("kill -1", os.kill, -1, 0)
raw("process_vm_readv", {nr["process_vm_readv"]}, {sleeper.pid}, None, 0, None, 0, 0)
raw("process_vm_writev", {nr["process_vm_writev"]}, {sleeper.pid}, None, 0, None, 0, 0)
raw("pidfd_getfd", {nr["pidfd_getfd"]}, 0, 0, 0)
raw("open_by_handle_at", {nr["open_by_handle_at"]}, -100, None, 0)
attempt("kill self group", os.kill, 0, 0)
raise ValueError("REPORT" + json.dumps(done))
"""
    )
    art = scan(write_payload(area, code), backend, user, area)
    assert sleeper.poll() is None, "the sleep the test started was killed"
    assert not os.path.ismount(mnt) and socket.gethostname() == hostname
    got = reported(art)
    assert {k for k, v in got.items() if v == "succeeded"} == {"kill self group"}, got
    messages = " | ".join(f["message"] for f in d_findings(art, "D107"))
    for name in ("sethostname", "unshare", "clone(CLONE_NEWUSER)", "chroot", "mount",
                 f"kill(pid {sleeper.pid}, SIGTERM)", "kill(pid -1, signal 0)",
                 "process_vm_readv", "process_vm_writev", "pidfd_getfd",
                 "open_by_handle_at"):  # fmt: skip
        assert f"`{name}`" in messages, (name, messages)
    assert "kill(pid 0" not in messages  # its own process group is its own business


# -- 3. no capabilities, no_new_privs, an unprivileged id ------------------------------------

STATUS = """
import json
keys = ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
got = {}
with open("/proc/self/status") as f:
    for line in f:
        key, _, value = line.partition(":")
        if key in keys:
            got[key] = value.split()
with open("/proc/self/mountinfo") as f:
    top = {ln.split()[4]: ln.split()[5].split(",")[0] for ln in f}  # the last one is on top
got["rw"] = sorted(point for point, mode in top.items() if mode == "rw")
import os
got["cwd"] = os.getcwd()
raise ValueError("REPORT" + json.dumps(got))
"""


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_child_has_no_capabilities_and_is_not_root(area: Path, backend: str, user: str) -> None:
    art = scan(write_payload(area, STATUS), backend, user, area)
    got = reported(art)
    for key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(got[key][0], 16) == 0, (key, got)
    assert got["NoNewPrivs"] == ["1"] and got["Seccomp"] == ["2"], got
    privileged = user == "invoker" and ROOT
    if backend == "landlock" and not privileged:
        # an unprivileged process outside a user namespace cannot empty its bounding set
        # (CAP_SETPCAP); with no_new_privs and every exec refused it can never use it
        pass
    else:
        assert int(got["CapBnd"][0], 16) == 0, got
    if user == "unprivileged":
        assert set(got["Uid"]) == set(got["Gid"]) == {str(NOBODY)}, got
    elif backend != "landlock" and ROOT:
        # root outside is an unprivileged id inside (the landlock backend has no namespace)
        assert set(got["Uid"]) == set(got["Gid"]) == {str(jail.UNPRIVILEGED_ID)}, got
    if backend == "namespaces":
        # 4. a read-only view of everything but the scratch dir
        assert got["rw"] == [got["cwd"]], got
    elif backend == "bwrap":  # bubblewrap's own /dev and /proc are its choice
        assert all(p in (got["cwd"], "/proc") or p.startswith("/dev") for p in got["rw"]), got


# -- 4. the namespace jail's read-only view, even for a call nothing else stops --------------

JAIL = """
import json, os, sys
sys.path.insert(0, {parent!r})
from modelscan_lite.sandbox.jail import enter
failed = enter([{scratch!r}])
V, S = {victim!r}, {scratch!r}
out = {{"failed": failed}}
for label, func in (
    ("write", lambda: open(V, "a").write("x")),
    ("chmod", lambda: os.chmod(V, 0o777)),
    ("utime", lambda: os.utime(V, (0, 0))),
    ("setxattr", lambda: os.setxattr(V, "user.evil", b"1")),
    ("mkdir", lambda: os.mkdir(V + ".d")),
    ("unlink", lambda: os.unlink(V)),
    ("scratch write", lambda: open(S + "/ok", "w").write("x")),
    ("devnull", lambda: open("/dev/null", "w").write("x")),
):
    try:
        func()
        out[label] = "ok"
    except OSError as exc:
        out[label] = exc.errno
print(json.dumps(out))
"""


@pytest.mark.parametrize("user", USERS)
def test_namespace_jail_is_read_only_except_scratch(area: Path, user: str) -> None:
    if supervisor.probe("namespaces"):
        pytest.skip(str(supervisor.probe("namespaces")))
    scratch = area / "scratch"
    scratch.mkdir()
    victim = area / "victim"
    victim.write_text("keep")
    victim.chmod(0o666)  # so that only the read-only mount can refuse the write
    own(victim)
    if user == "unprivileged":
        own(scratch)  # the scratch dir belongs to whoever runs the scan
    parent = os.path.dirname(os.path.dirname(os.path.abspath(sandbox.__file__)))
    code = JAIL.format(parent=parent, scratch=str(scratch), victim=str(victim))
    cmd = [sys.executable, "-I", "-c", code]
    kwargs: dict[str, Any] = {}
    if user == "unprivileged":
        cmd, kwargs = _unprivileged(cmd, area)
    done = subprocess.run(cmd, capture_output=True, timeout=60, check=False, **kwargs)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    import errno

    assert out["failed"] == []
    for label in ("write", "chmod", "utime", "setxattr", "mkdir", "unlink"):
        assert out[label] == errno.EROFS, (label, out)
    assert out["scratch write"] == "ok" and out["devnull"] == "ok", out
    assert victim.read_text() == "keep" and not os.listxattr(victim)
    assert (scratch / "ok").read_text() == "x"  # the scratch dir was the real one
    (area / "host-still-writable").write_text("x")  # the remounts stayed in the jail


# -- 5. recording never drops an event -------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_events_after_a_flood_of_refusals_are_all_recorded(
    area: Path, backend: str, user: str, listener: tuple[int, list[bytes]]
) -> None:
    port, hits = listener
    marker = area / "marker"
    reads = watch.MAX_TARGETS + 100
    code = (
        TRIES
        + f"""
import socket, subprocess
for i in range(50):
    attempt("same", open, {str(area)!r} + "/same")
for i in range({reads}):
    attempt("read", open, {str(area)!r} + "/nope-%d" % i)
attempt("connect", socket.create_connection, ("127.0.0.1", {port}))
attempt("exec", subprocess.call, ["touch", {str(marker)!r}])
attempt("write", open, {str(marker)!r}, "w")
raise ValueError("REPORT" + json.dumps(done))
"""
    )
    art = scan(write_payload(area, code), backend, user, area)
    assert hits == [] and not marker.exists()
    assert any(f"127.0.0.1:{port}" in f["message"] for f in d_findings(art, "D102"))
    assert any(f"touch {marker}" in f["message"] for f in d_findings(art, "D101"))
    finding_for(art, "D103", str(marker))
    reads_seen = d_findings(art, "D104")
    same = finding_for(art, "D104", f"{area}/same")
    assert "count: 50" in same["evidence"]
    listed = {m for f in reads_seen if (m := re.search(r"/nope-(\d+)`", f["message"]))}
    assert len(listed) == watch.MAX_TARGETS - 1  # the cap counts "same" too
    over = [f for f in reads_seen if "recording cap" in f["message"]]
    assert len(over) == 1 and "101 more attempt(s)" in over[0]["message"], over


def test_recorder_aggregates_and_counts_past_its_cap() -> None:
    w = watch.Watcher(-1, PathPolicy((), ()))
    for i in range(watch.MAX_TARGETS + 5):
        w._record(watch.Event("read", "openat", f"/x/{i}", 1))
    for call in ("fchmodat", "utimensat", "fchmodat"):
        w._record(watch.Event("write", call, "/victim", 1))
    w._record(watch.Event("network", "connect", "10.0.0.1:80", 1))
    events = w.events
    by_kind: dict[str, list[watch.Event]] = {}
    for ev in events:
        by_kind.setdefault(ev.kind, []).append(ev)
    assert len(by_kind["read"]) == watch.MAX_TARGETS + 1
    assert "5 more attempt(s)" in by_kind["read"][-1].value
    (write,) = by_kind["write"]
    assert write.syscall == "fchmodat, utimensat" and ("count", "3") in write.detail
    assert [e.value for e in by_kind["network"]] == ["10.0.0.1:80"]


# -- 6. a lookup of a secret ------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_stat_of_a_secret_is_refused_and_d104(area: Path, backend: str, user: str) -> None:
    ssh = area / "home" / ".ssh"
    ssh.mkdir(parents=True)
    secret = ssh / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    for path in (area / "home", ssh, secret):
        own(path)
    s = str(secret)
    code = f"""
import json, os
S = {s!r}
out = {{"exists": os.path.exists(S), "access": os.access(S, os.F_OK),
        "isfile": os.path.isfile(S)}}
for label, func in (("stat", os.stat), ("lstat", os.lstat)):
    try:
        func(S)
        out[label] = "succeeded"
    except OSError as exc:
        out[label] = exc.errno
os.symlink(S, "link")  # in the scratch dir: allowed, but stat through it must not be
out["via link"] = os.path.exists("link")
raise ValueError("REPORT" + json.dumps(out))
"""
    art = scan(write_payload(area, code), backend, user, area)
    got = reported(art)
    assert got["exists"] is got["access"] is got["isfile"] is got["via link"] is False, got
    assert got["stat"] != "succeeded" and got["lstat"] != "succeeded", got
    seen = calls(finding_for(art, "D104", s))
    assert seen & {"stat", "newfstatat", "statx"} and seen & {
        "access",
        "faccessat",
        "faccessat2",
    }, seen


# -- 7. what the child writes cannot hide what the parent recorded ---------------------------

FIND_CHANNEL = """
import json, os, socket, stat, time
def channels():
    out = []
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                out.append(fd)
        except OSError:
            pass
    return out
def say(data):
    for fd in channels():
        try:
            os.write(fd, data)
        except OSError:
            pass
def connect(port):
    try:
        socket.create_connection(("127.0.0.1", port))
    except OSError:
        pass
"""


@pytest.mark.parametrize(
    "attack",
    [
        # a forged clean verdict first, then the deed, then a quick exit
        'say(b\'{"type": "result", "stage": "done", "summary": {}, "timings": {}}\\n\')\n'
        "connect(PORT)\ntime.sleep(0.2)\nos._exit(0)",
        # the channel closed, then the deed
        "for fd in channels():\n    os.close(fd)\nconnect(PORT)\nos._exit(0)",
        # a flood: an endless line, junk, a malformed result, then the deed, then more junk
        "say(b'x' * (3 << 20))\nsay(b'\\n' + b'not json\\n' * 5000)\n"
        'say(b\'{"type": "result", "stage": "done", "timings": {"t": "x"}, "peak_rss": []}\\n\')\n'
        'say(b\'{"type": "audit", "kind": "read", "event": "open", "args": ["/x"]}\\n\' * 20000)\n'
        "connect(PORT)",
    ],
    ids=["forged-result", "closed-channel", "flood"],
)
@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_child_messages_cannot_hide_seccomp_records(
    area: Path, backend: str, user: str, attack: str, listener: tuple[int, list[bytes]]
) -> None:
    port, hits = listener
    code = FIND_CHANNEL + attack.replace("PORT", str(port))
    art = scan(write_payload(area, code), backend, user, area)
    assert hits == []
    assert any(f"127.0.0.1:{port}" in f["message"] for f in d_findings(art, "D102")), art
    if "not json" in attack:
        tampering = " | ".join(f["message"] for f in d_findings(art, "D108"))
        for what in ("longer than 1024 KiB", "not JSON", "malformed 'result'"):
            assert what in tampering, tampering


def test_malformed_messages_never_raise_in_the_parent() -> None:
    outcome = supervisor.Outcome("t", "pickle", "landlock")
    for msg in (
        {"type": "result", "stage": "done", "timings": {"a": "b"}},
        {"type": "result", "stage": "pwned"},
        {"type": "result", "stage": "done", "peak_rss": [1]},
        {"type": "layer", "landlock_abi": "x"},
        {"type": "audit", "kind": ["x"], "event": 1, "args": 2},
        {"type": "audit", "kind": "made-up", "event": "e", "args": []},
        {"type": "nonsense"},
        {},
    ):
        assert supervisor._message(msg, outcome, watching=True) is False
    assert outcome.status == "crash" and not outcome.audit
    assert len(outcome.channel) >= 4
    facts = sandbox.outcome_facts(outcome, supervisor.Options())
    assert {f.kind for f in facts} >= {"dynamic.channel"}


def test_filter_parks_every_call_the_issue_names() -> None:
    names = set(seccomp.ALL_NOTIFIED)
    for call in ("chmod", "fchmodat", "chown", "fchownat", "utimensat", "setxattr", "rename",
                 "renameat2", "link", "linkat", "symlink", "mkdir", "unlink", "unlinkat",
                 "truncate", "newfstatat", "statx", "access", "faccessat2", "sethostname",
                 "unshare", "chroot", "mount", "kill", "tgkill", "pidfd_send_signal",
                 "process_vm_readv", "process_vm_writev", "pidfd_getfd",
                 "open_by_handle_at"):  # fmt: skip
        assert call in names, call
    program = seccomp.program()
    parked = {k for code, _, _, k in program if code == 0x15}
    for call in names:
        nr = number(call)
        if nr is not None:
            assert nr in parked, call
    assert jail.UNPRIVILEGED_ID != 0

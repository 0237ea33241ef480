"""Reports and baselines are written whole or not at all, and never replace what is not a
regular file: ``scan -o /dev/null`` as root once turned /dev/null into a regular file."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from modelscan_lite.atomic_write import write_atomically

from .conftest import SAMPLES, run_cli


def test_a_regular_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    inode = target.stat().st_ino
    write_atomically(target, "new")
    assert target.read_text() == "new" and target.stat().st_ino != inode  # renamed over
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left


def test_a_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_atomically(fifo, "report\n")
    reader.join(10)
    assert got == ["report\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_link_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomically(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_cli_output_to_dev_null_leaves_the_device(tmp_path: Path) -> None:
    before = os.stat("/dev/null")
    assert stat.S_ISCHR(before.st_mode)
    proc = run_cli("scan", str(SAMPLES / "P101" / "bad-posix-system.pkl"), "-o", "/dev/null")
    assert proc.returncode == 1
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev

"""The run_dir lock on its own: one owner, its PID on record, and probes that change nothing.

flock conflicts between two open file descriptions, so two acquisitions in one process contend
as two routerd processes would.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from supervisor.run_lock import LOCK_FILE, LockState, RunDirBusy, RunDirLock, parse_pid, probe


def test_owner_records_its_pid_and_a_second_acquisition_names_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    lock = RunDirLock.acquire(str(run_dir))
    try:
        lock_file = run_dir / LOCK_FILE
        assert lock_file.read_text() == f"{os.getpid()}\n"
        before = os.stat(lock_file)
        ticks = itertools.count(0.0, 0.1)

        with pytest.raises(RunDirBusy) as busy:
            RunDirLock.acquire(
                str(run_dir), grace=0.3, clock=lambda: next(ticks), sleep=lambda _: None
            )

        assert busy.value.pid == os.getpid()
        assert str(busy.value) == (
            f"run_dir {run_dir} is in use by routerd pid {os.getpid()}, which holds {lock_file}: "
            "stop it first, or give this one another run_dir"
        )
        after = os.stat(lock_file)
        assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
            before.st_ino,
            before.st_mtime_ns,
            before.st_size,
        )
        assert repr(lock) == f"RunDirLock('{lock_file}', held by pid {os.getpid()})"
    finally:
        lock.release()
    assert repr(lock) == f"RunDirLock('{lock_file}', released)"


def test_a_released_lock_can_be_taken_again(tmp_path: Path) -> None:
    RunDirLock.acquire(str(tmp_path)).release()
    (tmp_path / LOCK_FILE).write_text("999999999\n")  # what a killed owner leaves behind

    again = RunDirLock.acquire(str(tmp_path), grace=0)
    try:
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    finally:
        again.release()


def test_probe_tells_held_free_and_absent_apart(tmp_path: Path) -> None:
    assert probe(str(tmp_path)).state is LockState.ABSENT
    assert not (tmp_path / LOCK_FILE).exists()  # a probe creates nothing

    lock = RunDirLock.acquire(str(tmp_path))
    try:
        held = probe(str(tmp_path))
        # The probe's shared lock is gone again: the owner is not disturbed, a new one is refused.
        with pytest.raises(RunDirBusy):
            RunDirLock.acquire(str(tmp_path), grace=0)
    finally:
        lock.release()
    free = probe(str(tmp_path))

    assert (held.state, held.pid) == (LockState.HELD, os.getpid())
    assert (free.state, free.pid) == (LockState.FREE, os.getpid())
    RunDirLock.acquire(str(tmp_path), grace=0).release()  # the probe left it free


def test_the_lock_is_not_inherited(tmp_path: Path) -> None:
    lock = RunDirLock.acquire(str(tmp_path))
    try:
        fds = os.listdir("/proc/self/fd")
        lock_fds = [
            int(fd)
            for fd in fds
            if os.path.realpath(f"/proc/self/fd/{fd}") == str(tmp_path / LOCK_FILE)
        ]
        assert lock_fds
        assert not any(os.get_inheritable(fd) for fd in lock_fds)
    finally:
        lock.release()


def test_unusable_run_dir_is_an_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with pytest.raises(OSError):
        RunDirLock.acquire(str(blocker / "run"))


@pytest.mark.parametrize(
    ("text", "pid"),
    [("1234\n", 1234), ("  77 ", 77), ("", None), ("0\n", None), ("-5", None), ("12ab", None)],
)
def test_parse_pid(text: str, pid: int | None) -> None:
    assert parse_pid(text) == pid

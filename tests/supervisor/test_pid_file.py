"""Gorouter's pid_file: the supervisor's PID there while routerd runs, gone after a SIGTERM stop,
left alone by a second start that is refused and by a stop once someone else rewrote it; a
path routerd cannot write stops the start, naming the key."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.routerd import Routerd

pytestmark = pytest.mark.integration


def test_pid_file_holds_the_supervisors_pid_until_a_sigterm_stop(routerd_factory, tmp_path):
    pid_file = tmp_path / "gorouter.pid"
    router = routerd_factory({"pid_file": str(pid_file)})
    assert pid_file.read_text() == f"{router.supervisor_pid}\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written by rename

    router.signal(signal.SIGTERM)

    assert router.wait_exit() == 0
    assert not pid_file.exists()
    assert not (Path(router.config["run_dir"]) / "routerd.pid").exists()


def test_a_refused_second_start_leaves_the_first_ones_pid_file(routerd_factory, tmp_path):
    pid_file = tmp_path / "gorouter.pid"
    first = routerd_factory({"pid_file": str(pid_file)})
    before = os.stat(pid_file)
    workdir = tmp_path / "second"
    workdir.mkdir()
    second = Routerd(config=dict(first.config), workdir=workdir)  # same run_dir and pid_file
    second.start(wait_healthy=False)
    try:
        assert second.wait_exit() != 0
    finally:
        second.stop()

    after = os.stat(pid_file)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert pid_file.read_text() == f"{first.supervisor_pid}\n"
    assert first.health().status == 200


def test_a_pid_file_rewritten_by_someone_else_is_left_at_stop(routerd_factory, tmp_path):
    pid_file = tmp_path / "gorouter.pid"
    router = routerd_factory({"pid_file": str(pid_file)})
    pid_file.write_text("4242\n")

    assert router.stop() == 0

    assert pid_file.read_text() == "4242\n"


def test_an_unwritable_pid_file_stops_the_start_naming_the_key(routerd_factory, tmp_path):
    pid_file = tmp_path / "missing" / "gorouter.pid"
    router = routerd_factory({"pid_file": str(pid_file)}, wait_healthy=False)

    assert router.wait_exit() == 1

    failures = router.events_named("router-failed-to-start")
    assert len(failures) == 1, router.log_text()
    assert failures[0]["data"]["error"] == (
        f"pid_file: cannot write {str(pid_file)!r}: No such file or directory"
    )
    assert not pid_file.exists()
    assert not (Path(router.config["run_dir"]) / "routerd.pid").exists()

"""The launcher tests and benchmarks share (tests/support/launcher.py): a process that dies is
reported at once with its log, and stopping a group leaves nothing of it running."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from tests.support.launcher import ProcessExited, ProcessGroup
from tests.support.processes import process_state
from tests.support.waiting import ConditionTimeout, wait_until


def is_alive(pid: int) -> bool:
    try:
        return process_state(pid) != "Z"
    except OSError:
        return False


def test_waiting_on_a_process_that_exited_fails_at_once_with_its_log(tmp_path: Path) -> None:
    with ProcessGroup(tmp_path) as group:
        process = group.start("doomed", [sys.executable, "-c", "print('bad config: port'); 1/0"])
        started = time.monotonic()
        with pytest.raises(ProcessExited) as raised:
            wait_until(lambda: process.check_running() and False, timeout=30, what="never")
    assert time.monotonic() - started < 10
    assert "doomed exited with 1" in str(raised.value)
    assert "bad config: port" in str(raised.value)
    assert "ZeroDivisionError" in str(raised.value)


def test_other_errors_count_as_not_yet_and_are_named_at_the_deadline() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("nothing listens")

    with pytest.raises(ConditionTimeout, match="nothing listens"):
        wait_until(refused, timeout=0.2, what="a listener")


def test_stopping_the_group_stops_each_process_and_what_it_left_in_its_session(
    tmp_path: Path,
) -> None:
    child_pid_file = tmp_path / "child.pid"
    # The parent ignores SIGTERM after starting a child that also ignores it: only the session
    # kill can end them.
    script = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        f"open({str(child_pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    group = ProcessGroup(tmp_path)
    first = group.start("first", [sys.executable, "-c", "import time; time.sleep(60)"])
    stubborn = group.start("stubborn", [sys.executable, "-c", script])
    child_pid = int(wait_until(child_pid_file.read_text, what="the child's pid"))

    # It would not exit on SIGTERM: None, and it is killed with its whole session.
    assert group.stop(stubborn, timeout=0.5) is None
    assert not stubborn.is_running()
    wait_until(lambda: not is_alive(child_pid), timeout=5, what="the child to be gone")
    group.stop_all()
    assert first.returncode == -signal.SIGTERM
    assert group.processes == []

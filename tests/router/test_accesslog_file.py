"""The access log file keeps whole lines only when writes fail, and counts what it loses.

A file-size limit (RLIMIT_FSIZE) makes the kernel cut a write short, as a full disk does, so the
short-write path runs without root; it is set in a child process, never in the test runner.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from registry.shm.counters import Stat
from router.accesslog_file import AccessLogFile
from tests.support.clock import ManualClock as Clock

LINE = b"x" * 99 + b"\n"
INTERVAL = 10.0

CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from registry.shm.counters import Stat
    from router.accesslog_file import AccessLogFile

    path, limit = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    stats = memoryview(bytearray(8 * 128)).cast("Q")
    log_file = AccessLogFile(path, 10.0, stats)
    line = b"x" * 99 + b"\\n"
    for _ in range(10):
        log_file.write(line * 7)
    print(json.dumps([stats[Stat.access_log_write_errors], stats[Stat.access_log_dropped_lines]]))
    """
)


def test_a_write_cut_short_leaves_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    limit = 2050  # room for 20 lines and a half
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(limit)],
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    errors, dropped = json.loads(child.stdout.decode().splitlines()[-1])
    data = path.read_bytes()
    assert data == LINE * 20  # the 21st line did not fit and was cut back off
    assert dropped == 70 - 20
    assert errors >= 8  # the cut batch and every batch after it
    events = [json.loads(line) for line in child.stderr.decode().splitlines()]
    assert [event["message"] for event in events] == ["access-log-write-failed"]
    assert events[0]["data"]["lost_lines"] == 1  # the first one at once; then one per interval
    assert "EFBIG" in events[0]["data"]["error"] or "ENOSPC" in events[0]["data"]["error"]


def events_in(stream: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_closed_descriptor_is_counted_reported_and_reopened(
    tmp_path: Path, component_log: io.BytesIO
) -> None:
    path = tmp_path / "access.log"
    stats = memoryview(bytearray(8 * 128)).cast("Q")
    clock = Clock()
    log_file = AccessLogFile(str(path), INTERVAL, stats, clock)
    log_file.write(LINE)
    # Swap a read-only descriptor in under it (a stray dup2 elsewhere): writes fail with EBADF.
    read_only = os.open(os.devnull, os.O_RDONLY)
    os.dup2(read_only, log_file.fileno())
    os.close(read_only)
    log_file.write(LINE * 3)
    assert (stats[Stat.access_log_write_errors], stats[Stat.access_log_dropped_lines]) == (1, 3)
    clock.now += INTERVAL
    log_file.write(LINE * 2)  # reopened first, so these are written
    log_file.close()
    assert path.read_bytes() == LINE * 3
    events = events_in(component_log)
    assert [event["message"] for event in events] == [
        "access-log-write-failed",
        "access-log-write-resumed",
    ]
    assert "EBADF" in events[0]["data"]["error"]


def test_an_unopenable_path_does_not_stop_the_worker(
    tmp_path: Path, component_log: io.BytesIO
) -> None:
    path = tmp_path / "missing-dir" / "access.log"
    stats = memoryview(bytearray(8 * 128)).cast("Q")
    clock = Clock()
    log_file = AccessLogFile(str(path), INTERVAL, stats, clock)
    log_file.write(LINE * 4)
    assert stats[Stat.access_log_dropped_lines] == 4
    path.parent.mkdir()
    clock.now += INTERVAL
    log_file.write(LINE)
    log_file.close()
    assert path.read_bytes() == LINE
    events = events_in(component_log)
    assert [event["message"] for event in events] == [
        "access-log-open-failed",
        "access-log-write-failed",
        "access-log-write-resumed",
    ]
    assert "ENOENT" in events[0]["data"]["error"]


def test_losses_held_back_are_reported_at_close(tmp_path: Path, component_log: io.BytesIO) -> None:
    stats = memoryview(bytearray(8 * 128)).cast("Q")
    log_file = AccessLogFile(str(tmp_path / "none" / "access.log"), INTERVAL, stats, Clock())
    log_file.write(LINE * 2)  # reported at once
    log_file.write(LINE * 5)  # held back: the interval is not over
    log_file.close()
    failed = [
        e["data"] for e in events_in(component_log) if e["message"] == "access-log-write-failed"
    ]
    assert [(e["lost_lines"], e["total_lost_lines"]) for e in failed] == [(2, 2), (5, 7)]

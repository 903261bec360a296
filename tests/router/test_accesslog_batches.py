"""The access log's batches on the worker's loop: every line reaches the file, in time, on
shutdown and across a reopen; losses are reported even when no more lines come."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.shm.counters import Stat
from router.accesslog import FLUSH_INTERVAL, FLUSH_LINES, AccessLog
from tests.router.test_accesslog import LINE
from tests.router.test_accesslog_line import exchange

INTERVAL = 10.0


async def settle(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Let the loop run until `predicate` holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        await asyncio.sleep(0.01)


def targets(path: Path) -> list[str]:
    """The request target of every line, checking each is a whole line in Gorouter's format."""
    found = []
    for line in path.read_text().splitlines():
        match = LINE.match(line)
        assert match, f"not a whole access log line: {line!r}"
        found.append(match["request"].split()[1])
    return found


def write(log: AccessLog, target: str) -> None:
    log.write(exchange(target=target), 0, 5, 0.001)


@pytest.mark.asyncio
async def test_lines_reach_the_file_within_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path), INTERVAL)
    write(log, "/one")
    write(log, "/two")
    assert path.read_text() == ""  # held for one write per batch
    started = time.monotonic()
    await settle(path.read_text)
    assert time.monotonic() - started < FLUSH_INTERVAL + 1.0
    assert targets(path) == ["/one", "/two"]
    log.close()


@pytest.mark.asyncio
async def test_a_busy_loop_loses_no_line(tmp_path: Path) -> None:
    """Lines come faster than the flush timer can fire: full batches are written as they fill."""
    path = tmp_path / "access.log"
    stats = memoryview(bytearray(8 * 128)).cast("Q")
    log = AccessLog(str(path), INTERVAL, stats)
    count = 20_000  # ~6 MB, about eighty batches, without ever letting the loop idle
    for number in range(count):
        write(log, f"/busy/{number}")
    # Full batches went out as they filled: less than one batch is held in memory.
    on_disk = len(path.read_bytes().splitlines())
    log.close()
    assert count - FLUSH_LINES < on_disk < count
    assert targets(path) == [f"/busy/{number}" for number in range(count)]
    assert stats[Stat.access_log_dropped_lines] == 0


@pytest.mark.asyncio
async def test_held_lines_are_written_on_close(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path), INTERVAL)
    write(log, "/last")
    log.close()
    assert targets(path) == ["/last"]


@pytest.mark.asyncio
async def test_reopen_sends_held_lines_to_the_old_file_and_new_ones_to_the_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    log = AccessLog(str(path), INTERVAL)
    write(log, "/before")
    path.rename(rotated)  # logrotate moves the file, then signals routerd
    write(log, "/while-moving")
    log.reopen()
    write(log, "/after")
    log.close()
    assert targets(rotated) == ["/before", "/while-moving"]
    assert targets(path) == ["/after"]


@pytest.mark.asyncio
async def test_losses_are_reported_when_their_interval_ends_without_more_lines(
    tmp_path: Path, component_log: io.BytesIO
) -> None:
    stats = memoryview(bytearray(8 * 128)).cast("Q")
    log = AccessLog(str(tmp_path / "missing-dir" / "access.log"), 0.3, stats)
    write(log, "/first")
    log.flush()  # reported at once
    write(log, "/second")
    write(log, "/third")
    log.flush()  # held back: the interval is not over, and no line comes after

    def failures() -> list[tuple[int, int]]:
        events = [json.loads(line) for line in component_log.getvalue().splitlines()]
        return [
            (event["data"]["lost_lines"], event["data"]["total_lost_lines"])
            for event in events
            if event["message"] == "access-log-write-failed"
        ]

    await settle(lambda: len(failures()) == 2)
    assert failures() == [(1, 1), (2, 3)]
    assert stats[Stat.access_log_dropped_lines] == 3
    log.close()


@pytest.mark.asyncio
async def test_a_line_says_what_its_exchange_was_when_it_settled(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path), INTERVAL)
    ex = exchange(target="/settled")
    log.write(ex, 0, 5, 0.001)
    ex.status = 502  # whatever happens to the object later, the line is already decided
    ex.router_error = "endpoint_failure"
    log.close()
    line = LINE.match(path.read_text().rstrip("\n"))
    assert line is not None
    assert (line["status"], line["error"]) == ("200", "-")

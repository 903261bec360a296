"""A repeating failure: logged when it starts, then once per interval with a count, then ended."""

from __future__ import annotations

import io
import sys

import orjson
import pytest

from runtime import logs
from runtime.log_tally import LogTally


@pytest.fixture
def lines():
    stream = io.BytesIO()
    logs.configure("info", stream)
    try:
        yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logs.configure("info", sys.stderr.buffer)


def test_a_flood_writes_one_line_per_interval(lines) -> None:
    now = [100.0]
    tally = LogTally(logs.EventLog("test"), "thing-failed", "thing-recovered", 5.0, lambda: now[0])

    assert tally.add(fd=1) is True  # the first failure starts a spell and is logged at once
    for _ in range(999):
        now[0] += 0.004
        assert tally.add(fd=1) is False
    now[0] = 105.0
    assert tally.tick() is True  # the interval's failures, counted on one line
    now[0] = 110.0
    assert tally.tick() is False  # a quiet interval ends the spell

    written = [(line["message"], line["data"]) for line in lines()]
    assert written == [
        ("thing-failed", {"count": 1, "total": 1, "seconds": 0.0, "fd": 1}),
        ("thing-failed", {"count": 999, "total": 1000, "seconds": 5.0}),
        ("thing-recovered", {"count": 0, "total": 1000, "seconds": 10.0}),
    ]
    assert lines()[0]["log_level"] == logs.ERROR
    assert lines()[2]["log_level"] == logs.INFO
    assert not tally.in_spell


def test_failures_that_stop_and_resume_within_an_interval_are_one_spell(lines) -> None:
    now = [0.0]
    tally = LogTally(logs.EventLog("test"), "thing-failed", "thing-recovered", 5.0, lambda: now[0])

    for _ in range(10):  # fail, recover, fail: flapping at a limit
        tally.add()
        now[0] += 0.1
    assert tally.tick() is True
    assert tally.tick() is False
    assert tally.add() is True  # a new spell after the end

    assert [line["message"] for line in lines()] == [
        "thing-failed",
        "thing-failed",
        "thing-recovered",
        "thing-failed",
    ]
    assert repr(tally) == "LogTally('thing-failed', total=11, unreported=0, in_spell=True)"

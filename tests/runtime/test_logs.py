"""Component log lines under Gorouter's `logging.format.timestamp` and `logging.syslog`."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator

import orjson
import pytest

from runtime import logs
from runtime.config import load_config_text, read_config_text


@pytest.fixture
def stream() -> Iterator[io.BytesIO]:
    out = io.BytesIO()
    logs.configure("info", out)
    yield out
    logs.configure("info", sys.stderr.buffer)


def last_line(out: io.BytesIO) -> dict[str, object]:
    record: dict[str, object] = orjson.loads(out.getvalue().splitlines()[-1])
    return record


def test_rfc3339_is_text_with_nanoseconds(stream: io.BytesIO) -> None:
    logs.configure("info", timestamp="rfc3339")
    logs.EventLog("vcap.gorouter.registry").info("endpoint-registered", uri="a")
    record = last_line(stream)
    assert isinstance(record["timestamp"], str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", record["timestamp"])
    assert record["source"] == "vcap.gorouter.registry"


@pytest.mark.parametrize("timestamp", ["unix-epoch", "deprecated", "anything-else"])
def test_other_formats_are_epoch_seconds_as_a_number(stream: io.BytesIO, timestamp: str) -> None:
    logs.configure("info", timestamp=timestamp)
    logs.EventLog("vcap.gorouter.router").info("worker-serving")
    record = last_line(stream)
    assert isinstance(record["timestamp"], float)
    # As Gorouter writes it: 1795992324.5048468, a JSON number, not text.
    assert re.search(rb'"timestamp":\d{10}\.\d+,', stream.getvalue())


def test_syslog_names_the_sources(stream: io.BytesIO) -> None:
    logs.configure("info", source="router-z1")
    logs.EventLog("vcap.gorouter.registry").info("route-registered")
    logs.EventLog("vcap.gorouter").info("starting")
    assert last_line(stream)["source"] == "router-z1"
    assert orjson.loads(stream.getvalue().splitlines()[0])["source"] == "router-z1.registry"
    logs.configure("info", source="")
    logs.EventLog("vcap.gorouter.nats").info("connected")
    assert last_line(stream)["source"] == "gorouter.stdout.nats"  # Gorouter's, unnamed


def test_apply_reads_the_logging_block(stream: io.BytesIO) -> None:
    config = load_config_text(
        "logging:\n  level: warn\n  syslog: edge\n  format:\n    timestamp: unix-epoch\n"
    )
    logs.apply(config.logging)
    logs.EventLog("vcap.gorouter.router").info("not-written")
    logs.EventLog("vcap.gorouter.router").warn("written")
    record = last_line(stream)
    assert (record["message"], record["source"]) == ("written", "edge.router")
    assert isinstance(record["timestamp"], float)
    logs.apply(load_config_text("").logging)


def test_an_unknown_timestamp_format_is_reported_as_gorouter_applies_it() -> None:
    loaded = read_config_text("logging:\n  format:\n    timestamp: iso\n")
    assert loaded.adjusted == (
        "logging.format.timestamp: 'iso' is none of rfc3339, unix-epoch, deprecated; "
        "unix-epoch applies, as in Gorouter",
    )

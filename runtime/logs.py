"""Component logs in Gorouter's shape: one JSON object per line.

    {"log_level":1,"timestamp":"2026-11-21T12:00:00.000000000Z","message":"endpoint-registered",
     "source":"vcap.gorouter.registry","data":{...}}

Events are kebab-case names (Gorouter's, where Gorouter has the event); fields go in `data`.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Final

import orjson

# Gorouter's numbering: zap's level + 1.
DEBUG: Final = 0
INFO: Final = 1
WARN: Final = 2
ERROR: Final = 3
FATAL: Final = 6
LEVELS: Final = {"debug": DEBUG, "info": INFO, "warn": WARN, "error": ERROR, "fatal": FATAL}


class _Sink:
    __slots__ = ("counts", "level", "stream")

    def __init__(self) -> None:
        self.level = INFO
        self.stream: IO[bytes] = sys.stderr.buffer
        self.counts = dict.fromkeys(LEVELS.values(), 0)  # lines written, by level


_sink = _Sink()


def configure(level: str = "info", stream: IO[bytes] | None = None) -> None:
    """Set the minimum level and, optionally, where lines go (stderr by default)."""
    _sink.level = LEVELS[level]
    if stream is not None:
        _sink.stream = stream


def line_counts() -> dict[str, int]:
    """Lines this process has logged, by level name (levels never logged left out), as
    Gorouter's /varz `log_counts`."""
    return {name: _sink.counts[level] for name, level in LEVELS.items() if _sink.counts[level]}


def rfc3339_now(now: float | None = None) -> str:
    """UTC timestamp with nanoseconds, as Gorouter's logger writes it."""
    ns = time.time_ns() if now is None else int(now * 1e9)
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class EventLog:
    """One logger per subsystem; `source` is Gorouter-style, e.g. `vcap.gorouter.registry`."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return f"EventLog({self.source!r})"

    def is_enabled(self, level: int) -> bool:
        return level >= _sink.level

    def debug(self, event: str, **data: Any) -> None:
        self.emit(DEBUG, event, data)

    def info(self, event: str, **data: Any) -> None:
        self.emit(INFO, event, data)

    def warn(self, event: str, **data: Any) -> None:
        self.emit(WARN, event, data)

    def error(self, event: str, **data: Any) -> None:
        self.emit(ERROR, event, data)

    def fatal(self, event: str, **data: Any) -> None:
        self.emit(FATAL, event, data)

    def emit(self, level: int, event: str, data: dict[str, Any]) -> None:
        if level < _sink.level:
            return
        _sink.counts[level] += 1
        record = {
            "log_level": level,
            "timestamp": rfc3339_now(),
            "message": event,
            "source": self.source,
            "data": data,
        }
        line = orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
        try:
            _sink.stream.write(line)
            _sink.stream.flush()
        except (OSError, ValueError):
            # A closed or broken log stream must never take the router down.
            pass

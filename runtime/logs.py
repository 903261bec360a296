"""Component logs in Gorouter's shape: one JSON object per line.

    {"log_level":1,"timestamp":"2026-11-21T12:00:00.000000000Z","message":"endpoint-registered",
     "source":"vcap.gorouter.registry","data":{...}}

Events are kebab-case names (Gorouter's, where Gorouter has the event); fields go in `data`.
As in Gorouter, `logging.format.timestamp` chooses the timestamp (RFC 3339 text, or seconds
since the epoch as a number) and `logging.syslog` the first part of every `source`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:
    from runtime.config_model import LoggingConfig

# Gorouter's numbering: zap's level + 1.
DEBUG: Final = 0
INFO: Final = 1
WARN: Final = 2
ERROR: Final = 3
FATAL: Final = 6
LEVELS: Final = {"debug": DEBUG, "info": INFO, "warn": WARN, "error": ERROR, "fatal": FATAL}
# The source every EventLog is named under; `logging.syslog` replaces it in the lines.
SOURCE_PREFIX: Final = "vcap.gorouter"
# Gorouter's source when `logging.syslog` is empty.
UNNAMED_PREFIX: Final = "gorouter.stdout"


def rfc3339_now(now: float | None = None) -> str:
    """UTC timestamp with nanoseconds, as Gorouter's logger writes it."""
    ns = time.time_ns() if now is None else int(now * 1e9)
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def epoch_now() -> float:
    """Seconds since the epoch, as Gorouter's "unix-epoch" format writes them (a JSON number)."""
    return time.time_ns() / 1e9


class _Sink:
    __slots__ = ("counts", "level", "prefix", "shared", "shared_index", "stream", "timestamp")

    def __init__(self) -> None:
        self.level = INFO
        self.stream: IO[bytes] = sys.stderr.buffer
        self.counts = dict.fromkeys(LEVELS.values(), 0)  # lines written, by level
        # Where a worker also counts its lines, for the supervisor to sum (`count_into`).
        self.shared: memoryview | None = None
        self.shared_index: dict[int, int] = {}
        self.timestamp: Any = rfc3339_now
        self.prefix = SOURCE_PREFIX


_sink = _Sink()


def configure(
    level: str = "info",
    stream: IO[bytes] | None = None,
    *,
    timestamp: str = "rfc3339",
    source: str = SOURCE_PREFIX,
) -> None:
    """Set the minimum level, the timestamp format ("rfc3339"; any other value: seconds since
    the epoch, as in Gorouter), the sources' first part and, optionally, where lines go
    (stderr by default)."""
    _sink.level = LEVELS[level]
    _sink.timestamp = rfc3339_now if timestamp == "rfc3339" else epoch_now
    _sink.prefix = source or UNNAMED_PREFIX
    if stream is not None:
        _sink.stream = stream


def apply(logging: LoggingConfig) -> None:
    """Configure component logs from the config's `logging` block."""
    configure(logging.level, timestamp=logging.format.timestamp, source=logging.syslog)


def line_counts(others: Mapping[str, int] | None = None) -> dict[str, int]:
    """Lines this process has logged, plus `others` (other processes' lines, by level name),
    by level name (levels never logged left out), as Gorouter's /varz `log_counts`."""
    others = others or {}
    counts = {name: _sink.counts[level] + others.get(name, 0) for name, level in LEVELS.items()}
    return {name: count for name, count in counts.items() if count}


def count_into(words: memoryview, index_by_name: Mapping[str, int]) -> None:
    """Count this process's lines in `words` too (a worker's shared-memory row), at the index
    `index_by_name` gives each level name; the lines already written are added now. The words
    only grow, so a respawned worker adds to what its predecessor counted."""
    index = {LEVELS[name]: position for name, position in index_by_name.items()}
    for level, count in _sink.counts.items():
        words[index[level]] += count
    _sink.shared_index = index
    _sink.shared = words


class EventLog:
    """One logger per subsystem; `source` is Gorouter-style, e.g. `vcap.gorouter.registry`
    (written with `logging.syslog` in place of `vcap.gorouter`)."""

    __slots__ = ("_suffix", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._suffix = (
            source.removeprefix(SOURCE_PREFIX) if source.startswith(SOURCE_PREFIX) else None
        )

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
        if _sink.shared is not None:
            _sink.shared[_sink.shared_index[level]] += 1
        suffix = self._suffix
        record = {
            "log_level": level,
            "timestamp": _sink.timestamp(),
            "message": event,
            "source": self.source if suffix is None else _sink.prefix + suffix,
            "data": data,
        }
        line = orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
        try:
            _sink.stream.write(line)
            _sink.stream.flush()
        except (OSError, ValueError):
            # A closed or broken log stream must never take the router down.
            pass

"""Gorouter's access log line, written off the event loop.

    host - [2026-11-21T12:00:00.123456789Z] "GET /path HTTP/1.1" 200 0 42 "-" "curl/8.0"
    "127.0.0.1:50000" "10.0.0.5:8080" x_forwarded_for:"127.0.0.1" x_forwarded_proto:"http"
    vcap_request_id:"…" response_time:0.003121 gorouter_time:0.000412 app_id:"…" app_index:"0"
    instance_id:"…" failed_attempts:0 x_cf_routererror:"-"

(one line). The event loop only formats and appends to a list; a thread writes batches with
O_APPEND (so workers can share one file) and reopens the file when asked (SIGHUP, logrotate).
Write failures are counted and reported by `router.accesslog_file`; no line is ever cut.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any, Final

from router.accesslog_file import AccessLogFile

FLUSH_INTERVAL: Final = 0.05
FLUSH_BYTES: Final = 64 * 1024
# Batches waiting for the writer thread before new ones are dropped (and counted): with
# FLUSH_BYTES batches, at most ~16 MiB held in memory while the file does not take writes.
MAX_QUEUED_BATCHES: Final = 256
REOPEN: Final = "reopen"
_PRINTABLE_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def go_quote(value: str) -> str:
    """strconv.Quote-like: "-" for empty; escapes quotes, backslashes and control bytes."""
    if not value:
        return '"-"'
    if all(c in _PRINTABLE_SAFE for c in value):
        return f'"{value}"'
    out = []
    for c in value:
        if c in _PRINTABLE_SAFE:
            out.append(c)
        elif c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def timestamp(epoch: float) -> str:
    """Gorouter's `2006-01-02T15:04:05.000000000Z` (UTC)."""
    seconds = int(epoch)
    nanos = int((epoch - seconds) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def seconds(value: float) -> str:
    return '"-"' if value < 0 else f"{value:.6f}"


class AccessRecord:
    """One access log line's fields."""

    __slots__ = (
        "app_id",
        "app_index",
        "backend",
        "bytes_received",
        "bytes_sent",
        "facts",
        "failed_attempts",
        "gorouter_time",
        "host",
        "instance_id",
        "method",
        "protocol",
        "received_at",
        "remote",
        "request_id",
        "response_time",
        "router_error",
        "status",
        "target",
    )

    def __init__(
        self, received_at: float, host: str, method: str, target: str, protocol: str, remote: str
    ) -> None:
        self.received_at = received_at
        self.host = host
        self.method = method
        self.target = target
        self.protocol = protocol
        self.remote = remote
        self.status = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.backend = ""
        self.request_id = ""
        self.response_time = -1.0
        self.gorouter_time = -1.0
        self.app_id = ""
        self.app_index = ""
        self.instance_id = ""
        self.failed_attempts = 0
        self.router_error = ""
        # The client's headers as the proxy read them (router.headers.RequestFacts), if it
        # got that far; values stay bytes until a line is formatted.
        self.facts: Any = None

    def __repr__(self) -> str:
        return f"AccessRecord({self.method} {self.host}{self.target} -> {self.status})"

    def _fact(self, name: str) -> str:
        value = getattr(self.facts, name, b"") if self.facts is not None else b""
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)

    def format(self) -> str:
        status = str(self.status) if self.status else '"-"'
        return (
            f"{self.host} - [{timestamp(self.received_at)}] "
            f"{go_quote(f'{self.method} {self.target} {self.protocol}')} "
            f"{status} {self.bytes_received} {self.bytes_sent} "
            f"{go_quote(self._fact('referer'))} {go_quote(self._fact('user_agent'))} "
            f"{go_quote(self.remote)} {go_quote(self.backend)} "
            f"x_forwarded_for:{go_quote(self._fact('forwarded_for'))} "
            f"x_forwarded_proto:{go_quote(self._fact('forwarded_proto'))} "
            f"vcap_request_id:{go_quote(self.request_id)} "
            f"response_time:{seconds(self.response_time)} "
            f"gorouter_time:{seconds(self.gorouter_time)} "
            f"app_id:{go_quote(self.app_id)} app_index:{go_quote(self.app_index)} "
            f"instance_id:{go_quote(self.instance_id)} "
            f"failed_attempts:{self.failed_attempts} "
            f"x_cf_routererror:{go_quote(self.router_error)}\n"
        )


class AccessLog:
    """Batches lines on the loop; a daemon thread does the blocking writes (AccessLogFile)."""

    def __init__(self, path: str, report_interval: float, stats: memoryview | None = None) -> None:
        self.path = path
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._queue: queue.SimpleQueue[bytes | str | None] = queue.SimpleQueue()
        self._handle: asyncio.TimerHandle | None = None
        self._file = AccessLogFile(path, report_interval, stats)
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"AccessLog({self.path!r})"

    def write(self, record: AccessRecord) -> None:
        line = record.format()
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        elif self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self._pending:
            return
        if self._queue.qsize() >= MAX_QUEUED_BATCHES:
            # The file does not take writes (a hung disk): drop and count, never hold the loop.
            self._file.lose(
                len(self._pending), f"writes stalled: {MAX_QUEUED_BATCHES} batches queued"
            )
        else:
            self._queue.put("".join(self._pending).encode("utf-8", "replace"))
        self._pending.clear()
        self._pending_bytes = 0

    def reopen(self) -> None:
        """After logrotate moved the file: the thread opens the path afresh."""
        self.flush()
        self._queue.put(REOPEN)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._file.report_interval)
            except queue.Empty:
                self._file.report_due()  # losses held back while no lines came
                continue
            if item is None:
                self._file.close()
                return
            if item == REOPEN:
                self._file.reopen()
            elif isinstance(item, bytes):
                self._file.write(item)

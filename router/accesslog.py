"""Gorouter's access log line, formatted and written in batches on the event loop.

    host - [2026-11-21T12:00:00.123456789Z] "GET /path HTTP/1.1" 200 0 42 "-" "curl/8.0"
    "127.0.0.1:50000" "10.0.0.5:8080" x_forwarded_for:"127.0.0.1" x_forwarded_proto:"http"
    vcap_request_id:"…" response_time:0.003121 gorouter_time:0.000412 app_id:"…" app_index:"0"
    instance_id:"…" failed_attempts:0 x_cf_routererror:"-"

(one line). Each line is formatted when its exchange settles and held in a list; every
FLUSH_INTERVAL, or sooner once FLUSH_BYTES are held, the batch goes to the file in one write
with O_APPEND (so workers can share one file). The file is reopened when asked (SIGHUP,
logrotate) and the batch held is written on shutdown. Write failures are counted and reported
by `router.accesslog_file`; no line is ever cut.

Formatting is per request, so it is kept cheap: one check (in C) over all quoted fields
decides whether any needs escaping, which a client's odd header rarely does; the timestamp's
date and time are made once per second; no object is built per line but the line itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Final

from router.accesslog_file import AccessLogFile

if TYPE_CHECKING:
    from router.exchange import Exchange

FLUSH_INTERVAL: Final = 0.05
FLUSH_BYTES: Final = 64 * 1024
_PRINTABLE_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def go_escape(value: str) -> str:
    """The text between the quotes of Go's strconv.Quote, as Gorouter logs a field: "-" when
    empty; quotes, backslashes and control characters escaped."""
    if not value:
        return "-"
    if is_plain(value):
        return value
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
    return "".join(out)


def is_plain(text: str) -> bool:
    """Whether `go_quote` leaves every character of `text` as it is.

    str.isprintable rejects every control character, and `in` is a memchr: three passes in C
    instead of a Python loop over each character.
    """
    return text.isprintable() and '"' not in text and "\\" not in text


class Timestamps:
    """Gorouter's `2006-01-02T15:04:05.000000000Z` (UTC); the part down to the second is
    made once per second, not once per line (strftime is most of a timestamp's cost)."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __repr__(self) -> str:
        return f"Timestamps({self._text or 'empty'})"

    def format(self, epoch: float) -> str:
        second = int(epoch)
        if second != self._second:
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._text}.{int((epoch - second) * 1e9):09d}Z"


def access_line(
    ex: Exchange, received: int, sent: int, elapsed: float, timestamps: Timestamps
) -> str:
    """The exchange's line, ending in a newline; `elapsed` is the whole response time."""
    req = ex.request
    facts = ex.facts
    if facts is not None:
        # Header values stay bytes until here; latin-1 keeps every byte as one character.
        referer = facts.referer.decode("latin-1")
        agent = facts.user_agent.decode("latin-1")
        forwarded_for = facts.forwarded_for.decode("latin-1")
        forwarded_proto = facts.forwarded_proto.decode("latin-1")
    else:
        referer = agent = forwarded_for = forwarded_proto = ""
    endpoint = ex.endpoint
    if endpoint is not None:
        app_id = endpoint.app_id
        app_index = endpoint.instance_index
        instance_id = endpoint.instance_id
    else:
        app_id = app_index = instance_id = ""
    request = f"{req.method} {req.target} {req.version}"
    remote = f"{req.client_ip}:{req.client_port}"
    backend, request_id, router_error = ex.backend, ex.request_id, ex.router_error
    # One check over all the quoted fields at once; only a line with something to escape
    # pays for escaping field by field.
    if not is_plain(
        f"{request}{referer}{agent}{remote}{backend}{forwarded_for}{forwarded_proto}"
        f"{request_id}{app_id}{app_index}{instance_id}{router_error}"
    ):
        (
            request,
            referer,
            agent,
            remote,
            backend,
            forwarded_for,
            forwarded_proto,
            request_id,
            app_id,
            app_index,
            instance_id,
            router_error,
        ) = (
            go_escape(value)
            for value in (
                request,
                referer,
                agent,
                remote,
                backend,
                forwarded_for,
                forwarded_proto,
                request_id,
                app_id,
                app_index,
                instance_id,
                router_error,
            )
        )
    status = ex.status or '"-"'
    gorouter_time = (ex.backend_started - ex.t0) if ex.backend_started else elapsed
    response_seconds = f"{elapsed:.6f}" if elapsed >= 0 else '"-"'
    gorouter_seconds = f"{gorouter_time:.6f}" if gorouter_time >= 0 else '"-"'
    # An empty field is "-", as Gorouter writes it.
    return (
        f'{req.host_header} - [{timestamps.format(req.received_at)}] "{request}" '
        f'{status} {received} {sent} "{referer or "-"}" "{agent or "-"}" "{remote}" '
        f'"{backend or "-"}" x_forwarded_for:"{forwarded_for or "-"}" '
        f'x_forwarded_proto:"{forwarded_proto or "-"}" '
        f'vcap_request_id:"{request_id or "-"}" response_time:{response_seconds} '
        f'gorouter_time:{gorouter_seconds} app_id:"{app_id or "-"}" '
        f'app_index:"{app_index or "-"}" instance_id:"{instance_id or "-"}" '
        f'failed_attempts:{ex.failed_attempts} x_cf_routererror:"{router_error or "-"}"\n'
    )


class AccessLog:
    """Batches lines on the loop and writes each batch from the loop (AccessLogFile)."""

    def __init__(self, path: str, report_interval: float, stats: memoryview | None = None) -> None:
        self.path = path
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._timestamps = Timestamps()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._report_handle: asyncio.TimerHandle | None = None
        self._file = AccessLogFile(path, report_interval, stats)

    def __repr__(self) -> str:
        return f"AccessLog({self.path!r}, pending={len(self._pending)}, {self._file!r})"

    def write(self, ex: Exchange, received: int, sent: int, elapsed: float) -> None:
        """Log the settled exchange: `received` and `sent` body bytes, `elapsed` seconds."""
        line = access_line(ex, received, sent, elapsed, self._timestamps)
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Write the lines held so far, in one batch."""
        self._write_held()
        if self._file.has_losses_held_back and self._report_handle is None:
            # Reported once the interval is over, even if no line comes to trigger it.
            self._report_handle = asyncio.get_running_loop().call_later(
                self._file.report_interval, self._report_due
            )

    def reopen(self) -> None:
        """After logrotate moved the file: what is held goes to the old file, then the path
        is opened afresh."""
        self.flush()
        self._file.reopen()

    def close(self) -> None:
        """Write what is held and close the file; losses not yet reported are reported now."""
        self._write_held()
        if self._report_handle is not None:
            self._report_handle.cancel()
            self._report_handle = None
        self._file.close()

    def _write_held(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending:
            return
        batch = "".join(self._pending).encode("utf-8", "replace")
        self._pending.clear()
        self._pending_bytes = 0
        self._file.write(batch)

    def _report_due(self) -> None:
        self._report_handle = None
        self._file.report_due()
        if self._file.has_losses_held_back:
            self._report_handle = asyncio.get_running_loop().call_later(
                self._file.report_interval, self._report_due
            )

"""Gorouter's access log line, formatted and written in batches on the event loop.

    host - [2026-11-21T12:00:00.123456789Z] "GET /path HTTP/1.1" 200 0 42 "-" "curl/8.0"
    "127.0.0.1:50000" "10.0.0.5:8080" x_forwarded_for:"127.0.0.1" x_forwarded_proto:"http"
    vcap_request_id:"…" response_time:0.003121 gorouter_time:0.000412 app_id:"…" app_index:"0"
    instance_id:"…" x_cf_routererror:"-"

(one line). When an exchange settles, the line's values are taken (`line_values`) and held;
every FLUSH_INTERVAL, or sooner once FLUSH_LINES are held, they are formatted together and
go to the file in one write with O_APPEND (so workers can share one file). The file is
reopened when asked (SIGHUP, logrotate) and what is held is written on shutdown. Write
failures are counted and reported by `router.accesslog_file`; no line is ever cut.

Formatting costs most, so it is kept cheap: lines are formatted in a batch, while that code
is still in the CPU's caches; one check (in C) over all quoted fields decides whether any
needs escaping, which a client's odd header rarely does; the timestamp's date and time are
made once per second; no object is built per line but a tuple and the line itself.

Gorouter's `logging` options that change the line (`LineOptions`) are decided once, when the log
is made or the config reloaded: with Gorouter's defaults the line is made as above and pays
nothing for them; otherwise `OptionedLines` takes a few more values when the exchange settles
and adjusts the values and the line around the same formatting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from router.accesslog_file import AccessLogFile

if TYPE_CHECKING:
    from registry.records import EndpointRecord
    from router.accesslog_syslog import SyslogStream
    from router.exchange import Exchange
    from router.headers import RequestFacts

FLUSH_INTERVAL: Final = 0.05
# Lines per batch: ~100 KiB, one write; formatted together, while the formatting code is
# still in the CPU's caches (a line formatted alone as its request settles costs twice as
# much in a busy worker, measured).
FLUSH_LINES: Final = 256
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
    """Whether `go_escape` leaves every character of `text` as it is.

    str.isprintable rejects every control character, and `in` is a memchr: three passes in C
    instead of a Python loop over each character.
    """
    return text.isprintable() and '"' not in text and "\\" not in text


class Timestamps:
    """Gorouter's `2006-01-02T15:04:05.000000000Z` (UTC); the part down to the second is
    made once per second, not once per line (strftime is most of a timestamp's cost)."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __repr__(self) -> str:
        return f"Timestamps({self._text or 'empty'})"

    def format(self, epoch: float) -> str:
        second = int(epoch)
        if second != self._second:
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            self._second = second
        # The nanoseconds' nine digits: a tenth digit added and cut off, cheaper than a
        # format spec (parsed anew on every call).
        return self._text + str(1_000_000_000 + int((epoch - second) * 1e9))[1:] + "Z"


def seconds(value: float) -> str:
    """`value` with six decimals, as Go's FormatFloat(v, 'f', 6) writes it; '"-"' when < 0.

    Counted in microseconds rather than through a format spec: a third of the cost. Rounding
    the product can differ from the exact decimal only within a rounding error of a tie."""
    if value < 0:
        return '"-"'
    if not value < 1e9:  # no request's time; NaN or infinite: the general format, no error
        return f"{value:.6f}"
    micros = int(value * 1e6 + 0.5)
    return f"{micros // 1_000_000}.{str(1_000_000 + micros % 1_000_000)[1:]}"


# One line's values, taken when its exchange settles: fixed from then on, and holding no
# request body. A plain tuple, made in `line_values` and read in `access_line` (and by
# router.accesslog_options, which adjusts it under Gorouter's options): a class
# would cost more per request than formatting in batches saves.
LineValues = tuple[
    str,  # host
    float,  # received_at (epoch seconds)
    str,  # method
    str,  # target
    str,  # protocol version
    str,  # client ip
    int,  # client port
    int,  # status; 0: none
    int,  # body bytes received
    int,  # body bytes sent
    "RequestFacts | None",
    str,  # backend address
    str,  # request id
    float,  # response time, seconds; < 0: none
    float,  # gorouter time, seconds; < 0: none
    "EndpointRecord | None",
    int,  # failed attempts
    str,  # router error
]


def line_values(ex: Exchange, received: int, sent: int, elapsed: float) -> LineValues:
    """What the settled exchange's line will say: `received` and `sent` body bytes, `elapsed`
    seconds in all."""
    req = ex.request
    return (
        req.host_header,
        req.received_at,
        req.method,
        req.target,
        req.version,
        req.client_ip,
        req.client_port,
        ex.status,
        received,
        sent,
        ex.facts,
        ex.backend,
        ex.request_id,
        elapsed,
        (ex.backend_started - ex.t0) if ex.backend_started else elapsed,
        ex.endpoint,
        ex.failed_attempts,
        ex.router_error,
    )


def access_line(values: LineValues, timestamps: Timestamps) -> str:
    """The line, ending in a newline."""
    (
        host,
        received_at,
        method,
        target,
        version,
        client_ip,
        client_port,
        status,
        received,
        sent,
        facts,
        backend,
        request_id,
        response_time,
        gorouter_time,
        endpoint,
        _,  # failed attempts: in the line with enable_attempts_details only
        router_error,
    ) = values
    if facts is not None:
        # Header values stay bytes until here; latin-1 keeps every byte as one character.
        referer = facts.referer.decode("latin-1")
        agent = facts.user_agent.decode("latin-1")
        forwarded_for = facts.forwarded_for.decode("latin-1")
        forwarded_proto = facts.forwarded_proto.decode("latin-1")
    else:
        referer = agent = forwarded_for = forwarded_proto = ""
    if endpoint is not None:
        app_id = endpoint.app_id
        app_index = endpoint.instance_index
        instance_id = endpoint.instance_id
    else:
        app_id = app_index = instance_id = ""
    request = f"{method} {target} {version}"
    remote = f"{client_ip}:{client_port}" if client_port else "-"
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
    status_text = str(status) if status else '"-"'
    response_seconds = seconds(response_time)
    gorouter_seconds = seconds(gorouter_time)
    # An empty field is "-", as Gorouter writes it.
    return (
        f'{host} - [{timestamps.format(received_at)}] "{request}" {status_text} '
        f'{received} {sent} "{referer or "-"}" "{agent or "-"}" "{remote}" '
        f'"{backend or "-"}" x_forwarded_for:"{forwarded_for or "-"}" '
        f'x_forwarded_proto:"{forwarded_proto or "-"}" '
        f'vcap_request_id:"{request_id or "-"}" response_time:{response_seconds} '
        f'gorouter_time:{gorouter_seconds} app_id:"{app_id or "-"}" '
        f'app_index:"{app_index or "-"}" instance_id:"{instance_id or "-"}" '
        f'x_cf_routererror:"{router_error or "-"}"\n'
    )


class LineFormat(NamedTuple):
    """How a line's values are taken when its exchange settles, and formatted in a batch
    (router.accesslog_options.line_format: these two functions unless options say more)."""

    take: Callable[[Exchange, int, int, float], Any]
    format: Callable[[Any, Timestamps], str]


PLAIN: Final = LineFormat(line_values, access_line)


class AccessLog:
    """Holds lines' values on the loop; formats and writes them in batches, from the loop, to
    the file (when `path` is set) and to syslog (when `syslog` is given)."""

    def __init__(
        self,
        path: str,
        report_interval: float,
        stats: memoryview | None = None,
        lines: LineFormat = PLAIN,
        syslog: SyslogStream | None = None,
    ) -> None:
        self.path = path
        self._held: list[Any] = []
        self._timestamps = Timestamps()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._report_handle: asyncio.TimerHandle | None = None
        self._file = AccessLogFile(path, report_interval, stats) if path else None
        self._syslog = syslog
        self._report_interval = report_interval
        self._take, self._format = lines

    def __repr__(self) -> str:
        return f"AccessLog({self.path!r}, held={len(self._held)}, {self._file!r}, {self._syslog!r})"

    def configure(self, lines: LineFormat) -> None:
        """Take and format lines from now on as `lines` says (a reloaded config); the lines
        held so far are written as they were taken."""
        self._write_held()
        self._take, self._format = lines

    def write(self, ex: Exchange, received: int, sent: int, elapsed: float) -> None:
        """Log the settled exchange: `received` and `sent` body bytes, `elapsed` seconds."""
        self._held.append(self._take(ex, received, sent, elapsed))
        if len(self._held) >= FLUSH_LINES:
            self.flush()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Write the lines held so far, in one batch."""
        self._write_held()
        if self._has_losses_held_back and self._report_handle is None:
            # Reported once the interval is over, even if no line comes to trigger it.
            self._report_handle = asyncio.get_running_loop().call_later(
                self._report_interval, self._report_due
            )

    def reopen(self) -> None:
        """After logrotate moved the file: what is held goes to the old file, then the path
        is opened afresh."""
        self.flush()
        if self._file is not None:
            self._file.reopen()

    def close(self) -> None:
        """Write what is held and close the file; losses not yet reported are reported now."""
        self._write_held()
        if self._report_handle is not None:
            self._report_handle.cancel()
            self._report_handle = None
        if self._file is not None:
            self._file.close()
        if self._syslog is not None:
            self._syslog.close()

    @property
    def _has_losses_held_back(self) -> bool:
        return (self._file is not None and self._file.losses.has_held_back) or (
            self._syslog is not None and self._syslog.losses.has_held_back
        )

    def _write_held(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._held:
            return
        timestamps = self._timestamps
        format_line = self._format
        lines = [format_line(values, timestamps) for values in self._held]
        self._held.clear()
        if self._file is not None:
            self._file.write("".join(lines).encode("utf-8", "replace"))
        if self._syslog is not None:
            self._syslog.send([line[:-1].encode("utf-8", "replace") for line in lines])

    def _report_due(self) -> None:
        self._report_handle = None
        if self._file is not None:
            self._file.losses.report_due()
        if self._syslog is not None:
            self._syslog.losses.report_due()
        if self._has_losses_held_back:
            self._report_handle = asyncio.get_running_loop().call_later(
                self._report_interval, self._report_due
            )

"""Access log lines to syslog (`access_log.enable_streaming`), as Gorouter sends them.

Gorouter dials syslog with Go's log/syslog: `logging.syslog_network` and `syslog_addr`, both
empty for the local syslog socket (/dev/log), priority 6 (info, facility kern) and the tag
`logging.syslog`. Each line is one message:

    <6>Nov 29 22:45:27 vcap.gorouter[1234]: app.example.com - [2026-...] "GET / HTTP/1.1" ...

over a local socket, and with an RFC 3339 timestamp and the host name over UDP:

    <6>2026-11-29T22:45:27Z router-0 vcap.gorouter[1234]: app.example.com - ...

Only datagram networks are taken (config.SyslogNetwork): one line, one datagram, sent from the
worker's loop without waiting. A datagram the socket cannot take now (a full syslog queue, a
daemon restarting) is a lost line: counted in the worker's row like a line the file could not
take, and reported at most once per interval. The socket is opened again after an error, at
most once per interval. Gorouter also sends each line's newline as a message of its own; that
empty message is not reproduced.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any, Final

from router.accesslog_file import describe
from router.accesslog_losses import LineLosses
from runtime import logs

# Where Go's log/syslog looks for the local syslog socket, in order.
LOCAL_SOCKETS: Final = ("/dev/log", "/var/run/syslog", "/var/run/log")
# Go's syslog.LOG_INFO: severity info in facility 0, as Gorouter dials it.
PRIORITY: Final = 6
# Go's tag when none is given is the program's name.
DEFAULT_TAG: Final = "routerd"
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)

log = logs.EventLog("vcap.gorouter.access-log")


class SyslogUnreachable(Exception):
    """The syslog address cannot be opened."""


def connect(network: str, address: str) -> tuple[socket.socket, bool]:
    """A connected, non-blocking datagram socket to syslog, and whether it is a local socket
    (which takes Go's shorter local format). Raises SyslogUnreachable."""
    if network == "":
        errors = []
        for path in LOCAL_SOCKETS:
            try:
                return _connect(socket.AF_UNIX, path), True
            except OSError as exc:
                errors.append(f"{path}: {describe(exc)}")
        raise SyslogUnreachable(f"no local syslog socket ({'; '.join(errors)})")
    try:
        if network == "unixgram":
            return _connect(socket.AF_UNIX, address), True
        host, _, port = address.rpartition(":")
        family = {"udp4": socket.AF_INET, "udp6": socket.AF_INET6}.get(network, socket.AF_UNSPEC)
        found = socket.getaddrinfo(host.strip("[]"), int(port), family, socket.SOCK_DGRAM)
        family, _, _, _, where = found[0]
        return _connect(family, where), False
    except (OSError, ValueError) as exc:
        detail = describe(exc) if isinstance(exc, OSError) else str(exc)
        raise SyslogUnreachable(f"{network} {address}: {detail}") from None


def _connect(family: int, where: str | tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.connect(where)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def local_header(tag: str, pid: int, now: float) -> bytes:
    """Go's local format: `<6>Jan _2 15:04:05 tag[pid]: ` in local time."""
    t = time.localtime(now)
    stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"<{PRIORITY}>{stamp} {tag}[{pid}]: ".encode()


def network_header(tag: str, pid: int, hostname: str, now: float) -> bytes:
    """Go's network format: `<6>2006-01-02T15:04:05Z07:00 host tag[pid]: ` in local time."""
    t = time.localtime(now)
    offset = t.tm_gmtoff
    if offset == 0:
        zone = "Z"
    else:
        sign = "+" if offset > 0 else "-"
        zone = f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + zone
    return f"<{PRIORITY}>{stamp} {hostname} {tag}[{pid}]: ".encode()


class SyslogStream:
    """One worker's access log lines to syslog, one datagram per line."""

    def __init__(
        self,
        network: str,
        address: str,
        tag: str,
        truncate: int,
        report_interval: float,
        stats: memoryview | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.network = network
        self.address = address
        self.tag = tag or DEFAULT_TAG
        self.truncate = truncate
        self.report_interval = report_interval
        self._clock = clock
        where = {"syslog": f"{network or 'local'} {address}".rstrip()}
        self.losses = LineLosses(
            "access-log-syslog", where, report_interval, stats, clock, count_failures=False
        )
        self._pid = os.getpid()
        self._hostname = socket.gethostname() or "-"
        self._sock: socket.socket | None = None
        self._local = True
        self._error = ""
        self._opened_at = -report_interval
        self._open()

    def __repr__(self) -> str:
        where = self.address or "local"
        state = "open" if self._sock is not None else "closed"
        return f"SyslogStream({self.network or 'local'} {where}, {state}, {self.losses!r})"

    def send(self, lines: list[bytes]) -> None:
        """Send each line (without its newline) as one message."""
        now = self._clock()
        if self._sock is None and now - self._opened_at >= self.report_interval:
            self._open()
        sock = self._sock
        if sock is None:
            self._lose(len(lines), self._error)
            return
        wall = time.time()
        if self._local:
            header = local_header(self.tag, self._pid, wall)
        else:
            header = network_header(self.tag, self._pid, self._hostname, wall)
        limit = self.truncate
        for index, line in enumerate(lines):
            try:
                sock.send(b"%b%b\n" % (header, line[:limit] if limit else line))
            except OSError as exc:
                self._lose(len(lines) - index, describe(exc))
                if not isinstance(exc, BlockingIOError):
                    self._close()  # opened again at the next batch due
                return
        self.losses.went_through()

    def close(self) -> None:
        self.losses.report_now()
        self._close()

    def _open(self) -> None:
        self._opened_at = self._clock()
        try:
            self._sock, self._local = connect(self.network, self.address)
        except SyslogUnreachable as exc:
            self._error = str(exc)
            log.error("access-log-syslog-open-failed", error=self._error)

    def _close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _lose(self, lines: int, error: str) -> None:
        self._error = error
        self.losses.lose(lines, error)

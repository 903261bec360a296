"""Connections taken off a listening socket by the worker itself, so that running out of file
descriptors is seen and costs no connection.

uvloop's server accepts inside libuv, which answers EMFILE/ENFILE with its "emfile trick": it
accepts every pending connection and closes it at once, and tells the application nothing
(measured: 35 of 60 held connections reset, no callback, no log). When even that fails, uvloop
closes the server for good, again silently. The acceptor does it the other way: out of
descriptors, it stops accepting for `EXHAUSTED_PAUSE` and leaves the pending connections in the
kernel's backlog, where they wait instead of being reset. Each failed accept() counts in
`Stat.accept_fd_exhausted`, and the spell is logged at its start, then once per
`logging.error_sample_interval` with a count (`accept-fd-exhausted`), and at its end
(`accept-fd-exhaustion-ended`).

An accepted socket goes to an intake's `adopt`, the same call that serves a connection the
supervisor accepted for this worker while another one was down (listeners.py).
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
import ssl
from collections.abc import Callable
from typing import Final, Protocol

from registry.shm.counters import Stat
from runtime.log_tally import LogTally
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.router")

# Connections taken per readiness event, so that a flood of them cannot starve the loop.
ACCEPT_BATCH: Final = 64
# How soon to try again when out of descriptors: quick recovery, ten failed syscalls a second.
EXHAUSTED_PAUSE: Final = 0.1
FD_EXHAUSTION: Final = frozenset({errno.EMFILE, errno.ENFILE})
# Failures of one connection, not of the listener (Linux reports some of a connection's network
# errors on accept): skip it and take the next.
CONNECTION_ERRORS: Final = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.EPERM,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETUNREACH,
    }
)

ProtocolFactory = Callable[[], asyncio.Protocol]


class Intake(Protocol):
    """Where accepted connections go. `adopt` MUST take ownership of `conn` (serve or close it)."""

    def adopt(self, conn: socket.socket) -> None: ...

    def close(self) -> None: ...


class ResourceShortage:
    """A worker's accept failures for want of resources, counted and logged once per interval.

    EMFILE/ENFILE feed `Stat.accept_fd_exhausted`; ENOBUFS/ENOMEM and anything unexpected have a
    tally of their own (`accept-failed`), since raising the fd limit would not help them.
    """

    __slots__ = ("failures", "fds", "stats")

    def __init__(self, stats: memoryview, interval: float) -> None:
        self.stats = stats
        self.fds = LogTally(log, "accept-fd-exhausted", "accept-fd-exhaustion-ended", interval)
        self.failures = LogTally(log, "accept-failed", "accept-recovered", interval)

    def __repr__(self) -> str:
        return f"ResourceShortage(fds={self.fds!r}, failures={self.failures!r})"

    def failed(self, listener: str, exc: OSError) -> None:
        if exc.errno in FD_EXHAUSTION:
            self.stats[Stat.accept_fd_exhausted] += 1
            tally = self.fds
            started = tally.add(
                listener=listener,
                error=exc.strerror,
                fd_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            )
        else:
            tally = self.failures
            started = tally.add(listener=listener, error=exc.strerror or str(exc))
        if started:
            asyncio.get_running_loop().call_later(tally.interval, self._tick, tally)

    def _tick(self, tally: LogTally) -> None:
        if tally.tick():
            asyncio.get_running_loop().call_later(tally.interval, self._tick, tally)


class Acceptor:
    """Accepts on one listening socket and hands each connection to `intake`."""

    def __init__(
        self, sock: socket.socket, intake: Intake, shortage: ResourceShortage, name: str
    ) -> None:
        self.sock = sock
        self.intake = intake
        self.shortage = shortage
        self.name = name
        self._loop = asyncio.get_running_loop()
        self._retry: asyncio.TimerHandle | None = None
        self._watching = False
        self._closed = False
        sock.setblocking(False)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "paused" if self._retry else "accepting"
        return f"Acceptor({self.name}, {state})"

    def start(self) -> None:
        self._watch()

    def close(self) -> None:
        """Stop accepting and close this process's copy of the socket; `intake` goes on."""
        if self._closed:
            return
        self._closed = True
        self._unwatch()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self.sock.close()

    def _watch(self) -> None:
        if not self._watching and not self._closed:
            self._loop.add_reader(self.sock.fileno(), self._on_readable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self.sock.fileno())
            self._watching = False

    def _on_readable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in CONNECTION_ERRORS:
                    continue
                self._pause(exc)
                return
            self.intake.adopt(conn)

    def _pause(self, exc: OSError) -> None:
        # The pending connections stay queued in the kernel; try again shortly.
        self.shortage.failed(self.name, exc)
        self._unwatch()
        self._retry = self._loop.call_later(EXHAUSTED_PAUSE, self._resume)

    def _resume(self) -> None:
        self._retry = None
        self._watch()


class DirectIntake:
    """Serves each connection at once: HTTP, or TLS after the handshake."""

    def __init__(
        self,
        factory: ProtocolFactory,
        tls: ssl.SSLContext | None = None,
        tls_handshake_timeout: float | None = None,
    ) -> None:
        self.factory = factory
        self.tls = tls
        self.tls_handshake_timeout = tls_handshake_timeout if tls is not None else None
        self._loop = asyncio.get_running_loop()
        self._connecting: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"DirectIntake(tls={self.tls is not None}, connecting={len(self._connecting)})"

    def adopt(self, conn: socket.socket) -> None:
        task = self._loop.create_task(self._connect(conn))
        # The loop keeps only a weak reference to a task.
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    def close(self) -> None:
        """Nothing to stop: connections being set up go on, like those already served."""

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self.factory,
                conn,
                ssl=self.tls,
                ssl_handshake_timeout=self.tls_handshake_timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError):
            conn.close()  # gone before it was served, or a failed TLS handshake (told by alert)

"""Idle keep-alive connections to backends, per endpoint, in one worker; and dialing new ones.

Idle connections are closed after `backends.idle_timeout`, which defaults below common backend
keep-alive timeouts, so the router usually closes first and rarely reuses a socket the backend is
about to close. When it does lose that race the proxy retries on a fresh connection.

At most `max_idle_per_endpoint` idle connections are kept per endpoint, and at most `max_idle`
over all endpoints (None: no limit): as Go's transport (Gorouter's max_idle_conns_per_host and
max_idle_conns), a connection over the first cap is closed, and past the second the longest idle
one anywhere is closed to make room. `_lru` holds every idle connection, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections import deque
from typing import Final

from router.errors import BackendError, Kind
from router.exchange import BackendExchange
from router.failures import classify_dial_error
from router.response_heads import DEFAULT_LIMITS
from router.upstream import UpstreamConnection
from router.upstream_h2_pool import H2Pool
from router.upstream_h2_stream import H2Stream
from router.write_batch import WriteBatch

# How late an endpoint_timeout may fire: deadlines are checked this often.
DEADLINE_TICK: Final = 0.05
# endpoint_keep_alive_probe_interval 0 is Gorouter's (Go's net.Dialer) "probes every 15 s".
GO_KEEPALIVE_PROBE_INTERVAL: Final = 15
# Pool keys of endpoints registered with `protocol: http2` end so (attempts.py makes the keys).
H2_KEY_SUFFIX: Final = "/h2"


class UpstreamPool:
    """Idle keep-alive connections per endpoint, in this worker."""

    def __init__(
        self,
        dial_timeout: float,
        idle_timeout: float,
        max_idle_per_endpoint: int,
        keepalive_interval: float,
        tls_context: ssl.SSLContext | None,
        h2_tls_context: ssl.SSLContext | None = None,
        max_idle: int | None = None,
        reuse: bool = True,
    ) -> None:
        self.dial_timeout = dial_timeout
        self.limits = DEFAULT_LIMITS  # what a response head may hold; set from the config
        self.idle_timeout = idle_timeout
        self.max_idle_per_endpoint = max_idle_per_endpoint
        self.max_idle = max_idle
        self.keepalive_interval = keepalive_interval
        self.tls_context = tls_context
        self._idle: dict[str, deque[UpstreamConnection]] = {}
        self._lru: dict[UpstreamConnection, None] = {}  # insertion order: oldest idle first
        self._loop = asyncio.get_running_loop()
        self.batch = WriteBatch(self._loop)
        self.connects = 0
        self.reuses = 0
        self._sweeper: asyncio.TimerHandle | None = None
        # Every open connection and HTTP/2 stream; one timer checks their response-head
        # deadlines (a timer, or even a dict entry, per request would cost more than the rest of
        # the bookkeeping).
        self._open: set[BackendExchange] = set()
        self._deadline_timer: asyncio.TimerHandle | None = None
        self.h2 = H2Pool(
            dial_timeout,
            idle_timeout,
            h2_tls_context,
            self._set_keepalive,
            self._watch,
            self._open.discard,
            single_use=not reuse,
        )

    def __repr__(self) -> str:
        return (
            f"UpstreamPool(idle={len(self._lru)}, connects={self.connects}, reuses={self.reuses})"
        )

    def set_keep_alive(self, max_idle_per_endpoint: int, max_idle: int | None, reuse: bool) -> None:
        """New caps (a SIGHUP's): idle connections over them close as they are taken or swept."""
        self.max_idle_per_endpoint = max_idle_per_endpoint
        self.max_idle = max_idle
        self.h2.single_use = not reuse

    def take_idle(self, key: str) -> BackendExchange | None:
        """A pooled connection that is still fresh (for HTTP/2, a stream on an open connection
        with room), or None."""
        if key.endswith(H2_KEY_SUFFIX):
            stream = self.h2.take_stream(key)
            if stream is not None:
                self.reuses += 1
            return stream
        queue = self._idle.get(key)
        if not queue:
            return None
        deadline = self._loop.time() - self.idle_timeout
        while queue:
            conn = queue.pop()  # most recently used first: the least likely to be closing
            del self._lru[conn]
            if not conn.closed and conn.idle_since > deadline:
                self.reuses += 1
                return conn
            conn.close()
        return None

    async def dial(
        self,
        key: str,
        host: str,
        port: int,
        tls: bool,
        server_hostname: str,
        tls_context: ssl.SSLContext | None = None,
        timeout: float | None = None,
    ) -> BackendExchange:
        """A new connection, within `timeout` (None: dial_timeout), TLS handshake included;
        over TLS with `tls_context`, or the backends' when None."""
        if key.endswith(H2_KEY_SUFFIX):
            return await self.h2.open_stream(key, host, port, tls, server_hostname)
        address = f"{host}:{port}"
        dial_timeout = self.dial_timeout if timeout is None else timeout
        context = (tls_context or self.tls_context) if tls else None
        if tls and context is None:
            raise BackendError(Kind.TLS_HANDSHAKE, "no TLS context for backends")
        try:
            async with asyncio.timeout(dial_timeout):
                _, conn = await self._loop.create_connection(
                    lambda: UpstreamConnection(key, self._forget, self.batch, self.limits),
                    host,
                    port,
                    ssl=context,
                    server_hostname=(server_hostname or host) if tls else None,
                    ssl_handshake_timeout=dial_timeout if tls else None,
                )
        except BackendError:
            raise
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise classify_dial_error(exc, address) from None
        self.connects += 1
        self._set_keepalive(conn.transport)
        self._watch(conn)
        return conn

    def _watch(self, conn: BackendExchange) -> None:
        """Enforce `conn.deadline` from now on."""
        self._open.add(conn)
        if self._deadline_timer is None:
            self._deadline_timer = self._loop.call_later(DEADLINE_TICK, self._check_deadlines)

    def _set_keepalive(self, transport: asyncio.BaseTransport | None) -> None:
        sock: socket.socket | None = transport.get_extra_info("socket") if transport else None
        if sock is None:
            return
        if self.keepalive_interval > 0:
            interval = max(1, int(self.keepalive_interval))  # the kernel counts whole seconds
        else:
            interval = GO_KEEPALIVE_PROBE_INTERVAL
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def _check_deadlines(self) -> None:
        """Time out exchanges past their `deadline` (time.monotonic; 0 when none is set)."""
        self._deadline_timer = None
        now = time.monotonic()
        for conn in [c for c in self._open if 0.0 < c.deadline <= now]:
            conn.deadline = 0.0
            conn.time_out()
        if self._open:
            self._deadline_timer = self._loop.call_later(DEADLINE_TICK, self._check_deadlines)

    def release(self, conn: BackendExchange) -> None:
        """Return a connection after an exchange: pooled if it can serve another one (an
        HTTP/2 stream is ended, its connection left to other streams)."""
        if isinstance(conn, H2Stream):
            conn.release()
            return
        assert isinstance(conn, UpstreamConnection)
        conn.active = False
        if not conn.is_reusable:
            conn.close()
            return
        queue = self._idle.get(conn.key)
        if len(queue or ()) >= self.max_idle_per_endpoint:
            conn.close()
            return
        if self.max_idle is not None and len(self._lru) >= self.max_idle:
            if self.max_idle == 0:
                conn.close()
                return
            self._evict_oldest()  # which may empty and drop this endpoint's queue
            queue = self._idle.get(conn.key)
        if queue is None:
            queue = self._idle[conn.key] = deque()
        conn.idle_since = self._loop.time()
        queue.append(conn)
        self._lru[conn] = None
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self.idle_timeout, self._sweep)

    def _evict_oldest(self) -> None:
        """Close the connection idle longest, over all endpoints."""
        oldest = next(iter(self._lru))
        del self._lru[oldest]
        queue = self._idle[oldest.key]
        queue.remove(oldest)  # at the left end: the oldest of its endpoint too
        if not queue:
            del self._idle[oldest.key]
        oldest.close()

    def _forget(self, conn: UpstreamConnection) -> None:
        self._open.discard(conn)
        if conn in self._lru:  # closed while idle (by the backend, most often)
            del self._lru[conn]
            queue = self._idle.get(conn.key)
            if queue is not None:
                with contextlib.suppress(ValueError):
                    queue.remove(conn)

    def _sweep(self) -> None:
        """Close connections idle longer than idle_timeout, before backends close them."""
        self._sweeper = None
        deadline = self._loop.time() - self.idle_timeout
        remaining = 0
        for key in list(self._idle):
            queue = self._idle[key]
            while queue and queue[0].idle_since <= deadline:
                conn = queue.popleft()
                del self._lru[conn]
                conn.close()
            if not queue:
                del self._idle[key]
            remaining += len(queue)
        if remaining:
            self._sweeper = self._loop.call_later(max(self.idle_timeout / 2, 0.05), self._sweep)

    def close_all(self) -> None:
        self.h2.close_all()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        for queue in self._idle.values():
            for conn in queue:
                conn.close()
        self._idle.clear()
        self._lru.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

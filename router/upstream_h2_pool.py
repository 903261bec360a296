"""HTTP/2 connections to backends, per endpoint, in one worker; and dialing new ones.

A request takes a stream on an endpoint's connection that has room (fewer active streams than
the backend's SETTINGS_MAX_CONCURRENT_STREAMS, no GOAWAY); when none has, one dial is made and
every request waiting meanwhile shares it. Plain ports speak h2c with prior knowledge; a
`tls_port` is dialed with ALPN `h2` and the same certificate and SAN checks as HTTP/1. A
connection is ready once the backend's first SETTINGS arrived. Connections without active
streams are closed (GOAWAY) after the pool's idle timeout. A `single_use` pool (Gorouter's
disable_keep_alives) dials a connection of its own for every request and closes it after.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable
from typing import Final

from router.errors import BackendError, Kind
from router.failures import classify_dial_error
from router.upstream_h2 import H2Upstream
from router.upstream_h2_stream import H2Stream, own_copy

# A request that finds every freshly dialed connection full dials again at most this often
# (a backend allowing no streams at all must not make it loop).
MAX_DIALS_PER_STREAM: Final = 4


class H2Pool:
    """HTTP/2 connections per endpoint key, shared by this worker's concurrent requests."""

    def __init__(
        self,
        dial_timeout: float,
        idle_timeout: float,
        tls_context: ssl.SSLContext | None,
        set_keepalive: Callable[[asyncio.BaseTransport | None], None],
        watch: Callable[[H2Stream], None],
        unwatch: Callable[[H2Stream], None],
        single_use: bool = False,
    ) -> None:
        self.dial_timeout = dial_timeout
        self.idle_timeout = idle_timeout
        self.tls_context = tls_context
        self._set_keepalive = set_keepalive
        self._watch = watch
        self._unwatch = unwatch
        self.single_use = single_use
        self._loop = asyncio.get_running_loop()
        self._conns: dict[str, list[H2Upstream]] = {}
        self._dialing: dict[str, asyncio.Task[H2Upstream]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.connects = 0

    def __repr__(self) -> str:
        conns = sum(len(c) for c in self._conns.values())
        return f"H2Pool(conns={conns}, connects={self.connects})"

    def connections(self, key: str) -> list[H2Upstream]:
        return list(self._conns.get(key, ()))

    def take_stream(self, key: str) -> H2Stream | None:
        """A stream on an open connection with room, without awaiting; None when none has."""
        if self.single_use:
            return None
        for conn in self._conns.get(key, ()):
            if conn.can_open:
                return self._stream(conn)
        return None

    async def open_stream(
        self, key: str, host: str, port: int, tls: bool, server_hostname: str
    ) -> H2Stream:
        """A stream on a connection with room, dialing one when none has."""
        if self.single_use:
            return self._stream(await self._dial(key, host, port, tls, server_hostname))
        for _ in range(MAX_DIALS_PER_STREAM):
            stream = self.take_stream(key)
            if stream is not None:
                return stream
            task = self._dialing.get(key)
            if task is None:
                task = self._loop.create_task(self._dial(key, host, port, tls, server_hostname))
                self._dialing[key] = task
                task.add_done_callback(functools.partial(self._dialed, key))
            try:
                conn = await asyncio.shield(task)
            except BackendError as error:
                raise own_copy(error) from None  # every waiter gets the dial's failure
            if conn.can_open:
                return self._stream(conn)
        raise BackendError(Kind.DIAL, f"http2: no stream available on {host}:{port}")

    def _stream(self, conn: H2Upstream) -> H2Stream:
        stream = conn.open_stream()
        stream.unwatch = self._unwatch
        self._watch(stream)
        return stream

    def _dialed(self, key: str, task: asyncio.Task[H2Upstream]) -> None:
        if self._dialing.get(key) is task:
            del self._dialing[key]
        if not task.cancelled():
            task.exception()  # every waiter may have gone: the error is theirs, not the loop's

    async def _dial(
        self, key: str, host: str, port: int, tls: bool, server_hostname: str
    ) -> H2Upstream:
        address = f"{host}:{port}"
        context = self.tls_context if tls else None
        if tls and context is None:
            raise BackendError(Kind.TLS_HANDSHAKE, "no TLS context for backends")
        scheme = b"https" if tls else b"http"
        try:
            async with asyncio.timeout(self.dial_timeout):
                transport, conn = await self._loop.create_connection(
                    lambda: H2Upstream(key, scheme, self._forget),
                    host,
                    port,
                    ssl=context,
                    server_hostname=(server_hostname or host) if tls else None,
                    ssl_handshake_timeout=self.dial_timeout if tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise classify_dial_error(exc, address) from None
        try:
            if tls:
                ssl_object = transport.get_extra_info("ssl_object")
                chosen = ssl_object.selected_alpn_protocol() if ssl_object else None
                if chosen != "h2":
                    raise BackendError(
                        Kind.TLS_HANDSHAKE,
                        f"http2: {address} did not negotiate h2 (ALPN: {chosen or 'none'})",
                    )
            async with asyncio.timeout(self.dial_timeout):
                await conn.ready  # the backend's SETTINGS: its stream limit is known
        except BackendError:
            conn.abort()
            raise
        except TimeoutError:
            conn.abort()
            raise BackendError(Kind.DIAL, f"http2: no SETTINGS from {address}") from None
        self.connects += 1
        conn.single_use = self.single_use
        self._set_keepalive(conn.transport)
        self._conns.setdefault(key, []).append(conn)
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self.idle_timeout, self._sweep)
        return conn

    def _forget(self, conn: H2Upstream) -> None:
        conns = self._conns.get(conn.key)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._conns[conn.key]

    def _sweep(self) -> None:
        """Close connections without streams for longer than idle_timeout."""
        self._sweeper = None
        deadline = self._loop.time() - self.idle_timeout
        for conns in list(self._conns.values()):
            for conn in list(conns):
                if not conn.active and conn.idle_since <= deadline:
                    conn.close()
                    self._forget(conn)
        if self._conns:
            self._sweeper = self._loop.call_later(max(self.idle_timeout / 2, 0.05), self._sweep)

    def close_all(self) -> None:
        for conns in list(self._conns.values()):
            for conn in list(conns):
                conn.close()
        self._conns.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


__all__ = ["H2Pool"]

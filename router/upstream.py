"""Connections to backends: asyncio protocols with llhttp (httptools) parsing, pooled per endpoint.

One exchange at a time per connection; no pipelining. Every failure is converted here, at the
boundary, into a `BackendError` whose kind says what happened and when (see errors.py).

Idle connections are closed after `backends.idle_timeout`, which defaults below common backend
keep-alive timeouts, so the router usually closes first and rarely reuses a socket the backend is
about to close. When it does lose that race, the failure is `IDEMPOTENT_EOF`/`RESET` on a reused
connection before any response byte, which the proxy retries on a fresh connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, Final, cast

import httptools

from router.errors import BackendError, Kind

HIGH_WATER: Final = 1 << 20  # pause reading the backend when this much body is buffered
LOW_WATER: Final = 1 << 18
_NO_BODY_STATUS: Final = frozenset({204, 304})


class UpstreamConnection(asyncio.Protocol):
    """A keep-alive connection to one endpoint, parsing responses with llhttp."""

    def __init__(self, key: str, on_lost: Callable[[UpstreamConnection], None]) -> None:
        self.key = key
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.uses = 0
        self.idle_since = 0.0
        self._loop = asyncio.get_running_loop()
        # The current exchange.
        self.active = False
        self.is_head = False
        self.got_bytes = False
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self.upgraded = False
        self.headers_done = False
        self.complete = False
        self.until_close = False
        self._head_waiter: asyncio.Future[None] | None = None
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._error: BackendError | None = None
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.tail = b""

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("active" if self.active else "idle")
        return f"UpstreamConnection({self.key}, {state}, uses={self.uses})"

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:
            # Bytes on an idle connection (a late 408, garbage): it cannot be reused.
            self.close()
            return
        if self.upgraded:
            self._push_body(data)
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            offset = upgrade.args[0] if upgrade.args else len(data)
            self.tail = data[offset:]
            self.upgraded = True
            if self.tail:
                self._push_body(self.tail)
                self.tail = b""
        except httptools.HttpParserError as exc:
            self._fail(BackendError(Kind.BAD_RESPONSE, f"malformed HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active:
            if self.headers_done and (self.until_close or self.upgraded) and exc is None:
                self._finish_message()
            elif not self.complete:
                self._fail(self._lost_error(exc))
        self._wake_drain(exc)
        self._on_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain(None)

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.headers = []

    def on_status(self, status: bytes) -> None:
        self.reason = status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim response (100 Continue, 103): the real one follows
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.headers_done = True
        if self.is_head or status in _NO_BODY_STATUS:
            # llhttp cannot be told a response answers HEAD; the message ends with its head.
            self._parser = httptools.HttpResponseParser(self)
            self._finish_message()
        elif status != 101:
            self.until_close = not any(
                name.lower() in (b"content-length", b"transfer-encoding")
                for name, _ in self.headers
            )
        self._wake_head()

    def on_body(self, body: bytes) -> None:
        self._push_body(body)

    def on_message_complete(self) -> None:
        # After a 101 the connection carries the tunnel; it ends when either side closes.
        if self.headers_done and not self.complete and self.status != 101:
            self._finish_message()

    # -- exchange API (used by the proxy) ----------------------------------------------------------

    def begin(self, head: bytes, is_head: bool) -> None:
        """Start an exchange by writing the request head."""
        self.active = True
        self.is_head = is_head
        self.got_bytes = False
        self.status = 0
        self.headers = []
        self.headers_done = False
        self.complete = False
        self.until_close = False
        self.upgraded = False
        self.keep_alive = False
        self._body.clear()
        self._buffered = 0
        self._error = None
        self.uses += 1
        self.write(head)

    def write(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            raise self._lost_error(None)
        self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise self._error or self._lost_error(None)
        if not self._write_paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiter = waiter
        await waiter

    async def response_head(self) -> None:
        """Wait until the response status and headers have arrived."""
        if self._error is not None:
            raise self._error
        if not self.headers_done:
            waiter = self._loop.create_future()
            self._head_waiter = waiter
            try:
                await waiter
            finally:
                self._head_waiter = None
        if self._error is not None and not self.headers_done:
            raise self._error

    async def read(self) -> bytes:
        """The next body chunk; b"" once the body is complete."""
        while True:
            if self._body:
                chunk = self._body.popleft()
                self._buffered -= len(chunk)
                if self._reading_paused and self._buffered <= LOW_WATER and self.transport:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return chunk
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            waiter = self._loop.create_future()
            self._body_waiter = waiter
            try:
                await waiter
            finally:
                self._body_waiter = None

    def take_body(self) -> bytes:
        """The whole body, once `complete` (small responses take this fast path)."""
        body = b"".join(self._body) if len(self._body) != 1 else self._body[0]
        self._body.clear()
        self._buffered = 0
        return body

    def fail(self, error: BackendError) -> None:
        """Abort the exchange from outside (endpoint timeout, client gone)."""
        self._fail(error)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()

    @property
    def is_reusable(self) -> bool:
        return (
            not self.closed
            and self.complete
            and self.keep_alive
            and not self.upgraded
            and self._error is None
        )

    # -- internals ---------------------------------------------------------------------------

    def _push_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake_body()

    def _finish_message(self) -> None:
        self.complete = True
        self._wake_body()

    def _fail(self, error: BackendError) -> None:
        if self._error is None and not self.complete:
            self._error = error
        self._wake_head()
        self._wake_body()

    def _lost_error(self, exc: Exception | None) -> BackendError:
        reused = self.uses > 1
        if self.headers_done:
            return BackendError(Kind.BODY_FAILED, describe_lost(exc, "response body"), reused)
        if self.got_bytes:
            return BackendError(Kind.BAD_RESPONSE, describe_lost(exc, "response head"), reused)
        if isinstance(exc, ssl.SSLError):
            return classify_tls_error(exc)
        if isinstance(exc, ConnectionResetError):
            return BackendError(Kind.RESET, "read: connection reset by peer", reused)
        return BackendError(Kind.CLOSED, "EOF", reused)

    def _wake_head(self) -> None:
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_body(self) -> None:
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_drain(self, exc: Exception | None) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        if waiter is not None and not waiter.done():
            if exc is not None or self.closed:
                waiter.set_exception(self._error or self._lost_error(exc))
            else:
                waiter.set_result(None)


def describe_lost(exc: Exception | None, what: str) -> str:
    if exc is None:
        return f"unexpected EOF reading {what}"
    if isinstance(exc, ConnectionResetError):
        return f"read: connection reset by peer ({what})"
    return f"{exc} ({what})"


def classify_tls_error(exc: ssl.SSLError) -> BackendError:
    """Map OpenSSL's verdicts onto Gorouter's TLS classifiers."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or str(exc)
        if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return BackendError(
                Kind.TLS_HOSTNAME, f"x509: certificate is not valid for the SAN: {message}"
            )
        return BackendError(Kind.TLS_UNTRUSTED, f"x509: {message}")
    reason = (exc.reason or "").upper()
    if reason in {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNEXPECTED_RECORD",
        "HTTP_REQUEST",
        "UNKNOWN_PROTOCOL",
    }:
        return BackendError(
            Kind.TLS_NOT_TLS, "tls: first record does not look like a TLS handshake"
        )
    if "CERTIFICATE_REQUIRED" in reason or "BAD_CERTIFICATE" in reason:
        return BackendError(Kind.TLS_CLIENT_CERT, "remote error: tls: bad certificate")
    return BackendError(
        Kind.TLS_HANDSHAKE, f"remote error: tls: handshake failure ({exc.reason or exc})"
    )


def classify_dial_error(exc: BaseException, address: str) -> BackendError:
    if isinstance(exc, ssl.SSLError):
        return classify_tls_error(exc)
    if isinstance(exc, TimeoutError):
        return BackendError(Kind.DIAL, f"dial tcp {address}: i/o timeout")
    if isinstance(exc, ConnectionRefusedError):
        return BackendError(Kind.DIAL, f"dial tcp {address}: connect: connection refused")
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        # Reset during a TLS handshake: the far end is not a TLS server (or refused us).
        return BackendError(
            Kind.TLS_HANDSHAKE, f"dial tcp {address}: connection reset during handshake"
        )
    if isinstance(exc, OSError):
        text = errno.errorcode.get(exc.errno or 0, "") if exc.errno else ""
        return BackendError(
            Kind.DIAL, f"dial tcp {address}: connect: {exc.strerror or text or exc}"
        )
    return BackendError(Kind.DIAL, f"dial tcp {address}: {exc}")


class TlsSettings:
    """How to reach TLS endpoints: one context, the SAN as server_hostname."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.context = context


class UpstreamPool:
    """Idle keep-alive connections per endpoint, in this worker."""

    def __init__(
        self,
        dial_timeout: float,
        idle_timeout: float,
        max_idle_per_endpoint: int,
        keepalive_interval: float,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        self.dial_timeout = dial_timeout
        self.idle_timeout = idle_timeout
        self.max_idle_per_endpoint = max_idle_per_endpoint
        self.keepalive_interval = keepalive_interval
        self.tls_context = tls_context
        self._idle: dict[str, deque[UpstreamConnection]] = {}
        self._loop = asyncio.get_running_loop()
        self.connects = 0
        self.reuses = 0
        self._sweeper: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        idle = sum(len(q) for q in self._idle.values())
        return f"UpstreamPool(idle={idle}, connects={self.connects}, reuses={self.reuses})"

    def take_idle(self, key: str) -> UpstreamConnection | None:
        """A pooled connection that is still fresh, or None."""
        queue = self._idle.get(key)
        if not queue:
            return None
        deadline = self._loop.time() - self.idle_timeout
        while queue:
            conn = queue.pop()  # most recently used first: the least likely to be closing
            if not conn.closed and conn.idle_since > deadline:
                self.reuses += 1
                return conn
            conn.close()
        return None

    async def dial(
        self, key: str, host: str, port: int, tls: bool, server_hostname: str
    ) -> UpstreamConnection:
        address = f"{host}:{port}"
        context = self.tls_context if tls else None
        if tls and context is None:
            raise BackendError(Kind.TLS_HANDSHAKE, "no TLS context for backends")
        try:
            async with asyncio.timeout(self.dial_timeout):
                _, conn = await self._loop.create_connection(
                    lambda: UpstreamConnection(key, self._forget),
                    host,
                    port,
                    ssl=context,
                    server_hostname=(server_hostname or host) if tls else None,
                    ssl_handshake_timeout=self.dial_timeout if tls else None,
                )
        except BackendError:
            raise
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise classify_dial_error(exc, address) from None
        self.connects += 1
        self._set_keepalive(conn)
        return conn

    def _set_keepalive(self, conn: UpstreamConnection) -> None:
        transport = conn.transport
        sock: socket.socket | None = transport.get_extra_info("socket") if transport else None
        if sock is None:
            return
        interval = max(1, int(self.keepalive_interval))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def release(self, conn: UpstreamConnection) -> None:
        """Return a connection after an exchange: pooled if it can serve another one."""
        conn.active = False
        if not conn.is_reusable:
            conn.close()
            return
        queue = self._idle.get(conn.key)
        if queue is None:
            queue = self._idle[conn.key] = deque()
        if len(queue) >= self.max_idle_per_endpoint:
            conn.close()
            return
        conn.idle_since = self._loop.time()
        queue.append(conn)
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self.idle_timeout, self._sweep)

    def _forget(self, conn: UpstreamConnection) -> None:
        queue = self._idle.get(conn.key)
        if queue is not None and not conn.active:
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
                queue.popleft().close()
            if not queue:
                del self._idle[key]
            remaining += len(queue)
        if remaining:
            self._sweeper = self._loop.call_later(max(self.idle_timeout / 2, 0.05), self._sweep)

    def close_all(self) -> None:
        for queue in self._idle.values():
            for conn in queue:
                conn.close()
        self._idle.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def drop_endpoint(self, key: str) -> None:
        for conn in self._idle.pop(key, ()):
            conn.close()


def info(conn: UpstreamConnection) -> dict[str, Any]:
    return {"key": conn.key, "uses": conn.uses, "closed": conn.closed}

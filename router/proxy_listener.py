"""Intake for `enable_proxy`: a PROXY header, when a connection starts with one, is read off the
raw socket before HTTP (or the TLS handshake) begins.

As in Gorouter (whose listener is armon/go-proxyproto's), the header is optional: the first
bytes are peeked, and a connection that opens with anything else (a plain request, a TLS
ClientHello) or says nothing within `proxy_protocol_timeout` is served as it came, with its own
peer address. `proxy_protocol_required` (routerd's key) makes the header mandatory: such a
connection is closed without an answer. Either way a header that starts but is malformed, or is
not complete within `proxy_protocol_timeout`, closes the connection.

The header is consumed byte-exactly (v2 by its declared length, v1 by peeking for its CRLF), so
nothing after it is read: the socket is then handed to the event loop as a fresh connection,
with TLS when the listener has a context.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Final

from registry.rejection import Rejection
from router import proxy_protocol
from router.http1.connection import ClientConnection
from router.http2.alpn import AlpnChoice
from router.proxy_protocol import ProxyHeader
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.router")

# A plain connection, or a TLS one choosing its protocol after the handshake (http2/alpn.py).
HandlerFactory = Callable[[], ClientConnection | AlpnChoice]
_MAX_READS: Final = proxy_protocol.V1_MAX_LENGTH  # a byte per read at worst
_MAX_WAITS: Final = 4  # readable means data or EOF: one wait is enough
# How often to look again at a connection that has sent part of a signature only.
_PREFIX_POLL: Final = 0.005


class ProxyProtocolIntake:
    """Serves each accepted connection once its PROXY header, if any, is read (acceptor.py)."""

    def __init__(
        self,
        handler_factory: HandlerFactory,
        timeout: float,
        *,
        required: bool,
        tls: ssl.SSLContext | None = None,
        tls_handshake_timeout: float = 10.0,
    ) -> None:
        self.handler_factory = handler_factory
        self.timeout = timeout
        self.required = required
        self.tls = tls
        self.tls_handshake_timeout = tls_handshake_timeout
        self._loop = asyncio.get_running_loop()
        self._pending: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return (
            f"ProxyProtocolIntake(tls={self.tls is not None}, required={self.required}, "
            f"pending={len(self._pending)})"
        )

    def adopt(self, conn: socket.socket) -> None:
        task = self._loop.create_task(self._serve(conn))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def close(self) -> None:
        """Drop connections still sending their header; those being served go on."""
        for task in list(self._pending):
            task.cancel()

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        try:
            header = await self._header(loop, conn)
        except asyncio.CancelledError:  # the listener is closing
            conn.close()
            raise
        if isinstance(header, Rejection):
            log.info("proxy-protocol-header-rejected", error=header.reason)
            conn.close()
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        source = header.source if header is not None else None

        def handler() -> ClientConnection | AlpnChoice:
            made = self.handler_factory()
            if source is not None:
                made.peer = source
            return made

        try:
            await loop.connect_accepted_socket(
                handler,
                conn,
                ssl=self.tls,
                ssl_handshake_timeout=self.tls_handshake_timeout if self.tls else None,
            )
        except (OSError, TimeoutError, ssl.SSLError):
            conn.close()  # a failed TLS handshake: the client has been told by the alert
        except asyncio.CancelledError:
            conn.close()
            raise

    async def _header(
        self, loop: asyncio.AbstractEventLoop, conn: socket.socket
    ) -> ProxyHeader | Rejection | None:
        """The connection's header; None: it has none and is served as it came."""
        deadline = loop.time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                version = await opening(loop, conn)
        except TimeoutError:
            version = None
            if self.required:
                return Rejection("no complete PROXY header in time")
        except OSError as exc:
            if not self.required:
                return None  # closed at once (a TCP health check): HTTP sees the end
            return Rejection(f"connection lost before its PROXY header ended: {exc}")
        if version is None:
            if self.required:
                return Rejection("connection did not start with a PROXY header")
            return None
        try:
            async with asyncio.timeout_at(deadline):
                return await read_header(loop, conn, version)
        except TimeoutError:
            return Rejection("no complete PROXY header in time")
        except OSError as exc:
            return Rejection(f"connection lost before its PROXY header ended: {exc}")


async def opening(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> int | None:
    """1 or 2 when the connection opens with a PROXY v1 or v2 signature, None when it opens with
    anything else; reads nothing off the socket (the bytes are peeked)."""
    while True:
        try:
            first = conn.recv(proxy_protocol.DISCRIMINATOR_LENGTH, socket.MSG_PEEK)
        except BlockingIOError:
            await _readable(loop, conn)
            continue
        if not first:
            raise ConnectionResetError("closed before sending anything")
        version = proxy_protocol.version_of(first)
        if version != proxy_protocol.PENDING:
            return version
        # A signature's first bytes, and the rest not here yet. The socket stays readable while
        # they sit unread, so readiness cannot say when more come: look again shortly (the
        # caller's deadline bounds this; a load balancer writes its header in one segment).
        await asyncio.sleep(_PREFIX_POLL)


async def read_header(
    loop: asyncio.AbstractEventLoop, conn: socket.socket, version: int
) -> ProxyHeader | Rejection:
    """Exactly the PROXY header's bytes from a non-blocking socket, parsed; `version` is what
    `opening` saw."""
    if version == 2:
        prefix = await _recv_exact(loop, conn, proxy_protocol.V2_PREFIX_LENGTH)
        length = proxy_protocol.v2_body_length(prefix)
        if isinstance(length, Rejection):
            return length
        return proxy_protocol.parse_v2(prefix, await _recv_exact(loop, conn, length))
    line = b""
    for _ in range(_MAX_READS):
        room = proxy_protocol.V1_MAX_LENGTH - len(line)
        if room <= 0:
            break
        peeked = await _peek(loop, conn, room)
        end = peeked.find(b"\n")
        # Bytes before the line's end belong to the header: take them, and no more.
        line += await _recv_exact(loop, conn, end + 1 if end >= 0 else len(peeked))
        if end >= 0:
            return proxy_protocol.parse_v1(line)
    return Rejection("PROXY v1 header longer than 107 bytes")


async def _recv_exact(loop: asyncio.AbstractEventLoop, conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = await loop.sock_recv(conn, count - len(data))
        if not chunk:
            raise ConnectionResetError("closed before the PROXY header ended")
        data += chunk
    return data


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket, count: int) -> bytes:
    """Bytes waiting on the socket, left there; waits until there is at least one."""
    for _ in range(_MAX_WAITS):
        try:
            data = conn.recv(count, socket.MSG_PEEK)
        except BlockingIOError:
            await _readable(loop, conn)
            continue
        if not data:
            raise ConnectionResetError("closed before the PROXY header ended")
        return data
    raise ConnectionResetError("socket readable but nothing to read")


async def _readable(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(conn.fileno(), wake)
    try:
        await ready
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(conn.fileno())

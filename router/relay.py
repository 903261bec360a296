"""Relaying a backend's response to the client.

The common case — an HTTP/1.1 client, a response whose whole Content-Length body has arrived —
is written to the client's transport as one buffer: the status line and the backend's own header
lines (minus hop-by-hop ones) are copied as bytes, without decoding them into a header map and
serialising them again. aiohttp still owns the connection: the handler returns a
`WrittenResponse`, whose prepare/write_eof have nothing left to do, and aiohttp's keep-alive and
pipelining logic carry on as for any response.

Everything else (HEAD, HTTP/1.0 clients, chunked or unfinished bodies, interim and bodiless
statuses) goes through aiohttp's StreamResponse, streaming with back-pressure both ways.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import TYPE_CHECKING, Final, NamedTuple, cast

from aiohttp import web

from registry.shm.counters import Stat
from router.errors import BackendError
from router.headers import RESPONSE_DROP
from router.sticky import vcap_id_cookie
from router.tunnel import tunnel
from router.upstream import UpstreamConnection

if TYPE_CHECKING:
    from router.exchange import Exchange
    from router.proxy import Proxy

_NO_BODY_STATUS: Final = frozenset({204, 304})
# Response header names the fast path looks at; any other hop-by-hop one sends it to the slow path.
_SPECIAL: Final = re.compile(
    rb"\r\n(content-length|x-vcap-request-id|connection|keep-alive|set-cookie|transfer-encoding|"
    rb"proxy-connection|proxy-authenticate|proxy-authorization|te|trailer|upgrade|date|"
    rb"x-cf-proxy-signature)[ \t]*:([^\r]*)"
)
_RELAYABLE_CACHE: Final = 512
_PLAIN_CONNECTION: Final = frozenset({b"", b"keep-alive", b"close"})


class RelayableHead(NamedTuple):
    """A backend's head as the fast path copies it, and what the router must add to it."""

    head: bytes
    has_request_id: bool
    has_date: bool


_relayable: dict[tuple[bytes, bool], RelayableHead | None] = {}


class _DateLine:
    """`Date: <IMF-fixdate>` for responses whose backend sent none (RFC 9110 6.6.1: a proxy adds
    it), made once a second rather than per response."""

    __slots__ = ("line", "second")

    def __init__(self) -> None:
        self.second = -1
        self.line = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self.line = b"Date: %s\r\n" % formatdate(second, usegmt=True).encode()
        return self.line


_date = _DateLine()


class _Done:
    """An awaitable that is already finished (cheaper than a coroutine that returns at once)."""

    __slots__ = ()

    def __await__(self) -> Iterator[None]:
        return iter(())


_DONE: Final = _Done()


class WrittenResponse:
    """What the handler returns after writing the response itself: aiohttp only needs to know
    whether to keep the connection alive."""

    __slots__ = ("keep_alive", "status")

    def __init__(self, status: int, keep_alive: bool) -> None:
        self.status = status
        self.keep_alive = keep_alive

    def __repr__(self) -> str:
        return f"WrittenResponse({self.status}, keep_alive={self.keep_alive})"

    def prepare(self, request: web.BaseRequest) -> _Done:
        return _DONE

    def write_eof(self, data: bytes = b"") -> _Done:
        return _DONE


class ResponseHead:
    """The backend's header lines, sorted once into what the relay needs."""

    __slots__ = ("chunked", "content_length", "has_request_id", "lines", "set_cookies")

    def __init__(self, raw: list[tuple[bytes, bytes]], want_cookies: bool) -> None:
        self.lines: list[bytes] = []
        self.content_length: int | None = None
        self.chunked = False
        self.has_request_id = False
        self.set_cookies: list[str] = []
        append = self.lines.append
        named = connection_named(raw)
        for name, value in raw:
            lower = name.lower()
            if lower in named:
                continue  # hop-by-hop by the backend's own Connection header (RFC 9110 7.6.1)
            if lower in RESPONSE_DROP:
                if lower == b"content-length":
                    try:
                        self.content_length = int(value)
                    except ValueError:
                        self.content_length = None
                elif lower == b"transfer-encoding":
                    self.chunked = b"chunked" in value.lower()
                continue
            if lower == b"x-vcap-request-id":
                self.has_request_id = True
            elif lower == b"set-cookie" and want_cookies:
                self.set_cookies.append(value.decode("latin-1"))
            append(b"%s: %s\r\n" % (name, value))

    def __repr__(self) -> str:
        return f"ResponseHead(length={self.content_length}, chunked={self.chunked})"


def relay_whole(
    request: web.BaseRequest, ex: Exchange, proxy: Proxy
) -> tuple[web.StreamResponse, int] | None:
    """The fast path, without a coroutine: the whole response written at once, or None."""
    keep_alive = request.keep_alive
    whole = whole_response(ex, proxy, request.method, request.version == (1, 1), keep_alive)
    if whole is None:
        return None
    transport = request.transport
    if transport is not None:
        transport.write(whole[0])
    # aiohttp's handler contract is a StreamResponse; this one has already been written.
    return cast(web.StreamResponse, WrittenResponse(ex.status, keep_alive)), whole[1]


def whole_response(
    ex: Exchange, proxy: Proxy, method: str, http11: bool, keep_alive: bool
) -> tuple[bytes, int] | None:
    """The whole response to write to the client in one buffer, and its body's size; None when
    it has to be streamed (or its head needs more than copying)."""
    conn = ex.conn
    assert conn is not None
    status = conn.status
    if (
        not conn.complete
        or not http11
        or method == "HEAD"
        or status < 200
        or status in _NO_BODY_STATUS
    ):
        return None
    endpoint = ex.endpoint
    sticky = endpoint is not None and bool(endpoint.instance_id) and bool(proxy.sticky_names)
    if sticky and endpoint is not None and ex.sticky_requested not in ("", endpoint.instance_id):
        return None  # the client asked for another instance: re-issue __VCAP_ID__
    whole = whole_buffer(conn, ex.request_id, sticky, keep_alive)
    if whole is not None:
        ex.status = status
    return whole


async def relay(
    request: web.BaseRequest, ex: Exchange, proxy: Proxy
) -> tuple[web.StreamResponse, int]:
    """Send the backend's response to the client; returns the response and body bytes sent."""
    conn = ex.conn
    assert conn is not None
    status = conn.status
    ex.status = status
    if status == 101:
        headers = _decoded(conn.headers, upgrade=True)
        if not any(name.lower() == "x-vcap-request-id" for name, _ in headers):
            headers.append(("X-Vcap-Request-Id", ex.request_id))
        return await tunnel(request, ex, headers, _reason(conn), proxy)
    endpoint = ex.endpoint
    sticky = endpoint is not None and bool(endpoint.instance_id) and bool(proxy.sticky_names)
    head = ResponseHead(conn.headers, sticky)
    extra: list[tuple[str, str]] = []
    if not head.has_request_id:
        extra.append(("X-Vcap-Request-Id", ex.request_id))
    if sticky and endpoint is not None:
        cookie = vcap_id_cookie(
            head.set_cookies,
            proxy.sticky_names,
            endpoint.instance_id,
            ex.pool.path if ex.pool else "",
            ex.sticky_requested,
        )
        if cookie is not None:
            extra.append(("Set-Cookie", cookie))
    return await _stream(request, ex, proxy, conn, head, extra)


def relayable_head(head: bytes, sticky: bool) -> RelayableHead | None:
    """The backend's head as the client gets it on the fast path, and whether it already has an
    X-Vcap-Request-Id and a Date; None when the slow path must handle the response.

    Connection and Keep-Alive lines are dropped (the router speaks for its own connection). A
    response without Content-Length, chunked, naming extra hop-by-hop headers, carrying rarer
    hop-by-hop ones, or setting cookies while sticky sessions apply, takes the slow path.
    Results are cached by head: backends repeat the same heads (within a Date's second) often.
    """
    key = (head, sticky)
    try:
        return _relayable[key]
    except KeyError:
        pass
    result = _relayable_head(head, sticky)
    if len(_relayable) >= _RELAYABLE_CACHE:
        _relayable.clear()
    _relayable[key] = result
    return result


def _relayable_head(head: bytes, sticky: bool) -> RelayableHead | None:
    has_length = has_request_id = has_date = False
    cuts = []
    for match in _SPECIAL.finditer(head.lower()):
        name = match[1]
        if name == b"content-length":
            has_length = True
        elif name == b"x-vcap-request-id":
            has_request_id = True
        elif name == b"date":
            has_date = True
        elif name == b"connection":
            if match[2].strip() not in _PLAIN_CONNECTION:
                return None  # the backend names extra hop-by-hop headers to drop
            cuts.append(match.span())
        elif name == b"keep-alive":
            cuts.append(match.span())
        elif name != b"set-cookie" or sticky:
            return None
    if not has_length:
        return None
    if cuts:
        pieces, last = [], 0
        for start, end in cuts:
            pieces.append(head[last:start])
            last = end
        pieces.append(head[last:])
        head = b"".join(pieces)
    if not head.startswith(b"HTTP/1.1"):
        head = b"HTTP/1.1" + head[8:]
    return RelayableHead(head, has_request_id, has_date)


def whole_buffer(
    conn: UpstreamConnection, request_id: str, sticky: bool, keep_alive: bool
) -> tuple[bytes, int] | None:
    """A complete Content-Length response as one buffer, and its body's size; None when it needs
    the slow path."""
    relayable = relayable_head(conn.head, sticky)
    if relayable is None:
        return None
    body = conn.take_body()
    parts = [relayable.head]
    if not relayable.has_request_id:
        parts.append(b"X-Vcap-Request-Id: %s\r\n" % request_id.encode())
    if not relayable.has_date:
        parts.append(_date.now())
    parts.append(b"\r\n" if keep_alive else b"Connection: close\r\n\r\n")
    parts.append(body)
    return b"".join(parts), len(body)


async def _stream(
    request: web.BaseRequest,
    ex: Exchange,
    proxy: Proxy,
    conn: UpstreamConnection,
    head: ResponseHead,
    extra: list[tuple[str, str]],
) -> tuple[web.StreamResponse, int]:
    headers = [(line.split(b":", 1)[0].decode("latin-1"), _value(line)) for line in head.lines]
    headers.extend(extra)
    stream = web.StreamResponse(status=conn.status, reason=_reason(conn), headers=headers)
    if request.method == "HEAD" or conn.status in _NO_BODY_STATUS:
        if head.content_length is not None:
            stream.headers["Content-Length"] = str(head.content_length)
        await stream.prepare(request)
        await stream.write_eof()
        return stream, 0
    if head.content_length is not None and not head.chunked:
        stream.content_length = head.content_length
    elif request.version >= (1, 1):
        stream.enable_chunked_encoding()
    else:
        stream.force_close()  # HTTP/1.0 client: the end of the body is the end of the stream
    await stream.prepare(request)
    sent = 0
    timeout = proxy.endpoint_timeout
    try:
        while True:
            async with asyncio.timeout(timeout):
                chunk = await conn.read()
            if not chunk:
                break
            await stream.write(chunk)
            sent += len(chunk)
    except (BackendError, TimeoutError) as exc:
        # Too late for an error page: cut the client connection so it sees the truncation.
        detail = exc.detail if isinstance(exc, BackendError) else "context deadline exceeded"
        ex.router_error = f"endpoint_failure ({detail})"
        proxy.row.stats[Stat.error_reset] += 1
        conn.close()
        if request.transport is not None:
            request.transport.abort()
        return stream, sent
    await stream.write_eof()
    return stream, sent


def connection_named(raw: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names a `Connection` header lists (lower-cased), beyond keep-alive and close."""
    named: set[bytes] = set()
    for name, value in raw:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return frozenset(named - _PLAIN_CONNECTION)


def _value(line: bytes) -> str:
    return line.split(b":", 1)[1].strip().decode("latin-1")


def _reason(conn: UpstreamConnection) -> str | None:
    return conn.reason.decode("latin-1", "replace") or None


def _decoded(raw: list[tuple[bytes, bytes]], upgrade: bool) -> list[tuple[str, str]]:
    result = []
    for name, value in raw:
        lower = name.lower()
        if lower in RESPONSE_DROP and not (upgrade and lower in (b"connection", b"upgrade")):
            continue
        result.append((name.decode("latin-1"), value.decode("latin-1")))
    return result

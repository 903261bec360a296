"""A backend's response as the client gets it: the fast path's whole buffer, and the header
lines of a streamed response.

The common case — an HTTP/1.1 client, a response whose whole Content-Length body has arrived
(a small one is waited for: `holds_for_body`) — is written to the client as one buffer: the
status line and the backend's own header lines (minus hop-by-hop ones) are copied as bytes,
without decoding them into a header map and serialising them again. Everything else (HEAD,
HTTP/1.0 clients, chunked or larger unfinished bodies, bodiless statuses, a 101) is streamed
by the connection (http1/exchange.py), from the lines `ResponseHead` sorts out here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final, NamedTuple

from router.exchange import BackendExchange
from router.headers import RESPONSE_DROP
from router.http1.writer import date_line
from router.rewrite import ResponseRewrite
from router.sticky import vcap_id_cookie

if TYPE_CHECKING:
    from router.exchange import Exchange
    from router.proxy import Proxy

NO_BODY_STATUS: Final = frozenset({204, 304})
# The largest body a response head waits for, to be written whole with it (holds_for_body).
HOLD_LIMIT: Final = 64 * 1024
# Response header names the fast path looks at; any other hop-by-hop one sends it to the slow path.
_SPECIAL: Final = re.compile(
    rb"\r\n(content-length|x-vcap-request-id|connection|keep-alive|set-cookie|transfer-encoding|"
    rb"proxy-connection|proxy-authenticate|proxy-authorization|te|trailer|upgrade|date|"
    rb"x-cf-proxy-signature|www-authenticate)[ \t]*:([^\r]*)"
)
# Response headers that matter only when sticky sessions apply (the sticky cookie reads them).
_STICKY_INPUTS: Final = (b"set-cookie", b"www-authenticate")
_RELAYABLE_CACHE: Final = 512
_PLAIN_CONNECTION: Final = frozenset({b"", b"keep-alive", b"close"})


class RelayableHead(NamedTuple):
    """A backend's head as the fast path copies it, and what the router must add to it."""

    head: bytes
    has_request_id: bool
    has_date: bool
    content_length: int  # -1: not a plain number


class WholeResponse:
    """A response written to the client in one buffer (a class: see exchange.Sending)."""

    def __init__(self, data: bytes, body_size: int) -> None:
        self.data = data
        self.body_size = body_size  # what the access log counts as sent

    def __repr__(self) -> str:
        return f"WholeResponse({len(self.data)} bytes, body {self.body_size})"


_relayable: dict[tuple[bytes, bool, ResponseRewrite | None], RelayableHead | None] = {}


class ResponseHead:
    """The backend's header lines, sorted once into what a streamed relay needs."""

    def __init__(self, raw: list[tuple[bytes, bytes]], want_cookies: bool) -> None:
        self.lines: list[bytes] = []
        self.content_length: int | None = None
        self.chunked = False
        self.has_request_id = False
        self.has_date = False
        self.set_cookies: list[str] = []
        self.www_authenticate: str | None = None  # the first, when sticky sessions apply
        append = self.lines.append
        named = connection_named(raw)
        for name, value in raw:
            lower = name.lower()
            if lower in named:
                continue  # hop-by-hop by the backend's own Connection header (RFC 9110 7.6.1)
            if lower in RESPONSE_DROP and lower != b"trailer":
                if lower == b"content-length":
                    try:
                        self.content_length = int(value)
                    except ValueError:
                        self.content_length = None
                elif lower == b"transfer-encoding":
                    self.chunked = b"chunked" in value.lower()
                continue
            # `Trailer` announces the trailer fields, which the relay passes on (as Go's
            # ReverseProxy does) when it relays the body chunked.
            if lower == b"x-vcap-request-id":
                self.has_request_id = True
            elif lower == b"date":
                self.has_date = True
            elif lower == b"set-cookie" and want_cookies:
                self.set_cookies.append(value.decode("latin-1"))
            elif lower == b"www-authenticate" and want_cookies and self.www_authenticate is None:
                self.www_authenticate = value.decode("latin-1")
            append(b"%s: %s\r\n" % (name, value))

    def __repr__(self) -> str:
        return f"ResponseHead(length={self.content_length}, chunked={self.chunked})"


def is_sticky(ex: Exchange, proxy: Proxy) -> bool:
    """Sticky sessions apply to this response: its endpoint has an instance id and the router
    has session cookie names (or Negotiate answers) to pin it by."""
    endpoint = ex.endpoint
    return endpoint is not None and bool(endpoint.instance_id) and proxy.is_sticky_on


def response_extras(ex: Exchange, proxy: Proxy, head: ResponseHead) -> list[bytes]:
    """The header lines the router adds to a streamed response: X-Vcap-Request-Id when the
    backend sent none, a `__VCAP_ID__` cookie when sticky sessions apply, and the `trace_key`
    debug headers when asked for."""
    extra: list[bytes] = []
    if not head.has_request_id:
        extra.append(b"X-Vcap-Request-Id: %s\r\n" % ex.request_id.encode())
    endpoint = ex.endpoint
    if endpoint is not None and is_sticky(ex, proxy):
        cookie = vcap_id_cookie(
            head.set_cookies,
            proxy.sticky_rules,
            endpoint.instance_id,
            ex.pool.path if ex.pool else "",
            ex.sticky_requested,
            head.www_authenticate or "",
        )
        if cookie is not None:
            extra.append(b"Set-Cookie: %s\r\n" % cookie.encode("latin-1"))
    debug = trace_key_lines(ex, proxy)
    if debug:
        extra.append(debug)
    return extra


def relayed_lines(ex: Exchange, proxy: Proxy, head: ResponseHead) -> tuple[list[bytes], bool]:
    """A streamed response's header lines as the client gets them, whatever its protocol: the
    backend's, the router's extras, then `http_rewrite`; and whether a Date is among them."""
    lines = head.lines + response_extras(ex, proxy, head)
    has_date = head.has_date
    rewrite = proxy.rewrite
    if rewrite is not None:
        lines = rewrite.lines(lines)
        has_date = has_date and b"date" not in rewrite.remove
    return lines, has_date


def trace_key_lines(ex: Exchange, proxy: Proxy) -> bytes:
    """Gorouter's debug headers for a request whose X-Vcap-Trace is the `trace_key`: this
    router's IP and the instance that answered; b"" for any other request."""
    facts = ex.facts
    endpoint = ex.endpoint
    if proxy.trace_key is None or facts is None or facts.vcap_trace != proxy.trace_key:
        return b""
    if endpoint is None:
        return b""
    address = endpoint.address.encode("latin-1", "replace")
    return b"X-Vcap-Router: %s\r\nX-Vcap-Backend: %s\r\nX-Cf-RouteEndpoint: %s\r\n" % (
        proxy.router_ip,
        address,
        address,
    )


def upgrade_lines(ex: Exchange, proxy: Proxy, raw: list[tuple[bytes, bytes]]) -> bytes:
    """A 101's header lines for the client: hop-by-hop ones dropped but for Connection and
    Upgrade, which the switch needs; the request id added unless the backend sent one;
    http_rewrite applied."""
    lines = []
    has_request_id = False
    for name, value in raw:
        lower = name.lower()
        if lower in RESPONSE_DROP and lower not in (b"connection", b"upgrade"):
            continue
        has_request_id = has_request_id or lower == b"x-vcap-request-id"
        lines.append(b"%s: %s\r\n" % (name, value))
    if not has_request_id:
        lines.append(b"X-Vcap-Request-Id: %s\r\n" % ex.request_id.encode())
    if proxy.rewrite is not None:
        lines = proxy.rewrite.lines(lines)
    return b"".join(lines)


def whole_response(
    ex: Exchange, proxy: Proxy, method: str, http11: bool, keep_alive: bool
) -> WholeResponse | None:
    """The whole response to write to the client in one buffer, and its body's size; None when
    it has to be streamed (or its head needs more than copying)."""
    conn = ex.conn
    assert conn is not None
    status = conn.status
    if not conn.complete or not _has_whole_body(status, method, http11):
        return None
    endpoint = ex.endpoint
    sticky = is_sticky(ex, proxy)
    if sticky and endpoint is not None and ex.sticky_requested not in ("", endpoint.instance_id):
        return None  # the client asked for another instance: re-issue __VCAP_ID__
    debug = trace_key_lines(ex, proxy) if proxy.trace_key is not None else b""
    whole = whole_buffer(conn, ex.request_id, sticky, keep_alive, proxy.rewrite, debug)
    if whole is not None:
        ex.status = status
    return whole


def _has_whole_body(status: int, method: str, http11: bool) -> bool:
    """A final response with a body, to an HTTP/1.1 client: one the fast path can copy whole."""
    return http11 and method != "HEAD" and status >= 200 and status not in NO_BODY_STATUS


def holds_for_body(ex: Exchange, proxy: Proxy, method: str, http11: bool) -> bool:
    """Whether a response whose head is here, and whose body is still on its way, is one to hold
    until complete and then write whole: a Content-Length body of at most HOLD_LIMIT bytes.

    Many backends write a head and its body separately (nginx serving a file: writev, then
    sendfile), and a worker that is not busy reads the head alone. Streamed, that response
    costs a task, a loop turn and a second write to the client; held, one write."""
    conn = ex.conn
    assert conn is not None
    if not _has_whole_body(conn.status, method, http11):
        return False
    relayable = relayable_head(conn.head, is_sticky(ex, proxy), proxy.rewrite)
    return relayable is not None and 0 < relayable.content_length <= HOLD_LIMIT


def relayable_head(
    head: bytes, sticky: bool, rewrite: ResponseRewrite | None = None
) -> RelayableHead | None:
    """The backend's head as the client gets it on the fast path, and whether it already has an
    X-Vcap-Request-Id and a Date; None when the slow path must handle the response.

    Connection and Keep-Alive lines are dropped (the router speaks for its own connection). A
    response without Content-Length, chunked, naming extra hop-by-hop headers, carrying rarer
    hop-by-hop ones, or setting cookies or a WWW-Authenticate challenge while sticky sessions
    apply, takes the slow path.
    Results are cached by head: backends repeat the same heads (within a Date's second) often.
    `rewrite` (http_rewrite) is applied to the lines, so it costs nothing once cached.
    """
    key = (head, sticky, rewrite)
    try:
        return _relayable[key]
    except KeyError:
        pass
    result = _relayable_head(head, sticky)
    if result is not None and rewrite is not None:
        result = _rewritten(result, rewrite)
    if len(_relayable) >= _RELAYABLE_CACHE:
        _relayable.clear()
    _relayable[key] = result
    return result


def _relayable_head(head: bytes, sticky: bool) -> RelayableHead | None:
    has_length = has_request_id = has_date = False
    length = -1
    cuts = []
    for match in _SPECIAL.finditer(head.lower()):
        name = match[1]
        if name == b"content-length":
            has_length = True
            value = match[2].strip()
            length = int(value) if value.isdigit() else -1
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
        elif name not in _STICKY_INPUTS or sticky:
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
    return RelayableHead(head, has_request_id, has_date, length)


def _rewritten(relayable: RelayableHead, rewrite: ResponseRewrite) -> RelayableHead:
    """http_rewrite applied to a fast-path head. A removed X-Vcap-Request-Id is not added back
    (Gorouter rewrites after setting it); a removed Date is (Go's server adds it after)."""
    remove = rewrite.remove
    return RelayableHead(
        rewrite.head(relayable.head),
        relayable.has_request_id or b"x-vcap-request-id" in remove,
        relayable.has_date and b"date" not in remove,
        relayable.content_length,
    )


def whole_buffer(
    conn: BackendExchange,
    request_id: str,
    sticky: bool,
    keep_alive: bool,
    rewrite: ResponseRewrite | None = None,
    debug: bytes = b"",
) -> WholeResponse | None:
    """A complete Content-Length response as one buffer; None when it needs the slow path.
    `debug`: the trace_key header lines, if any."""
    relayable = relayable_head(conn.head, sticky, rewrite)
    if relayable is None:
        return None
    body = conn.take_body()
    parts = [relayable.head]
    if not relayable.has_request_id:
        parts.append(b"X-Vcap-Request-Id: %s\r\n" % request_id.encode())
    if not relayable.has_date:
        parts.append(date_line.now())
    if debug:
        parts.append(debug)
    parts.append(b"\r\n" if keep_alive else b"Connection: close\r\n\r\n")
    parts.append(body)
    return WholeResponse(b"".join(parts), len(body))


def connection_named(raw: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names a `Connection` header lists (lower-cased), beyond keep-alive and close."""
    named: set[bytes] = set()
    for name, value in raw:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return frozenset(named - _PLAIN_CONNECTION)

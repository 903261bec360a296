"""One request as the proxy sees it: plain values in (`ProxyRequest`), what routing decided
(`Plan`), its state (`Exchange`), and what the proxy drives for one attempt on a backend,
whatever the backend speaks (`BackendExchange`: an HTTP/1.1 keep-alive connection, upstream.py,
and an HTTP/2 stream, upstream_h2_stream.py, both implement it, so that routing, retries,
settlement, the relay and the access log are written once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from registry.records import EndpointRecord, PoolRecord
from router.errors import BackendError
from router.forwarded import Forwarding
from router.headers import RawHeaders, RequestFacts

if TYPE_CHECKING:
    from router.answers import Answer


class Sending:
    """What an attempt says of its request besides the head it writes.

    This and `Plan` are classes, not NamedTuples: compiled, a class is built natively, where a
    NamedTuple's constructor runs as interpreted Python (each is built once per request)."""

    def __init__(
        self,
        is_head: bool,
        closing: bool,
        client_headers: RawHeaders,
        on_interim: Callable[[int, bytes], None] | None,
    ) -> None:
        self.is_head = is_head  # a HEAD request: its response has no body
        self.closing = closing  # `Connection: close`: an HTTP/1 connection is not kept
        # The client's own headers, hop-by-hop ones too (HTTP/2 reads TE there).
        self.client_headers = client_headers
        self.on_interim = on_interim  # where the backend's 1xx heads go

    def __repr__(self) -> str:
        return f"Sending(is_head={self.is_head}, closing={self.closing})"


class BackendExchange(Protocol):
    """One request/response on a backend connection.

    MUST: `begin` writes the request head (HTTP/1.1 bytes, any buffered body after the blank
    line) or raise a `BackendError`; `send_body` sends a streamed body (HTTP/1 until the
    response head arrives; HTTP/2 beside the response); `done` drops what the exchange's
    callbacks refer back to once it is settled; `head_waiter`/`check_head` report the
    response head or the failure before it to a task, `call_at_head` to a callback (False when
    either is here already); `read` yields body chunks and b"" at the end,
    raising a `BackendError` when the body fails; `fail` ends the exchange from outside
    (timeout, client gone) without raising. The response head is `head` (an HTTP/1.1 status
    line and header lines), `status`, `headers`; a chunked or HTTP/2 body's trailer fields are
    in `trailers` once `complete`.
    MUST NOT: block, or buffer more of the response body than its flow control allows.
    """

    key: str
    closed: bool
    deadline: float  # time.monotonic() by which the response head is due; 0: none
    status: int
    head: bytes
    headers_done: bool
    complete: bool
    trailers: list[tuple[bytes, bytes]]

    @property
    def transport(self) -> asyncio.Transport | None: ...

    @property
    def reason(self) -> bytes: ...

    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...

    @property
    def reads_have_deadline(self) -> bool:
        """Each body read is bounded by endpoint_timeout (HTTP/1); HTTP/2 streams (gRPC
        streaming, long deadlines) are not cut short between messages."""

    def begin(self, head: bytes, sending: Sending) -> None: ...
    async def send_body(self, req: ProxyRequest) -> None: ...
    def done(self) -> None: ...
    def head_waiter(self) -> asyncio.Future[None] | None: ...
    def call_at_head(self, callback: Callable[[], object]) -> bool: ...
    def check_head(self) -> None: ...
    async def read(self) -> bytes: ...
    def take_body(self) -> bytes: ...
    def time_out(self) -> None: ...
    def fail(self, error: BackendError) -> None: ...
    def close(self) -> None: ...


class BodySource(Protocol):
    """The client's request body, read once, in order."""

    consumed: bool
    bytes_read: int

    async def read(self) -> bytes:
        """The next chunk; b"" at the end."""


class ProxyRequest:
    def __init__(
        self,
        *,
        method: str,
        target: str,
        host_header: str,
        version: str,
        raw_headers: RawHeaders,
        client_ip: str,
        client_port: int,
        local_ip: str,
        received_at: float,
        body: BodySource | None = None,
        buffered_body: bytes | None = None,
        content_length: int | None = None,
        chunked: bool = False,
        upgrade: bool = False,
        expect_continue: bool = False,
        forwarding: Forwarding | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.host_header = host_header
        self.version = version
        self.raw_headers = raw_headers
        self.client_ip = client_ip
        self.client_port = client_port
        self.local_ip = local_ip
        self.received_at = received_at
        self.body = body
        self.buffered_body = buffered_body
        self.content_length = content_length
        self.chunked = chunked
        self.upgrade = upgrade
        self.expect_continue = expect_continue
        # The connection's X-Forwarded-Proto / -Client-Cert rules; None: plain HTTP's.
        self.forwarding = forwarding
        # The front end's way to send "100 Continue" just before the body is read.
        self.send_continue: Callable[[], object] | None = None

    def __repr__(self) -> str:
        return f"ProxyRequest({self.method} {self.host_header}{self.target})"

    @property
    def is_replayable(self) -> bool:
        return self.body is None or not self.body.consumed


class Plan:
    """What routing decided for a request the router does not answer itself."""

    def __init__(self, common: list[bytes], pool: PoolRecord, via_route_service: bool) -> None:
        self.common = common  # the header lines every attempt sends
        self.pool = pool
        self.via_route_service = via_route_service  # to the pool's route service first

    def __repr__(self) -> str:
        return f"Plan({self.pool!r}, via_route_service={self.via_route_service})"


class Exchange:
    """One request's state from lookup to the last response byte, and what the access log
    line will say about it (built from here, only when an access log is written)."""

    def __init__(self, request: ProxyRequest, t0: float) -> None:
        self.request = request
        self.t0 = t0
        self.conn: BackendExchange | None = None
        self.endpoint: EndpointRecord | None = None
        self.pool: PoolRecord | None = None
        self.answer: Answer | None = None
        self.facts: RequestFacts | None = None
        self.request_id = ""
        self.backend_started = 0.0
        self.sticky_requested = ""
        # Gorouter's Negotiate pinning: only the sticky instance may serve (attempts.py).
        self.must_be_sticky = False
        self.upstream_target = request.target
        self.upstream_host = request.host_header
        self.status = 0
        self.router_error = ""
        self.backend = ""
        self.failed_attempts = 0
        self.sent = 0  # response body bytes written to the client
        # How attempt 1 failed, when it began from a callback (attempts.first_attempt).
        self.first_error: BackendError | None = None
        # Where the backend's 1xx interim heads go (status, raw head); None: dropped. Set by
        # the front end, handed to each attempt's connection.
        self.on_interim: Callable[[int, bytes], None] | None = None

    def __repr__(self) -> str:
        target = self.endpoint.address if self.endpoint else "router"
        return f"Exchange({self.request!r} -> {target}, status={self.status})"

    @property
    def is_answered(self) -> bool:
        """The router made the response itself (no backend response to relay)."""
        return self.answer is not None

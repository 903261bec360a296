"""One request as the proxy sees it: plain values in (`ProxyRequest`), what routing decided
(`Plan`), its state (`Exchange`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from registry.records import EndpointRecord, PoolRecord
from router.backend_exchange import BackendExchange
from router.errors import BackendError
from router.forwarded import Forwarding
from router.headers import RawHeaders, RequestFacts

if TYPE_CHECKING:
    from router.answers import Answer


class BodySource(Protocol):
    """The client's request body, read once, in order."""

    consumed: bool
    bytes_read: int

    async def read(self) -> bytes:
        """The next chunk; b"" at the end."""


class ProxyRequest:
    __slots__ = (
        "body",
        "buffered_body",
        "chunked",
        "client_ip",
        "client_port",
        "content_length",
        "expect_continue",
        "forwarding",
        "host_header",
        "local_ip",
        "method",
        "raw_headers",
        "received_at",
        "send_continue",
        "target",
        "upgrade",
        "version",
    )

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


class Plan(NamedTuple):
    """What routing decided for a request the router does not answer itself."""

    common: list[bytes]  # the header lines every attempt sends
    pool: PoolRecord
    via_route_service: bool  # the request goes to the pool's route service first


class Exchange:
    """One request's state from lookup to the last response byte, and what the access log
    line will say about it (built from here, only when an access log is written)."""

    __slots__ = (
        "answer",
        "backend",
        "backend_started",
        "conn",
        "endpoint",
        "facts",
        "failed_attempts",
        "first_error",
        "must_be_sticky",
        "on_interim",
        "pool",
        "request",
        "request_id",
        "router_error",
        "sent",
        "status",
        "sticky_requested",
        "t0",
        "upstream_host",
        "upstream_target",
    )

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

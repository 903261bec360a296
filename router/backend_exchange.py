"""What the proxy core drives for one attempt, whatever the backend speaks.

An HTTP/1.1 keep-alive connection (upstream.py `UpstreamConnection`) and an HTTP/2 stream
(upstream_h2_stream.py `H2Stream`) both implement it, so routing, retries, settlement, the
relay and the access log are written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from router.errors import BackendError

if TYPE_CHECKING:
    from router.exchange import ProxyRequest


class Sending(NamedTuple):
    """What an attempt says of its request besides the head it writes."""

    is_head: bool  # a HEAD request: its response has no body
    closing: bool  # the request says `Connection: close`: an HTTP/1 connection is not kept
    te_trailers: bool  # the client's TE lists trailers: HTTP/2 passes it on
    on_interim: Callable[[int, bytes], None] | None  # where the backend's 1xx heads go


class BackendExchange(Protocol):
    """One request/response on a backend connection.

    MUST: `begin` writes the request head (HTTP/1.1 bytes, any buffered body after the blank
    line) or raise a `BackendError`; `send_body` sends a streamed body (HTTP/1 until the
    response head arrives; HTTP/2 beside the response); `done` drops what the exchange's
    callbacks refer back to once it is settled; `head_waiter`/`check_head` report the
    response head or the failure before it; `read` yields body chunks and b"" at the end,
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
    def check_head(self) -> None: ...
    async def read(self) -> bytes: ...
    def take_body(self) -> bytes: ...
    def time_out(self) -> None: ...
    def fail(self, error: BackendError) -> None: ...
    def close(self) -> None: ...


__all__ = ["BackendExchange", "Sending"]

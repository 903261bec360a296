"""What the proxy core drives for one attempt, whatever the backend speaks.

An HTTP/1.1 keep-alive connection (upstream.py `UpstreamConnection`) and an HTTP/2 stream
(upstream_h2_stream.py `H2Stream`) both implement it, so routing, retries, settlement, the
relay and the access log are written once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from router.errors import BackendError


class BackendExchange(Protocol):
    """One request/response on a backend connection.

    MUST: `begin` writes the request head (HTTP/1.1 bytes, any buffered body after the blank
    line) or raise a `BackendError`; `head_waiter`/`check_head` report the response head or the
    failure before it; `read` yields body chunks and b"" at the end, raising a `BackendError`
    when the body fails; `fail` ends the exchange from outside (timeout, client gone) without
    raising. The response head is `head` (an HTTP/1.1 status line and header lines), `status`,
    `headers`; a chunked or HTTP/2 body's trailer fields are in `trailers` once `complete`.
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

    def begin(self, head: bytes, is_head: bool) -> None: ...
    def head_waiter(self) -> asyncio.Future[None] | None: ...
    def check_head(self) -> None: ...
    async def read(self) -> bytes: ...
    def take_body(self) -> bytes: ...
    def time_out(self) -> None: ...
    def fail(self, error: BackendError) -> None: ...
    def close(self) -> None: ...


__all__ = ["BackendExchange"]

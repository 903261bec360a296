"""One attempt over HTTP/2: a stream on a shared `H2Upstream`, driven by the proxy core exactly
as it drives an HTTP/1 connection (exchange.py `BackendExchange`).

The request head arrives as HTTP/1.1 bytes and leaves as HTTP/2 fields (h2_fields.py). A body
the client is still sending is pumped by a task of the stream's own (`stream_body`), beside the
response, so gRPC's client- and bidirectional streaming work; the pump waits while the
backend's flow-control window is closed. The response's DATA is acknowledged to the backend only
as the relay reads it. Releasing a stream that is still open sends RST_STREAM(CANCEL): the
backend learns that the client went away, timed out, or that nobody wants the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import h2.errors
import h2.exceptions

from router.errors import BackendError, Kind
from router.exchange import Sending
from router.h2_fields import (
    H2Fields,
    has_te_trailers,
    request_fields,
    response_head,
    status_of,
    trailer_pairs,
)
from router.headers import header_pairs, reason_phrase
from router.upstream_flow import wake

if TYPE_CHECKING:
    from router.exchange import ProxyRequest
    from router.upstream_h2 import H2Upstream

# A gRPC call may wait this much past its own grpc-timeout, so that the backend's
# DEADLINE_EXCEEDED status (which the client understands) arrives before the router's 502.
GRPC_DEADLINE_GRACE: Final = 1.0
_CANCEL: Final = h2.errors.ErrorCodes.CANCEL


class H2Stream:
    """One request and its response on an HTTP/2 connection to a backend."""

    __slots__ = (
        "_body",
        "_body_waiter",
        "_end_pending",
        "_error",
        "_head_waiter",
        "_headers",
        "_outgoing",
        "_pump",
        "_sent_end",
        "_writer_waiter",
        "closed",
        "complete",
        "conn",
        "deadline",
        "head",
        "headers_done",
        "is_head",
        "key",
        "released",
        "status",
        "stream_id",
        "trailers",
        "unwatch",
    )

    reads_have_deadline = False

    def __init__(self, conn: H2Upstream) -> None:
        self.conn = conn
        self.key = conn.key
        self.stream_id = 0
        self.closed = False
        self.released = False
        self.deadline = 0.0
        self.status = 0
        self.head = b""
        self._headers: list[tuple[bytes, bytes]] | None = None
        self.headers_done = False
        self.complete = False
        self.trailers: list[tuple[bytes, bytes]] = []
        self.is_head = False
        self._body: deque[tuple[bytes, int]] = deque()  # (data, flow-controlled size)
        self._outgoing: deque[bytes] = deque()
        self._end_pending = False
        self._sent_end = False
        self._error: BackendError | None = None
        self._head_waiter: asyncio.Future[None] | None = None
        self._body_waiter: asyncio.Future[None] | None = None
        self._writer_waiter: asyncio.Future[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self.unwatch: Callable[[H2Stream], None] | None = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("complete" if self.complete else "open")
        return f"H2Stream({self.key}, id={self.stream_id}, {state})"

    # -- what the proxy reads ----------------------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport | None:
        return self.conn.transport

    @property
    def reason(self) -> bytes:
        return reason_phrase(self.head)

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        if self._headers is None:
            self._headers = header_pairs(self.head)
        return self._headers

    # -- the exchange ------------------------------------------------------------------------------

    def begin(self, head: bytes, sending: Sending) -> None:
        """Send the request's HEADERS (and a buffered body). An HTTP/2 connection is shared:
        `Connection: close` does not close it; 1xx heads are not passed on."""
        self.is_head = sending.is_head
        conn = self.conn
        te_trailers = has_te_trailers(sending.client_headers)  # TE is hop-by-hop: not in `head`
        request = request_fields(head, conn.scheme, te_trailers)
        if request.grpc_timeout is not None and self.deadline:
            due = time.monotonic() + request.grpc_timeout + GRPC_DEADLINE_GRACE
            self.deadline = max(self.deadline, due)
        more = request.has_more_body
        try:
            self.stream_id = conn.start(self, request.fields, not (request.body or more))
        except h2.exceptions.H2Error as exc:
            raise BackendError(Kind.SEND, f"http2: {exc}", conn.started > 0) from None
        if request.body:
            self._outgoing.append(request.body)
            self._end_pending = not more
            self.send_pending()
        conn.flush()

    async def send_body(self, req: ProxyRequest) -> None:
        """Send the client's streamed body beside the response, in a task of its own: gRPC
        streams both ways at once."""
        self._pump = asyncio.get_running_loop().create_task(self._pump_body(req))

    def done(self) -> None:
        pass  # a stream is never reused, and holds no callback of the front end

    def head_waiter(self) -> asyncio.Future[None] | None:
        if self._error is not None or self.headers_done:
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._head_waiter = waiter
        return waiter

    def call_at_head(self, callback: Callable[[], object]) -> bool:
        waiter = self.head_waiter()
        if waiter is None:
            return False
        waiter.add_done_callback(lambda _: callback())
        return True

    def check_head(self) -> None:
        self._head_waiter = None
        if self._error is not None and not self.headers_done:
            raise self._error

    async def read(self) -> bytes:
        """The next body chunk (acknowledged to the backend as it is taken); b"" at the end."""
        while True:
            if self._body:
                data, size = self._body.popleft()
                self.conn.acknowledge(size, self.stream_id)
                return data
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            waiter = asyncio.get_running_loop().create_future()
            self._body_waiter = waiter
            try:
                await waiter
            finally:
                self._body_waiter = None

    def take_body(self) -> bytes:
        size = sum(part[1] for part in self._body)
        body = b"".join(part[0] for part in self._body)
        self._body.clear()
        self.conn.acknowledge(size, self.stream_id)
        return body

    def time_out(self) -> None:
        self.fail(BackendError(Kind.TIMEOUT, "context deadline exceeded"))

    def fail(self, error: BackendError) -> None:
        """End the exchange from outside: the backend gets RST_STREAM(CANCEL)."""
        self._fail(error)
        self.close()

    def close(self) -> None:
        """Cancel the stream if it is still open, and give its place on the connection back
        (an attempt that failed is closed, never released through the pool)."""
        if not self.closed:
            self.closed = True
            if self._pump is not None:
                self._pump.cancel()
            if self.stream_id and not (self.complete and self._sent_end):
                self.conn.reset(self.stream_id, _CANCEL)
            self._wake_writer()
        self.release()

    def release(self) -> None:
        """The proxy is done with the stream: cancel what is still open, return the window."""
        if self.released:
            return
        self.released = True
        self.close()
        self.conn.streams.pop(self.stream_id, None)
        if self._body:
            self.conn.acknowledge(sum(part[1] for part in self._body), self.stream_id)
            self._body.clear()
        if self.unwatch is not None:
            self.unwatch(self)
        self.conn.release(self)

    # -- the request body --------------------------------------------------------------------------

    async def _pump_body(self, req: ProxyRequest) -> None:
        source = req.body
        assert source is not None
        if req.expect_continue and req.send_continue is not None:
            req.send_continue()
        try:
            while True:
                try:
                    chunk = await source.read()
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    self.fail(BackendError(Kind.CLIENT_GONE, f"client request body: {exc}"))
                    return
                if self.closed or self._error is not None:
                    return
                self._outgoing.append(chunk)
                self._end_pending = not chunk
                self.send_pending()
                await self._drain()
                if not chunk:
                    return
        except BackendError:
            return  # the stream failed; its error reaches the proxy through head or body

    async def _drain(self) -> None:
        while self._outgoing or self.conn.write_paused:
            if self.closed or self._error is not None:
                raise self._error or BackendError(Kind.SEND, "http2: stream closed")
            waiter = asyncio.get_running_loop().create_future()
            self._writer_waiter = waiter
            try:
                await waiter
            finally:
                self._writer_waiter = None

    def send_pending(self) -> None:
        """Send queued body bytes as far as the windows allow, then END_STREAM when due."""
        if not self.stream_id or self.closed or self._sent_end:
            return
        h2conn = self.conn.h2
        outgoing = self._outgoing
        try:
            while outgoing:
                chunk = outgoing[0]
                if not chunk:
                    outgoing.popleft()
                    continue
                window = h2conn.local_flow_control_window(self.stream_id)
                if window <= 0:
                    break
                size = min(window, h2conn.max_outbound_frame_size, len(chunk))
                h2conn.send_data(self.stream_id, chunk[:size])
                if size == len(chunk):
                    outgoing.popleft()
                else:
                    outgoing[0] = chunk[size:]
            if not outgoing and self._end_pending:
                h2conn.end_stream(self.stream_id)
                self._end_pending = False
                self._sent_end = True
        except h2.exceptions.H2Error:
            # The backend closed or reset the stream: nothing more of the body is wanted.
            outgoing.clear()
            self._end_pending = False
            self._sent_end = True
        self.conn.flush()
        if not outgoing:
            self._wake_writer()

    def wake_writer(self) -> None:
        self._wake_writer()

    # -- from the connection -----------------------------------------------------------------------

    def on_head(self, fields: H2Fields) -> None:
        status = status_of(fields)
        if status is None:
            self.fail(BackendError(Kind.BAD_RESPONSE, "http2: response without a valid :status"))
            return
        self.status = status
        self.head = response_head(status, fields)
        self._headers = None
        self.headers_done = True
        wake(self._head_waiter)

    def on_data(self, data: bytes, size: int) -> None:
        if not data or self.released:
            self.conn.acknowledge(size, self.stream_id)
            return
        self._body.append((data, size))
        wake(self._body_waiter)

    def on_trailers(self, fields: H2Fields) -> None:
        self.trailers = trailer_pairs(fields)
        if self.trailers and b"\r\ncontent-length:" in self.head.lower():
            # A length would let the relay write the body unchunked, losing the trailers.
            lines = self.head.split(b"\r\n")
            kept = [line for line in lines if not line.lower().startswith(b"content-length:")]
            self.head = b"\r\n".join(kept)
            self._headers = None

    def on_end(self) -> None:
        if self._sent_end:
            self.conn.streams.pop(self.stream_id, None)
        if self.headers_done:
            self.complete = True
        else:
            self._fail(BackendError(Kind.BAD_RESPONSE, "http2: stream ended without a response"))
        wake(self._body_waiter)

    def on_reset(self, code: int) -> None:
        name = code.name if isinstance(code, h2.errors.ErrorCodes) else str(code)
        detail = f"http2: stream reset by the server, ErrCode={name}"
        if self.headers_done:
            self._fail(BackendError(Kind.BODY_FAILED, detail))
        elif code == h2.errors.ErrorCodes.REFUSED_STREAM:
            # RFC 9113 8.7: the backend did not process the stream; safe to try again.
            self._fail(BackendError(Kind.CLOSED, detail, True))
        else:
            self._fail(BackendError(Kind.RESET, detail))
        self._sent_end = True
        self._outgoing.clear()
        self._wake_writer()

    def on_refused(self, error: BackendError) -> None:
        """GOAWAY named a last stream below this one: the backend never processed it."""
        self._fail(own_copy(error))
        self._sent_end = True
        self._outgoing.clear()
        self._wake_writer()

    def on_lost(self, error: BackendError) -> None:
        if self.headers_done:
            error = BackendError(Kind.BODY_FAILED, f"{error.detail} (response body)", True)
        self._fail(own_copy(error))
        self._wake_writer()

    # -- internals ---------------------------------------------------------------------------------

    def _fail(self, error: BackendError) -> None:
        if self._error is None and not self.complete:
            self._error = error
        wake(self._head_waiter)
        wake(self._body_waiter)

    def _wake_writer(self) -> None:
        wake(self._writer_waiter)


def own_copy(error: BackendError) -> BackendError:
    """One connection's failure, as each of its streams' own error: the proxy refines an
    attempt's error for its request (attempts.py), which must not leak into another's."""
    return BackendError(error.kind, error.detail, error.reused)


__all__ = ["GRPC_DEADLINE_GRACE", "H2Stream", "own_copy"]

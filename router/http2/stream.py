"""One HTTP/2 stream: one exchange through the proxy core, from its request head to the last
frame of its response.

Each stream runs in a task: routing (`routing.begin`/`plan`), the attempts or the route-service
hop, then the router's answer or the backend's response relayed frame by frame as the client's
flow-control window allows, trailers last. The request body reaches the core as a `BodySource`
whose window is opened again only as the core takes each chunk for the backend, so a client
sending faster than the backend reads waits (back-pressure); small bodies of a known length are
read whole first, which makes the request replayable, as on HTTP/1. A client's RST_STREAM
cancels the task: the backend connection is dropped and the access log says 499.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final, Protocol

from h2.errors import ErrorCodes

from registry.shm.counters import Stat
from router import attempts, routing, settlement
from router.answers import refusal_answer
from router.errors import BackendError
from router.exchange import Exchange, ProxyRequest
from router.forwarded import Forwarding
from router.http1.exchange import BUFFER_LIMIT
from router.http1.server import Http1Server
from router.http1.writer import date_line
from router.http2.fields import (
    Fields,
    RequestHead,
    answer_fields,
    response_fields,
    trailer_fields,
)
from router.relay import NO_BODY_STATUS, ResponseHead, is_sticky, relayed_lines
from router.response_heads import interim_lines
from router.route_service_hop import send_to_route_service
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.proxy")

VERSION: Final = "HTTP/2.0"


class StreamClient(Protocol):
    """What a stream needs of its HTTP/2 connection (connection.py)."""

    server: Http1Server
    peer: tuple[str, int] | None
    local: tuple[str, int]
    forwarding: Forwarding | None

    def send_headers(self, stream_id: int, fields: Fields, end_stream: bool) -> None: ...
    async def send_data(self, stream_id: int, data: bytes, end_stream: bool = ...) -> None: ...
    def end_stream(self, stream_id: int) -> None: ...
    def reset_stream(self, stream_id: int, code: ErrorCodes) -> None: ...
    def acknowledge(self, stream_id: int, size: int) -> None: ...
    def exchange_done(self, stream_id: int, body_left: bool) -> None: ...


class RequestBody:
    """A stream's request body as the proxy reads it: DATA frames in order, each one's window
    given back to the client once the proxy has taken it."""

    __slots__ = (
        "bytes_read",
        "chunks",
        "client",
        "consumed",
        "ended",
        "error",
        "stream_id",
        "waiter",
    )

    def __init__(self, client: StreamClient, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.chunks: deque[tuple[bytes, int]] = deque()
        self.ended = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.consumed = False
        self.bytes_read = 0

    def __repr__(self) -> str:
        return f"RequestBody(stream={self.stream_id}, read={self.bytes_read}, ended={self.ended})"

    # -- from the connection -------------------------------------------------------------------

    def push(self, data: bytes, flow: int) -> None:
        self.chunks.append((data, flow))
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def fail(self, error: Exception) -> None:
        if not self.ended:
            self.error = error
        self._wake()

    def release(self) -> None:
        """The exchange is over: what nobody will read goes back to the connection's window."""
        while self.chunks:
            _, flow = self.chunks.popleft()
            self.client.acknowledge(self.stream_id, flow)

    # -- for the proxy -------------------------------------------------------------------------

    async def read(self) -> bytes:
        self.consumed = True
        while True:
            if self.chunks:
                data, flow = self.chunks.popleft()
                self.client.acknowledge(self.stream_id, flow)
                self.bytes_read += len(data)
                if data:
                    return data
                continue
            if self.error is not None:
                raise self.error
            if self.ended:
                return b""
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            timeout = self.client.server.deadlines.body_timeout
            try:
                async with asyncio.timeout(timeout if timeout > 0 else None):
                    await waiter
            except TimeoutError:
                self._time_out(timeout)
            finally:
                self.waiter = None

    def _time_out(self, timeout: float) -> None:
        """No DATA for `request_body_timeout`: the stream is cancelled (a 499), as HTTP/1
        closes the connection of a client whose body stops arriving."""
        client = self.client
        client.server.stats[Stat.client_body_timeouts] += 1
        log.info("request-body-timeout", timeout=timeout)
        client.reset_stream(self.stream_id, ErrorCodes.CANCEL)
        raise ConnectionResetError("request body timeout")

    async def read_all(self) -> bytes:
        parts = []
        while data := await self.read():
            parts.append(data)
        return b"".join(parts)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class H2Exchange:
    """One stream's exchange (see the module docstring)."""

    __slots__ = (
        "body",
        "client",
        "ex",
        "finished",
        "has_body",
        "head",
        "sent",
        "stream_id",
        "task",
    )

    def __init__(
        self, client: StreamClient, stream_id: int, head: RequestHead, has_body: bool
    ) -> None:
        self.client = client
        self.stream_id = stream_id
        self.head = head
        self.has_body = has_body
        self.body = RequestBody(client, stream_id)
        if not has_body:
            self.body.ended = True
        self.ex: Exchange | None = None
        self.task: asyncio.Task[None] | None = None
        self.sent = 0  # response body bytes written
        self.finished = False

    def __repr__(self) -> str:
        return f"H2Exchange({self.stream_id}, {self.head.method} {self.head.target})"

    def start(self) -> None:
        self.task = self.client.server.loop.create_task(self._run())

    def client_gone(self) -> None:
        """The client reset the stream, or its connection was lost: 499."""
        self.body.fail(ConnectionResetError("client reset the stream"))
        task = self.task
        if task is not None and not task.done():
            task.cancel()  # the task settles as it unwinds

    async def _run(self) -> None:
        try:
            await self._exchange()
        except asyncio.CancelledError:
            self._gone()
            raise
        except ConnectionError:  # the stream or the connection closed under the response
            self._gone()
        except Exception as exc:  # a bug must not leave the client waiting
            self._abandon(exc)

    async def _exchange(self) -> None:
        client = self.client
        proxy = client.server.proxy
        head = self.head
        peer = client.peer or ("", 0)
        length = head.content_length if self.has_body else None
        req = ProxyRequest(
            method=head.method,
            target=head.target,
            host_header=head.authority,
            version=VERSION,
            raw_headers=head.raw_headers,
            client_ip=peer[0],
            client_port=peer[1],
            local_ip=client.local[0],
            received_at=time.time(),
            content_length=length,
            # An HTTP/1.1 backend gets a body of unknown length chunked.
            chunked=self.has_body and length is None,
            forwarding=client.forwarding,
        )
        buffered = self.has_body and length is not None and length <= BUFFER_LIMIT
        if self.has_body and not buffered:
            req.body = self.body
        ex = self.ex = routing.begin(proxy, req)
        ex.on_interim = self._interim
        limit = client.server.limits.max_headers
        if limit and len(head.raw_headers) > limit:
            # As for HTTP/1 (and Gorouter's MaxRequestSize handler): 431, nothing routed.
            settlement.answer(proxy, ex, refusal_answer(431, "too many header fields"))
            plan = None
        else:
            plan = routing.plan(proxy, ex)
        if plan is not None:
            if buffered:
                req.buffered_body = await self.body.read_all()
            if plan.via_route_service:
                await send_to_route_service(proxy, ex, plan.common, plan.pool.route_service_url)
            else:
                await attempts.attempts(proxy, ex, plan)
        if ex.answer is not None:
            await self._answer()
        else:
            await self._relay()
        self._settle()

    def _interim(self, status: int, head: bytes) -> None:
        """A backend's 1xx head (103 Early Hints) as an informational HEADERS frame before the
        final response, as Go's ReverseProxy (so Gorouter) passes it on."""
        if self.finished:
            return
        lines = interim_lines(head, self.client.server.proxy.rewrite)
        fields = response_fields(status, lines.splitlines(keepends=True), None, None)
        self.client.send_headers(self.stream_id, fields, end_stream=False)

    async def _answer(self) -> None:
        ex = self.ex
        assert ex is not None and ex.answer is not None
        answer = ex.answer
        head_only = self.head.method == "HEAD"
        fields = answer_fields(answer, date_line.now()[6:-2])
        client = self.client
        if head_only or not answer.body:
            client.send_headers(self.stream_id, fields, end_stream=True)
            return
        client.send_headers(self.stream_id, fields, end_stream=False)
        await client.send_data(self.stream_id, answer.body, end_stream=True)
        self.sent = len(answer.body)

    async def _relay(self) -> None:
        ex = self.ex
        assert ex is not None and ex.conn is not None
        upstream = ex.conn
        client = self.client
        proxy = client.server.proxy
        status = ex.status = upstream.status
        head = ResponseHead(upstream.headers, is_sticky(ex, proxy))
        lines, has_date = relayed_lines(ex, proxy, head)
        length = None if head.chunked else head.content_length
        date = None if has_date else date_line.now()[6:-2]
        fields = response_fields(status, lines, length, date)
        stream_id = self.stream_id
        if self.head.method == "HEAD" or status in NO_BODY_STATUS:
            client.send_headers(stream_id, fields, end_stream=True)
            return
        if upstream.complete and not upstream.trailers:
            # The whole response is here (the usual small one): its frames go out together.
            body = upstream.take_body()
            client.send_headers(stream_id, fields, end_stream=not body)
            if body:
                await client.send_data(stream_id, body, end_stream=True)
                self.sent = len(body)
            return
        client.send_headers(stream_id, fields, end_stream=False)
        try:
            while True:
                async with asyncio.timeout(proxy.endpoint_timeout):
                    data = await upstream.read()
                if not data:
                    break
                await client.send_data(stream_id, data)
                self.sent += len(data)
        except (BackendError, TimeoutError) as exc:
            # Too late for an error page: the stream is reset, so the client sees the cut.
            detail = exc.detail if isinstance(exc, BackendError) else "context deadline exceeded"
            ex.router_error = f"endpoint_failure ({detail})"
            proxy.row.stats[Stat.error_reset] += 1
            upstream.close()
            client.reset_stream(stream_id, ErrorCodes.INTERNAL_ERROR)
            return
        trailers = trailer_fields(upstream.trailers)
        if trailers:
            client.send_headers(stream_id, trailers, end_stream=True)
        else:
            client.end_stream(stream_id)

    def _settle(self) -> None:
        if self.finished:
            return
        self.finished = True
        ex = self.ex
        assert ex is not None
        status = ex.answer.status if ex.answer else (ex.conn.status if ex.conn else 0)
        settlement.finish(self.client.server.proxy, ex, status, self.sent)
        self._done()

    def _gone(self) -> None:
        """Settle an exchange whose client went away: a 499, the upstream cancelled."""
        if self.finished:
            return
        self.finished = True
        ex = self.ex
        if ex is not None:
            proxy = self.client.server.proxy
            settlement.client_gone(proxy, ex)
            settlement.finish(proxy, ex, 0, self.sent)
        self._done()

    def _abandon(self, exc: Exception) -> None:
        """An error nobody expected (a bug): logged, settled as a 500, the stream reset."""
        log.error("exchange-failed", error=repr(exc))
        if not self.finished:
            self.finished = True
            if self.ex is not None:
                settlement.finish(self.client.server.proxy, self.ex, 500, self.sent)
            self.client.reset_stream(self.stream_id, ErrorCodes.INTERNAL_ERROR)
            self._done()

    def _done(self) -> None:
        body = self.body
        body.release()
        self.client.exchange_done(self.stream_id, not body.ended)


__all__ = ["VERSION", "H2Exchange", "RequestBody", "StreamClient"]

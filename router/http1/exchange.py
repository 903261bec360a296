"""One request on a client connection, from its parsed head to the last byte of its response.

The exchange runs from callbacks: it opens the proxy's exchange, plans it, and when an idle
pooled connection lets attempt 1 start at once, writes it and waits for the response head with a
callback; a whole response (its small body awaited with a second callback if it lags the head)
then goes to the client in one write. A task is started only where something must wait: a
request body still arriving, a dial, a retry, a route service, a response to stream, a tunnel.
Both ways end in `_settle`, once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from registry.shm.counters import Stat
from router import attempts, routing, settlement
from router.errors import BackendError
from router.exchange import Exchange, Plan, ProxyRequest
from router.http1.connection import ClientConnection
from router.http1.streams import StreamBody, TunnelSink
from router.http1.writer import (
    CONTINUE,
    answer_bytes,
    body_framing,
    chunk,
    connection_line,
    date_line,
    last_chunk,
    status_line,
)
from router.relay import (
    NO_BODY_STATUS,
    ResponseHead,
    holds_for_body,
    is_sticky,
    relayed_lines,
    upgrade_lines,
    whole_response,
)
from router.response_heads import interim_lines
from router.route_service_hop import send_to_route_service
from router.upstream import UpstreamConnection
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.proxy")

# Bodies up to this size are read before the first attempt, which makes them replayable.
BUFFER_LIMIT: Final = 64 * 1024


class Http1Exchange:
    def __init__(self, conn: ClientConnection, msg: Any, payload: Any) -> None:
        self.conn = conn
        self.msg = msg
        self.payload = payload
        self.http10 = msg.version == (1, 0)
        self.head_only = msg.method == "HEAD"
        self.ex: Exchange | None = None
        self.plan: Plan | None = None
        self.first: Any = None  # the endpoint attempt 1 chose, when it began here
        self.task: asyncio.Task[None] | None = None
        self.sent = 0  # response body bytes written
        self.finished = False
        self.continued = False  # the router said 100 Continue itself

    def __repr__(self) -> str:
        return f"Http1Exchange({self.msg.method} {self.msg.path}, finished={self.finished})"

    def start(self) -> None:
        try:
            self._start()
        except Exception as exc:  # a bug must not leave the client waiting
            self._abandon(exc)

    def client_gone(self) -> None:
        """The client connection was lost before the response was complete: 499."""
        if self.finished:
            return
        task = self.task
        if task is not None and not task.done():
            task.cancel()  # the task settles as it unwinds
            return
        self._gone()

    # -- from callbacks ------------------------------------------------------------------------

    def _start(self) -> None:
        conn = self.conn
        proxy = conn.server.proxy
        msg = self.msg
        payload = self.payload
        headers = msg.headers
        length: int | None = None
        chunked = expect = False
        has_body = not payload.at_eof()
        if has_body:
            length_header = headers.get("Content-Length")
            # The parser has validated Content-Length (digits only) before this.
            length = int(length_header) if length_header is not None else None
            chunked = msg.chunked
            expect = not self.http10 and "100-continue" in headers.get("Expect", "").lower()
        peer = conn.peer or ("", 0)
        req = ProxyRequest(
            method=msg.method,
            target=msg.path,
            host_header=headers.get("Host", ""),
            version="HTTP/1.0" if self.http10 else "HTTP/1.1",
            raw_headers=msg.raw_headers,
            client_ip=peer[0],
            client_port=peer[1],
            local_ip=conn.local[0],
            received_at=time.time(),
            content_length=length,
            chunked=chunked,
            upgrade=bool(msg.upgrade),
            expect_continue=expect,
            forwarding=conn.forwarding,
        )
        buffered = has_body and not chunked and length is not None and length <= BUFFER_LIMIT
        if has_body and not buffered:
            req.body = StreamBody(payload)
            req.send_continue = self._send_continue
        ex = self.ex = routing.begin(proxy, req)
        if not self.http10:
            # RFC 9110 15.2: no 1xx responses to an HTTP/1.0 client.
            ex.on_interim = self._interim
        # Planning does not await; a request the router refuses is answered without asking an
        # `Expect: 100-continue` client for its body.
        plan = self.plan = routing.plan(proxy, ex)
        if plan is None:
            self._settle(*self._write_answer())
            return
        if buffered:
            if not payload.is_eof():
                self._carry_on(read_body=True)
                return
            req.buffered_body = payload.read_nowait(-1)
        if plan.via_route_service or req.body is not None:
            self._carry_on()
            return
        self.first = attempts.first_attempt(proxy, ex, plan)
        upstream = ex.conn
        if upstream is None:
            self._carry_on()  # nothing idle to send it on, or it failed at once
            return
        if not upstream.call_at_head(self._head_arrived):
            self._head_arrived()

    def _head_arrived(self) -> None:
        if self.finished or self.task is not None:
            return  # the client went away meanwhile
        try:
            ex = self.ex
            assert ex is not None
            proxy = self.conn.server.proxy
            if not attempts.first_head(proxy, ex):
                self._carry_on()  # attempt 1 failed: the retries go on in a task
                return
            self._relay()
        except Exception as exc:  # see start()
            self._abandon(exc)

    def _relay(self) -> None:
        """The response head is here: the response written whole, or held until its small body
        is (`_body_arrived`), or streamed from a task."""
        keep_alive = self.conn.is_keep_alive(self.msg)
        sent = self._write_whole(keep_alive)
        if sent is not None:
            self._settle(keep_alive, sent)
            return
        ex = self.ex
        assert ex is not None
        upstream = ex.conn
        proxy = self.conn.server.proxy
        if not (
            isinstance(upstream, UpstreamConnection)
            and holds_for_body(ex, proxy, self.msg.method, not self.http10)
            and upstream.call_at_end(self._body_arrived, proxy.endpoint_timeout)
        ):
            self._carry_on(responded=True)  # a response to stream

    def _body_arrived(self) -> None:
        """The held response is complete, or failed (then streamed: the client sees the head
        and a cut connection, as when a streamed body fails)."""
        if self.finished or self.task is not None:
            return  # the client went away meanwhile
        try:
            self._relay()  # complete or failed, it is not held again (call_at_end says no)
        except Exception as exc:  # see start()
            self._abandon(exc)

    def _send_continue(self) -> None:
        self.continued = True
        self.conn.write(CONTINUE)

    def _interim(self, status: int, head: bytes) -> None:
        """A backend's 1xx head (103 Early Hints, 100 Continue), passed on before the final
        response, as Go's ReverseProxy (so Gorouter) passes it; a 100 the router already sent
        itself is not repeated."""
        if self.finished or (status == 100 and self.continued):
            return
        if status == 100:
            self.continued = True
        lines = interim_lines(head, self.conn.server.proxy.rewrite)
        self.conn.write(status_line(False, status) + lines + b"\r\n")

    # -- in a task -----------------------------------------------------------------------------

    def _carry_on(self, read_body: bool = False, responded: bool = False) -> None:
        loop = self.conn.server.loop
        self.task = loop.create_task(self._run(read_body, responded))

    async def _run(self, read_body: bool, responded: bool) -> None:
        ex = self.ex
        plan = self.plan
        assert ex is not None and plan is not None
        proxy = self.conn.server.proxy
        try:
            if read_body:
                if ex.request.expect_continue:
                    self._send_continue()
                ex.request.buffered_body = await self.payload.read()
            if responded:  # the head is here, and it is not one to write whole
                keep_alive, sent = await self._stream(self.conn.is_keep_alive(self.msg))
            else:
                if plan.via_route_service:
                    await send_to_route_service(proxy, ex, plan.common, plan.pool.route_service_url)
                else:
                    await attempts.attempts(proxy, ex, plan, self.first)
                keep_alive, sent = await self._respond()
        except asyncio.CancelledError:
            self._gone()
            raise
        except Exception as exc:  # see start()
            self._abandon(exc)
            return
        self._settle(keep_alive, sent)

    async def _respond(self) -> tuple[bool, int]:
        """The router's own answer, or the backend's response relayed; returns whether the
        connection stays open and the body bytes sent."""
        ex = self.ex
        assert ex is not None
        if ex.answer is not None:
            return self._write_answer()
        keep_alive = self.conn.is_keep_alive(self.msg)
        sent = self._write_whole(keep_alive)
        if sent is not None:
            return keep_alive, sent
        return await self._stream(keep_alive)

    def _write_whole(self, keep_alive: bool) -> int | None:
        """Write a complete response in one buffer; its body's size, or None when it has to
        be streamed."""
        ex = self.ex
        assert ex is not None
        proxy = self.conn.server.proxy
        whole = whole_response(ex, proxy, self.msg.method, not self.http10, keep_alive)
        if whole is None:
            return None
        self.conn.write_soon(whole.data)
        return whole.body_size

    async def _stream(self, keep_alive: bool) -> tuple[bool, int]:
        ex = self.ex
        assert ex is not None and ex.conn is not None
        upstream = ex.conn
        proxy = self.conn.server.proxy
        status = ex.status = upstream.status
        if status == 101 and isinstance(upstream, UpstreamConnection):
            return await self._tunnel(upstream)
        head = ResponseHead(upstream.headers, is_sticky(ex, proxy))
        http10 = self.http10
        parts = [status_line(http10, status, upstream.reason.decode("latin-1", "replace"))]
        lines, has_date = relayed_lines(ex, proxy, head)
        parts.extend(lines)
        bodiless = self.head_only or status in NO_BODY_STATUS
        framing, chunked, keep_alive = body_framing(
            http10, bodiless, head.content_length, head.chunked, keep_alive
        )
        parts.append(framing)
        if not has_date:
            parts.append(date_line.now())
        parts.append(connection_line(http10, keep_alive))
        parts.append(b"\r\n")
        conn = self.conn
        conn.write(b"".join(parts))
        if bodiless:
            return keep_alive, 0
        timeout = proxy.endpoint_timeout if upstream.reads_have_deadline else None
        try:
            while True:
                async with asyncio.timeout(timeout):
                    data = await upstream.read()
                if not data:
                    break
                conn.write(chunk(data) if chunked else data)
                self.sent += len(data)
                await conn.drain()
        except (BackendError, TimeoutError) as exc:
            # Too late for an error page: cut the client connection so it sees the truncation.
            detail = exc.detail if isinstance(exc, BackendError) else "context deadline exceeded"
            ex.router_error = f"endpoint_failure ({detail})"
            proxy.row.stats[Stat.error_reset] += 1
            upstream.close()
            conn.abort()
            return False, self.sent
        if chunked:
            conn.write(last_chunk(upstream.trailers))
        return keep_alive, self.sent

    async def _tunnel(self, upstream: UpstreamConnection) -> tuple[bool, int]:
        """After the backend's 101: bytes both ways until either side closes. No
        endpoint_timeout applies here, as in Gorouter."""
        ex = self.ex
        assert ex is not None
        proxy = self.conn.server.proxy
        proxy.row.stats[Stat.websocket_upgrades] += 1
        lines = upgrade_lines(ex, proxy, upstream.headers)
        reason = upstream.reason.decode("latin-1", "replace")
        conn = self.conn
        conn.write(status_line(False, 101, reason) + lines + b"\r\n")
        sink = TunnelSink(upstream)
        conn.start_tunnel(sink)
        try:
            while True:
                data = await upstream.read()
                if not data:
                    break
                conn.write(data)
                self.sent += len(data)
                await conn.drain()
        except (BackendError, ConnectionError):
            pass
        finally:
            upstream.close()
            conn.abort()
            ex.request.content_length = sink.bytes
        return False, self.sent

    # -- both ways -----------------------------------------------------------------------------

    def _write_answer(self) -> tuple[bool, int]:
        ex = self.ex
        assert ex is not None and ex.answer is not None
        answer = ex.answer
        # Go's server closes after answering an Expect: 100-continue request whose body it
        # never asked for: the client must not send it on this connection.
        keep_alive = self.conn.is_keep_alive(self.msg)
        keep_alive = keep_alive and not answer.close and not ex.request.expect_continue
        self.conn.write_soon(answer_bytes(answer, self.http10, keep_alive, self.head_only))
        return keep_alive, 0 if self.head_only else len(answer.body)

    def _settle(self, keep_alive: bool, sent: int) -> None:
        if self.finished:
            return
        self.finished = True
        ex = self.ex
        assert ex is not None
        status = ex.answer.status if ex.answer else (ex.conn.status if ex.conn else 0)
        settlement.finish(self.conn.server.proxy, ex, status, sent)
        self.conn.exchange_done(keep_alive)

    def _gone(self) -> None:
        """Settle an exchange whose client went away: a 499, the upstream cancelled."""
        ex = self.ex
        if self.finished or ex is None:
            return
        self.finished = True
        proxy = self.conn.server.proxy
        settlement.client_gone(proxy, ex)
        settlement.finish(proxy, ex, 0, self.sent)

    def _abandon(self, exc: Exception) -> None:
        """An error nobody expected (a bug): logged, the exchange settled as a 500 and the
        connection closed, so that nothing is left waiting or counted as in flight."""
        log.error("exchange-failed", error=repr(exc))
        if not self.finished:
            self.finished = True
            if self.ex is not None:
                settlement.finish(self.conn.server.proxy, self.ex, 500, self.sent)
        self.conn.abort()


__all__ = ["BUFFER_LIMIT", "Http1Exchange"]

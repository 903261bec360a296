"""The aiohttp front end: turns aiohttp requests into plain values for the proxy, writes answers.

aiohttp's low-level `web.Server` (no Application, no router) parses requests with its C parser.
Everything that decides something — lookup, limits, retries, logging — lives in proxy.py and takes
plain values. The quick lane (quick_lane.py) serves plain keep-alive HTTP/1.1 requests from the
connection's callbacks on the same proxy; whatever it cannot finish there it hands to
`Frontend.carry_on`, which goes on exactly as `handle` would have from that point.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from aiohttp import HttpVersion10, HttpVersion11, hdrs, web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_protocol import RequestHandler

from registry.shm.counters import Stat
from router.exchange import Exchange, ProxyRequest
from router.intake import IntakeLimits, log_refusal
from router.proxy import Proxy
from router.quick_lane import Handover, QuickLaneHandler
from router.relay import relay, relay_whole

# Bodies up to this size are read before the first attempt, which makes them replayable.
BUFFER_LIMIT: Final = 64 * 1024
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_VERSIONS: Final = {HttpVersion11: "HTTP/1.1", HttpVersion10: "HTTP/1.0"}


class StreamBody:
    """The client's body as the proxy reads it: once, counting bytes."""

    __slots__ = ("_content", "bytes_read", "consumed")

    def __init__(self, content: Any) -> None:
        self._content = content
        self.consumed = False
        self.bytes_read = 0

    async def read(self) -> bytes:
        self.consumed = True
        chunk: bytes = await self._content.readany()
        self.bytes_read += len(chunk)
        return chunk


class Frontend:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def __repr__(self) -> str:
        return f"Frontend({self.proxy!r})"

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        received_at = time.time()
        proxy = self.proxy
        transport = request.transport
        protocol = request.protocol
        if isinstance(protocol, QuickLaneHandler):
            handover = protocol.handover
            if handover is not None:
                protocol.handover = None
                return await self.carry_on(request, handover)
            peer, local, forwarding = protocol.peer, protocol.local, protocol.forwarding
        else:  # a request handled by plain aiohttp machinery (tests)
            peer = local = forwarding = None
        if not peer or not local:
            extra = transport.get_extra_info if transport else None
            peer = (extra("peername") if extra else None) or ("", 0)
            local = (extra("sockname") if extra else None) or ("", 0)
        headers = request.headers
        version = request.version
        if request.body_exists:
            length_header = headers.get("Content-Length")
            # aiohttp's parser has validated Content-Length (digits only) before we get here.
            length = int(length_header) if length_header is not None else None
            chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
            expect = version >= (1, 1) and "100-continue" in headers.get("Expect", "").lower()
        else:  # most requests: no body, so none of the body headers matter
            length, chunked, expect = None, False, False
        preq = ProxyRequest(
            request.method,
            request.raw_path,
            headers.get("Host", ""),
            _VERSIONS.get(version) or f"HTTP/{version.major}.{version.minor}",
            request.raw_headers,
            peer[0],
            peer[1],
            local[0],
            received_at,
            None,
            None,
            length,
            chunked,
            "Upgrade" in headers and "upgrade" in headers.get("Connection", "").lower(),
            expect,
            forwarding,
        )
        ex: Exchange | None = None
        try:
            # A small body is read whole, but only once routed: a request the router refuses
            # is answered without asking an `Expect: 100-continue` client for its body.
            buffered = bool(length) and not chunked and (length or 0) <= BUFFER_LIMIT
            if not buffered and (length or chunked):
                preq.body = StreamBody(request.content)
                preq.send_continue = lambda: transport.write(CONTINUE)  # type: ignore[union-attr]
            ex = proxy.begin(preq)
            # Planning does not await; only the body, the attempts or the route-service hop do.
            plan = proxy.plan(ex)
            if plan is not None and buffered:
                if preq.expect_continue:
                    transport.write(CONTINUE)  # type: ignore[union-attr]
                preq.buffered_body = await request.read()
            if plan is not None:
                if plan[2]:
                    await proxy.via_route_service(ex, plan[0], plan[1])
                else:
                    await proxy.attempts(ex, plan[0], plan[1])
            return await self.respond(request, ex)
        except asyncio.CancelledError:
            if ex is not None:
                proxy.client_gone(ex)
            raise
        finally:
            if ex is not None:
                self.settle(ex)

    async def carry_on(self, request: web.BaseRequest, handover: Handover) -> web.StreamResponse:
        """Serve a request the quick lane began, from where it stopped."""
        proxy = self.proxy
        ex = handover.ex
        plan = handover.plan
        try:
            if plan is not None and not handover.responded:
                if plan[2]:
                    await proxy.via_route_service(ex, plan[0], plan[1])
                else:
                    await proxy.attempts(ex, plan[0], plan[1], handover.first)
            return await self.respond(request, ex)
        except asyncio.CancelledError:
            proxy.client_gone(ex)
            raise
        finally:
            self.settle(ex)

    async def respond(self, request: web.BaseRequest, ex: Exchange) -> web.StreamResponse:
        """The router's own answer, or the backend's response relayed."""
        answer = ex.answer
        if answer is not None:
            response = web.Response(status=answer.status, body=answer.body, headers=answer.headers)
            if answer.close or ex.request.expect_continue:
                # Go's server closes after answering an Expect: 100-continue request whose
                # body it never asked for: the client must not send it on this connection.
                response.force_close()
            await response.prepare(request)
            await response.write_eof()
            ex.sent = len(answer.body)
            return response
        done = relay_whole(request, ex, self.proxy)
        relayed, ex.sent = done if done is not None else await relay(request, ex, self.proxy)
        return relayed

    def settle(self, ex: Exchange) -> None:
        status = ex.answer.status if ex.answer else (ex.conn.status if ex.conn else 0)
        self.proxy.finish(ex, status, ex.sent)


class GorouterRequestHandler(QuickLaneHandler):
    """aiohttp's connection handler, answering unparseable requests the way Gorouter does."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Once per connection rather than once per request (each is a syscall).
        if self.peer is None:
            self.peer = transport.get_extra_info("peername")
        self.local = transport.get_extra_info("sockname")

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        status = self.answer_status(status, exc)
        too_large = status in (414, 431)
        manager = self._manager
        if isinstance(manager, GorouterServer):
            stats = manager.frontend.proxy.row.stats
            stats[Stat.requests] += 1
            if status == 400:
                stats[Stat.bad_requests] += 1
            elif too_large:
                stats[Stat.max_request_size_exceeded] += 1
            stats[Stat.responses_4xx if status < 500 else Stat.responses_5xx] += 1
        log_refusal(status, message, self.peer)
        if status == 400 and message and "Missing 'Host'" in message:
            response = web.Response(
                status=400,
                text="400 Bad Request: Request had empty Host header\n",
                headers={
                    "X-Cf-RouterError": "empty_host",
                    "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "public,max-age=2",
                },
            )
        elif too_large:
            # Gorouter's MaxRequestSize handler: the status and its X-Cf-RouterError, no body.
            response = web.Response(
                status=status,
                headers={"X-Cf-RouterError": "max-request-size-exceeded", "Connection": "close"},
            )
        elif status == 400:
            # What Go's server (so Gorouter) writes for a request it cannot parse.
            duplicate_host = message is not None and "Duplicate 'Host'" in message
            text = "400 Bad Request: too many Host headers" if duplicate_host else "400 Bad Request"
            response = web.Response(status=400, text=text, headers={"Connection": "close"})
        elif status == 505:
            # Go's words for a version its HTTP/1 server does not speak.
            text = "505 HTTP Version Not Supported: unsupported protocol version"
            response = web.Response(status=505, text=text, headers={"Connection": "close"})
        else:
            text = {413: "Request Entity Too Large"}.get(status, "Internal Server Error")
            response = web.Response(status=status, text=f"{status} {text}\n")
        response.force_close()
        return response


class RouterRequest(web.BaseRequest):
    """aiohttp's request, minus the Server header aiohttp gives every response it prepares.

    Gorouter (Go's net/http) sends no Server header of its own, and aiohttp's names its version
    and Python's. aiohttp sets it just before this hook, as the very object SERVER_SOFTWARE, so
    identity tells it from a backend's own Server header (which passes, whatever it says).
    """

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        if response.headers.get(hdrs.SERVER) is SERVER_SOFTWARE:
            del response.headers[hdrs.SERVER]


class GorouterServer(web.Server):
    """aiohttp's low-level server with the handler above."""

    def __init__(
        self, frontend: Frontend, intake: IntakeLimits | None = None, **kwargs: Any
    ) -> None:
        if intake is not None:
            kwargs.update(intake.parser_limits)
        super().__init__(
            frontend.handle,
            request_factory=self._make_router_request,
            handler_cancellation=True,
            access_log=None,
            **kwargs,
        )
        self.frontend = frontend
        self.intake = intake

    def __call__(self) -> RequestHandler:
        return self.handler(GorouterRequestHandler)

    def _make_router_request(
        self,
        message: Any,
        payload: Any,
        protocol: RequestHandler,
        writer: Any,
        task: asyncio.Task[None],
    ) -> RouterRequest:
        return RouterRequest(message, payload, protocol, writer, task, self._loop)

    def handler(self, kind: type[GorouterRequestHandler]) -> GorouterRequestHandler:
        """A connection handler of `kind` (the TLS listener's records the client certificate)."""
        handler = kind(self, loop=self._loop, **self._kwargs)
        handler.intake = self.intake
        handler.proxy = self.frontend.proxy
        return handler


__all__ = ["Frontend", "GorouterServer"]

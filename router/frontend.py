"""The aiohttp front end: turns aiohttp requests into plain values for the proxy, writes answers.

aiohttp's low-level `web.Server` (no Application, no router) parses requests with its C parser.
Everything that decides something — lookup, limits, retries, logging — lives in proxy.py and takes
plain values, so a leaner front end could take over plain HTTP/1.1 requests without touching it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from registry.shm.counters import Stat
from router.errors import BackendError
from router.exchange import Exchange, ProxyRequest
from router.headers import response_headers
from router.proxy import Proxy
from router.sticky import VCAP_ID, vcap_id_cookie
from router.tunnel import tunnel

# Bodies up to this size are read before the first attempt, which makes them replayable.
BUFFER_LIMIT: Final = 64 * 1024
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


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
        if isinstance(protocol, GorouterRequestHandler):
            peer, local = protocol.peer, protocol.local
        else:
            peer = transport.get_extra_info("peername") if transport else None
            local = transport.get_extra_info("sockname") if transport else None
        headers = request.headers
        version = request.version
        method = request.method
        upgrade = "upgrade" in headers.get("Connection", "").lower() and "Upgrade" in headers
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        length = request.content_length
        preq = ProxyRequest(
            method=method,
            target=request.raw_path,
            host_header=headers.get("Host", ""),
            version=f"HTTP/{version.major}.{version.minor}",
            raw_headers=request.raw_headers,
            client_ip=peer[0] if peer else "",
            client_port=peer[1] if peer else 0,
            local_ip=local[0] if local else "",
            received_at=received_at,
            content_length=length,
            chunked=chunked,
            upgrade=upgrade,
            expect_continue="100-continue" in headers.get("Expect", "").lower()
            and version >= (1, 1),
        )
        ex: Exchange | None = None
        sent = 0
        try:
            if length and not chunked and length <= BUFFER_LIMIT:
                if preq.expect_continue:
                    transport.write(CONTINUE)  # type: ignore[union-attr]
                preq.buffered_body = await request.read()
            elif length or chunked:
                preq.body = StreamBody(request.content)
                preq.send_continue = lambda: transport.write(CONTINUE)  # type: ignore[union-attr]
            ex = proxy.begin(preq)
            await proxy.forward(ex)
            answer = ex.answer
            if answer is not None:
                response = web.Response(
                    status=answer.status, body=answer.body, headers=answer.headers
                )
                await response.prepare(request)
                await response.write_eof()
                sent = len(answer.body)
                return response
            relayed, sent = await self._relay(request, ex)
            return relayed
        except asyncio.CancelledError:
            if ex is not None:
                proxy.client_gone(ex)
            raise
        finally:
            if ex is not None:
                status = ex.answer.status if ex.answer else (ex.conn.status if ex.conn else 0)
                proxy.finish(ex, status, sent)

    async def _relay(
        self, request: web.BaseRequest, ex: Exchange
    ) -> tuple[web.StreamResponse, int]:
        conn = ex.conn
        assert conn is not None
        upgrade = conn.status == 101
        headers = response_headers(conn.headers, upgrade=upgrade)
        content_length: int | None = None
        has_request_id = False
        set_cookies: list[str] = []
        for name, value in headers:
            lower = name.lower()
            if lower == "x-vcap-request-id":
                has_request_id = True
            elif lower == "set-cookie":
                set_cookies.append(value)
        chunked = False
        for raw_name, raw_value in conn.headers:
            raw_lower = raw_name.lower()
            if raw_lower == b"content-length":
                try:
                    content_length = int(raw_value)
                except ValueError:
                    content_length = None
            elif raw_lower == b"transfer-encoding":
                chunked = b"chunked" in raw_value.lower()
        if not has_request_id:
            headers.append(("X-Vcap-Request-Id", ex.request_id))
        endpoint = ex.endpoint
        proxy = self.proxy
        if endpoint is not None and endpoint.instance_id and proxy.sticky_names:
            cookie = vcap_id_cookie(
                set_cookies,
                proxy.sticky_names,
                endpoint.instance_id,
                ex.pool.path if ex.pool else "",
                ex.sticky_requested,
            )
            if cookie is not None:
                headers.append(("Set-Cookie", cookie))
        reason = conn.reason.decode("latin-1", "replace") or None
        record = ex.record
        record.status = conn.status
        if upgrade:
            return await tunnel(request, ex, headers, reason, proxy)
        if conn.complete and not chunked:
            body = conn.take_body()
            response = web.Response(status=conn.status, reason=reason, headers=headers, body=body)
            if request.method == "HEAD" and content_length is not None:
                response.headers["Content-Length"] = str(content_length)
            await response.prepare(request)
            await response.write_eof()
            return response, len(body)
        stream = web.StreamResponse(status=conn.status, reason=reason, headers=headers)
        if content_length is not None and not chunked:
            stream.content_length = content_length
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
            record.router_error = f"endpoint_failure ({detail})"
            proxy.row.stats[Stat.error_reset] += 1
            conn.close()
            if request.transport is not None:
                request.transport.abort()
            return stream, sent
        await stream.write_eof()
        return stream, sent


class GorouterRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering unparseable requests the way Gorouter does."""

    peer: tuple[str, int] | None = None
    local: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Once per connection rather than once per request (each is a syscall).
        self.peer = transport.get_extra_info("peername")
        self.local = transport.get_extra_info("sockname")

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        manager = self._manager
        if isinstance(manager, GorouterServer):
            stats = manager.frontend.proxy.row.stats
            stats[Stat.requests] += 1
            if status == 400:
                stats[Stat.bad_requests] += 1
            stats[Stat.responses_4xx if status < 500 else Stat.responses_5xx] += 1
        if status == 400 and message and "Host" in message:
            response = web.Response(
                status=400,
                text="400 Bad Request: Request had empty Host header\n",
                headers={
                    "X-Cf-RouterError": "empty_host",
                    "X-Content-Type-Options": "nosniff",
                    "Cache-Control": "public,max-age=2",
                },
            )
        else:
            text = {
                400: "Bad Request",
                413: "Request Entity Too Large",
                431: "Request Header Fields Too Large",
            }.get(status, "Internal Server Error")
            response = web.Response(status=status, text=f"{status} {text}\n")
        response.force_close()
        return response


class GorouterServer(web.Server):
    """aiohttp's low-level server with the handler above."""

    def __init__(self, frontend: Frontend, **kwargs: Any) -> None:
        super().__init__(frontend.handle, handler_cancellation=True, access_log=None, **kwargs)
        self.frontend = frontend

    def __call__(self) -> RequestHandler:
        return GorouterRequestHandler(self, loop=self._loop, **self._kwargs)


__all__ = ["VCAP_ID", "Frontend", "GorouterServer"]

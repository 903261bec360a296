"""The status server: /health for load balancers, and /routes, /varz, /metrics for operators.

Everything but /health needs HTTP basic auth with `status.user` / `status.pass`, both compared in
constant time. With no credentials configured, nobody gets in.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import hdrs, web

from runtime.config import Config
from supervisor.metrics import Snapshot, prometheus, varz

NO_CACHE = {"Cache-Control": "private, max-age=0", "Expires": "0"}


class StatusServer:
    def __init__(
        self,
        config: Config,
        snapshot: Callable[[], Snapshot],
        routes: Callable[[bool], Awaitable[list[bytes]]],
    ) -> None:
        self.config = config
        self.healthy = False
        self._snapshot = snapshot
        self._routes = routes
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        status = self.config.status
        return f"StatusServer({status.host}:{status.port}, healthy={self.healthy})"

    def application(self) -> web.Application:
        app = web.Application()
        app.on_response_prepare.append(_without_server_header)
        app.router.add_get("/health", self.health)
        app.router.add_get("/routes", self.authenticated(self.routes))
        app.router.add_get("/varz", self.authenticated(self.varz))
        app.router.add_get("/metrics", self.authenticated(self.metrics))
        return app

    async def start(self) -> None:
        # Status requests are short; a stop should not wait aiohttp's default minute for them.
        self._runner = web.AppRunner(
            self.application(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.status.host, self.config.status.port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def health(self, request: web.Request) -> web.Response:
        if self.healthy:
            return web.Response(text="ok\n", headers=NO_CACHE)
        return web.Response(status=503, headers=NO_CACHE)

    async def routes(self, request: web.Request) -> web.StreamResponse:
        with_ttl_left = request.query.get("ttl_left", "") in ("1", "true")
        pieces = await self._routes(with_ttl_left)
        # Sent piece by piece: one write of 26 MB would hold the loop while it is copied.
        response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "application/json"})
        response.content_length = sum(len(piece) for piece in pieces)
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
        await response.write_eof()
        return response

    async def varz(self, request: web.Request) -> web.Response:
        body = orjson.dumps(varz(self._snapshot()), option=orjson.OPT_APPEND_NEWLINE)
        return web.Response(body=body, content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=prometheus(self._snapshot()).encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    def authenticated(self, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self.is_authorized(request.headers.get("Authorization", "")):
                return web.Response(
                    status=401,
                    text="401 Unauthorized\n",
                    headers={"WWW-Authenticate": 'Basic realm="routerd"'},
                )
            response: web.StreamResponse = await handler(request)
            return response

        return guarded

    def is_authorized(self, header: str) -> bool:
        expected_user = self.config.status.user.encode()
        expected_pass = self.config.status.pass_.encode()
        if not expected_user or not expected_pass:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        # Compare both fields, always, so timing says nothing about which one was wrong.
        user_ok = hmac.compare_digest(user, expected_user)
        pass_ok = hmac.compare_digest(password, expected_pass)
        return user_ok and pass_ok


async def _without_server_header(request: web.Request, response: web.StreamResponse) -> None:
    # Gorouter's status server (Go's net/http) names no software; aiohttp names its version.
    response.headers.popall(hdrs.SERVER, None)

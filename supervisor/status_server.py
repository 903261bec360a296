"""The status server, laid out as Gorouter lays it out.

On `status.host:status.port`: `/health` for load balancers (200 "ok" when serving, 503 while
starting or draining), `/is-process-alive-do-not-use-for-loadbalancing` (200 while the process
answers at all), and `/healthz` (Gorouter's old alias of /health) when
`status.enable_deprecated_varz_healthz_endpoints` is set; none of them needs credentials, and
`status.enable_nontls_health_checks: false` leaves them out. The same health endpoints over TLS
on `status.host:status.tls.port` when `status.tls` is set. On 127.0.0.1:`status.routes.port`,
Gorouter's local `/routes` listener. routerd also serves `/routes`, `/varz` and `/metrics` on
`status.port`, where routerctl and scrapers find them.

Everything but the health endpoints needs HTTP basic auth with `status.user` / `status.pass`,
both compared in constant time. With no credentials configured, nobody gets in.

When `prometheus` is enabled, `/metrics` alone is served on `status.host:prometheus.port` as
Gorouter serves it there: over mutual TLS (supervisor/prometheus_tls.py), where the scraper's
client certificate is its credential, so no basic auth.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import hdrs, web

from runtime import tls_listener
from runtime.config_model import Config
from supervisor.metrics import Snapshot, prometheus, varz
from supervisor.prometheus_tls import prometheus_context

NO_CACHE = {"Cache-Control": "private, max-age=0", "Expires": "0"}
# Gorouter binds its /routes listener here whatever status.host says: local tools only.
ROUTES_HOST = "127.0.0.1"
PROCESS_ALIVE_PATH = "/is-process-alive-do-not-use-for-loadbalancing"


class StatusListenError(Exception):
    """A status listener could not bind; the message names its key, address and the reason."""


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
        self._runners: list[web.AppRunner] = []

    def __repr__(self) -> str:
        status = self.config.status
        return f"StatusServer({status.host}:{status.port}, healthy={self.healthy})"

    def application(self) -> web.Application:
        """What `status.port` serves."""
        status = self.config.status
        app = web.Application()
        app.on_response_prepare.append(_without_server_header)
        if status.enable_nontls_health_checks:
            app.router.add_get("/health", self.health)
            app.router.add_get(PROCESS_ALIVE_PATH, self.process_alive)
            if status.enable_deprecated_varz_healthz_endpoints:
                app.router.add_get("/healthz", self.health)
        app.router.add_get("/routes", self.authenticated(self.routes))
        app.router.add_get("/varz", self.authenticated(self.varz))
        app.router.add_get("/metrics", self.authenticated(self.metrics))
        return app

    def routes_application(self) -> web.Application:
        """What `status.routes.port` serves: /routes alone, as Gorouter's routes listener."""
        app = web.Application()
        app.on_response_prepare.append(_without_server_header)
        app.router.add_get("/routes", self.authenticated(self.routes))
        return app

    def prometheus_application(self) -> web.Application:
        """What `prometheus.port` serves: /metrics alone, as Gorouter's metric registry."""
        app = web.Application()
        app.on_response_prepare.append(_without_server_header)
        app.router.add_get("/metrics", self.metrics)
        return app

    def health_tls_application(self) -> web.Application:
        """What `status.tls.port` serves: Gorouter's TLS health listener."""
        app = web.Application()
        app.on_response_prepare.append(_without_server_header)
        app.router.add_get("/health", self.health)
        app.router.add_get(PROCESS_ALIVE_PATH, self.process_alive)
        return app

    async def start(self) -> None:
        """Listen on status.port, the /routes port and, when set, status.tls.port and
        prometheus.port; StatusListenError if one cannot."""
        status = self.config.status
        try:
            await self._serve(self.application(), "status.port", status.host, status.port)
            await self._serve(
                self.routes_application(), "status.routes.port", ROUTES_HOST, status.routes.port
            )
            if status.tls.is_enabled:
                await self._serve(
                    self.health_tls_application(),
                    "status.tls.port",
                    status.host,
                    status.tls.port,
                    tls_listener.status_context(self.config),
                )
            prometheus = self.config.prometheus
            if prometheus.is_enabled:
                try:
                    context = prometheus_context(prometheus)
                except tls_listener.TlsConfigError as exc:
                    raise StatusListenError(f"{exc.key}: {exc.expected}") from None
                await self._serve(
                    self.prometheus_application(),
                    "prometheus.port",
                    status.host,
                    prometheus.port,
                    context,
                )
        except BaseException:
            await self.stop()
            raise

    async def _serve(
        self,
        app: web.Application,
        key: str,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # Status requests are short; a stop should not wait aiohttp's default minute for them.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        try:
            await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
        except OSError as exc:
            raise StatusListenError(
                f"cannot listen on {key} {host}:{port}: {exc.strerror or exc}"
            ) from None

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def health(self, request: web.Request) -> web.Response:
        if self.healthy:
            return web.Response(text="ok\n", headers=NO_CACHE)
        return web.Response(status=503, headers=NO_CACHE)

    async def process_alive(self, request: web.Request) -> web.Response:
        # Gorouter's liveness answer for process monitors: "ok" even while draining.
        return web.Response(text="ok\n")

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

"""A naive aiohttp reverse proxy: the baseline routerd must beat by a wide margin.

One `web.Application` per process and one shared `ClientSession` forwarding every request to a
single backend, reading the whole body and answering with it. No routing, no limits, no retries,
no header rules beyond dropping hop-by-hop headers. Runs `--processes` copies on one port with
SO_REUSEPORT (the same process count as routerd's workers), on uvloop like routerd.

    python -m benchmarks.naive_proxy --port 8080 --backend-port 9000 [--processes 2]
"""

from __future__ import annotations

import asyncio
import signal

import aiohttp
from aiohttp import web

from benchmarks.copies import run_copies

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)

SESSION = web.AppKey("session", aiohttp.ClientSession)


def build_app(backend: str) -> web.Application:
    app = web.Application()

    async def open_session(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
        app[SESSION] = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def close_session(app: web.Application) -> None:
        await app[SESSION].close()

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read() if request.can_read_body else None
        async with app[SESSION].request(
            request.method, backend + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(body=payload, status=upstream.status, headers=out)

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def serve(port: int, backend_port: int) -> None:
    runner = web.AppRunner(build_app(f"http://127.0.0.1:{backend_port}"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_port=True, backlog=4096)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    run_copies("benchmarks.naive_proxy", argv, serve)


if __name__ == "__main__":
    main()

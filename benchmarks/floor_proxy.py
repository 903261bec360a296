"""The floor: the least a Python HTTP/1.1 proxy built as routerd's workers are can do per request.

The same parts as routerd's request path and nothing else: uvloop, one `asyncio.Protocol` per
client connection over aiohttp's C request parser, one per backend connection over llhttp
(httptools), a keep-alive pool, and writes held to the end of the loop iteration (routerd's
WriteBatch). It forwards each request's bytes as received and each response's bytes as
received: no routing, no header rules, no request id, no counters, no access log, no limits or
deadlines. What routerd spends per request above this is what its features cost; what this
spends above nginx, no design on the same runtime and parser can save.

Only what the `proxy` benchmark sends is served: body-less requests, each in one read, answered
with a Content-Length. Anything else closes the client connection.

    python -m benchmarks.floor_proxy --port 8080 --backend-port 9000 [--processes 2]
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections import deque
from typing import Any, cast

import httptools
from aiohttp.http import HttpRequestParser

from benchmarks.copies import run_copies
from router.write_batch import WriteBatch

BACKLOG = 4096


class Held(asyncio.Protocol):
    """A connection whose writes join the worker's write batch, as routerd's do."""

    def __init__(self, batch: WriteBatch) -> None:
        self.batch = batch
        self.transport: asyncio.Transport | None = None
        self.held = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def write_soon(self, data: bytes) -> None:
        if not self.held:
            self.batch.hold(self)
        self.held += data

    def write_held(self) -> None:
        held, self.held = self.held, b""
        if held and self.transport is not None and not self.transport.is_closing():
            self.transport.write(held)


class Backend(Held):
    """A keep-alive connection to the backend, one exchange at a time."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(proxy.batch)
        self.proxy = proxy
        self.parser = httptools.HttpResponseParser(self)
        self.client: Client | None = None
        self.chunks: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.proxy.idle.append(self)
        if client is not None:
            client.write_soon(data)

    def connection_lost(self, exc: Exception | None) -> None:
        with contextlib.suppress(ValueError):
            self.proxy.idle.remove(self)
        if self.client is not None and self.client.transport is not None:
            self.client.transport.close()


class Client(Held):
    """A client connection: each complete request goes to an idle backend connection."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(proxy.batch)
        self.proxy = proxy
        self.parser: Any = HttpRequestParser(
            cast(Any, self), proxy.loop, 65536, max_line_size=8190, max_field_size=8190
        )

    def data_received(self, data: bytes) -> None:
        messages, _, _ = self.parser.feed_data(data)
        if len(messages) != 1 or not messages[0][1].at_eof():
            self._close()  # not one body-less request in one read: not served here
            return
        self.proxy.forward(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Proxy:
    def __init__(self, loop: asyncio.AbstractEventLoop, backend_port: int) -> None:
        self.loop = loop
        self.backend_port = backend_port
        self.batch = WriteBatch(loop)
        self.idle: deque[Backend] = deque()

    def forward(self, client: Client, request: bytes) -> None:
        if self.idle:
            self._send(self.idle.pop(), client, request)
        else:
            self.loop.create_task(self._dial(client, request))

    async def _dial(self, client: Client, request: bytes) -> None:
        _, backend = await self.loop.create_connection(
            lambda: Backend(self), "127.0.0.1", self.backend_port
        )
        self._send(backend, client, request)

    def _send(self, backend: Backend, client: Client, request: bytes) -> None:
        backend.client = client
        backend.write_soon(request)


async def serve(port: int, backend_port: int) -> None:
    loop = asyncio.get_running_loop()
    proxy = Proxy(loop, backend_port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    server = await loop.create_server(lambda: Client(proxy), sock=sock, backlog=BACKLOG)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> None:
    run_copies("benchmarks.floor_proxy", argv, serve)


if __name__ == "__main__":
    main()

"""A client's streamed request body, written to an HTTP/1 backend connection.

Written until the body ends or the response head arrives: a backend may answer before reading
the whole body (a 413, a redirect), and Go's transport (so Gorouter) stops sending then too.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from router.errors import BackendError, Kind
from router.exchange import ProxyRequest
from router.http1.writer import LAST_CHUNK, chunk


class BodySink(Protocol):
    """An HTTP/1 backend connection as the body is written to it (upstream.py)."""

    headers_done: bool

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...


async def send_body(req: ProxyRequest, conn: BodySink) -> None:
    source = req.body
    assert source is not None
    if req.expect_continue and req.send_continue is not None:
        req.send_continue()
    chunked = req.chunked
    while not conn.headers_done:
        try:
            data = await source.read()
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            raise BackendError(Kind.CLIENT_GONE, f"client request body: {exc}") from None
        if not data:
            if chunked:
                conn.write(LAST_CHUNK)
            return
        conn.write(chunk(data) if chunked else data)
        await conn.drain()


__all__ = ["send_body"]

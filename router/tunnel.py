"""WebSocket (and other Upgrade) tunnels, opened only after the backend really answered 101.

The 101 head goes to the client through aiohttp; after that aiohttp's parser is replaced by one
that hands every client byte to the backend connection, and backend bytes are written to the
client as they come. Either side closing ends the tunnel. No endpoint_timeout applies here, as in
Gorouter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from registry.shm.counters import Stat
from router.errors import BackendError
from router.upstream import UpstreamConnection

if TYPE_CHECKING:
    from router.exchange import Exchange
    from router.proxy import Proxy


class ClientToBackend:
    """Stands in for aiohttp's payload parser once the connection is upgraded."""

    def __init__(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        self.bytes = 0

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.bytes += len(data)
        if not self.conn.closed:
            self.conn.write(data)
        return False, b""

    def feed_eof(self) -> None:
        self.conn.close()


async def tunnel(
    request: web.BaseRequest,
    ex: Exchange,
    headers: list[tuple[str, str]],
    reason: str | None,
    proxy: Proxy,
) -> tuple[web.StreamResponse, int]:
    conn = ex.conn
    assert conn is not None
    proxy.row.stats[Stat.websocket_upgrades] += 1
    response = web.StreamResponse(status=101, reason=reason, headers=headers)
    await response.prepare(request)
    upstream_reader = ClientToBackend(conn)
    request.protocol.set_parser(upstream_reader)  # type: ignore[arg-type]
    sent = 0
    transport = request.transport
    try:
        while transport is not None and not transport.is_closing():
            chunk = await conn.read()
            if not chunk:
                break
            await response.write(chunk)
            sent += len(chunk)
    except (BackendError, ConnectionError):
        pass
    finally:
        conn.close()
        response.force_close()
        if transport is not None:
            transport.close()
    ex.request.content_length = upstream_reader.bytes
    return response, sent

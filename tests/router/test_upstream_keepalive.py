"""TCP keep-alive probes on backend connections: endpoint_keep_alive_probe_interval, with
Gorouter's (Go's) meaning of 0: probes every 15 s, not none and not every second."""

from __future__ import annotations

import asyncio
import socket

import pytest

from router.upstream_pool import UpstreamPool


async def probe_interval(configured: float) -> tuple[int, int, int]:
    served = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the router's side closes
        writer.close()
        await writer.wait_closed()
        served.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = UpstreamPool(
        dial_timeout=5.0,
        idle_timeout=1.0,
        max_idle_per_endpoint=1,
        keepalive_interval=configured,
        tls_context=None,
    )
    try:
        conn = await pool.dial("key", "127.0.0.1", port, tls=False, server_hostname="")
        assert conn.transport is not None
        sock = conn.transport.get_extra_info("socket")
        result = (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        )
        conn.close()
        await asyncio.wait_for(served.wait(), 5)
        return result
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("configured", "seconds"), [(1.0, 1), (0.5, 1), (30.0, 30), (0.0, 15)])
def test_keepalive_probe_interval(configured: float, seconds: int) -> None:
    enabled, idle, interval = asyncio.run(probe_interval(configured))
    assert enabled
    assert (idle, interval) == (seconds, seconds)

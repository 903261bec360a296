"""A WebSocket client conversation through the router, ended only once its socket is closed.

aiohttp closes a TLS connection by sending close_notify and waiting for the peer's; if the
event loop ends first, the socket underneath is left open and its ResourceWarning surfaces in
whichever later test the garbage collector happens to run in."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import aiohttp


async def _closed(sock: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sock is not None and sock.fileno() != -1:
        if time.monotonic() >= deadline:
            raise AssertionError(f"the client socket was still open after {timeout}s")
        await asyncio.sleep(0.01)


def websocket_replies(
    url: str,
    host: str,
    messages: list[str | bytes],
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
    timeout: float = 5,
) -> list[str | bytes]:
    """Send each message and collect the reply to it before sending the next."""

    async def talk() -> list[str | bytes]:
        options = {"ssl": tls, "server_hostname": server_name} if tls is not None else {}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, headers={"Host": host}, **options) as ws,
        ):
            sock = ws.get_extra_info("socket")
            replies = []
            for message in messages:
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_str(message)
                replies.append((await ws.receive(timeout=timeout)).data)
        await _closed(sock, timeout)
        return replies

    return asyncio.run(talk())

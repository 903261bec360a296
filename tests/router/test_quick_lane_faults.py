"""An error the quick lane does not expect must not leave a request counted as in flight or a
client waiting: the exchange is settled as a 500 and the connection closed."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from router.exchange import Exchange, ProxyRequest
from router.frontend import GorouterServer
from router.intake import IntakeLimits
from router.quick_lane import QuickLaneHandler
from runtime import logs
from tests.router.test_intake import _Transport


class _FailingProxy:
    """Routes nothing: `plan` raises, as a bug in routing would."""

    def __init__(self) -> None:
        self.finished: list[int] = []

    def begin(self, request: ProxyRequest) -> Exchange:
        return Exchange(request, 0.0)

    def plan(self, ex: Exchange) -> Any:
        raise RuntimeError("routing bug")

    def finish(self, ex: Exchange, status: int, sent: int) -> None:
        self.finished.append(status)


class _Frontend:
    def __init__(self) -> None:
        self.proxy = _FailingProxy()

    async def handle(self, request: Any) -> Any:
        raise AssertionError("the request must not reach aiohttp's loop")


@pytest.mark.asyncio
async def test_an_unexpected_error_settles_the_exchange_and_closes(monkeypatch):
    lines = io.BytesIO()
    monkeypatch.setattr(logs._sink, "stream", lines)
    frontend = _Frontend()
    server = GorouterServer(frontend, IntakeLimits(4096, 16, 5, 5, [0] * 128))  # type: ignore[arg-type]
    conn = server()
    assert isinstance(conn, QuickLaneHandler)
    transport = _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    await _until_waiting(conn)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
    assert frontend.proxy.finished == [500]
    assert transport.closed
    line = json.loads(lines.getvalue().splitlines()[-1])
    assert line["message"] == "quick-lane-failed"
    assert "routing bug" in line["data"]["error"]
    conn.connection_lost(None)


async def _until_waiting(conn: QuickLaneHandler) -> None:
    """Let aiohttp's per-connection task reach its wait for the first request."""
    for _ in range(100):
        if conn._waiter is not None:
            return
        await asyncio.sleep(0)
    raise AssertionError("aiohttp's loop never waited for a request")

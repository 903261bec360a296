"""A worker's HTTP/1 service: what its client connections (connection.py) share — the proxy,
the limits, the deadline scanner, the keep-alive timeout — and the set of them, for a graceful
stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from router.client_deadlines import ClientDeadlines
from router.http1.rules import Limits
from router.proxy import Proxy
from router.write_batch import WriteBatch


class Served(Protocol):
    """A connection as the server stops it."""

    def close_if_idle(self) -> bool: ...
    def abort(self) -> None: ...


class InFlight(Protocol):
    """An exchange as its connection starts it and tells it the client left (exchange.py)."""

    def start(self) -> None: ...
    def client_gone(self) -> None: ...


# Makes the exchange for a connection's next request, from the request's head and body.
ExchangeFactory = Callable[[Any, Any, Any], InFlight]


class Http1Server:
    def __init__(
        self,
        proxy: Proxy,
        limits: Limits,
        deadlines: ClientDeadlines,
        idle_timeout: float,
        exchange: ExchangeFactory,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.proxy = proxy
        self.stats = proxy.row.stats
        self.limits = limits
        self.deadlines = deadlines
        self.idle_timeout = idle_timeout
        # exchange.py's Http1Exchange (a stand-in serves tests of a connection alone).
        self.exchange = exchange
        self.connections: set[Served] = set()
        self.batch = WriteBatch(self.loop)  # whole responses (see FlowControlled.write_soon)
        self.draining = False
        self._all_closed = asyncio.Event()

    def __repr__(self) -> str:
        return f"Http1Server(connections={len(self.connections)}, draining={self.draining})"

    def forget(self, conn: Served) -> None:
        """`conn` has closed."""
        self.connections.discard(conn)
        if self.draining and not self.connections:
            self._all_closed.set()

    async def shutdown(self, timeout: float) -> None:
        """Stop gracefully: idle connections close now, busy ones after their response (with
        `Connection: close`); whatever is still open after `timeout` is cut."""
        self.draining = True
        for conn in list(self.connections):
            conn.close_if_idle()
        if self.connections:
            try:
                async with asyncio.timeout(timeout):
                    await self._all_closed.wait()
            except TimeoutError:
                pass
        for conn in list(self.connections):
            conn.abort()
        self.deadlines.close()


__all__ = ["Http1Server"]

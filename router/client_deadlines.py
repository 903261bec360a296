"""Deadlines on slow clients, checked by one timer per worker (never one timer per request).

A connection is armed only while the router waits for the rest of a request head or body (see
http1/intake.py); a keep-alive GET that arrives in one read never touches this. The timer runs
only while something is armed, every tenth of the shorter timeout (at most a second), so a
deadline fires at most that late.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

from registry.shm.counters import Stat
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.router")

NONE: Final = 0
HEADER: Final = 1
BODY: Final = 2


class SlowClient(Protocol):
    deadline: float
    deadline_kind: int

    def expire(self) -> None: ...

    def is_reading_paused(self) -> bool: ...


class ClientDeadlines:
    """The armed connections of one worker and the timer that closes the late ones."""

    def __init__(self, header_timeout: float, body_timeout: float, stats: Any) -> None:
        self.set_timeouts(header_timeout, body_timeout)
        self._stats = stats
        self._armed: set[SlowClient] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (
            f"ClientDeadlines(header={self.header_timeout}, body={self.body_timeout}, "
            f"armed={len(self._armed)})"
        )

    def set_timeouts(self, header_timeout: float, body_timeout: float) -> None:
        """A header timeout of 0 means none (Go's ReadHeaderTimeout 0, Gorouter's default)."""
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        shortest = min(header_timeout, body_timeout) if header_timeout > 0 else body_timeout
        self.tick = min(1.0, max(0.05, shortest / 10))

    def arm(self, client: SlowClient, kind: int) -> None:
        """Start (header: only if not running) or push back (body) the client's deadline."""
        timeout = self.header_timeout if kind == HEADER else self.body_timeout
        if timeout <= 0:
            self.disarm(client)
            return
        loop = self._loop or self._start()
        client.deadline = loop.time() + timeout
        client.deadline_kind = kind
        self._armed.add(client)
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._check)

    def disarm(self, client: SlowClient) -> None:
        client.deadline_kind = NONE
        self._armed.discard(client)

    def _start(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        return self._loop

    def _check(self) -> None:
        self._timer = None
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        for client in [c for c in self._armed if c.deadline <= now]:
            kind = client.deadline_kind
            if kind == BODY and client.is_reading_paused():
                # The router stopped reading (its buffer is full, the backend is slow): the
                # client is not the one stalling.
                client.deadline = now + self.body_timeout
                continue
            self.disarm(client)
            stat = Stat.client_header_timeouts if kind == HEADER else Stat.client_body_timeouts
            self._stats[stat] += 1
            log.info(
                "request-header-timeout" if kind == HEADER else "request-body-timeout",
                timeout=self.header_timeout if kind == HEADER else self.body_timeout,
            )
            client.expire()
        if self._armed:
            self._timer = loop.call_later(self.tick, self._check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed.clear()

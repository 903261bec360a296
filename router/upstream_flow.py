"""The flow of bytes on a backend connection, below its HTTP parsing (upstream.py).

The response body is held in order until the proxy reads it; reading from the backend pauses
while more than HIGH_WATER is held and resumes once a read brings it under LOW_WATER. Writing
waits (`drain`) while the transport's buffer is over its own high-water mark.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

from router.errors import BackendError

HIGH_WATER: Final = 1 << 20  # pause reading the backend when this much body is buffered
LOW_WATER: Final = 1 << 18


class UpstreamFlow(asyncio.Protocol):
    """The body held and the write side's pause state. Whether the response is complete or the
    exchange failed (`complete`, `_error`) is read here, and kept by the subclass,
    UpstreamConnection."""

    complete: bool  # the response has ended: its whole body is held or read
    _error: BackendError | None  # the exchange's failure, once it failed

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._body_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain(None)

    async def drain(self) -> None:
        if self.closed:
            raise self._error or self._lost_error(None)
        if not self._write_paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiter = waiter
        await waiter

    async def read(self) -> bytes:
        """The next body chunk; b"" once the body is complete."""
        while True:
            if self._body:
                chunk = self._body.popleft()
                self._buffered -= len(chunk)
                if self._reading_paused and self._buffered <= LOW_WATER and self.transport:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return chunk
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            waiter = self._loop.create_future()
            self._body_waiter = waiter
            try:
                await waiter
            finally:
                self._body_waiter = None

    def take_body(self) -> bytes:
        """The whole body, once `complete` (small responses take this fast path)."""
        body = b"".join(self._body) if len(self._body) != 1 else self._body[0]
        self._body.clear()
        self._buffered = 0
        return body

    def _lost_error(self, exc: Exception | None) -> BackendError:
        """What losing the connection now means for the exchange (the subclass knows)."""
        raise NotImplementedError

    def _push_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        wake(self._body_waiter)

    def _wake_drain(self, exc: Exception | None) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        if waiter is not None and not waiter.done():
            if exc is not None or self.closed:
                waiter.set_exception(self._error or self._lost_error(exc))
            else:
                waiter.set_result(None)


def wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


__all__ = ["HIGH_WATER", "LOW_WATER", "UpstreamFlow", "wake"]

"""Flow control of a client connection, both ways: the router stops reading while a request
body's buffer is full (aiohttp's StreamReader asks, through body_flow.py), and an exchange waits
while the client reads slower than the router writes; and its writes, held for the batch."""

from __future__ import annotations

import asyncio
from typing import cast

from aiohttp.tcp_helpers import tcp_nodelay

from router.http1.body_flow import BodyFlow
from router.http1.rules import Limits
from router.write_batch import WriteBatch


class FlowControlled(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, limits: Limits, batch: WriteBatch) -> None:
        self.body_flow = BodyFlow(self, loop, limits)
        self.parser = self.body_flow.parser
        self.transport: asyncio.Transport | None = None
        self.writing_paused = False
        self.write_waiter: asyncio.Future[None] | None = None
        self.batch = batch
        self.held = b""  # a whole response waiting for the batch

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = self.body_flow.transport = cast(asyncio.Transport, transport)
        tcp_nodelay(self.transport, True)  # as aiohttp's protocol did when this was one

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        self.body_flow.connection_lost(exc)
        waiter = self.write_waiter
        if waiter is not None:
            self.write_waiter = None
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("client connection lost"))

    def is_reading_paused(self) -> bool:
        """For the deadline scanner: a body stalled by the router is not the client's fault."""
        return self.body_flow.router_paused

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        waiter = self.write_waiter
        if waiter is not None:
            self.write_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None:
            if self.held:
                self.write_held()  # what was written before goes first
            transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """Write `data` with the worker's other held writes, once the loop has run the
        callbacks it polled for (write_batch.py)."""
        if self.transport is None:
            return
        if self.held:
            self.held += data
            return
        self.held = data
        self.batch.hold(self)

    def write_held(self) -> None:
        held = self.held
        if held:
            self.held = b""
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(held)

    async def drain(self) -> None:
        """Wait while the client is slower than the router writes."""
        if self.transport is None:
            raise ConnectionResetError("client connection lost")
        if not self.writing_paused:
            return
        waiter = self.write_waiter
        if waiter is None:
            waiter = self.write_waiter = asyncio.get_running_loop().create_future()
        await waiter

    def pause_transport(self) -> None:
        """Stop reading the socket (a full pipeline, a refusal, an early tunnel byte)."""
        transport = self.transport
        if transport is not None:
            transport.pause_reading()

    def resume_transport(self) -> None:
        transport = self.transport
        if transport is not None and not self.body_flow.router_paused:
            transport.resume_reading()


__all__ = ["FlowControlled"]

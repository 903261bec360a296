"""Flow control of a client connection, both ways: the router stops reading while a request
body's buffer is full (aiohttp's StreamReader asks, through the protocol it was given), and an
exchange waits while the client reads slower than the router writes."""

from __future__ import annotations

import asyncio

from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import HttpRequestParser
from mypy_extensions import mypyc_attr

from router.write_batch import WriteBatch


# aiohttp's body reader expects its own protocol class, which declares __slots__; mypyc's native
# classes cannot inherit those, so this class and its subclass stay Python classes, with their
# methods compiled all the same.
@mypyc_attr(native_class=False)
class FlowControlled(BaseProtocol):
    __slots__ = ("batch", "held", "router_paused", "write_waiter")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, parser: HttpRequestParser, batch: WriteBatch
    ) -> None:
        super().__init__(loop, parser)
        self.router_paused = False  # the router itself stopped reading (a full body buffer)
        self.write_waiter: asyncio.Future[None] | None = None
        self.batch = batch
        self.held = b""  # a whole response waiting for the batch

    def pause_reading(self) -> None:
        """The body buffer is full: the router stops reading."""
        self.router_paused = True
        super().pause_reading()

    def resume_reading(self, resume_parser: bool = True) -> None:
        self.router_paused = False
        super().resume_reading(resume_parser)

    def is_reading_paused(self) -> bool:
        """For the deadline scanner: a body stalled by the router is not the client's fault."""
        return self.router_paused

    def resume_writing(self) -> None:
        super().resume_writing()
        waiter = self.write_waiter
        if waiter is not None:
            self.write_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        waiter = self.write_waiter
        if waiter is not None:
            self.write_waiter = None
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("client connection lost"))
        super().connection_lost(exc)

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
        if transport is not None and not self.router_paused:
            transport.resume_reading()


__all__ = ["FlowControlled"]

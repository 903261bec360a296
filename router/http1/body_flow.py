"""The protocol aiohttp's request parser and body readers are given for a client connection.

aiohttp's body reader (StreamReader) stops and restarts reading through the protocol it was
made with, and expects aiohttp's own protocol class there. The client connection itself is a
compiled class that cannot inherit that one (its `__slots__`), so this small one stands beside
it: the parser is made with it, and it passes pauses and the parser's re-feeds on to the
connection's transport and to the connection. It runs only when a body's buffer fills.
"""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import HttpRequestParser

from router.http1.rules import Limits

# aiohttp's body buffer per request before it pauses reading (its own default read size).
BODY_BUFFER: Final = 64 * 1024


class Fed(Protocol):
    def data_received(self, data: bytes) -> None: ...


class BodyFlow(BaseProtocol):
    __slots__ = ("connection", "parser", "router_paused")

    def __init__(self, connection: Fed, loop: asyncio.AbstractEventLoop, limits: Limits) -> None:
        parser = HttpRequestParser(
            self,
            loop,
            BODY_BUFFER,
            max_line_size=limits.max_line,
            max_field_size=limits.max_head_bytes,
            max_headers=limits.header_count,
            auto_decompress=False,
        )
        super().__init__(loop, parser)
        self.parser = parser
        self.connection = connection
        self.router_paused = False  # the router itself stopped reading (a full body buffer)

    def pause_reading(self) -> None:
        """The body buffer is full: the router stops reading."""
        self.router_paused = True
        super().pause_reading()

    def resume_reading(self, resume_parser: bool = True) -> None:
        self.router_paused = False
        super().resume_reading(resume_parser)

    def data_received(self, data: bytes) -> None:
        # aiohttp's resume_reading feeds b"" so that the parser goes on with what it holds.
        self.connection.data_received(data)


__all__ = ["BODY_BUFFER", "BodyFlow"]

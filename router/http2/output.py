"""The sending half of a client's HTTP/2 connection: frames out through h2 as the client's
flow-control windows and the socket allow.

Frames go out once per loop iteration (`flush_soon`), so the frames of one response, and of
the streams answered together, share one TLS record and one system call. A stream's response
data waits (`send_data`) while the client's window for it, or for the
connection, is closed, or while the socket's buffer is full (`pause_writing`); each window
update, settings change or drained socket wakes the waiting streams to look again. So a client
that stops reading holds at most its windows in the router.
"""

from __future__ import annotations

import asyncio

from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError

from router.http2 import limits
from router.http2.fields import Fields
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.router")


class H2Output(asyncio.Protocol):
    """What a connection sends, and the streams waiting to send (see the module docstring)."""

    __slots__ = (
        "closed",
        "flush_due",
        "h2",
        "loop",
        "peer",
        "transport",
        "waiters",
        "writing_paused",
    )

    def __init__(
        self, h2: H2Connection, loop: asyncio.AbstractEventLoop, peer: tuple[str, int] | None
    ) -> None:
        self.h2 = h2
        self.loop = loop
        self.peer = peer  # from a PROXY header, else the socket's
        self.transport: asyncio.Transport | None = None
        self.waiters: list[asyncio.Future[None]] = []
        self.writing_paused = False
        self.closed = False
        self.flush_due = False  # a flush is scheduled (flush_soon)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def send_headers(self, stream_id: int, fields: Fields, end_stream: bool) -> None:
        try:
            self.h2.send_headers(stream_id, fields, end_stream=end_stream)
        except ProtocolError:
            raise ConnectionResetError("stream closed") from None
        self.flush_soon()

    async def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Send `data` as the client's windows and the socket allow; with `end_stream`, the
        last frame ends the stream."""
        offset = 0
        total = len(data)
        h2 = self.h2
        while True:
            room = await self._room(stream_id) if offset < total else 0
            size = min(room, total - offset, h2.max_outbound_frame_size)
            last = offset + size >= total
            try:
                h2.send_data(
                    stream_id, data[offset : offset + size], end_stream=end_stream and last
                )
            except ProtocolError:
                raise ConnectionResetError("stream closed") from None
            offset += size
            self.flush_soon()
            if last:
                return

    def end_stream(self, stream_id: int) -> None:
        try:
            self.h2.end_stream(stream_id)
        except ProtocolError:
            raise ConnectionResetError("stream closed") from None
        self.flush_soon()

    def reset_stream(self, stream_id: int, code: ErrorCodes) -> None:
        try:
            self.h2.reset_stream(stream_id, code)
        except ProtocolError:
            return  # closed already
        self.flush_soon()

    def acknowledge(self, stream_id: int, size: int) -> None:
        if size and not self.closed:
            try:
                self.h2.acknowledge_received_data(size, stream_id)
            except ProtocolError:
                return
            self.flush_soon()

    def flush_soon(self) -> None:
        """Write what h2 has to send once this loop iteration's callbacks have run: the
        frames of many streams (a response's HEADERS, DATA and END_STREAM) in one TLS write."""
        if not self.flush_due:
            self.flush_due = True
            self.loop.call_soon(self.flush)

    def flush(self) -> bool:
        """Write what h2 has to send; whether there was anything."""
        self.flush_due = False
        transport = self.transport
        if transport is None:
            return False
        data = self.h2.data_to_send()
        if not data:
            return False
        transport.write(data)
        if transport.get_write_buffer_size() > limits.OUTBOUND_LIMIT:
            log.info("http2-client-not-reading", remote=self._remote())
            self.abort()
        return True

    def abort(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.abort()

    async def _room(self, stream_id: int) -> int:
        """Bytes the client's windows let the stream send now; waits while there are none or
        the socket is full."""
        while True:
            if self.closed:
                raise ConnectionResetError("client connection lost")
            if not self.writing_paused:
                try:
                    room = self.h2.local_flow_control_window(stream_id)
                except ProtocolError:
                    raise ConnectionResetError("stream closed") from None
                if room > 0:
                    return room
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            await waiter

    def _wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _fail_waiters(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("client connection lost"))

    def _remote(self) -> str:
        return self.peer[0] if self.peer else ""


__all__ = ["H2Output"]

"""An HTTP/2 connection to a backend registered with `protocol: http2`: an asyncio protocol
around the `h2` package's state machine (no framing or HPACK of our own).

Theory of operation
===================

One connection carries many `H2Stream`s (upstream_h2_stream.py), each one attempt of one request.
A connection is usable once the backend's first SETTINGS frame arrived (its
MAX_CONCURRENT_STREAMS is known); it takes streams while it has fewer than that many active and
has not received GOAWAY. A stream is active from `open_stream` until the proxy releases it (its
response relayed or abandoned), so a slow client's buffered response still counts.

Flow control: the router advertises `STREAM_WINDOW` per stream and acknowledges DATA only as the
relay takes the bytes (`H2Stream.read`), so a stream buffers at most its window; the connection
window is `CONNECTION_WINDOW`. Request bodies are sent as the backend's windows allow; the
stream's writer waits (`H2Stream.drain`) while anything is left unsent.

GOAWAY: no new streams. Streams above its last_stream_id were never processed: they fail as a
connection lost before any response byte on a reused connection (the proxy's keep-alive race:
retried on a fresh connection when the request is idempotent and replayable). The others finish
(RFC 9113 6.8); the connection closes when the last is released. The h2 package closes its
connection state on GOAWAY and refuses every later frame (python-hyper/h2#1181), so input is fed
to it split after each GOAWAY frame (boundaries found with hyperframe, h2's own frame parser) and
its state machine is set open again after one. Losing the connection fails every stream.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Final, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.exceptions
import hyperframe.frame

from router.errors import BackendError, Kind
from router.failures import classify_tls_error, describe_lost
from router.upstream_h2_stream import H2Stream, own_copy

# Per stream, as much as an HTTP/1 connection buffers before pausing (upstream_flow.HIGH_WATER).
STREAM_WINDOW: Final = 1 << 20
# Enough for many streams to have their windows in flight at once.
CONNECTION_WINDOW: Final = 16 << 20
# Stream ids are 31 bits; a connection this close to the end takes no new streams.
LAST_STREAM_ID: Final = (1 << 31) - 1025
FRAME_HEADER: Final = 9


class H2Upstream(asyncio.Protocol):
    """One HTTP/2 connection to one endpoint, its streams multiplexed."""

    def __init__(self, key: str, scheme: bytes, on_lost: Callable[[H2Upstream], None]) -> None:
        self.key = key
        self.scheme = scheme
        self._on_lost = on_lost
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self.streams: dict[int, H2Stream] = {}  # by stream id, while h2 may send us frames
        self.active: set[H2Stream] = set()  # taken and not yet released
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.closed = False
        self.goaway = False
        self.write_paused = False
        self.started = 0  # streams opened on this connection
        # Gorouter's disable_keep_alives (Go's single-use connection): one stream, then closed.
        self.single_use = False
        self.idle_since = self._loop.time()
        self.error: BackendError | None = None
        # Where the backend's frames are: their boundaries, to split input after a GOAWAY.
        self._frame_header = bytearray()
        self._frame_left = 0
        self._in_goaway = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("goaway" if self.goaway else "open")
        return f"H2Upstream({self.key}, {state}, active={len(self.active)}, started={self.started})"

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.flush()

    def data_received(self, data: bytes) -> None:
        for piece in self._split_after_goaway(data):
            try:
                events = self.h2.receive_data(piece)
            except h2.exceptions.ProtocolError as exc:
                self._lose(BackendError(Kind.BAD_RESPONSE, f"http2: {exc}", self.started > 1))
                self.flush()
                self.abort()
                return
            for event in events:
                self._dispatch(event)
            if self.goaway and self.h2.state_machine.state is h2.connection.ConnectionState.CLOSED:
                # See the module's notes: streams below last_stream_id go on.
                self.h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        self.flush()

    def _split_after_goaway(self, data: bytes) -> list[bytes]:
        """`data` in pieces that each end with a whole GOAWAY frame (usually one piece)."""
        pieces: list[bytes] = []
        start = pos = 0
        size = len(data)
        while pos < size:
            if self._frame_left:
                step = min(self._frame_left, size - pos)
                pos += step
                self._frame_left -= step
                if not self._frame_left and self._in_goaway:
                    self._in_goaway = False
                    pieces.append(data[start:pos])
                    start = pos
                continue
            need = FRAME_HEADER - len(self._frame_header)
            self._frame_header += data[pos : pos + need]
            pos = min(pos + need, size)
            if len(self._frame_header) < FRAME_HEADER:
                break
            try:
                frame, length = hyperframe.frame.Frame.parse_frame_header(
                    memoryview(bytes(self._frame_header))
                )
            except hyperframe.exceptions.HyperframeError:
                length, frame = 0, None  # h2 reports it as it parses the same bytes
            self._frame_header.clear()
            self._frame_left = length
            if isinstance(frame, hyperframe.frame.GoAwayFrame):
                self._in_goaway = True
                if not length:
                    self._in_goaway = False
                    pieces.append(data[start:pos])
                    start = pos
        if start < size:
            pieces.append(data[start:])
        return pieces

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.error is None:
            self.error = self._lost_error(exc)
        self._lose(self.error)
        if not self.ready.done():
            # Lost before the backend's SETTINGS: no request was sent; another endpoint may do.
            detail = f"http2: handshake with {self.key} failed: {self.error.detail}"
            self.ready.set_exception(BackendError(Kind.DIAL, detail))
            self.ready.exception()  # the dialer may be gone: mark it seen
        self._on_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        for stream in list(self.streams.values()):
            stream.wake_writer()

    # -- streams ---------------------------------------------------------------------------------

    @property
    def max_streams(self) -> int:
        return self.h2.remote_settings.max_concurrent_streams

    @property
    def can_open(self) -> bool:
        """A new stream can start here now."""
        return (
            not self.closed
            and not self.goaway
            and self.ready.done()
            and len(self.active) < self.max_streams
            and self.h2.highest_outbound_stream_id < LAST_STREAM_ID
            and not (self.single_use and (self.active or self.started))
        )

    def open_stream(self) -> H2Stream:
        stream = H2Stream(self)
        self.active.add(stream)
        return stream

    def start(self, stream: H2Stream, fields: list[tuple[bytes, bytes]], end: bool) -> int:
        """Send a stream's HEADERS; its id."""
        if self.closed or self.goaway:
            raise own_copy(self.error or BackendError(Kind.CLOSED, "http2: closing", True))
        stream_id = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream_id, fields, end_stream=end)
        self.streams[stream_id] = stream
        self.started += 1
        return stream_id

    def release(self, stream: H2Stream) -> None:
        """A stream the proxy is done with; the connection closes once idle after GOAWAY."""
        self.active.discard(stream)
        if not self.active:
            self.idle_since = self._loop.time()
            if self.goaway or self.single_use:
                self.close()

    def reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        """RST_STREAM for a stream still open in h2."""
        self.streams.pop(stream_id, None)
        if self.closed:
            return
        try:
            self.h2.reset_stream(stream_id, code)
        except h2.exceptions.StreamClosedError:
            return
        self.flush()

    def acknowledge(self, size: int, stream_id: int) -> None:
        """Bytes the relay has taken: the backend may send that many more."""
        if size and not self.closed:
            self.h2.acknowledge_received_data(size, stream_id)
            self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        """Close politely (GOAWAY), then the socket."""
        if self.closed:
            return
        self.h2.close_connection()
        self.flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    # -- events ----------------------------------------------------------------------------------

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                stream.on_data(event.data, event.flow_controlled_length)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.on_head(event.headers)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.on_trailers(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.on_end()
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                stream.on_reset(event.error_code)
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id:
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.send_pending()
            else:
                for stream in list(self.streams.values()):
                    stream.send_pending()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.ready.done():
                self.ready.set_result(None)
            for stream in list(self.streams.values()):
                stream.send_pending()  # a new initial window may let more go
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._on_goaway(event)

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self.goaway = True
        last = event.last_stream_id if event.last_stream_id is not None else LAST_STREAM_ID
        code = event.error_code
        name = code.name if isinstance(code, h2.errors.ErrorCodes) else str(code)
        detail = f"http2: server sent GOAWAY and closed the connection; LastStreamID={last}"
        error = BackendError(Kind.CLOSED, f"{detail}, ErrCode={name}", True)
        if not self.ready.done():
            self.ready.set_exception(BackendError(Kind.DIAL, error.detail))
            self.ready.exception()
        for stream_id in [i for i in self.streams if i > last]:
            # Never processed by the backend: nothing of the response can have arrived.
            self.streams.pop(stream_id).on_refused(error)
        if not self.active:
            self.close()

    def _lose(self, error: BackendError) -> None:
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            stream.on_lost(error)

    def _lost_error(self, exc: Exception | None) -> BackendError:
        reused = self.started > 1
        if isinstance(exc, ssl.SSLError):
            return classify_tls_error(exc)
        if isinstance(exc, ConnectionResetError):
            return BackendError(Kind.RESET, "read: connection reset by peer", reused)
        if exc is not None:
            return BackendError(Kind.CLOSED, describe_lost(exc, "http2 connection"), reused)
        return BackendError(Kind.CLOSED, "EOF", reused)


__all__ = ["CONNECTION_WINDOW", "STREAM_WINDOW", "H2Upstream"]

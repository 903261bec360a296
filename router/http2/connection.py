"""One client's HTTP/2 connection: an asyncio protocol around h2's sans-I/O state machine.

Theory of operation
===================

Bytes go to `h2.connection.H2Connection`, which frames, decodes HPACK, checks the protocol and
flow control, and yields events; what it has to say back is written after each read. A request
(`RequestReceived`) starts one exchange (stream.py) in a task; DATA goes to that exchange's
body, whose window is given back only as the backend takes it. Responses go out as the client's
windows and the socket allow (`send_data` waits on either), so a client that stops reading
holds at most its window in the router.

What a client may cost is bounded (limits.py): h2 refuses streams past the advertised
SETTINGS_MAX_CONCURRENT_STREAMS, header blocks past `max_request_header_bytes` once decoded
(HPACK bombs), endless CONTINUATION frames and window overflows, each with GOAWAY; the router
itself closes with GOAWAY ENHANCE_YOUR_CALM a client resetting streams faster than its budget
(rapid reset) or flooding it with SETTINGS, PING, WINDOW_UPDATE, PRIORITY or empty DATA, and
cuts one whose unread acknowledgements pile up past OUTBOUND_LIMIT.

Until its first request the connection is held to `read_header_timeout` (the preface and the
first header block); without streams, to `frontend_idle_timeout`; a stream whose request body
stops arriving, to `request_body_timeout` (the stream is cancelled: a 499). Draining (the server's
shutdown) sends GOAWAY: streams in flight finish, and the connection closes with the last.
"""

from __future__ import annotations

import asyncio
from typing import cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    PingReceived,
    PriorityUpdated,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from router.client_deadlines import HEADER
from router.forwarded import Forwarding, tls_forwarding
from router.http1.server import Http1Server
from router.http2 import limits
from router.http2.fields import request_head
from router.http2.limits import Budget
from router.http2.output import H2Output
from router.http2.stream import H2Exchange
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.router")

_CONTROL_EVENTS = (PingReceived, RemoteSettingsChanged, WindowUpdated, PriorityUpdated)


class H2ClientConnection(H2Output):
    """A client's HTTP/2 connection to a worker (see the module docstring)."""

    # `deadline`/`deadline_kind`: for the per-worker deadline scanner.
    __slots__ = (
        "control_budget",
        "deadline",
        "deadline_kind",
        "exchanges",
        "forwarding",
        "goaway_sent",
        "idle_handle",
        "idle_since",
        "last_stream",
        "local",
        "reset_budget",
        "server",
    )

    def __init__(self, server: Http1Server, peer: tuple[str, int] | None = None) -> None:
        h2 = H2Connection(
            H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_inbound_headers=True,
                # The router's own fields are lower-case and stripped of what HTTP/2 forbids
                # (fields.py): checking them again would cost every response.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        super().__init__(h2, server.loop, peer)
        self.server = server
        self.local: tuple[str, int] = ("", 0)
        self.forwarding: Forwarding | None = None
        header_bytes = server.limits.max_head_bytes
        h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: limits.MAX_CONCURRENT_STREAMS,
                SettingCodes.MAX_HEADER_LIST_SIZE: header_bytes,
                SettingCodes.INITIAL_WINDOW_SIZE: limits.STREAM_WINDOW,
            },
        )
        # The advertised limit binds from the first header block, before the client's ACK.
        h2.decoder.max_header_list_size = header_bytes
        self.exchanges: dict[int, H2Exchange] = {}
        self.goaway_sent = False
        self.last_stream = 0  # after a drain's GOAWAY: the last stream the router serves
        now = server.loop.time()
        self.reset_budget = Budget(limits.RESET_BURST, limits.RESET_RATE, now)
        self.control_budget = Budget(limits.CONTROL_BURST, limits.CONTROL_RATE, now)
        self.deadline = 0.0
        self.deadline_kind = 0
        self.idle_handle: asyncio.TimerHandle | None = None
        self.idle_since = 0.0

    def __repr__(self) -> str:
        peer = f"{self.peer[0]}:{self.peer[1]}" if self.peer else "?"
        return f"H2ClientConnection({peer}, streams={len(self.exchanges)}, closed={self.closed})"

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        extra = transport.get_extra_info
        if self.peer is None:
            self.peer = extra("peername") or ("", 0)
        self.local = extra("sockname") or ("", 0)
        proxy = self.server.proxy
        self.forwarding = tls_forwarding(proxy.config, extra("ssl_object"), proxy.tls_forwarding)
        self.server.connections.add(self)
        h2 = self.h2
        h2.initiate_connection()
        h2.increment_flow_control_window(limits.CONNECTION_WINDOW - h2.inbound_flow_control_window)
        self.flush()
        # The preface and the first request's head are due within read_header_timeout.
        self.server.deadlines.arm(self, HEADER)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as exc:
            # h2 has queued a GOAWAY naming the error (but for a bad preface); send it, close.
            log.info("http2-protocol-error", error=str(exc), remote=self._remote())
            if not self.flush():
                self._goaway(ErrorCodes.PROTOCOL_ERROR)
            self._close()
            return
        try:
            for event in events:
                self._handle(event)
                if self.closed:
                    return
        except Exception as exc:  # a bug: this connection ends, the worker goes on
            log.error("http2-connection-failed", error=repr(exc), remote=self._remote())
            self._goaway(ErrorCodes.INTERNAL_ERROR)
            self._close()
            return
        self.flush()

    def eof_received(self) -> bool | None:
        return None  # the client is gone: close (streams in flight become 499s)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.transport = None
        self.server.forget(self)
        if self.deadline_kind:
            self.server.deadlines.disarm(self)
        if self.idle_handle is not None:
            self.idle_handle.cancel()
            self.idle_handle = None
        for exchange in list(self.exchanges.values()):
            exchange.client_gone()
        self._fail_waiters()

    # -- events ------------------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        if isinstance(event, RequestReceived):
            self._request(event)
        elif isinstance(event, DataReceived):
            self._data(event)
        elif isinstance(event, StreamEnded):
            exchange = self.exchanges.get(event.stream_id)
            if exchange is not None:
                exchange.body.end()
        elif isinstance(event, StreamReset):
            exchange = self.exchanges.get(event.stream_id)
            if exchange is not None:
                exchange.client_gone()
            if event.remote_reset and not self.reset_budget.take(self.server.loop.time()):
                self._calm_down("stream resets")
        elif isinstance(event, ConnectionTerminated):
            # The client is done: what is in flight finishes, then the connection closes.
            self.goaway_sent = True
            if not self.exchanges:
                self._close()
        elif isinstance(event, _CONTROL_EVENTS):
            if isinstance(event, WindowUpdated | RemoteSettingsChanged):
                self._wake()
            if not self.control_budget.take(self.server.loop.time()):
                self._calm_down("control frames")

    def _request(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None and event.headers is not None
        if self.deadline_kind:
            self.server.deadlines.disarm(self)
        if self.idle_handle is not None:
            self.idle_handle.cancel()
            self.idle_handle = None
        if self.last_stream and stream_id > self.last_stream:
            # Opened after the drain's GOAWAY had gone out: never served, safe to retry.
            self.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        head = request_head(event.headers)
        if head.method == "CONNECT" or not head.target:
            # Tunnels over HTTP/2 (RFC 8441 and CONNECT) are not offered.
            self.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            self._idle_if_unused()
            return
        exchange = H2Exchange(self, stream_id, head, has_body=event.stream_ended is None)
        self.exchanges[stream_id] = exchange
        exchange.start()

    def _data(self, event: DataReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        data = event.data or b""
        flow = event.flow_controlled_length or 0
        empty = not data and event.stream_ended is None
        if empty and not self.control_budget.take(self.server.loop.time()):
            self._calm_down("empty DATA frames")
            return
        exchange = self.exchanges.get(stream_id)
        if exchange is None:
            self.acknowledge(stream_id, flow)  # nobody reads it: the window goes back at once
            return
        exchange.body.push(data, flow)

    # -- for the streams ---------------------------------------------------------------------

    def exchange_done(self, stream_id: int, body_left: bool) -> None:
        self.exchanges.pop(stream_id, None)
        if self.closed:
            return
        if body_left:
            # The response is complete; the rest of the request body is not wanted.
            self.reset_stream(stream_id, ErrorCodes.NO_ERROR)
        if self.server.draining and not self.goaway_sent:
            self._announce_goaway()
        if self.goaway_sent and not self.exchanges:
            self._close()
            return
        self._idle_if_unused()

    # -- for the server and the deadline scanner ---------------------------------------------

    def close_if_idle(self) -> bool:
        """Draining: GOAWAY now; the connection closes once its streams have finished."""
        if self.closed:
            return True
        self._announce_goaway()
        if not self.exchanges:
            self._close()
            return True
        return False

    def expire(self) -> None:
        """No request in time: GOAWAY and close."""
        self._goaway(ErrorCodes.NO_ERROR)
        self._close()

    def is_reading_paused(self) -> bool:
        return False

    # -- internals ---------------------------------------------------------------------------

    def _calm_down(self, what: str) -> None:
        log.info("http2-flood-refused", flood=what, remote=self._remote())
        self._goaway(ErrorCodes.ENHANCE_YOUR_CALM)
        self._close()

    def _announce_goaway(self) -> None:
        """A graceful GOAWAY: the streams opened so far are still served.

        h2 lets nothing more be sent after its own GOAWAY (`close_connection`), so this one is
        serialized by hyperframe, the framing layer h2 itself uses, and h2's state is left
        open for the responses still to come."""
        if self.goaway_sent or self.closed or self.transport is None:
            return
        self.goaway_sent = True
        self.last_stream = self.h2.highest_inbound_stream_id or 0
        self.flush()
        frame = GoAwayFrame(0, last_stream_id=self.last_stream, error_code=ErrorCodes.NO_ERROR)
        self.transport.write(frame.serialize())

    def _goaway(self, code: ErrorCodes) -> None:
        if self.goaway_sent or self.closed:
            return
        self.goaway_sent = True
        try:
            self.h2.close_connection(error_code=code)
        except ProtocolError:
            return
        self.flush()

    def _close(self) -> None:
        """Close once what is written has gone out; streams left become 499s."""
        if self.closed:
            return
        self.flush()  # frames still waiting for flush_soon (a last response, a GOAWAY)
        self.closed = True
        transport = self.transport
        if transport is not None:
            transport.close()
        for exchange in list(self.exchanges.values()):
            exchange.client_gone()

    def _idle_if_unused(self) -> None:
        """Start (or push back) the idle timer once no stream is open."""
        if self.exchanges:
            return
        loop = self.server.loop
        self.idle_since = loop.time()
        if self.idle_handle is None and self.server.idle_timeout > 0:
            self.idle_handle = loop.call_later(self.server.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        self.idle_handle = None
        if self.exchanges or self.closed:
            return
        timeout = self.server.idle_timeout
        if timeout <= 0:
            return
        due = self.idle_since + timeout
        if self.server.loop.time() >= due:
            self._goaway(ErrorCodes.NO_ERROR)
            self._close()
        else:
            self.idle_handle = self.server.loop.call_at(due, self._idle_check)


__all__ = ["H2ClientConnection"]

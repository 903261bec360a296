"""An HTTP/2 connection to a backend (router/upstream_h2.py), driven by a backend made with the
`h2` package over an in-memory transport, its bytes fed one at a time."""

from __future__ import annotations

import asyncio
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest

from router.errors import BackendError, Kind
from router.exchange import Sending
from router.upstream_h2 import H2Upstream
from router.upstream_h2_stream import H2Stream

pytestmark = pytest.mark.asyncio
GET = b"GET /x HTTP/1.1\r\nHost: app.example.com\r\nX-Thing: 1\r\n\r\n"


class MemoryTransport(asyncio.Transport):
    """What the router writes, kept for the backend to read."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: Any) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def take(self) -> bytes:
        data = bytes(self.written)
        self.written.clear()
        return data


class Backend:
    def __init__(self, upstream: H2Upstream, transport: MemoryTransport) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.initiate_connection()
        self.upstream = upstream
        self.transport = transport

    def receive(self) -> list[Any]:
        return self.h2.receive_data(self.transport.take())

    def send_bytewise(self) -> None:
        for byte in self.h2.data_to_send():
            self.upstream.data_received(bytes([byte]))


def connect() -> tuple[H2Upstream, Backend]:
    lost: list[H2Upstream] = []
    upstream = H2Upstream("127.0.0.1:1/h2", b"http", lost.append)
    transport = MemoryTransport()
    upstream.connection_made(transport)
    backend = Backend(upstream, transport)
    backend.receive()
    backend.send_bytewise()  # its SETTINGS: the connection is ready
    backend.receive()
    return upstream, backend


def begin(upstream: H2Upstream, head: bytes = GET) -> H2Stream:
    stream = upstream.open_stream()
    stream.begin(head, Sending(is_head=False, closing=False, client_headers=(), on_interim=None))
    return stream


async def test_a_request_becomes_http2_fields_and_the_response_a_head():
    upstream, backend = connect()
    assert upstream.ready.done()
    stream = begin(upstream)
    [request, *_] = backend.receive()
    assert request.headers[:4] == [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"app.example.com"),
        (b":path", b"/x"),
    ]
    backend.h2.send_headers(1, [(b":status", b"200"), (b"content-type", b"text/plain")])
    backend.h2.send_data(1, b"hello")
    backend.h2.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    backend.send_bytewise()
    assert stream.headers_done and stream.complete
    assert stream.status == 200
    assert stream.head == b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    assert await stream.read() == b"hello"
    assert await stream.read() == b""
    assert stream.trailers == [(b"Grpc-Status", b"0")]
    stream.release()
    assert not upstream.active


async def test_goaway_refuses_later_streams_and_lets_earlier_ones_finish():
    upstream, backend = connect()
    first = begin(upstream)
    second = begin(upstream)
    backend.receive()
    backend.h2.close_connection(last_stream_id=1)
    # The backend finishes stream 1 after its GOAWAY, as graceful servers do (h2 itself would
    # refuse to: see the module notes of upstream_h2.py).
    backend.h2.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
    backend.h2.send_headers(1, [(b":status", b"200"), (b"content-length", b"2")])
    backend.h2.send_data(1, b"ok", end_stream=True)
    backend.send_bytewise()
    assert upstream.goaway and not upstream.can_open
    with pytest.raises(BackendError) as refused:
        second.check_head()
    assert refused.value.kind is Kind.CLOSED
    assert refused.value.reused
    assert "GOAWAY" in refused.value.detail
    first.check_head()
    assert first.complete
    assert first.take_body() == b"ok"
    second.close()
    assert not upstream.closed  # stream 1 is still the proxy's
    first.release()
    assert upstream.closed


async def test_a_reset_before_the_head_fails_the_stream_only():
    upstream, backend = connect()
    first = begin(upstream)
    second = begin(upstream)
    backend.receive()
    backend.h2.reset_stream(1, h2.errors.ErrorCodes.INTERNAL_ERROR)
    backend.send_bytewise()
    with pytest.raises(BackendError) as reset:
        first.check_head()
    assert reset.value.kind is Kind.RESET
    assert second.head_waiter() is not None  # still waiting
    assert upstream.can_open


async def test_release_before_the_end_cancels_the_stream():
    upstream, backend = connect()
    stream = begin(upstream)
    backend.receive()
    stream.release()
    events = backend.receive()
    resets = [e for e in events if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(1, h2.errors.ErrorCodes.CANCEL)]


async def test_streams_are_limited_by_the_backends_max_concurrent_streams():
    upstream, backend = connect()
    backend.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    backend.send_bytewise()
    streams = [begin(upstream), begin(upstream)]
    assert not upstream.can_open
    streams[0].release()
    assert upstream.can_open


async def test_a_lost_connection_fails_every_stream_with_its_own_error():
    upstream, _ = connect()
    first = begin(upstream)
    second = begin(upstream)
    upstream.connection_lost(ConnectionResetError())
    errors = []
    for stream in (first, second):
        with pytest.raises(BackendError) as lost:
            stream.check_head()
        errors.append(lost.value)
    assert errors[0] is not errors[1]
    assert {e.kind for e in errors} == {Kind.RESET}


async def test_goaway_and_the_rest_of_a_response_in_one_read():
    upstream, backend = connect()
    first = begin(upstream)
    begin(upstream)
    backend.receive()
    backend.h2.close_connection(last_stream_id=1)
    backend.h2.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
    backend.h2.send_headers(1, [(b":status", b"200"), (b"content-length", b"2")])
    backend.h2.send_data(1, b"ok", end_stream=True)
    upstream.data_received(backend.h2.data_to_send())
    assert first.complete
    assert first.take_body() == b"ok"

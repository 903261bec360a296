"""Hostile HTTP/2 clients, each written with the `h2` package over real TLS to a real routerd:
after each, the attacker's connection has been told (GOAWAY or RST_STREAM), another client is
answered normally, and the worker's memory has not grown by more than 20 MiB."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import hpack
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.router.http2.conftest import HOST, ssl_port
from tests.support.h2_client import H2Client, tls_socket
from tests.support.routerd import Routerd

pytestmark = pytest.mark.integration

HEADER_BYTES = 16 * 1024
RSS_GROWTH_LIMIT = 20 << 20
REQUEST = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":scheme", b"https"),
    (b":authority", HOST.encode()),
]


@pytest.fixture(scope="module")
def router(start_tls_router: Callable[..., Routerd]) -> Routerd:
    return start_tls_router(max_request_header_bytes=HEADER_BYTES)


def worker_rss(router: Routerd) -> int:
    (pid,) = router.worker_pids()
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match, status
    return int(match[1]) * 1024


@pytest.fixture
def unharmed(router: Routerd) -> Iterator[None]:
    """After the test: another client is served, and the worker's RSS grew by < 20 MiB."""
    before = worker_rss(router)
    yield
    with H2Client(ssl_port(router)) as client:
        response = client.request("GET", "/after", HOST)
    assert response.status == 200, response
    grown = worker_rss(router) - before
    assert grown < RSS_GROWTH_LIMIT, f"worker RSS grew by {grown / 2**20:.1f} MiB"


def told_off(client: H2Client, code: h2.errors.ErrorCodes) -> None:
    """The router sent GOAWAY with `code` and closed the connection."""
    client.read_until_closed()
    assert client.goaway is not None, "no GOAWAY before the connection closed"
    assert client.goaway.error_code == code


def raw_frames(client: H2Client, frames: list[bytes]) -> None:
    """Frames written past the client's own state machine."""
    # The router may close before it has read them all.
    with contextlib.suppress(ConnectionError, OSError):
        client.sock.sendall(b"".join(frames))


@pytest.mark.usefixtures("unharmed")
def test_rapid_reset_is_stopped_with_enhance_your_calm(router: Routerd) -> None:
    client = H2Client(ssl_port(router))
    with client:
        for _ in range(20):
            for _stream in range(50):
                stream = client.h2.get_next_available_stream_id()
                client.h2.send_headers(
                    stream, [*REQUEST[:1], (b":path", b"/slow?seconds=5"), *REQUEST[2:]]
                )
                client.h2.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
            try:
                client.send_pending()
            except (ConnectionError, OSError):
                break
        told_off(client, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
    events = router.events_named("http2-flood-refused")
    assert any(event["data"]["flood"] == "stream resets" for event in events), events


@pytest.mark.usefixtures("unharmed")
def test_continuation_flood_without_end_headers_is_a_protocol_error(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        block = client.h2.encoder.encode(REQUEST)
        first = HeadersFrame(1, data=block, flags=["END_STREAM"])
        frames = [first.serialize()]
        filler = b"\x00" * 16_000
        frames += [ContinuationFrame(1, data=filler).serialize() for _ in range(200)]
        raw_frames(client, frames)
        told_off(client, h2.errors.ErrorCodes.PROTOCOL_ERROR)


@pytest.mark.usefixtures("unharmed")
def test_hpack_bomb_past_max_request_header_bytes_is_refused(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        encoder = hpack.Encoder()
        bomb = (b"x-bomb", b"a" * 4000)
        # One literal into the dynamic table, then a one-byte reference to it, many times:
        # a small block that decodes to more than HEADER_BYTES (and less than h2's own 64 KiB).
        block = encoder.encode([*REQUEST, *[bomb] * 12])
        assert len(block) < 16_000
        client.h2.encoder = encoder
        raw_frames(
            client, [HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize()]
        )
        told_off(client, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
    errors = [event["data"]["error"] for event in router.events_named("http2-protocol-error")]
    assert any("header" in error.lower() for error in errors), errors


@pytest.mark.usefixtures("unharmed")
def test_more_streams_than_advertised_are_refused(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        client.read_once()  # the router's SETTINGS
        limit = client.h2.remote_settings.max_concurrent_streams
        assert limit == 250
        encoder = client.h2.encoder
        frames = []
        for n in range(limit + 5):
            fields = [REQUEST[0], (b":path", b"/slow?seconds=3"), *REQUEST[2:]]
            frames.append(
                HeadersFrame(
                    1 + 2 * n, data=encoder.encode(fields), flags=["END_HEADERS", "END_STREAM"]
                ).serialize()
            )
        raw_frames(client, frames)
        client.read_until_closed()
        assert client.goaway is not None
        assert client.goaway.error_code in (
            h2.errors.ErrorCodes.PROTOCOL_ERROR,
            h2.errors.ErrorCodes.REFUSED_STREAM,
        )


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0}), id="settings"),
        pytest.param(PingFrame(0, opaque_data=b"12345678"), id="ping"),
        pytest.param(WindowUpdateFrame(0, window_increment=1), id="window-update"),
    ],
)
@pytest.mark.usefixtures("unharmed")
def test_control_frame_floods_are_stopped(router: Routerd, frame) -> None:
    with H2Client(ssl_port(router)) as client:
        raw_frames(client, [frame.serialize()] * 20_000)
        told_off(client, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)


@pytest.mark.usefixtures("unharmed")
def test_window_overflow_is_a_flow_control_error(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        overflow = WindowUpdateFrame(0, window_increment=2**31 - 1).serialize()
        raw_frames(client, [overflow, overflow])
        told_off(client, h2.errors.ErrorCodes.FLOW_CONTROL_ERROR)


@pytest.mark.usefixtures("unharmed")
def test_a_stream_that_never_reads_holds_only_its_window(router: Routerd) -> None:
    client = H2Client(ssl_port(router))
    with client:
        stream = client.h2.get_next_available_stream_id()
        client.h2.send_headers(
            stream, [REQUEST[0], (b":path", b"/bytes/500000000"), *REQUEST[2:]], end_stream=True
        )
        client.send_pending()
        received = 0
        # Read frames without ever opening the window again.
        while received < 65_535:
            data = client.sock.recv(65536)
            assert data, "connection closed"
            for event in client.h2.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    received += len(event.data)
        assert received == 65_535  # the router sent its window's worth, not a byte more
        # Meanwhile the router goes on serving (the `unharmed` check), holding little.
        with H2Client(ssl_port(router)) as other:
            assert other.request("GET", "/", HOST).status == 200
        client.h2.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
        client.send_pending()


def test_a_preface_that_is_not_http2_gets_goaway(router: Routerd, unharmed: None) -> None:
    sock = tls_socket(ssl_port(router), ["h2"])
    with sock:
        assert sock.selected_alpn_protocol() == "h2"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    parser = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    parser.initiate_connection()
    events = parser.receive_data(received)
    goaways = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaways and goaways[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


@pytest.mark.usefixtures("unharmed")
def test_h2c_upgrade_headers_on_a_tls_h2_connection_are_refused(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        fields = [
            *REQUEST,
            (b"connection", b"Upgrade, HTTP2-Settings"),
            (b"upgrade", b"h2c"),
            (b"http2-settings", b"AAMAAABkAARAAAAAAAIAAAAA"),
        ]
        block = client.h2.encoder.encode(fields)
        raw_frames(
            client, [HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize()]
        )
        told_off(client, h2.errors.ErrorCodes.PROTOCOL_ERROR)

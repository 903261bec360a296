"""A backend connection's chunked trailer fields: collected by a second parser that only a
chunked response gets, so they must survive every way the bytes can arrive (whole, one byte at
a time, the head alone first, after 1xx heads) and nothing else may pass for them (the head's
fields, bytes after the response)."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from router.exchange import Sending
from router.upstream import UpstreamConnection
from tests.router.test_upstream_heads import EARLY, Transport

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-Head: h\r\n\r\n"
BODY = b"5\r\nhello\r\n6\r\n world\r\n0\r\n"
TRAILER = b"X-Sum: 42\r\nX-Status: 0\r\n\r\n"


def received(*reads: bytes) -> UpstreamConnection:
    async def run() -> UpstreamConnection:
        conn = UpstreamConnection("127.0.0.1:1", lambda _conn: None)
        conn.connection_made(Transport())  # type: ignore[arg-type]
        conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), None))
        for data in reads:
            conn.data_received(data)
        return conn

    return asyncio.run(run())


def one_byte_each(data: bytes) -> list[bytes]:
    return [data[index : index + 1] for index in range(len(data))]


@pytest.mark.parametrize(
    "reads",
    [
        [HEAD + BODY + TRAILER],
        one_byte_each(HEAD + BODY + TRAILER),
        [HEAD, BODY, TRAILER],
        [HEAD + BODY[:3], BODY[3:] + TRAILER[:4], TRAILER[4:]],
        [EARLY + HEAD + BODY + TRAILER],
        [EARLY, HEAD[:10], HEAD[10:] + BODY, TRAILER],
    ],
    ids=["whole", "byte-by-byte", "head-body-trailer", "split-mid-field", "after-1xx", "1xx-split"],
)
def test_a_chunked_responses_trailer_fields_are_collected_however_they_arrive(
    reads: list[bytes],
) -> None:
    conn = received(*reads)
    assert conn.complete
    assert conn.trailers == [(b"X-Sum", b"42"), (b"X-Status", b"0")]
    assert conn.status == 200


def test_chunked_is_recognised_in_any_case() -> None:
    conn = received(HEAD.replace(b"chunked", b"ChUnKeD") + BODY + TRAILER)
    assert conn.trailers == [(b"X-Sum", b"42"), (b"X-Status", b"0")]


def test_a_chunked_response_without_trailers_has_none() -> None:
    conn = received(HEAD + BODY + b"\r\n")
    assert conn.complete
    assert conn.trailers == []


def test_a_length_delimited_response_has_no_trailers_and_no_second_parser() -> None:
    conn = received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Sum: 1\r\n\r\nok")
    assert conn.complete
    assert conn.trailers == []


def test_bytes_after_the_response_are_not_trailers() -> None:
    conn = received(HEAD + BODY + TRAILER + b"HTTP/1.1 200 OK\r\nX-Late: 1\r\n\r\n")
    assert conn.trailers == [(b"X-Sum", b"42"), (b"X-Status", b"0")]
    assert not conn.is_reusable


def test_the_next_exchange_on_the_connection_starts_with_no_trailers() -> None:
    async def run() -> UpstreamConnection:
        conn = UpstreamConnection("127.0.0.1:1", lambda _conn: None)
        conn.connection_made(Transport())  # type: ignore[arg-type]
        conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), None))
        conn.data_received(HEAD + BODY + TRAILER)
        assert conn.trailers
        conn.done()
        conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), None))
        conn.data_received(HEAD + BODY + b"\r\n")
        return conn

    conn = asyncio.run(run())
    assert conn.complete
    assert conn.trailers == []


def test_a_long_length_delimited_body_is_not_held_for_a_trailer_parser() -> None:
    """The reads after the head are kept only until the body's first byte says it is not
    chunked: a body streamed through in many reads must not pile up."""
    reads, size = 200, 64 * 1024

    async def run() -> int:
        conn = UpstreamConnection("127.0.0.1:1", lambda _conn: None)
        conn.connection_made(Transport())  # type: ignore[arg-type]
        conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), None))
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (reads * size))
        tracemalloc.start()
        for index in range(reads - 1):
            conn.data_received(bytes([index % 256]) * size)
            assert len(conn.take_body()) == size
        held, _ = tracemalloc.get_traced_memory()  # before the last read completes it
        tracemalloc.stop()
        conn.data_received(bytes(size))
        assert conn.complete
        return held

    assert asyncio.run(run()) < 4 * size

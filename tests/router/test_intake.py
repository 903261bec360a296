"""The intake checks on their own: requests fed to a connection handler whole and byte by byte,
without sockets; what gets queued for the front end is what the tests look at."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from router.frontend import GorouterServer
from router.intake import HEAD_SLACK, GuardedRequestHandler, IntakeLimits, head_size

LIMIT = 4096


class _Transport:
    """Just enough of a transport for aiohttp's handler; records what is written and closed."""

    def __init__(self) -> None:
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def set_write_buffer_limits(self, *args: Any, **kwargs: Any) -> None: ...


class _Frontend:
    proxy = None  # no quick lane: every request is queued for aiohttp's loop, as checked here

    async def handle(self, request: Any) -> Any:
        raise AssertionError("the front end is not run in these tests")


@pytest_asyncio.fixture
async def handler() -> AsyncIterator[GuardedRequestHandler]:
    stats = [0] * 128
    server = GorouterServer(_Frontend(), IntakeLimits(LIMIT, 16, 0.5, 0.5, stats))  # type: ignore[arg-type]
    conn = server()
    assert isinstance(conn, GuardedRequestHandler)
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    yield conn
    if conn._task_handler is not None:
        conn._task_handler.cancel()


def queued(conn: GuardedRequestHandler) -> list[tuple[str, Any]]:
    """What the front end would get, in order: ("request", target) or ("refused", the status
    the client is answered)."""
    out = []
    for message, _ in conn._messages:
        status = getattr(message, "status", None)
        if status is None:
            out.append(("request", message.path))
        else:
            out.append(("refused", conn.answer_status(status, message.exc)))
    return out


def feed(conn: GuardedRequestHandler, data: bytes, one_byte: bool) -> None:
    if one_byte:
        for index in range(len(data)):
            conn.data_received(data[index : index + 1])
    else:
        conn.data_received(data)


GOOD = b"GET /good HTTP/1.1\r\nHost: a.example.com\r\nX-A: b\r\n\r\n"


@pytest.mark.asyncio
@pytest.mark.parametrize("one_byte", [False, True], ids=["whole", "byte-by-byte"])
async def test_a_good_request_is_queued_once(handler, one_byte):
    feed(handler, GOOD, one_byte)
    assert queued(handler) == [("request", "/good")]
    assert handler.deadline_kind == 0  # no deadline left armed once the head is complete


@pytest.mark.asyncio
@pytest.mark.parametrize("one_byte", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # Whole, the next request's bytes are in the same read: llhttp refuses that read (400).
        (b"GET /v HTTP/2.0\r\nHost: a\r\n\r\n", (400, 505)),
        (b"GET /v HTTP/9.9\r\nHost: a\r\n\r\n", 400),  # llhttp's own refusal
        (b"GET /v HTTP/1.2\r\nHost: a\r\n\r\n", 400),
        (b"GET /v\r\nHost: a\r\n\r\n", 400),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 400),
        (b"POST /t HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET /big HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * LIMIT + b"\r\n\r\n", 431),
    ],
    ids=[
        "http-2.0",
        "http-9.9",
        "http-1.2",
        "http-0.9",
        "connect",
        "te-http10",
        "te-gzip-chunked",
        "too-large",
    ],
)
async def test_refused_requests_are_answered_in_their_place(
    handler, request_bytes, status, one_byte
):
    feed(handler, GOOD + request_bytes + GOOD, one_byte)
    # The refused request is answered and nothing after it is parsed. The good one before it is
    # served, unless it came in the same read as a request llhttp itself ends the connection
    # after (HTTP/1.0 and 0.9 ones): aiohttp then answers the whole read with one error.
    result = queued(handler)
    if isinstance(status, tuple):
        status = status[one_byte]
    assert result[-1] == ("refused", status)
    if one_byte:
        assert result[:-1] == [("request", "/good")]
    else:
        assert result[:-1] in ([("request", "/good")], [])


@pytest.mark.asyncio
async def test_an_endless_head_is_refused_while_it_is_still_arriving(handler):
    # Lines under aiohttp's own per-line limit, fewer than max_headers when refused: only the
    # total counts against them.
    head = b"GET /endless HTTP/1.1\r\nHost: a\r\n" + (b"X-Pad: " + b"p" * 600 + b"\r\n") * 15
    fed = 0
    while not handler._messages and fed < len(head):
        handler.data_received(head[fed : fed + 1])
        fed += 1
    assert queued(handler) == [("refused", 431)]
    # Refused once the bytes are past the limit and its slack, before the head ends.
    assert fed <= LIMIT + HEAD_SLACK + 1 < len(head)


@pytest.mark.asyncio
async def test_a_partial_head_arms_the_header_deadline(handler):
    handler.data_received(GOOD[:10])
    assert handler.deadline_kind == 1
    handler.data_received(GOOD[10:])
    assert handler.deadline_kind == 0


@pytest.mark.asyncio
async def test_a_head_begun_after_a_request_in_the_same_read_arms_the_header_deadline(handler):
    handler.data_received(GOOD + GOOD[:10])
    assert queued(handler) == [("request", "/good")]
    assert handler.deadline_kind == 1
    handler.data_received(GOOD[10:])
    assert queued(handler) == [("request", "/good"), ("request", "/good")]
    assert handler.deadline_kind == 0


@pytest.mark.asyncio
async def test_an_incomplete_body_arms_the_body_deadline(handler):
    handler.data_received(b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345")
    assert handler.deadline_kind == 2
    handler.data_received(b"67890")
    assert handler.deadline_kind == 0


def test_head_size_counts_as_gorouter_does() -> None:
    class Message:
        method = "GET"
        path = "/abc"
        raw_headers = ((b"Host", b"a.example.com"), (b"X-A", b"b"))

    # "GET /abc HTTP/1.1\r\n" + "Host: a.example.com\r\n" + "X-A: b\r\n"
    assert head_size(Message()) == 19 + 21 + 8


@pytest.mark.asyncio
async def test_slow_head_is_closed_by_the_deadline(handler):
    handler.data_received(GOOD[:10])
    transport = handler.transport
    for _ in range(200):  # bounded: the deadline is 0.5 s, checked every 0.05 s
        if transport is None or handler.transport is None:
            break
        await asyncio.sleep(0.02)
    assert handler.transport is None  # force_close() dropped it

"""A backend connection's response heads: 1xx interim heads handed on as they complete, and
the head limits (max_response_header_bytes, max_response_headers) failing the exchange with
Gorouter's error text. Fed whole and one byte at a time. And the callback told of the final head
(or of a failure before it) once the read that brought it is parsed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from router.errors import BackendError, Kind
from router.exchange import Sending
from router.response_heads import ResponseLimits
from router.upstream import UpstreamConnection

EARLY = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
FINAL = b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 2\r\n\r\nok"


class Transport:
    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str) -> None:
        return None


def opened(limits: ResponseLimits | None = None) -> UpstreamConnection:
    """A backend connection with a GET sent on it (inside a running loop)."""
    conn = UpstreamConnection("127.0.0.1:1", lambda _conn: None, limits=limits)
    conn.connection_made(Transport())  # type: ignore[arg-type]
    conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), None))
    return conn


def pieces(data: bytes, byte_by_byte: bool) -> Iterator[bytes]:
    if byte_by_byte:
        yield from (data[index : index + 1] for index in range(len(data)))
    else:
        yield data


def exchange(
    data: bytes, limits: ResponseLimits, byte_by_byte: bool
) -> tuple[UpstreamConnection, list[tuple[int, bytes]], BackendError | None]:
    async def run() -> tuple[UpstreamConnection, list[tuple[int, bytes]], BackendError | None]:
        conn = UpstreamConnection("127.0.0.1:1", lambda _conn: None, limits=limits)
        conn.connection_made(Transport())  # type: ignore[arg-type]
        interim: list[tuple[int, bytes]] = []
        on_interim = lambda status, head: interim.append((status, head))  # noqa: E731
        conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), on_interim))
        for piece in pieces(data, byte_by_byte):
            if conn.closed:
                break
            conn.data_received(piece)
        try:
            conn.check_head()
        except BackendError as error:
            return conn, interim, error
        return conn, interim, None

    return asyncio.run(run())


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_interim_heads_are_handed_on_before_the_final_one(byte_by_byte: bool) -> None:
    conn, interim, error = exchange(EARLY + EARLY + FINAL, ResponseLimits(), byte_by_byte)
    assert error is None
    assert interim == [(103, EARLY[:-2]), (103, EARLY[:-2])]
    assert conn.status == 200 and conn.head == FINAL[: FINAL.index(b"\r\n\r\n") + 2]
    assert conn.complete and conn.take_body() == b"ok"


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_a_head_at_the_limit_passes_and_one_byte_more_fails(byte_by_byte: bool) -> None:
    size = len(EARLY) + FINAL.index(b"\r\n\r\n") + 4  # 1xx heads count too
    _, _, error = exchange(EARLY + FINAL, ResponseLimits(head_bytes=size), byte_by_byte)
    assert error is None
    conn, _, error = exchange(EARLY + FINAL, ResponseLimits(head_bytes=size - 1), byte_by_byte)
    assert error is not None and error.kind is Kind.BAD_RESPONSE
    assert error.detail == (
        "net/http: HTTP/1.x transport connection broken: net/http: server response headers "
        f"exceeded {size - 1} bytes; aborted"
    )
    assert conn.closed and not conn.is_reusable


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_an_endless_head_is_cut_at_the_limit(byte_by_byte: bool) -> None:
    endless = b"HTTP/1.1 200 OK\r\n" + b"X-More: yes\r\n" * 100
    conn, _, error = exchange(endless, ResponseLimits(head_bytes=64), byte_by_byte)
    assert error is not None and "exceeded 64 bytes" in error.detail
    assert conn.closed


@pytest.mark.parametrize(("limit", "fails"), [(3, False), (2, True), (0, False), (-1, False)])
def test_header_lines_over_the_count_limit_fail(limit: int, fails: bool) -> None:
    _, _, error = exchange(FINAL, ResponseLimits(headers=limit), False)
    if fails:
        assert error is not None and error.detail == "too many response headers: 3 > 2"
    else:
        assert error is None


def head_calls(reads: list[bytes], limits: ResponseLimits) -> list[tuple[int, bytes, bool]]:
    """What a callback registered with `call_at_head` saw, each time it was called: the status,
    the body taken, and whether the exchange had failed; after one loop turn."""

    async def run() -> list[tuple[int, bytes, bool]]:
        conn = opened(limits)
        calls: list[tuple[int, bytes, bool]] = []

        def on_head() -> None:
            try:
                conn.check_head()
            except BackendError:
                calls.append((conn.status, b"", True))
                return
            calls.append((conn.status, conn.take_body(), False))

        assert conn.call_at_head(on_head)
        for data in reads:
            conn.data_received(data)
        await asyncio.sleep(0)
        return calls

    return asyncio.run(run())


def test_a_head_callback_runs_once_the_read_is_parsed_whole_body_included() -> None:
    # Called from the read itself, after its body: a whole response is answered at once.
    assert head_calls([FINAL], ResponseLimits()) == [(200, b"ok", False)]
    assert head_calls([FINAL[:20], FINAL[20:]], ResponseLimits()) == [(200, b"ok", False)]
    # Interim heads do not call it; the final one does.
    assert head_calls([EARLY + FINAL], ResponseLimits()) == [(200, b"ok", False)]


def test_a_head_callback_hears_of_a_failure_before_the_head() -> None:
    calls = head_calls([FINAL], ResponseLimits(head_bytes=10))
    assert calls == [(0, b"", True)]
    calls = head_calls([b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"], ResponseLimits())
    assert calls == [(0, b"", True)]


def test_a_head_callback_is_refused_once_the_head_is_here_and_dropped_when_done() -> None:
    async def run() -> tuple[bool, int]:
        conn = opened()
        conn.data_received(FINAL)
        refused = not conn.call_at_head(lambda: None)
        calls: list[None] = []
        conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), None))
        assert conn.call_at_head(lambda: calls.append(None))
        conn.done()  # the exchange settled without its response (the client went away)
        conn.data_received(FINAL)
        await asyncio.sleep(0)
        return refused, len(calls)

    assert asyncio.run(run()) == (True, 0)


LAGGING = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"


def end_calls(reads: list[bytes], lost: bool = False) -> tuple[list[tuple[bytes, bool]], float]:
    """What a callback registered with `call_at_end` (once the head is here) saw each time it was
    called: the body taken, and whether the exchange had failed; and the deadline after the
    reads (0: none; 1.0: not moved). After one loop turn; `lost`: the connection then closes."""

    async def run() -> tuple[list[tuple[bytes, bool]], float]:
        conn = opened()
        conn.data_received(LAGGING)
        calls: list[tuple[bytes, bool]] = []

        def on_end() -> None:
            failed = not conn.complete
            calls.append((b"" if failed else conn.take_body(), failed))

        assert conn.call_at_end(on_end, 30.0)
        conn.deadline = 1.0  # long past: a read that restarts the wait moves it
        for data in reads:
            conn.data_received(data)
        if lost:
            conn.connection_lost(ConnectionResetError())
        await asyncio.sleep(0)
        return calls, conn.deadline

    return asyncio.run(run())


def test_an_end_callback_runs_once_the_body_is_complete() -> None:
    assert end_calls([b"hello"]) == ([(b"hello", False)], 0.0)
    assert end_calls([b"he", b"l", b"lo"]) == ([(b"hello", False)], 0.0)


def test_an_end_callback_hears_of_a_failure_and_each_read_moves_its_deadline() -> None:
    assert end_calls([b"hel"], lost=True) == ([(b"", True)], 0.0)
    assert end_calls([]) == ([], 1.0)
    calls, deadline = end_calls([b"hel"])
    assert calls == []  # still waiting: the next read is due within the timeout of this one
    assert time.monotonic() + 29 < deadline <= time.monotonic() + 30


def test_an_end_callback_is_refused_once_the_response_is_complete_and_dropped_when_done() -> None:
    async def run() -> tuple[bool, int]:
        conn = opened()
        conn.data_received(FINAL)
        refused = not conn.call_at_end(lambda: None, 30.0)
        calls: list[None] = []
        conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), None))
        conn.data_received(LAGGING)
        assert conn.call_at_end(lambda: calls.append(None), 30.0)
        conn.done()  # the exchange settled without its body (the client went away)
        conn.data_received(b"hello")
        await asyncio.sleep(0)
        return refused, len(calls)

    assert asyncio.run(run()) == (True, 0)

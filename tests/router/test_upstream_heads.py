"""A backend connection's response heads: 1xx interim heads handed on as they complete, and
the head limits (max_response_header_bytes, max_response_headers) failing the exchange with
Gorouter's error text. Fed whole and one byte at a time."""

from __future__ import annotations

import asyncio
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

"""The relay's one-buffer fast path: what it copies from a backend's head, when it declines."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from router.exchange import Sending
from router.relay import relayable_head, whole_buffer
from router.upstream import UpstreamConnection


class Transport:
    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass


def relay_whole(head: bytes, body: bytes = b"hello", closing: bool = False) -> bytes | None:
    """The one buffer relayed for a backend's response with `head` (its lines, without the
    blank one) and, when the head gives a Content-Length, `body`."""

    async def relay() -> bytes | None:
        conn = UpstreamConnection("127.0.0.1:1", lambda _conn: None)
        conn.connection_made(Transport())  # type: ignore[arg-type]
        conn.begin(b"GET / HTTP/1.1\r\n\r\n", Sending(False, False, (), None))
        conn.data_received(head + b"\r\n" + (body if b"Content-Length" in head else b""))
        assert conn.head == head
        whole = whole_buffer(conn, "req-id-1", False, keep_alive=not closing)
        return whole.data if whole is not None else None

    return asyncio.run(relay())


DATE = b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"


def test_copies_the_head_minus_connection_and_keep_alive() -> None:
    out = relay_whole(
        b"HTTP/1.1 200 OK\r\nServer: node\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
        b"Content-Length: 5\r\nX-App: yes\r\n" + DATE
    )
    assert out == (
        b"HTTP/1.1 200 OK\r\nServer: node\r\nContent-Length: 5\r\nX-App: yes\r\n"
        + DATE
        + b"X-Vcap-Request-Id: req-id-1\r\n\r\nhello"
    )


def test_keeps_a_request_id_the_backend_set_and_upgrades_the_version() -> None:
    out = relay_whole(
        b"HTTP/1.0 201 Created\r\nX-Vcap-Request-Id: mine\r\nContent-Length: 5\r\n" + DATE
    )
    assert out == (
        b"HTTP/1.1 201 Created\r\nX-Vcap-Request-Id: mine\r\nContent-Length: 5\r\n"
        + DATE
        + b"\r\nhello"
    )


def test_adds_a_date_when_the_backend_sent_none() -> None:
    before = email.utils.formatdate(time.time() - 1, usegmt=True)
    out = relay_whole(b"HTTP/1.1 200 OK\r\nX-Vcap-Request-Id: mine\r\nContent-Length: 5\r\n")
    assert out is not None
    head, _, body = out.partition(b"\r\n\r\n")
    date = head.split(b"\r\n")[-1]
    assert date.startswith(b"Date: ") and body == b"hello"
    sent = email.utils.parsedate_to_datetime(date.removeprefix(b"Date: ").decode())
    assert sent >= email.utils.parsedate_to_datetime(before)


def test_client_asking_to_close_gets_connection_close() -> None:
    # A client that sent "Connection: close" is told the connection closes.
    out = relay_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", closing=True)
    assert out is not None and out.endswith(b"Connection: close\r\n\r\nhello")


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
        b"HTTP/1.1 200 OK\r\n",  # no Content-Length: read until close
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: X-Secret\r\nX-Secret: s\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTrailer: Expires\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-CF-Proxy-Signature: abc\r\n",
    ],
    ids=["chunked", "until-close", "connection-names-header", "trailer", "rs-signature"],
)
def test_declines_what_the_slow_path_must_handle(head: bytes) -> None:
    assert relay_whole(head) is None


@pytest.mark.parametrize(
    ("line", "length"),
    [(b"Content-Length: 5", 5), (b"content-length:65536 ", 65536), (b"Content-Length: 0", 0)],
)
def test_a_relayable_head_knows_its_body_length(line: bytes, length: int) -> None:
    # What decides whether a body still arriving after its head is held (holds_for_body).
    relayable = relayable_head(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n" + line + b"\r\n", False)
    assert relayable is not None and relayable.content_length == length

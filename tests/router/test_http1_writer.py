"""How a streamed response's body is framed for the client (router/http1/writer.py)."""

from __future__ import annotations

from router.http1.writer import body_framing


def test_a_length_goes_on_as_it_is() -> None:
    assert body_framing(False, False, 12, False, True) == (b"Content-Length: 12\r\n", False, True)


def test_a_bodiless_response_keeps_its_length_and_is_not_chunked() -> None:
    # A HEAD's or a 304's Content-Length says what the body would be; none follows.
    assert body_framing(False, True, 12, True, True) == (b"Content-Length: 12\r\n", False, True)
    assert body_framing(False, True, None, False, True) == (b"", False, True)


def test_an_undelimited_body_is_chunked_for_an_http11_client() -> None:
    assert body_framing(False, False, None, False, True) == (
        b"Transfer-Encoding: chunked\r\n",
        True,
        True,
    )
    # The backend's own chunking is not relayed as is: the router chunks what it reads.
    framing, chunked, _ = body_framing(False, False, 12, True, True)
    assert (framing, chunked) == (b"Transfer-Encoding: chunked\r\n", True)


def test_an_http10_client_reads_an_undelimited_body_to_the_close() -> None:
    assert body_framing(True, False, None, True, True) == (b"", False, False)

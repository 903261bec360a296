"""Header fields between HTTP/2 and the proxy core, without sockets."""

from __future__ import annotations

import pytest

from router.answers import Answer
from router.http2.fields import answer_fields, request_head, response_fields, trailer_fields


def test_pseudo_headers_become_the_request_line_and_cookies_are_joined() -> None:
    head = request_head(
        [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", b"app.example.com:8443"),
            (b":path", b"/caf\xc3\xa9?q=1"),
            (b"cookie", b"a=1"),
            (b"accept", b"*/*"),
            (b"cookie", b"b=2"),
            (b"content-length", b"12"),
        ]
    )
    assert head.method == "POST"
    assert head.target.encode("utf-8", "surrogateescape") == b"/caf\xc3\xa9?q=1"
    assert head.authority == "app.example.com:8443"
    assert head.content_length == 12
    assert head.raw_headers == [
        (b"cookie", b"a=1; b=2"),
        (b"accept", b"*/*"),
        (b"content-length", b"12"),
    ]


def test_host_stands_in_for_a_missing_authority() -> None:
    head = request_head([(b":method", b"GET"), (b":path", b"/"), (b"host", b"h.example.com")])
    assert head.authority == "h.example.com"
    assert head.content_length is None


@pytest.mark.parametrize(
    "line",
    [
        b"Connection: close, X-Hop\r\n",
        b"Keep-Alive: timeout=5\r\n",
        b"Proxy-Connection: keep-alive\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Upgrade: h2c\r\n",
        b"X-Hop: named by Connection\r\n",
        b"Content-Length: 99\r\n",
    ],
)
def test_connection_specific_response_fields_are_dropped(line: bytes) -> None:
    lines = [b"Connection: X-Hop\r\n", line, b"X-Kept: yes\r\n"]
    fields = response_fields(200, lines, 2, None)
    names = [name for name, _ in fields]
    assert names == [b":status", b"x-kept", b"content-length"]
    assert fields[-1] == (b"content-length", b"2")


def test_response_fields_are_lower_case_with_the_router_date() -> None:
    fields = response_fields(
        404, [b"X-Vcap-Request-Id: abc\r\n", b"Trailer: grpc-status\r\n"], None, b"D"
    )
    assert fields == [
        (b":status", b"404"),
        (b"x-vcap-request-id", b"abc"),
        (b"trailer", b"grpc-status"),
        (b"date", b"D"),
    ]


def test_answers_carry_their_length_and_router_error() -> None:
    answer = Answer(404, b"nope\n", [("X-Cf-RouterError", "unknown_route")], "unknown_route", 0)
    assert answer_fields(answer, b"D") == [
        (b":status", b"404"),
        (b"x-cf-routererror", b"unknown_route"),
        (b"content-length", b"5"),
        (b"date", b"D"),
    ]


def test_trailers_keep_what_ends_a_message() -> None:
    trailers = [(b"Grpc-Status", b"0"), (b"Transfer-Encoding", b"x"), (b"Content-Length", b"1")]
    assert trailer_fields(trailers) == [(b"grpc-status", b"0")]

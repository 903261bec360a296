"""Header fields between HTTP/1.1 and HTTP/2 (router/h2_fields.py): pure translation."""

from __future__ import annotations

import pytest

from router.h2_fields import (
    canonical_name,
    has_te_trailers,
    parse_grpc_timeout,
    request_fields,
    response_head,
    status_of,
    trailer_pairs,
)

HEAD = (
    b"POST /svc/Method?x=1 HTTP/1.1\r\nHost: app.example.com\r\n"
    b"Content-Type: application/grpc\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
    b"Proxy-Connection: x\r\nUpgrade: h2c\r\nHTTP2-Settings: AAAA\r\nTE: gzip\r\n"
    b"X-Forwarded-For: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"
)


def test_request_line_and_host_become_pseudo_headers_first():
    fields = request_fields(HEAD, b"https", te_trailers=False).fields
    assert fields[:4] == [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":authority", b"app.example.com"),
        (b":path", b"/svc/Method?x=1"),
    ]


def test_connection_specific_fields_are_dropped_and_names_lowered():
    fields = request_fields(HEAD, b"http", te_trailers=False).fields
    names = [name for name, _ in fields]
    for name in (b"host", b"connection", b"keep-alive", b"proxy-connection", b"upgrade"):
        assert name not in names
    assert b"http2-settings" not in names
    assert b"te" not in names
    assert (b"content-type", b"application/grpc") in fields
    assert (b"x-forwarded-for", b"127.0.0.1") in fields


def test_te_trailers_is_kept_when_the_client_sent_it():
    fields = request_fields(HEAD, b"http", te_trailers=True).fields
    assert fields[-1] == (b"te", b"trailers")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([(b"TE", b"trailers")], True),
        ([(b"te", b"gzip, Trailers;q=1")], True),
        ([(b"TE", b"gzip")], False),
        ([], False),
    ],
)
def test_te_trailers_detection(raw, expected):
    assert has_te_trailers(raw) is expected


def test_buffered_body_follows_the_head():
    request = request_fields(HEAD, b"http", te_trailers=False)
    assert request.body == b"hello"
    assert request.content_length == 5
    assert not request.has_more_body


def test_a_streamed_body_is_announced():
    head = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
    assert request_fields(head, b"http", False).has_more_body
    chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    request = request_fields(chunked, b"http", False)
    assert request.has_more_body
    assert all(name != b"content-length" for name, _ in request.fields)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"5S", 5.0),
        (b"100m", 0.1),
        (b"2M", 120.0),
        (b"1H", 3600.0),
        (b"250u", 0.00025),
        (b"123456789S", None),  # more than 8 digits
        (b"5", None),
        (b"S", None),
        (b"5x", None),
        (b"", None),
    ],
)
def test_grpc_timeout(value, seconds):
    result = parse_grpc_timeout(value)
    if seconds is None:
        assert result is None
    else:
        assert result == pytest.approx(seconds)


def test_grpc_timeout_is_reported():
    head = b"POST / HTTP/1.1\r\nHost: a\r\nGrpc-Timeout: 3S\r\n\r\n"
    assert request_fields(head, b"http", False).grpc_timeout == 3.0


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        (b"grpc-status", b"Grpc-Status"),
        (b"content-type", b"Content-Type"),
        (b"x-b3-traceid", b"X-B3-Traceid"),
        (b"weird_name", b"weird_name"),  # not a token Go canonicalises
    ],
)
def test_canonical_names_as_go_writes_them(name, canonical):
    assert canonical_name(name) == canonical


def test_response_head_is_http11_without_pseudo_headers():
    fields = [(b":status", b"404"), (b"content-type", b"text/plain"), (b"content-length", b"3")]
    assert status_of(fields) == 404
    head = response_head(404, fields)
    assert head == b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    assert b"Content-Length" not in response_head(404, fields, drop_length=True)


def test_a_bad_status_is_none():
    assert status_of([(b":status", b"abc")]) is None
    assert status_of([(b"content-type", b"x")]) is None


def test_trailers_become_canonical_pairs():
    assert trailer_pairs([(b"grpc-status", b"0"), (b"grpc-message", b"ok")]) == [
        (b"Grpc-Status", b"0"),
        (b"Grpc-Message", b"ok"),
    ]

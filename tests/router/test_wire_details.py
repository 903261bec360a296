"""Wire details a client or backend notices, each as Go's server and Gorouter handle it.

RFC 9110 §7.6.1 (headers a `Connection` header names are hop-by-hop), RFC 9112 §7.1.2 (a chunked
response's trailer fields, and its `Trailer` header, pass on), §6.6.1 (an origin without
a clock: the proxy adds `Date`), Go's client framing (a bodiless request of any method but GET
and HEAD says `Content-Length: 0`), `Expect` (RFC 9110 §10.1.1: a request the router refuses is
answered at once, never with 100 Continue), and Go's `malformed Host header`.
"""

from __future__ import annotations

import email.utils
import socket

import pytest

from router.hosts import is_valid_host_header
from tests.support.rawhttp import body_of, raw_request, status_of
from tests.support.record_backend import seen
from tests.support.routes import routed_routerd

pytestmark = pytest.mark.integration
HOST = "wire.example.com"


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    backend = module_backends("--mode", "record", name="wire")
    with routed_routerd(module_nats.port, backend.port, HOST, {"workers": 1}) as router:
        yield router, backend


def request_seen(backend, path: str) -> dict:
    requests, _ = seen(backend.requests_seen())
    matching = [request for request in requests if request["url"] == path]
    assert len(matching) == 1, (path, matching)
    return matching[0]


def headers_named(request: dict, name: str) -> list[str]:
    return [value for key, value in request["headers"] if key.lower() == name.lower()]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_a_bodiless_request_says_content_length_0(setup, method):
    router, backend = setup
    for path, extra in ((f"/cl0-{method}", b"Content-Length: 0\r\n"), (f"/none-{method}", b"")):
        response = raw_request(
            router.port, f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n".encode() + extra + b"\r\n"
        )
        assert status_of(response) == 200, response
        assert headers_named(request_seen(backend, path), "Content-Length") == ["0"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_bodiless_get_or_head_gets_no_content_length(setup, method):
    router, backend = setup
    path = f"/plain-{method}"
    request = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    response = raw_request(router.port, request.encode())
    assert status_of(response) == 200
    assert headers_named(request_seen(backend, path), "Content-Length") == []


def test_response_headers_named_in_connection_are_removed(setup):
    router, _ = setup
    response = router.get("/reply/connection-named", host=HOST)
    assert response.status == 200 and response.body == b"ok"
    assert response.header("X-Hop") is None
    assert response.header("X-Kept") == "yes"


def test_date_is_added_when_the_backend_sent_none_and_kept_when_it_did(setup):
    router, _ = setup
    response = router.get("/no-date", host=HOST)
    assert response.status == 200
    date = response.header("Date")
    assert date is not None and email.utils.parsedate_to_datetime(date) is not None
    dated = router.get("/reply/dated", host=HOST)
    assert dated.headers.get_all("Date") == ["Sun, 06 Nov 1994 08:49:37 GMT"]


def test_a_chunked_responses_trailer_fields_and_trailer_header_reach_the_client(setup):
    router, _ = setup
    request = f"GET /reply/trailers HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    response = b""
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(request.encode())
        while chunk := sock.recv(65536):  # until the router closes, as asked
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert status_of(response) == 200, response
    assert b"\r\nTrailer: X-Checksum, X-Status\r\n" in head + b"\r\n"
    assert b"\r\nTransfer-Encoding: chunked" in head
    # The last chunk carries the backend's trailer fields, then the blank line.
    assert body == b"2\r\nok\r\n0\r\nX-Checksum: abc123\r\nX-Status: done\r\n\r\n"


def test_a_streamed_response_gets_no_content_type_the_backend_did_not_send(setup):
    router, _ = setup
    response = router.get("/reply/trailers", host=HOST)
    assert response.status == 200 and response.body == b"ok"
    assert response.header("Content-Type") is None


def test_a_refused_expect_100_continue_request_is_answered_without_100_continue(setup):
    router, _ = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /upload HTTP/1.1\r\nHost: unknown.example.com\r\n"
            b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        first = sock.recv(65536)  # no body sent: the router must answer from the head alone
    assert first.startswith(b"HTTP/1.1 404 "), first
    assert b"100 Continue" not in first


# Control bytes never get this far: llhttp refuses them in any header (the desync corpus).
@pytest.mark.parametrize("host", ["bad host.example.com", 'a"b', "x<y>", "a/b", "user@host"])
def test_a_malformed_host_is_400_in_gos_words(setup, host):
    router, backend = setup
    before = len(backend.requests_seen())
    response = raw_request(
        router.port, b"GET / HTTP/1.1\r\nHost: " + host.encode("latin-1") + b"\r\n\r\n"
    )
    assert status_of(response) == 400, response
    assert body_of(response) == b"400 Bad Request: malformed Host header"
    assert host.encode("latin-1") not in response
    assert len(backend.requests_seen()) == before


@pytest.mark.parametrize(
    ("host", "valid"),
    [
        ("", True),  # empty: Gorouter's own `empty_host` answer, not Go's
        ("app.example.com", True),
        ("app.example.com:8080", True),
        ("[2001:db8::1]:443", True),
        ("fe80::1%25eth0", True),
        ("under_score.example.com", True),
        ("a b", False),
        ("a\tb", False),
        ("a/b", False),
        ("user@host", False),
        ("<script>", False),
        ('"quoted"', False),
        ("caf\u00e9.example.com", False),
    ],
)
def test_host_header_bytes_as_go_checks_them(host, valid):
    assert is_valid_host_header(host) is valid

"""The raw-request corpus (desync_corpus.py) through a real routerd to a recording backend.

For every case: the client gets the expected status (and, when refused, the connection closes);
the backend sees at most the requests the case allows, never a request the client did not send,
and never a byte it must not; the refusal is counted where /varz shows it.
"""

from __future__ import annotations

import contextlib
import socket
from collections import Counter
from typing import Any

import httptools
import pytest

from tests.router.desync_corpus import CASES, HOST, Case
from tests.support.rawhttp import body_of, header_of, read_response, status_of
from tests.support.record_backend import raw_bytes, seen
from tests.support.routerd import Routerd
from tests.support.routes import routed_routerd

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    backend = module_backends("--mode", "record", name="recorder")
    with routed_routerd(module_nats.port, backend.port, HOST.decode(), {"workers": 1}) as router:
        yield router, backend


class _Responses:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.bodies: list[bytes] = []
        self.body = b""
        self.parser: Any = None

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200:  # 100 Continue is not an answer
            self.statuses.append(status)
            self.bodies.append(self.body)
        self.body = b""


def exchange(port: int, case: Case) -> tuple[list[int], list[bytes], bool]:
    """Send the case's bytes; the final statuses and bodies received, and whether the router
    closed the connection."""
    responses = _Responses()
    parser = httptools.HttpResponseParser(responses)
    responses.parser = parser
    wanted = case.forwarded if case.status == 200 else 1
    is_head = case.request.startswith(b"HEAD ")
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        # Refused before the whole request was sent? The answer may still be there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(case.request)
        closed = False
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                closed = True
                break
            received += data
            if is_head:
                if b"\r\n\r\n" in received:
                    responses.statuses.append(int(received.split(b" ", 2)[1]))
            else:
                parser.feed_data(data)
            # Refused requests must also be followed by a close: keep reading for it.
            if len(responses.statuses) >= wanted and case.status == 200:
                break
    return responses.statuses, responses.bodies, closed


def counters(router: Routerd) -> tuple[int, int]:
    varz = router.status_json("/varz")
    return varz["bad_requests"], varz["router_errors"]["max-request-size-exceeded"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(setup, case: Case) -> None:
    router, backend = setup
    log_before = len(backend.requests_seen())
    bad_before, large_before = counters(router)

    statuses, bodies, closed = exchange(router.port, case)

    new_lines = backend.requests_seen()[log_before:]
    requests, parse_errors = seen(new_lines)
    assert parse_errors == [], "the router sent the backend something it could not parse"
    if case.status is None:
        assert statuses == [] and closed
    elif case.status == 200:
        assert statuses == [200] * case.forwarded
    else:
        assert statuses == [case.status], f"expected {case.status}, got {statuses}"
        assert closed, "a refused request must close the connection"
        if case.status == 400:  # Go's (Gorouter's) text, or Gorouter's own for a missing Host
            assert bodies[0].startswith(b"400 Bad Request")
        elif case.status == 505:  # Go's server for a version it does not speak
            assert bodies[0].startswith(b"505 HTTP Version Not Supported")
        else:  # Gorouter's MaxRequestSize handler: no body
            assert bodies == [b""]
    assert len(requests) == case.forwarded, [r["url"] for r in requests]
    assert all(r["url"] != "/smuggled" for r in requests), "a smuggled request got through"
    for forbidden in case.never_seen:
        assert forbidden not in raw_bytes(new_lines)

    bad_after, large_after = counters(router)
    if case.status == 400:
        assert bad_after == bad_before + 1
    elif case.status in (414, 431):
        assert large_after == large_before + 1


def test_corpus_is_large_and_classified() -> None:
    names = [case.name for case in CASES]
    assert len(names) >= 60 and len(set(names)) == len(names)
    tiers = Counter(case.tier for case in CASES)
    assert set(tiers) == {"compliant", "acceptable", "ambiguous", "severe"}
    # Every request the router must refuse is refused before reaching the backend.
    for case in CASES:
        if case.tier in ("ambiguous", "severe"):
            assert case.forwarded == 0 and case.status != 200, case.name


@pytest.mark.parametrize(
    ("request_bytes", "status", "body"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400, b"400 Bad Request"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
            b"400 Bad Request: too many Host headers",
        ),
        (
            b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            505,
            b"505 HTTP Version Not Supported: unsupported protocol version",
        ),
    ],
    ids=["malformed", "duplicate-host", "http-2.0"],
)
def test_refusals_read_as_gorouter_answers_them(setup, request_bytes, status, body) -> None:
    router, _ = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=15) as sock:
        sock.sendall(request_bytes)
        response = read_response(sock)
    assert status_of(response) == status
    assert body_of(response) == body
    assert header_of(response, "Connection") == "close"
    assert header_of(response, "Content-Type") == "text/plain; charset=utf-8"

"""Gorouter's zeros: `read_header_timeout: 0s`, `max_request_headers: 0` and
`frontend_idle_timeout: 0` (the first two are Gorouter's BOSH defaults) mean no limit, as in
Gorouter, not "refuse everything" or "close at once".

Where a test shows that something does not happen, it waits for it a bounded time (QUIET, a few
ticks of the worker's deadline timer, which runs every 0.1 s here) and then shows the connection
still serves.
"""

from __future__ import annotations

import socket

import pytest

from tests.support.rawhttp import read_response, status_of
from tests.support.record_backend import seen
from tests.support.routerd import Routerd
from tests.support.routes import routed_routerd

pytestmark = pytest.mark.integration
HOST = "zeros.example.com"
QUIET = 1.5  # 15 deadline-timer ticks, and beyond request_body_timeout


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    backend = module_backends("--mode", "record", name="zeros")
    with routed_routerd(
        module_nats.port,
        backend.port,
        HOST,
        {
            "workers": 1,
            "read_header_timeout": "0s",
            "max_request_headers": 0,
            "frontend_idle_timeout": 0,
            "request_body_timeout": "1s",
        },
    ) as router:
        yield router, backend


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    finally:
        sock.settimeout(10)


def forwarded(backend, path: str) -> int:
    requests, _ = seen(backend.requests_seen())
    return sum(1 for request in requests if request["url"] == path)


def header_timeouts(router: Routerd) -> int:
    count: int = router.status_json("/varz")["client_timeouts"]["header"]
    return count


def test_many_header_lines_are_forwarded_without_a_count_limit(setup):
    router, backend = setup
    lines = "".join(f"X-Line-{n}: {n}\r\n" for n in range(2000))  # routerd's own default is 512
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET /many-lines HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n".encode())
        assert status_of(read_response(sock)) == 200
    assert forwarded(backend, "/many-lines") == 1


def test_an_unfinished_head_has_no_deadline(setup):
    router, backend = setup
    before = header_timeouts(router)
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET /slow-head HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        assert not closed_within(sock, QUIET)
        sock.sendall(b"X-Late: yes\r\n\r\n")
        assert status_of(read_response(sock)) == 200
    assert forwarded(backend, "/slow-head") == 1
    assert header_timeouts(router) == before


def test_an_idle_keep_alive_connection_stays_open(setup):
    router, backend = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET /idle-first HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert status_of(read_response(sock)) == 200
        assert not closed_within(sock, QUIET)
        sock.sendall(f"GET /idle-second HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert status_of(read_response(sock)) == 200
    assert forwarded(backend, "/idle-second") == 1

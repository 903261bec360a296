"""A response whose small body arrives after its head (a backend writing them separately) is held
until complete and reaches the client in one write; a body that stops arriving still ends, after
endpoint_timeout, in the head, what came of the body, and a cut connection; a larger one is
streamed as it comes. The backend (record mode, PACED) writes each part PACE seconds apart."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.support.rawhttp import body_of, header_of, read_response, status_of
from tests.support.record_backend import PACE
from tests.support.routes import routed_routerd
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
HOST = "held.example.com"


@pytest.fixture(scope="module")
def setup(module_nats, module_backends, tmp_path_factory):
    backend = module_backends("--mode", "record", name="held")
    access_log: Path = tmp_path_factory.mktemp("held") / "access.log"
    overrides = {"workers": 1, "access_log": {"file": str(access_log)}, "endpoint_timeout": "1s"}
    with routed_routerd(module_nats.port, backend.port, HOST, overrides) as router:
        yield router, access_log


def access_line(access_log: Path, path: str) -> str:
    def logged() -> str | None:
        lines = [line for line in access_log.read_text().splitlines() if f" {path} " in line]
        return lines[-1] if lines else None

    return wait_until(logged, timeout=5, what=f"an access log line for {path}")


def request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def test_a_body_that_lags_its_head_reaches_the_client_whole_in_one_write(setup):
    router, access_log = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(request("/reply/lagging-body"))
        first = sock.recv(65536)  # the router's first write: the head is not sent alone
        assert status_of(first) == 200, first
        assert first.endswith(b"\r\n\r\nhello"), first
        assert header_of(first, "X-Lag") == "yes"
        assert header_of(first, "Content-Length") == "5"
        assert header_of(first, "X-Vcap-Request-Id") and header_of(first, "Date")
        # The connection is kept for the next request, which the backend answers too.
        sock.sendall(request("/after-lagging-body"))
        after = read_response(sock)
    assert status_of(after) == 200 and body_of(after) == b"ok"
    line = access_line(access_log, "/reply/lagging-body")
    assert '" 200 0 5 "' in line and 'x_cf_routererror:"-"' in line, line


def test_a_body_that_stops_arriving_is_cut_after_endpoint_timeout(setup):
    router, access_log = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(request("/reply/stalled-body"))
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):  # until the router closes the connection
            received += chunk
        waited = time.monotonic() - started
    # The head and the part that came, then the cut: the client sees the truncation.
    assert status_of(received) == 200, received
    assert received.endswith(b"\r\n\r\npart"), received
    assert waited >= 1.0 + PACE * 0.9  # endpoint_timeout runs from the last read
    line = access_line(access_log, "/reply/stalled-body")
    assert 'x_cf_routererror:"endpoint_failure (context deadline exceeded)"' in line, line


def test_a_large_lagging_body_is_streamed_as_it_comes(setup):
    router, _ = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(request("/reply/large-lagging-body"))
        started = time.monotonic()
        head = sock.recv(65536)
        head_at = time.monotonic() - started
        assert status_of(head) == 200 and head.endswith(b"\r\n\r\n"), head
        rest = b""
        while len(rest) < 70000:
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            rest += chunk
    assert head_at < PACE  # the head went on before the body came
    assert rest == b"x" * 70000

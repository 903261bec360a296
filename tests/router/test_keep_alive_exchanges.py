"""Keep-alive exchanges on one client connection (router/http1/): the usual request is served
from callbacks, and around it the connection keeps order, keep-alive, pipelining, client
departures and graceful stops. Every request here after the first on a connection goes to a
pooled backend connection, which is what the callback path needs."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import socket
import time
from typing import Any

import pytest

from tests.support.rawhttp import body_of, header_of, read_response, status_of
from tests.support.routes import register, routed_routerd, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
HOST = "quick.example.com"


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def echo_of(response: bytes) -> dict[str, Any]:
    assert status_of(response) == 200, response[:200]
    echo: dict[str, Any] = json.loads(body_of(response))
    return echo


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    backend = module_backends(name="quick")
    overrides = {"workers": 1, "frontend_idle_timeout": "1s"}
    with routed_routerd(module_nats.port, backend.port, HOST, overrides) as router:
        yield router, backend


def test_keep_alive_requests_share_one_pooled_backend_connection(setup):
    router, _ = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        echoes = []
        for index in range(5):
            sock.sendall(get(f"/pooled/{index}"))
            response = read_response(sock)
            echoes.append(echo_of(response))
            assert header_of(response, "X-Vcap-Request-Id")
    counts = [echo["connection_requests"] for echo in echoes]
    assert counts == list(range(counts[0], counts[0] + 5))  # one backend connection, reused
    for index, echo in enumerate(echoes):
        assert echo["path"] == f"/pooled/{index}"
        headers = {name.lower(): value for name, value in echo["headers"]}
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert headers["x-vcap-request-id"]


def test_a_request_sent_while_one_is_in_flight_is_answered_after_it(setup):
    router, backend = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(get("/warm"))
        echo_of(read_response(sock))
        sock.sendall(get("/slow?seconds=0.5&order=first"))
        wait_until(
            lambda: any(
                r["path"] == "/slow?seconds=0.5&order=first" for r in backend.requests_seen()
            ),
            what="the backend to receive the first request",
        )
        sock.sendall(get("/second"))
        first = echo_of(read_response(sock))
        second = echo_of(read_response(sock))
    assert first["path"] == "/slow?seconds=0.5&order=first"
    assert second["path"] == "/second"


def test_a_connection_in_use_stays_open_and_is_closed_once_idle(setup):
    router, _ = setup
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        for index in range(3):
            if index:
                # The traffic pattern under test, not a wait: every gap is under the 1 s
                # frontend_idle_timeout, and the last request comes after 1 s of connection.
                time.sleep(0.6)
            sock.sendall(get(f"/idle/{index}"))
            echo_of(read_response(sock))
        # Now idle: the router closes the connection (the 10 s socket timeout fails the test
        # if it does not).
        assert sock.recv(1) == b""


def test_a_drain_lets_a_request_in_flight_finish(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory({"workers": 1, "drain_wait": "1s", "drain_timeout": "10s"})
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)  # leaves a pooled backend connection behind
    with socket.create_connection(("127.0.0.1", router.port), timeout=20) as sock:
        sock.sendall(get("/warm"))
        echo_of(read_response(sock))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            sock.sendall(get("/slow?seconds=2&drain=1"))
            wait_until(
                lambda: any(
                    r["path"] == "/slow?seconds=2&drain=1" for r in backend.requests_seen()
                ),
                what="the backend to receive the slow request",
            )
            router.signal(signal.SIGUSR1)
            response = pool.submit(read_response, sock).result(timeout=20)
    assert echo_of(response)["path"] == "/slow?seconds=2&drain=1"
    assert router.wait_exit(timeout=30) == 0

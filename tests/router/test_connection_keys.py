"""Gorouter's connection keys as an operator notices them: websocket_dial_timeout (how long
an upgrade waits to connect), disable_http (only the TLS listener serves) and
keep_alive_100_continue_requests true (backend connections are kept after `Expect`)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.certs import CertificateAuthority
from tests.support.ports import free_port
from tests.support.rawhttp import read_response, status_of
from tests.support.record_backend import seen
from tests.support.routes import register, wait_routed
from tests.support.tls_client import client_context, get
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
HOST = "keys.example.com"
UPGRADE = (
    "GET /socket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose SYNs go unanswered (its accept queue is full): a dial there times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # the handshake completes, or is dropped
            client.connect(("127.0.0.1", port))
        queued.append(client)
    yield port
    for client in queued:
        client.close()
    listener.close()


def timed_status(port: int, request: bytes) -> tuple[int, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(request)
        response = read_response(sock)
        return status_of(response), time.monotonic() - started


def test_websocket_upgrades_dial_within_websocket_dial_timeout(
    routerd_factory, nats_client, unanswered_port
):
    router = routerd_factory({"endpoint_dial_timeout": "2s", "websocket_dial_timeout": "300ms"})
    register(nats_client, unanswered_port, [HOST])
    upgrade = UPGRADE.format(host=HOST).encode()
    # Until the workers route it (a 404 before), each try dials and waits.
    status, upgrade_took = wait_until(
        lambda: (answer := timed_status(router.port, upgrade))[0] != 404 and answer,
        timeout=10,
        what="the route to be served",
    )
    assert status == 502 and upgrade_took < 1.5
    request = f"GET /plain HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    status, plain_took = timed_status(router.port, request)
    assert status == 502 and plain_took >= 1.8  # endpoint_dial_timeout, as before


def test_disable_http_leaves_only_the_tls_listener(routerd_factory, nats_client, backend_factory):
    ca = CertificateAuthority("disable_http CA")
    issued = ca.issue(HOST)
    ssl_port = free_port()
    router = routerd_factory(
        {
            "disable_http": True,
            "enable_ssl": True,
            "ssl_port": ssl_port,
            "tls_pem": [{"cert_chain": issued.cert_pem, "private_key": issued.key_pem}],
        }
    )
    backend = backend_factory(name="tls-only")
    register(nats_client, backend.port, [HOST])
    context = client_context(ca.cert_pem)
    result = wait_until(
        lambda: (
            get(ssl_port, HOST, tls=context, server_name=HOST).response.status == 200
            and get(ssl_port, HOST, tls=context, server_name=HOST)
        ),
        timeout=10,
        what="the route served over TLS",
    )
    assert result.response.status == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", router.port), timeout=5).close()


def test_expect_continue_keeps_the_backend_connection_when_asked(
    routerd_factory, nats_client, backend_factory
):
    router = routerd_factory({"workers": 1, "keep_alive_100_continue_requests": True})
    backend = backend_factory("--mode", "record", name="keeps")
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(
            f"POST /expecting HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 3\r\n"
            "Expect: 100-continue\r\n\r\nabc".encode()
        )
        response = read_response(sock)
        if status_of(response) == 100:
            response = read_response(sock)
        assert status_of(response) == 200
        sock.sendall(f"GET /after-expecting HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert status_of(read_response(sock)) == 200
    requests, _ = seen(backend.requests_seen())
    by_path = {request["url"]: request for request in requests}
    assert ["Connection", "close"] not in by_path["/expecting"]["headers"]
    assert by_path["/after-expecting"]["conn"] == by_path["/expecting"]["conn"]

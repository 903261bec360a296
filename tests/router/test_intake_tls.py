"""The request limits and the header deadline hold on the TLS listener too."""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.support.certs import CertificateAuthority
from tests.support.ports import free_port
from tests.support.rawhttp import body_of, header_of, status_of
from tests.support.routes import routed_routerd
from tests.support.tls_client import client_context

pytestmark = pytest.mark.integration
HOST = "tls-limits.example.com"
LIMIT = 16384


@pytest.fixture(scope="module")
def setup(module_nats, module_backends):
    ca = CertificateAuthority("intake CA")
    issued = ca.issue(HOST)
    backend = module_backends(name="tls-limits")
    with routed_routerd(
        module_nats.port,
        backend.port,
        HOST,
        {
            "workers": 1,
            "enable_ssl": True,
            "ssl_port": free_port(),
            "tls_pem": [{"cert_chain": issued.cert_pem, "private_key": issued.key_pem}],
            "read_header_timeout": "1s",
            "max_request_header_bytes": LIMIT,
        },
    ) as router:
        yield router, client_context(ca.cert_pem)


def tls_socket(router, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", router.config["ssl_port"]), timeout=15)
    return context.wrap_socket(raw, server_hostname=HOST)


def until_closed(sock: ssl.SSLSocket) -> bytes:
    """Everything the router sends before it closes (refusals close the connection)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            chunk = b""  # closed without a TLS close_notify
        if not chunk:
            return data
        data += chunk


def test_head_over_the_limit_is_431_over_tls(setup):
    router, context = setup
    lines = "".join(f"X-Line-{i}: {'l' * 1000}\r\n" for i in range(20))
    with tls_socket(router, context) as sock:
        sock.sendall(f"GET /big HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n".encode())
        response = until_closed(sock)
    assert status_of(response) == 431
    assert header_of(response, "X-Cf-RouterError") == "max-request-size-exceeded"
    assert body_of(response) == b""


def test_smuggling_framing_is_refused_over_tls(setup):
    router, context = setup
    with tls_socket(router, context) as sock:
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode()
        )
        response = until_closed(sock)
    assert status_of(response) == 400


def test_slow_head_is_closed_over_tls(setup):
    router, context = setup
    before = router.status_json("/varz")["client_timeouts"]["header"]
    with tls_socket(router, context) as sock:
        sock.sendall(f"GET /slow HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        # Within the socket timeout (15 s), well past the 1 s deadline; no answer.
        assert until_closed(sock) == b""
    assert router.status_json("/varz")["client_timeouts"]["header"] == before + 1

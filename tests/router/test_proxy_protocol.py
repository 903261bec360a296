"""enable_proxy: a PROXY v1/v2 header opening a connection, on the HTTP and the TLS listener, names
the client X-Forwarded-For and the access log show. As in Gorouter the header is optional; with
proxy_protocol_required a connection without one is closed."""

from __future__ import annotations

import ipaddress
import socket
import struct
import uuid
from pathlib import Path

import pytest

from tests.router.test_accesslog import log_lines
from tests.support.certs import CertificateAuthority
from tests.support.nats import NatsClient
from tests.support.ports import free_port
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register
from tests.support.tls_client import client_context, get
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HOST = "proxied.example.com"
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
LOCAL_V1 = b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 80\r\n"


def v2_header(source: str, sport: int, destination: str, dport: int) -> bytes:
    """Written from the spec: PROXY command, TCP over IPv4 (0x11) or IPv6 (0x21)."""
    src = ipaddress.ip_address(source)
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + ipaddress.ip_address(destination).packed + struct.pack("!HH", sport, dport)
    return SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


V2_LOCAL = SIGNATURE + b"\x20\x00\x00\x00"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


def start_router(nats_port, backend, ca, access_log: Path, **extra) -> Routerd:
    issued = ca.issue(HOST)
    router = new_routerd(
        nats_port,
        {
            "enable_proxy": True,
            "proxy_protocol_timeout": 1,
            "enable_ssl": True,
            "ssl_port": free_port(),
            "tls_pem": [{"cert_chain": issued.cert_pem, "private_key": issued.key_pem}],
            "access_log": {"file": str(access_log)},
            **extra,
        },
    )
    router.start()
    with NatsClient(nats_port) as nats:
        register(nats, backend.port, [HOST])
        wait_until(
            lambda: get(router.port, HOST, proxy_header=LOCAL_V1).response.status == 200,
            what=f"{HOST} to be routed",
        )
    return router


@pytest.fixture(scope="module")
def router(module_nats, module_backends, ca, tmp_path_factory):
    """The header optional, as in Gorouter."""
    access_log = tmp_path_factory.mktemp("proxy-protocol") / "access.log"
    router = start_router(module_nats.port, module_backends(name="echo"), ca, access_log)
    yield router
    router.stop()


@pytest.fixture(scope="module")
def strict_router(module_nats, module_backends, ca, tmp_path_factory):
    """The header required (proxy_protocol_required)."""
    access_log = tmp_path_factory.mktemp("proxy-protocol-required") / "access.log"
    router = start_router(
        module_nats.port,
        module_backends(name="echo-strict"),
        ca,
        access_log,
        proxy_protocol_required=True,
    )
    yield router
    router.stop()


def access_log_path(router: Routerd) -> Path:
    return Path(router.config["access_log"]["file"])


def forwarded_for(result) -> str:
    assert result.response.status == 200, result.response.text
    headers = {name.lower(): value for name, value in result.response.json()["headers"]}
    return headers["x-forwarded-for"]


def logged_remote(router: Routerd, path: str) -> str:
    def line():
        return next(
            (m for m in log_lines(access_log_path(router)) if f" {path} " in m["request"]), None
        )

    return wait_until(line, what=f"an access log line for {path}")["remote"]


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n", ("203.0.113.7", 51234)),
        (b"PROXY TCP6 2001:db8::7 2001:db8::1 51235 80\r\n", ("2001:db8::7", 51235)),
        (v2_header("198.51.100.4", 40000, "10.0.0.1", 80), ("198.51.100.4", 40000)),
        (v2_header("2001:db8::4", 40001, "2001:db8::1", 80), ("2001:db8::4", 40001)),
    ],
    ids=["v1-tcp4", "v1-tcp6", "v2-tcp4", "v2-tcp6"],
)
@pytest.mark.parametrize("listener", ["http", "tls"])
def test_the_header_names_the_client(router, ca, header, client, listener):
    path = f"/{uuid.uuid4().hex}"
    if listener == "tls":
        tls = client_context(ca.cert_pem)
        result = get(
            int(router.config["ssl_port"]),
            HOST,
            path,
            tls=tls,
            server_name=HOST,
            proxy_header=header,
        )
    else:
        result = get(router.port, HOST, path, proxy_header=header)
    assert forwarded_for(result) == client[0]
    assert logged_remote(router, path) == f"{client[0]}:{client[1]}"


@pytest.mark.parametrize("listener", ["http", "tls"])
def test_v2_local_keeps_the_connections_own_address(router, ca, listener):
    path = f"/{uuid.uuid4().hex}"
    if listener == "tls":
        tls = client_context(ca.cert_pem)
        port = int(router.config["ssl_port"])
        result = get(port, HOST, path, tls=tls, server_name=HOST, proxy_header=V2_LOCAL)
    else:
        result = get(router.port, HOST, path, proxy_header=V2_LOCAL)
    assert forwarded_for(result) == "127.0.0.1"
    assert logged_remote(router, path).startswith("127.0.0.1:")


def closed_without_answer(port: int, data: bytes) -> bool:
    """Send `data`, then read: the router must close the connection without a byte."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if data:
            sock.sendall(data)
        try:
            return sock.recv(1024) == b""
        except ConnectionResetError:
            return True


@pytest.mark.parametrize("listener", ["http", "tls"])
def test_a_connection_without_a_header_is_served_with_its_own_address(router, ca, listener):
    path = f"/{uuid.uuid4().hex}"
    if listener == "tls":
        tls = client_context(ca.cert_pem)
        result = get(int(router.config["ssl_port"]), HOST, path, tls=tls, server_name=HOST)
    else:
        result = get(router.port, HOST, path)
    assert forwarded_for(result) == "127.0.0.1"
    assert logged_remote(router, path).startswith("127.0.0.1:")


@pytest.mark.parametrize(
    "data",
    [
        b"PROXY TCP4 203.0.113.7 10.0.0.1 99999 80\r\nGET / HTTP/1.1\r\n\r\n",
        b"PROXY TCP4 not-an-address 10.0.0.1 1 80\r\n",
        SIGNATURE + b"\x21\x11\x00\x04\x00\x00\x00\x00",  # too short for its addresses
        SIGNATURE + b"\x31\x11\x00\x0c" + b"\x00" * 12,  # version 3
    ],
    ids=["v1-bad-port", "v1-bad-address", "v2-short", "v2-bad-version"],
)
def test_a_malformed_header_closes_the_connection(router, strict_router, data):
    assert closed_without_answer(router.port, data)
    assert closed_without_answer(strict_router.port, data)


def test_a_missing_header_closes_the_connection_when_required(strict_router):
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    assert closed_without_answer(strict_router.port, request)


def test_a_missing_header_closes_the_tls_listener_too_when_required(strict_router):
    client_hello_start = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"
    assert closed_without_answer(int(strict_router.config["ssl_port"]), client_hello_start)


def test_a_client_that_never_sends_the_header_is_closed_after_the_timeout_when_required(
    strict_router,
):
    assert closed_without_answer(strict_router.port, b"")


def test_the_required_header_is_still_read(strict_router):
    path = f"/{uuid.uuid4().hex}"
    header = b"PROXY TCP4 203.0.113.8 10.0.0.1 51236 80\r\n"
    assert forwarded_for(get(strict_router.port, HOST, path, proxy_header=header)) == "203.0.113.8"


def test_a_header_cut_short_is_closed_after_the_timeout(router):
    assert closed_without_answer(router.port, b"PROXY TCP4 203.0.113.7")


def test_a_header_sent_in_pieces_is_read_whole(router):
    path = f"/{uuid.uuid4().hex}"
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"PR")  # less than the signature: the router must wait for the rest
        sock.sendall(b"OXY TCP4 203.0.113.9 10.0.0.1 5")
        sock.sendall(b"1234 80\r")
        sock.sendall(f"\nGET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        for _ in range(1000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b"203.0.113.9" in reply
    assert logged_remote(router, path) == "203.0.113.9:51234"

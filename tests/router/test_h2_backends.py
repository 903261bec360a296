"""Backends registered with `protocol: http2`: HTTP/1.1 clients through routerd to HTTP/2
backends (h2c with prior knowledge, and TLS with ALPN h2), through the one proxy core."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.router.test_accesslog import log_lines
from tests.support.backends import Backend
from tests.support.certs import CertificateAuthority
from tests.support.routerd import Response, Routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
SAN = "h2.backend.internal"


@pytest.fixture
def access_log(tmp_path: Path) -> Path:
    return tmp_path / "access.log"


@pytest.fixture
def router(routerd_factory: Callable[..., Routerd], access_log: Path) -> Routerd:
    # One worker: every request shares its HTTP/2 connections, so they can be counted.
    return routerd_factory(
        {"workers": 1, "backends": {"idle_timeout": 5}, "access_log": {"file": str(access_log)}}
    )


def access_line(access_log: Path, request: str) -> Any:
    return wait_until(
        lambda: next((m for m in log_lines(access_log) if m["request"] == request), None),
        timeout=10,
        what=f"an access log line for {request}",
    )


def route(nats: Any, router: Routerd, backend: Backend, host: str, **fields: Any) -> None:
    if "tls_port" not in fields:
        fields["port"] = backend.port
    port = fields.pop("port", 0)
    register(nats, port, [host], protocol="http2", **fields)
    wait_routed(router, host, "/ready")


def events(backend: Backend, kind: str) -> list[dict[str, Any]]:
    return [e for e in backend.requests_seen() if e["event"] == kind]


def raw_exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send one request with `Connection: close` and read everything until the router closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def dechunk(body: bytes) -> tuple[bytes, list[bytes]]:
    """A chunked body's data and its trailer lines."""
    data = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            trailer_block = body.split(b"\r\n\r\n", 1)[0]
            return data, [line for line in trailer_block.split(b"\r\n") if line]
        data += body[:size]
        body = body[size + 2 :]


def test_get_is_translated_to_http2(router, nats_client, h2_backends, access_log):
    backend = h2_backends()
    route(nats_client, router, backend, "h2c.example.com")
    response = router.request(
        "GET",
        "/some/path?q=1",
        host="h2c.example.com",
        headers={"Connection": "keep-alive, X-Drop", "X-Drop": "x", "X-Keep": "kept"},
    )
    assert response.status == 200
    assert response.header("Server") == "h2-test"
    got = response.json()
    assert got["method"] == "GET"
    assert got["path"] == "/some/path?q=1"
    assert got["authority"] == "h2c.example.com"
    assert got["scheme"] == "http"
    names = [name for name, _ in got["headers"]]
    for name in ("connection", "keep-alive", "host", "transfer-encoding", "x-drop"):
        assert name not in names
    headers = dict(got["headers"])
    assert headers["x-keep"] == "kept"
    assert headers["x-forwarded-proto"] == "http"
    assert "x-vcap-request-id" in headers
    line = access_line(access_log, "GET /some/path?q=1 HTTP/1.1")
    assert line["status"] == "200"
    assert line["backend"] == backend.address
    assert line["id"] == headers["x-vcap-request-id"]


def test_post_bodies_reach_the_backend(router, nats_client, h2_backends):
    backend = h2_backends()
    route(nats_client, router, backend, "h2post.example.com")
    small = b"small body"
    response = router.request("POST", "/echo", host="h2post.example.com", body=small)
    assert (response.status, response.body) == (200, small)
    large = bytes(range(256)) * 4096  # 1 MiB: streamed, not buffered before the attempt
    response = router.request("POST", "/echo", host="h2post.example.com", body=large)
    assert response.status == 200
    assert response.body == large


def test_large_response_streams_to_the_client(router, nats_client, h2_backends):
    backend = h2_backends()
    route(nats_client, router, backend, "h2big.example.com")
    size = 8 * 1024 * 1024
    response = router.get(f"/bytes/{size}", host="h2big.example.com")
    assert response.status == 200
    assert response.header("Transfer-Encoding") == "chunked"
    assert len(response.body) == size


def test_a_client_that_does_not_read_holds_the_backend_by_flow_control(
    router, nats_client, h2_backends
):
    backend = h2_backends()
    route(nats_client, router, backend, "h2slowclient.example.com")
    size = 32 * 1024 * 1024
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", router.port))
    with sock:
        sock.sendall(
            f"GET /bytes/{size} HTTP/1.1\r\nHost: h2slowclient.example.com\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        # Past its first windows, the backend waits: the router acknowledges only what the
        # client takes (windows and socket buffers' worth, not the whole body).
        blocked = wait_until(
            lambda: [e for e in events(backend, "flow-blocked") if e["sent"] >= 1 << 20],
            timeout=10,
            what="the backend to be held by flow control",
        )
        assert blocked[0]["sent"] < 16 * 1024 * 1024
        # A negative check needs a window of time: the backend stays held while nobody reads
        # (unheld, it sends the rest within a fraction of this).
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            assert not [e for e in events(backend, "response-sent") if e["size"] == size]
            time.sleep(0.1)
        received = 0
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    assert received > size
    assert [e["size"] for e in events(backend, "response-sent")][-1] == size


def test_an_upload_waits_for_the_backends_window(router, nats_client, h2_backends):
    backend = h2_backends()
    route(nats_client, router, backend, "h2upload.example.com")
    size = 64 * 1024 * 1024
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", router.port))
    head = f"POST /stall HTTP/1.1\r\nHost: h2upload.example.com\r\nContent-Length: {size}\r\n\r\n"
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(sock.sendall, head.encode() + b"u" * size)
        # The backend's stream window (64 KiB) fills and never reopens.
        wait_until(
            lambda: any(e["got"] >= 65535 for e in events(backend, "stall-progress")),
            timeout=10,
            what="the backend's window to fill",
        )
        # A negative check needs a window of time: the router takes no more than its buffers
        # hold, so the client cannot finish sending (unheld, 64 MiB go in well under this).
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            assert not upload.done()
            time.sleep(0.1)
        assert max(e["got"] for e in events(backend, "stall-progress")) <= 65535
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        with pytest.raises(OSError):
            upload.result(timeout=10)


def test_trailers_reach_an_http11_client_as_chunked_trailers(router, nats_client, h2_backends):
    backend = h2_backends()
    route(nats_client, router, backend, "h2trailers.example.com")
    data = raw_exchange(
        router.port,
        b"GET /trailers HTTP/1.1\r\nHost: h2trailers.example.com\r\nTE: trailers\r\n"
        b"Connection: close\r\n\r\n",
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nTransfer-Encoding: chunked" in head
    payload, trailers = dechunk(body)
    assert payload == b"hello"
    assert trailers == [b"Grpc-Status: 0", b"Grpc-Message: all good"]
    seen = events(backend, "request")[-1]
    assert ["te", "trailers"] in seen["headers"]


def test_concurrent_requests_share_one_connection(router, nats_client, h2_backends):
    backend = h2_backends()
    route(nats_client, router, backend, "h2share.example.com")
    with ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(
                lambda _: router.get("/slow?seconds=0.5", host="h2share.example.com"), range(16)
            )
        )
    assert [r.status for r in responses] == [200] * 16
    assert len(events(backend, "connection")) == 1
    streams = {r.json()["stream"] for r in responses}
    assert len(streams) == 16


def test_an_idle_connection_is_closed_after_idle_timeout(routerd_factory, nats_client, h2_backends):
    router = routerd_factory({"workers": 1, "backends": {"idle_timeout": 0.5}})
    backend = h2_backends()
    route(nats_client, router, backend, "h2idle.example.com")
    assert router.get("/", host="h2idle.example.com").status == 200
    wait_until(
        lambda: events(backend, "connection-closed"),
        timeout=10,
        what="the idle connection to close",
    )
    assert router.get("/", host="h2idle.example.com").json()["conn"] == 2


def test_more_than_max_concurrent_streams_opens_another_connection(
    router, nats_client, h2_backends
):
    backend = h2_backends("--max-streams", "4")
    route(nats_client, router, backend, "h2limit.example.com")
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda _: router.get("/slow?seconds=0.5", host="h2limit.example.com"), range(8)
            )
        )
    assert [r.status for r in responses] == [200] * 8
    per_conn: dict[int, int] = {}
    for r in responses:
        per_conn[r.json()["conn"]] = per_conn.get(r.json()["conn"], 0) + 1
    assert len(per_conn) >= 2
    assert max(per_conn.values()) <= 4


def test_goaway_mid_load_is_retried_without_502(routerd_factory, nats_client, h2_backends):
    router = routerd_factory({"workers": 1, "backends": {"max_attempts": 3}})
    backend = h2_backends("--goaway-after", "4", "--delay", "0.2")
    route(nats_client, router, backend, "h2goaway.example.com")
    with ThreadPoolExecutor(6) as pool:
        responses = list(
            pool.map(lambda _: router.get("/", host="h2goaway.example.com"), range(24))
        )
    assert [r.status for r in responses] == [200] * 24
    assert len(events(backend, "connection")) >= 2
    failures = router.events_named("backend-endpoint-failed")
    assert failures, "no stream was refused: the test did not exercise GOAWAY"
    assert all("GOAWAY" in f["data"]["error"] for f in failures)
    assert all(f["data"]["retriable"] for f in failures)


def test_client_going_away_resets_the_stream(router, nats_client, h2_backends, access_log):
    backend = h2_backends()
    route(nats_client, router, backend, "h2cancel.example.com")
    sock = socket.create_connection(("127.0.0.1", router.port), timeout=10)
    sock.sendall(b"GET /hold HTTP/1.1\r\nHost: h2cancel.example.com\r\n\r\n")
    wait_until(
        lambda: any(e["path"] == "/hold" for e in events(backend, "request")),
        timeout=10,
        what="the backend to get the request",
    )
    sock.close()
    resets = wait_until(lambda: events(backend, "reset"), timeout=10, what="RST_STREAM")
    assert resets[0]["code"] == 8  # CANCEL
    assert access_line(access_log, "GET /hold HTTP/1.1")["status"] == "499"
    # The connection stays up for others.
    assert router.get("/", host="h2cancel.example.com").status == 200
    assert len(events(backend, "connection")) == 1


def test_max_conns_counts_streams(routerd_factory, nats_client, h2_backends):
    router = routerd_factory({"workers": 1, "backends": {"max_conns": 2}})
    backend = h2_backends()
    route(nats_client, router, backend, "h2maxconns.example.com")
    with ThreadPoolExecutor(2) as pool:
        slow = [
            pool.submit(router.get, "/slow?seconds=1.5", host="h2maxconns.example.com")
            for _ in range(2)
        ]
        wait_until(
            lambda: len([e for e in events(backend, "request") if "slow" in e["path"]]) == 2,
            timeout=10,
            what="two streams in flight",
        )
        refused = router.get("/", host="h2maxconns.example.com")
        assert refused.status == 503
        assert refused.header("X-Cf-RouterError") == "Connection Limit Reached"
        assert [f.result().status for f in slow] == [200, 200]
    assert len(events(backend, "connection")) == 1


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("h2pki")
    ca = CertificateAuthority()
    return {"ca": ca, "good": ca.issue(SAN).write(directory, "good")}


def test_tls_h2_backend_with_the_right_san(routerd_factory, nats_client, h2_backends, pki):
    router = routerd_factory({"workers": 1, "ca_certs": [pki["ca"].cert_pem]})
    cert, key = pki["good"]
    backend = h2_backends("--cert", str(cert), "--key", str(key))
    route(
        nats_client,
        router,
        backend,
        "h2tls.example.com",
        tls_port=backend.port,
        server_cert_domain_san=SAN,
    )
    response = router.get("/", host="h2tls.example.com")
    assert response.status == 200
    assert response.json()["scheme"] == "https"


def test_tls_h2_backend_with_a_wrong_san_is_refused(routerd_factory, nats_client, h2_backends, pki):
    router = routerd_factory({"workers": 1, "ca_certs": [pki["ca"].cert_pem]})
    cert, key = pki["good"]
    backend = h2_backends("--cert", str(cert), "--key", str(key))
    register(
        nats_client,
        0,
        ["h2badsan.example.com"],
        tls_port=backend.port,
        server_cert_domain_san="other.internal",
        protocol="http2",
    )

    def refused() -> Response | None:
        response = router.get("/", host="h2badsan.example.com")
        return response if response.status == 503 else None

    first = wait_until(refused, timeout=10, what="the route to be served (and refused)")
    assert first.header("X-Cf-RouterError").startswith("endpoint_failure (x509:")
    # A TLS failure is prunable: the endpoint has left the pool, as in Gorouter.
    then = router.get("/", host="h2badsan.example.com")
    assert (then.status, then.header("X-Cf-RouterError")) == (503, "no_endpoints")
    assert events(backend, "request") == []


def test_unregistered_protocol_stays_http1(router, nats_client, backend_factory):
    backend = backend_factory(name="plain")
    register(nats_client, backend.port, ["h1.example.com"], protocol="http1")
    wait_routed(router, "h1.example.com")
    response = router.get("/", host="h1.example.com")
    assert response.status == 200
    assert response.header("X-Backend") == "plain"

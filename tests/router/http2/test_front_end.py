"""The HTTP/2 front end with real clients (curl --http2, nghttp, the h2 package) over TLS:
each stream one exchange through the proxy, headers and errors as Gorouter gives them, bodies
streamed both ways, trailers, and HTTP/1.1 still served on the same listener."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from typing import Any

import pytest

from tests.router.http2.conftest import HOST, RECORD_HOST, ssl_port
from tests.support.h2_client import H2Client, H2Response
from tests.support.routerd import Routerd
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def curl(
    router: Routerd, *args: str, path: str = "/", host: str = HOST
) -> subprocess.CompletedProcess[bytes]:
    port = ssl_port(router)
    argv = [
        "curl",
        "-sk",
        "--max-time",
        "20",
        "--resolve",
        f"{host}:{port}:127.0.0.1",
        *args,
        f"https://{host}:{port}{path}",
    ]
    return subprocess.run(argv, capture_output=True, timeout=30, check=False)


def access_lines(router: Routerd) -> list[str]:
    path = router.config["access_log"]["file"]
    try:
        with open(path) as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def echoed(body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body)
    parsed["header_map"] = {k.lower(): v for k, v in parsed["headers"]}
    return parsed


def test_curl_http2_get_reaches_the_backend_with_router_headers(router: Routerd) -> None:
    result = curl(router, "--http2", "-D", "-", "-H", "X-Forwarded-Proto: http", path="/hello?x=1")
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200"), head
    seen = echoed(body)
    assert seen["path"] == "/hello?x=1"
    assert seen["version"] == "1.1"  # the backend is spoken to in HTTP/1.1
    headers = seen["header_map"]
    assert headers["host"] == f"{HOST}:{ssl_port(router)}"  # from :authority
    assert headers["x-forwarded-proto"] == "http"  # kept, as Gorouter keeps it by default
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert len(headers["x-vcap-request-id"]) == 36
    assert b"x-vcap-request-id:" in head.lower()
    wait_until(
        lambda: any('"GET /hello?x=1 HTTP/2.0" 200' in line for line in access_lines(router)),
        what="an HTTP/2.0 access log line",
    )


def test_x_forwarded_proto_is_https_when_the_client_sends_none(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        response = client.request("GET", "/", HOST)
    assert response.status == 200
    assert echoed(response.body)["header_map"]["x-forwarded-proto"] == "https"


def test_curl_http2_post_streams_the_body_to_the_backend(router: Routerd, tmp_path) -> None:
    payload = bytes(range(256)) * 4096 * 3  # 3 MiB: many windows' worth
    upload = tmp_path / "upload.bin"
    upload.write_bytes(payload)
    result = curl(router, "--http2", "--data-binary", f"@{upload}", path="/upload")
    assert result.returncode == 0, result.stderr
    seen = echoed(result.stdout)
    assert seen["method"] == "POST"
    assert seen["body_len"] == len(payload)
    assert seen["body_sha256"] == hashlib.sha256(payload).hexdigest()


def test_a_body_of_unknown_length_reaches_the_backend_chunked(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        stream = client.start("PUT", "/chunks", HOST, end=False)
        client.send_body(stream, b"a" * 100_000)
        response = client.wait(stream)
    seen = echoed(response.body)
    assert (seen["method"], seen["body_len"], seen["chunked"]) == ("PUT", 100_000, True)


def test_a_large_streamed_response_arrives_whole(router: Routerd) -> None:
    result = curl(router, "--http2", "-o", "-", path="/bytes/20000000")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == 20_000_000


def test_concurrent_streams_on_one_connection_with_nghttp(router: Routerd) -> None:
    port = ssl_port(router)
    paths = [f"https://127.0.0.1:{port}/stream/{n}" for n in range(20)]
    result = subprocess.run(
        ["nghttp", "-ns", "-m", "1", "-H", f":authority: {HOST}", *paths],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # One line per stream in nghttp's statistics, each with status 200.
    lines = [line for line in result.stdout.decode().splitlines() if "/stream/" in line]
    assert len(lines) == 20, result.stdout.decode()
    assert all(" 200 " in line for line in lines), result.stdout.decode()


def test_interleaved_streams_each_get_their_own_response(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        streams = {client.start("GET", f"/s/{n}", HOST): n for n in range(30)}
        for stream, n in streams.items():
            response = client.wait(stream)
            assert response.status == 200
            assert echoed(response.body)["path"] == f"/s/{n}"


def test_unknown_route_gets_gorouters_404(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        response = client.request("GET", "/", "nowhere.example.com")
    assert response.status == 404
    assert response.headers["x-cf-routererror"] == "unknown_route"
    assert (
        response.text == "404 Not Found: Requested route ('nowhere.example.com') does not exist.\n"
    )


def test_backend_trailers_become_an_http2_trailers_block(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        response = client.request(
            "GET", "/reply/trailers", RECORD_HOST, headers=[("te", "trailers")]
        )
    assert response.status == 200
    assert response.body == b"ok"
    assert response.trailers == {"x-checksum": "abc123", "x-status": "done"}


def test_connection_specific_response_headers_are_removed(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        response = client.request("GET", "/reply/connection-named", RECORD_HOST)
    assert response.status == 200
    assert response.headers.get("x-kept") == "yes"
    for name in ("connection", "x-hop", "keep-alive", "transfer-encoding"):
        assert name not in response.headers


def test_te_trailers_reaches_the_backend_and_cookies_are_joined(router: Routerd) -> None:
    with H2Client(ssl_port(router)) as client:
        response = client.request(
            "GET", "/", HOST, headers=[("te", "trailers"), ("cookie", "a=1"), ("cookie", "b=2")]
        )
    headers = echoed(response.body)["header_map"]
    assert headers["te"] == "trailers"
    assert headers["cookie"] == "a=1; b=2"


def test_head_request_gets_headers_only(router: Routerd) -> None:
    result = curl(router, "--http2", "-I")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/2 200")


def test_http11_is_still_served_on_the_tls_listener(router: Routerd) -> None:
    result = curl(router, "--http1.1", "-D", "-", path="/one")
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert echoed(body)["path"] == "/one"


def test_enable_http2_false_offers_http11_only(start_tls_router) -> None:
    router = start_tls_router(enable_http2=False)
    result = curl(router, "--http2", "-D", "-", path="/plain")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/1.1 200"), result.stdout[:100]


def test_plain_port_answers_a_prior_knowledge_preface_as_gorouter(router: Routerd) -> None:
    """The plain port stays HTTP/1.1: Gorouter's answer to `PRI * HTTP/2.0` there is its
    empty-Host 400, and the connection closes."""
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request"), reply
    assert b"X-Cf-Routererror: empty_host" in head.replace(b"RouterError", b"Routererror")
    assert body == b"400 Bad Request: Request had empty Host header\n"


def test_a_proxy_protocol_header_names_the_client_of_an_h2_connection(start_tls_router) -> None:
    router = start_tls_router(enable_proxy=True)
    header = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n"

    def routed() -> H2Response | None:
        with H2Client(ssl_port(router), proxy_header=header) as client:
            response = client.request("GET", "/proxied", HOST)
        return response if response.status == 200 else None

    response = wait_until(routed, what="the route, over h2 behind a PROXY header")
    assert echoed(response.body)["header_map"]["x-forwarded-for"] == "203.0.113.7"


def test_more_header_fields_than_max_request_headers_get_431(start_tls_router) -> None:
    router = start_tls_router(max_request_headers=10)
    with H2Client(ssl_port(router)) as client:
        many = [(f"x-field-{n}", "v") for n in range(20)]
        refused = client.request("GET", "/", HOST, headers=many)
        served = client.request("GET", "/", HOST, headers=many[:5])
    assert refused.status == 431
    assert refused.headers["x-cf-routererror"] == "max-request-size-exceeded"
    assert served.status == 200

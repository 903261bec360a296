"""The router's own answers: Gorouter's exact status, body and X-Cf-RouterError."""

from __future__ import annotations

import concurrent.futures

import pytest

from tests.support.ports import free_port
from tests.support.rawhttp import body_of, header_of, raw_request, status_of
from tests.support.routes import register, unregister, wait_routed, wait_until

pytestmark = pytest.mark.integration


def test_unknown_route_is_404_with_gorouter_body(routerd_factory):
    router = routerd_factory()
    response = router.get("/some/path", host="Nowhere.Example.com:8080")
    assert response.status == 404
    assert (
        response.text
        == "404 Not Found: Requested route ('Nowhere.Example.com:8080') does not exist.\n"
    )
    assert response.header("X-Cf-RouterError") == "unknown_route"
    assert response.header("Cache-Control") == "no-cache, no-store"
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.header("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: \r\n\r\n",  # empty
        b"GET / HTTP/1.1\r\n\r\n",  # missing on HTTP/1.1
        b"GET / HTTP/1.0\r\n\r\n",  # missing on HTTP/1.0
    ],
    ids=["empty", "missing-1.1", "missing-1.0"],
)
def test_empty_host_is_400(routerd_factory, request_bytes):
    router = routerd_factory()
    response = raw_request(router.port, request_bytes)
    assert status_of(response) == 400
    assert body_of(response) == b"400 Bad Request: Request had empty Host header\n"
    assert header_of(response, "X-Cf-RouterError") == "empty_host"


def test_host_equal_to_router_address_is_400(routerd_factory):
    router = routerd_factory()
    response = router.get("/", host=f"127.0.0.1:{router.port}")
    assert response.status == 400
    assert response.text == "400 Bad Request: Request had empty Host header\n"
    assert response.header("X-Cf-RouterError") == "empty_host"
    assert response.header("Cache-Control") == "public,max-age=2"


def test_emptied_pool_is_503_no_endpoints(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory({"empty_pool_timeout": "60s"})
    register(nats_client, backend.port, ["empty.example.com"])
    wait_routed(router, "empty.example.com")
    unregister(nats_client, backend.port, ["empty.example.com"])
    response = wait_until(
        lambda: (r := router.get("/", host="empty.example.com")).status == 503 and r,
        what="the emptied pool to answer 503",
    )
    assert response.text == (
        "503 Service Unavailable: Requested route ('empty.example.com') has no available "
        "endpoints.\n"
    )
    assert response.header("X-Cf-RouterError") == "no_endpoints"
    assert response.header("Cache-Control") == "public,max-age=2"


def test_emptied_pool_is_404_when_503_is_off(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory({"empty_pool_timeout": "60s", "empty_pool_response_code_503": False})
    register(nats_client, backend.port, ["empty404.example.com"])
    wait_routed(router, "empty404.example.com")
    unregister(nats_client, backend.port, ["empty404.example.com"])
    response = wait_until(
        lambda: (r := router.get("/", host="empty404.example.com")).status == 404 and r,
        what="the emptied pool to answer 404",
    )
    assert response.header("X-Cf-RouterError") == "unknown_route"


def test_connection_limit_is_503_and_global_across_workers(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory(name="slow")
    router = routerd_factory({"workers": 2, "backends": {"max_conns": 2}})
    register(nats_client, backend.port, ["limited.example.com"])
    wait_routed(router, "limited.example.com")
    requests = 8
    with concurrent.futures.ThreadPoolExecutor(requests) as pool:
        futures = [
            pool.submit(router.get, "/slow?seconds=1.5", host="limited.example.com")
            for _ in range(requests)
        ]
        responses = [future.result() for future in futures]
    ok = [r for r in responses if r.status == 200]
    limited = [r for r in responses if r.status == 503]
    # Per-worker limits would let 4 through; the shared counters allow 2, plus at most one
    # overshoot per worker racing on the check (max_conns + workers - 1).
    assert 2 <= len(ok) <= 3, [r.status for r in responses]
    assert len(ok) + len(limited) == requests
    for response in limited:
        assert response.header("X-Cf-RouterError") == "Connection Limit Reached"
        assert response.text == (
            "503 Service Unavailable: Requested route ('limited.example.com') has reached the "
            "connection limit.\n"
        )
    # The limit frees up as requests finish.
    assert router.get("/", host="limited.example.com").status == 200


def test_dial_error_is_502_with_endpoint_failure(routerd_factory, nats_client):
    router = routerd_factory()
    dead = free_port()
    register(nats_client, dead, ["dead.example.com"])
    wait_routed(router, "dead.example.com")
    response = router.get("/", host="dead.example.com")
    assert response.status == 502
    assert response.text == "502 Bad Gateway: Registered endpoint failed to handle the request.\n"
    assert response.header("X-Cf-RouterError") == (
        f"endpoint_failure (dial tcp 127.0.0.1:{dead}: connect: connection refused)"
    )


def test_endpoint_timeout_is_502(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory({"endpoint_timeout": "0.5s"})
    register(nats_client, backend.port, ["slowpoke.example.com"])
    wait_routed(router, "slowpoke.example.com")
    response = router.get("/slow?seconds=3", host="slowpoke.example.com")
    assert response.status == 502
    assert response.header("X-Cf-RouterError") == "endpoint_failure (context deadline exceeded)"
    # Not retried: the backend saw the request once.
    assert len([r for r in backend.requests_seen() if r["path"].startswith("/slow")]) == 1

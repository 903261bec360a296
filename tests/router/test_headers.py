"""What the backend receives, and the headers the client gets back."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.nats import NatsClient
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register, wait_routed

pytestmark = pytest.mark.integration

APP = "5a1d7a6a-7d5c-4c5e-9b8e-6f3f1f0c2d4e"


@pytest.fixture(scope="module")
def router(module_nats, module_backends):
    backend = module_backends(name="echo")
    router = new_routerd(module_nats.port, {"tracing": {"enable_zipkin": True}})
    router.start()
    with NatsClient(module_nats.port) as nats:
        register(
            nats,
            backend.port,
            ["headers.example.com"],
            app=APP,
            private_instance_id="instance-7",
            private_instance_index="3",
        )
        wait_routed(router, "headers.example.com")
    yield router
    router.stop()


def received(router: Routerd, headers: dict[str, str] | None = None, **kwargs) -> tuple:
    response = router.get("/echo", host="headers.example.com", headers=headers, **kwargs)
    assert response.status == 200, response.text
    echo = response.json()
    got = {}
    for name, value in echo["headers"]:
        got.setdefault(name.lower(), []).append(value)
    return response, got


def test_forwarded_for_is_appended(router):
    _, got = received(router, {"X-Forwarded-For": "203.0.113.9"})
    assert got["x-forwarded-for"] == ["203.0.113.9, 127.0.0.1"]
    _, got = received(router)
    assert got["x-forwarded-for"] == ["127.0.0.1"]


def test_forwarded_proto_is_set_when_absent_and_kept_when_present(router):
    _, got = received(router)
    assert got["x-forwarded-proto"] == ["http"]
    _, got = received(router, {"X-Forwarded-Proto": "https"})
    assert got["x-forwarded-proto"] == ["https"]


def test_fresh_request_id_reaches_backend_and_client(router):
    response, got = received(router, {"X-Vcap-Request-Id": "client-chosen"})
    ids = got["x-vcap-request-id"]
    assert len(ids) == 1 and ids[0] != "client-chosen"
    assert uuid.UUID(ids[0]).version == 4
    assert response.header("X-Vcap-Request-Id") == ids[0]
    _, again = received(router)
    assert again["x-vcap-request-id"] != ids


def test_instance_headers_come_from_the_registration(router):
    _, got = received(router, {"X-CF-ApplicationID": "spoofed"})
    assert got["x-cf-applicationid"] == [APP]
    assert got["x-cf-instanceid"] == ["instance-7"]
    assert got["x-cf-instanceindex"] == ["3"]


def test_routes_to_one_address_each_carry_their_own_registration(
    router, module_nats, module_backends
):
    """Workers keep one set of instance headers per backend address; a route whose registration
    of that address differs must not get another route's."""
    backend = module_backends(name="echo")
    with NatsClient(module_nats.port) as nats:
        for index in range(3):
            register(
                nats,
                backend.port,
                [f"same-address-{index}.example.com"],
                app=f"app-{index}",
                private_instance_id=f"instance-{index}",
            )
        for index in range(3):
            wait_routed(router, f"same-address-{index}.example.com")
    for _ in range(3):  # interleaved, so each route follows another route's request
        for index in range(3):
            response = router.get("/echo", host=f"same-address-{index}.example.com")
            assert response.status == 200, response.text
            got = {name.lower(): value for name, value in response.json()["headers"]}
            assert got["x-cf-applicationid"] == f"app-{index}"
            assert got["x-cf-instanceid"] == f"instance-{index}"


def test_request_start_is_set_when_absent_and_kept_when_present(router):
    before = int(time.time() * 1000)
    _, got = received(router)
    after = int(time.time() * 1000)
    assert before <= int(got["x-request-start"][0]) <= after
    _, got = received(router, {"X-Request-Start": "12345"})
    assert got["x-request-start"] == ["12345"]


def test_hop_by_hop_headers_are_stripped(router):
    _, got = received(
        router,
        {
            "Connection": "keep-alive, X-Drop-Me",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "TE": "trailers",
            "X-Drop-Me": "gone",
            "X-Keep-Me": "kept",
        },
    )
    for name in ("keep-alive", "proxy-authorization", "x-drop-me"):
        assert name not in got
    assert got["x-keep-me"] == ["kept"]
    # As Gorouter (Go's ReverseProxy): TE goes, but a client that accepts trailers says so.
    assert got["te"] == ["trailers"]
    _, got = received(router, {"TE": "gzip"})
    assert "te" not in got


def test_connection_cannot_strip_router_headers(router):
    _, got = received(
        router,
        {
            "Connection": "X-Forwarded-For, X-Forwarded-Proto, X-Request-Start, X-Vcap-Request-Id",
            "X-Forwarded-For": "198.51.100.1",
        },
    )
    assert got["x-forwarded-for"] == ["198.51.100.1, 127.0.0.1"]
    assert got["x-forwarded-proto"] == ["http"]
    assert "x-request-start" in got
    assert "x-vcap-request-id" in got


def test_app_instance_header_is_not_forwarded(router):
    _, got = received(router, {"X-CF-App-Instance": f"{APP}:3"})
    assert "x-cf-app-instance" not in got


def test_b3_headers_when_zipkin_is_on(router):
    _response, got = received(router)
    trace = got["x-b3-traceid"][0]
    span = got["x-b3-spanid"][0]
    assert len(trace) == 32 and len(span) == 16
    assert got["b3"] == [f"{trace}-{span}"]
    # The request id is the trace id, as Gorouter builds it.
    assert got["x-vcap-request-id"][0].replace("-", "") == trace
    incoming = "463ac35c9f6413ad48485a3953bb6124"
    _, got = received(router, {"X-B3-TraceId": incoming, "X-B3-SpanId": "a2fb4a1d1a96d312"})
    assert got["x-b3-traceid"] == [incoming]
    assert got["x-vcap-request-id"][0].replace("-", "") == incoming


def test_host_and_path_reach_the_backend_unchanged(router):
    response = router.get("/a%20b/c?q=1&r=%2F", host="Headers.Example.com:80")
    assert response.status == 200
    echo = response.json()
    assert echo["raw_path"] == "/a%20b/c?q=1&r=%2F"
    got = {name.lower(): value for name, value in echo["headers"]}
    assert got["host"] == "Headers.Example.com:80"


def test_forced_https_proto(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory({"force_forwarded_proto_https": True})
    register(nats_client, backend.port, ["forced.example.com"])
    wait_routed(router, "forced.example.com")
    echo = router.get("/", host="forced.example.com", headers={"X-Forwarded-Proto": "http"}).json()
    got = {name.lower(): value for name, value in echo["headers"]}
    assert got["x-forwarded-proto"] == "https"

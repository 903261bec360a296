"""A load balancer's health check on the router's own ports (`healthcheck_user_agent`): answered
by the router whatever the Host, never sent to an app, and 503 while draining, as Gorouter's
proxy health check answers it."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.certs import CertificateAuthority
from tests.support.nats import NatsClient
from tests.support.ports import free_port
from tests.support.rawhttp import body_of, header_of, read_response, status_of
from tests.support.record_backend import seen
from tests.support.routerd import Routerd, http_request, new_routerd
from tests.support.routes import register, wait_routed
from tests.support.tls_client import client_context, get
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HOST = "app.example.com"
MONITOR = "HTTP-Monitor/1.1"
AGENT = MONITOR.encode() + b"\r\n\r\n"  # the last header line of a raw request
NO_CACHE = ("private, max-age=0", "0")


def start_routed(nats_port: int, backend_port: int, overrides: dict[str, Any]) -> Routerd:
    router = new_routerd(nats_port, overrides)
    router.start()
    with NatsClient(nats_port) as nats:
        register(nats, backend_port, [HOST])
        wait_routed(router, HOST)
    return router


@pytest.fixture(scope="module")
def setup(module_nats, module_backends) -> Iterator[tuple[Routerd, Any]]:
    backend = module_backends("--mode", "record", name="apps")
    ca = CertificateAuthority()
    issued = ca.issue(HOST)
    tls = {
        "enable_ssl": True,
        "ssl_port": free_port(),
        "tls_pem": [{"cert_chain": issued.cert_pem, "private_key": issued.key_pem}],
    }
    router = start_routed(module_nats.port, backend.port, tls)
    yield router, backend
    router.stop()


def app_requests(backend: Any) -> list[str]:
    """The paths of the requests that reached the app, in order."""
    requests, _ = seen(backend.requests_seen())
    return [request["url"] for request in requests]


def assert_only_marker_reached_the_app(router: Routerd, backend: Any, before: int) -> None:
    """A plain request after the checks reaches the app, and nothing else did since `before`."""
    assert router.get("/marker", host=HOST).status == 200
    wait_until(
        lambda: len(app_requests(backend)) > before, timeout=5, what="the app to log a request"
    )
    assert app_requests(backend)[before:] == ["/marker"]


@pytest.mark.parametrize("host", [HOST, "unknown.example.com", "127.0.0.1"])
def test_health_check_is_answered_by_the_router_whatever_the_host(setup, host):
    router, backend = setup
    before = len(app_requests(backend))
    response = router.get("/check", host=host, headers={"User-Agent": MONITOR})
    assert response.status == 200
    assert response.body == b"ok\n"
    assert (response.header("Cache-Control"), response.header("Expires")) == NO_CACHE
    assert response.header("Content-Type") is None
    assert response.header("X-Cf-RouterError") is None
    assert_only_marker_reached_the_app(router, backend, before)


def test_health_check_without_any_host_keeps_the_connection(setup):
    router, backend = setup
    before = len(app_requests(backend))
    # HTTP/1.0 without Host (what simple monitors send), then HTTP/1.1 naming nobody, on one
    # connection kept alive as Gorouter keeps it.
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(b"GET /check HTTP/1.0\r\nConnection: keep-alive\r\nUser-Agent: " + AGENT)
        reply = read_response(sock)
        assert (status_of(reply), body_of(reply)) == (200, b"ok\n")
        assert header_of(reply, "Connection") == "keep-alive"
        sock.sendall(b"GET /check HTTP/1.1\r\nHost: \r\nUser-Agent: " + AGENT)
        reply = read_response(sock)
        assert (status_of(reply), body_of(reply)) == (200, b"ok\n")
    assert_only_marker_reached_the_app(router, backend, before)


def test_only_the_exact_user_agent_is_a_health_check(setup):
    router, _ = setup
    exact = router.get("/", host=HOST, headers={"User-Agent": MONITOR})
    assert (exact.status, exact.body) == (200, b"ok\n")
    for agent in ("HTTP-Monitor/1.1 (extra)", "http-monitor/1.1", "curl/8"):
        response = router.get("/routed", host=HOST, headers={"User-Agent": agent})
        assert response.status == 200, agent
        unknown = router.get("/nowhere", host="unknown.example.com", headers={"User-Agent": agent})
        assert unknown.header("X-Cf-RouterError") == "unknown_route", agent


def test_health_check_on_the_tls_listener(setup):
    router, backend = setup
    before = len(app_requests(backend))
    result = get(
        int(router.config["ssl_port"]),
        "unknown.example.com",
        "/check-tls",
        headers={"User-Agent": MONITOR},
        tls=client_context(),
        server_name=HOST,
    )
    assert result.response.status == 200
    assert result.response.body == b"ok\n"
    assert_only_marker_reached_the_app(router, backend, before)


def test_health_checks_are_counted(setup):
    router, _ = setup

    def counted() -> int:
        metrics = router.status_request("GET", "/metrics").text
        line = next(x for x in metrics.splitlines() if x.startswith("routerd_lb_health_checks"))
        return int(line.split()[-1])

    before = counted()
    router.get("/check-count", host="x", headers={"User-Agent": MONITOR})
    wait_until(lambda: counted() == before + 1, timeout=5, what="the health check counted")


def test_a_configured_user_agent_replaces_the_default_and_empty_turns_it_off(
    nats_server, backend_factory
):
    backend = backend_factory("--mode", "record", name="apps")
    custom = start_routed(
        nats_server.port, backend.port, {"healthcheck_user_agent": "ELB-HealthChecker/2.0"}
    )
    try:
        agent = {"User-Agent": "ELB-HealthChecker/2.0"}
        assert custom.get("/check", host="nobody", headers=agent).body == b"ok\n"
        default = custom.get("/", host="nobody", headers={"User-Agent": MONITOR})
        assert default.header("X-Cf-RouterError") == "unknown_route"
    finally:
        custom.stop()
    off = start_routed(nats_server.port, backend.port, {"healthcheck_user_agent": ""})
    try:
        assert off.get("/", host="nobody", headers={"User-Agent": ""}).status == 404
        assert off.get("/", host="nobody").status == 404
    finally:
        off.stop()


def test_drain_turns_the_health_check_unhealthy_while_apps_are_still_served(
    nats_server, backend_factory
):
    backend = backend_factory("--mode", "record", name="apps")
    router = start_routed(nats_server.port, backend.port, {"drain_wait": "10s"})
    try:
        assert router.get("/", host="x", headers={"User-Agent": MONITOR}).status == 200
        router.signal(signal.SIGUSR1)
        wait_until(lambda: router.health().status == 503, timeout=5, what="/health to turn 503")

        def check() -> Any:
            return http_request(router.port, "GET", "/check", "x", {"User-Agent": MONITOR})

        wait_until(lambda: check().status == 503, timeout=5, what="the health check to turn 503")
        response = check()
        assert response.body == b""
        assert (response.header("Cache-Control"), response.header("Expires")) == NO_CACHE
        # Still serving apps during drain_wait, as Gorouter does.
        assert router.get("/during-drain", host=HOST).status == 200
        assert not any(url == "/check" for url in app_requests(backend))
    finally:
        router.stop()

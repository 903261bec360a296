"""Gorouter's status layout: /health (and /healthz when asked for) on status.port without auth,
over TLS on status.tls.port when set, the local /routes listener on 127.0.0.1:status.routes.port
with auth, every health answer 503 once draining, and READY=1 held back for
load_balancer_healthy_threshold."""

from __future__ import annotations

import base64
import signal
import socket

import pytest

from tests.support.certs import CertificateAuthority
from tests.support.ports import free_port
from tests.support.routerd import (
    STATUS_PASS,
    STATUS_USER,
    Response,
    Routerd,
    http_request,
    logged_at,
    new_routerd,
)
from tests.support.routes import register, wait_routed
from tests.support.tls_client import client_context, get
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ALIVE = "/is-process-alive-do-not-use-for-loadbalancing"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def routes_port_request(router: Routerd, path: str, headers: dict[str, str]) -> Response:
    port = int(router.config["status"]["routes"]["port"])
    return http_request(port, "GET", path, None, headers, None, 10)


def test_routes_listener_serves_routes_with_auth_only(
    routerd_factory, nats_client, backend_factory
):
    router = routerd_factory()
    backend = backend_factory()
    register(nats_client, backend.port, ["listed.example.com"])
    wait_routed(router, "listed.example.com")

    response = routes_port_request(router, "/routes", basic(STATUS_USER, STATUS_PASS))
    assert response.status == 200
    assert response.header("Content-Type") == "application/json"
    assert [e["address"] for e in response.json()["listed.example.com"]] == [backend.address]
    for headers in ({}, basic(STATUS_USER, "wrong"), basic("wrong", STATUS_PASS)):
        assert routes_port_request(router, "/routes", headers).status == 401
    # Only /routes there: health and the operators' endpoints stay on status.port.
    for path in ("/health", "/varz", "/metrics"):
        assert routes_port_request(router, path, basic(STATUS_USER, STATUS_PASS)).status == 404
    # routerd's own endpoints on status.port keep working.
    assert router.status_request("GET", "/routes").status == 200
    assert router.status_request("GET", "/routes", auth=None).status == 401


def test_routes_listener_binds_loopback_only(routerd_factory):
    router = routerd_factory()
    port = int(router.config["status"]["routes"]["port"])
    with socket.socket() as probe:
        probe.settimeout(2)
        # Another loopback address reaches a wildcard listener, never one bound to 127.0.0.1.
        assert probe.connect_ex(("127.0.0.2", port)) != 0
    assert routes_port_request(router, "/routes", {}).status == 401


def test_healthz_is_served_only_when_the_deprecated_endpoints_are_enabled(routerd_factory):
    router = routerd_factory()
    assert router.status_request("GET", "/healthz", auth=None).status == 404
    enabled = routerd_factory({"status": {"enable_deprecated_varz_healthz_endpoints": True}})
    response = enabled.status_request("GET", "/healthz", auth=None)
    assert (response.status, response.text) == (200, "ok\n")
    assert response.header("Cache-Control") == "private, max-age=0"


def test_process_alive_answers_without_auth(routerd_factory):
    router = routerd_factory()
    response = router.status_request("GET", ALIVE, auth=None)
    assert (response.status, response.text) == (200, "ok\n")


def test_drain_turns_every_health_answer_unhealthy(routerd_factory):
    router = routerd_factory(
        {"drain_wait": "10s", "status": {"enable_deprecated_varz_healthz_endpoints": True}}
    )
    monitor = {"User-Agent": "HTTP-Monitor/1.1"}
    assert router.get("/", host="nobody", headers=monitor).status == 200
    router.signal(signal.SIGUSR1)
    wait_until(lambda: router.health().status == 503, timeout=5, what="/health to turn 503")
    assert router.status_request("GET", "/healthz", auth=None).status == 503
    wait_until(
        lambda: router.get("/", host="nobody", headers=monitor).status == 503,
        timeout=5,
        what="the router's own health check to turn 503",
    )
    # The process is alive all the same: process monitors must not restart a draining router.
    assert router.status_request("GET", ALIVE, auth=None).status == 200


def test_ready_waits_load_balancer_healthy_threshold_after_healthy(nats_server, tmp_path):
    notify_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(notify_path)
        listener.settimeout(20)
        router = new_routerd(nats_server.port, {"load_balancer_healthy_threshold": "2s"})
        router.env = {"NOTIFY_SOCKET": notify_path}
        try:
            router.start()
            # Healthy on every answer while systemd still waits: the load balancer counts.
            monitor = {"User-Agent": "HTTP-Monitor/1.1"}
            assert router.get("/", host="nobody", headers=monitor).status == 200
            while b"READY=1" not in listener.recv(4096):
                pass
            # Measured by routerd's own clock (its log), not by when this busy test got to look.
            (started,) = router.events_named("router-started")
            # READY=1 goes out just before the event is logged.
            (ready,) = wait_until(lambda: router.events_named("router-ready"), what="router-ready")
            waited = logged_at(ready) - logged_at(started)
            assert 1.9 <= waited <= 10, waited
            assert ready["data"]["load_balancer_healthy_threshold"] == 2
        finally:
            router.stop()


def test_tls_health_listener_alone(routerd_factory):
    ca = CertificateAuthority()
    issued = ca.issue("router.example.com")
    tls_port = free_port()
    status = {
        "enable_nontls_health_checks": False,
        "tls": {"port": tls_port, "certificate": issued.cert_pem, "key": issued.key_pem},
    }
    router = routerd_factory({"drain_wait": "10s", "status": status}, wait_healthy=False)

    def over_tls(path: str = "/health") -> Response:
        context = client_context(ca.cert_pem)
        name = "router.example.com"
        return get(tls_port, name, path, tls=context, server_name=name).response

    wait_until(lambda: over_tls().status == 200, timeout=30, what="/health over TLS")
    assert over_tls().body == b"ok\n"
    assert over_tls(ALIVE).status == 200
    # No health endpoint on status.port now; the operators' endpoints stay there.
    assert router.health().status == 404
    assert router.status_request("GET", "/varz").status == 200
    router.signal(signal.SIGUSR1)
    wait_until(lambda: over_tls().status == 503, timeout=5, what="/health over TLS to turn 503")

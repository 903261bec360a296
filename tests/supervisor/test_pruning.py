"""Stale routes are pruned; a NATS outage suspends pruning and the router keeps serving."""

from __future__ import annotations

import time

import pytest

from tests.support.nats import NatsClient
from tests.support.routes import register, route_addresses, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SHORT = {"droplet_stale_threshold": 2, "prune_stale_droplets_interval": "0.25s"}


def test_stale_route_is_pruned(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory(SHORT)
    register(nats_client, backend.port, ["stale.example.com"])
    wait_routed(router, "stale.example.com")
    started = time.monotonic()
    wait_until(
        lambda: "stale.example.com" not in router.status_json("/routes"), timeout=10, what="prune"
    )
    assert time.monotonic() - started >= 1.0  # not before the threshold
    pruned = router.events_named("pruned-route")
    assert pruned[0]["data"]["uri"] == "stale.example.com"
    assert pruned[0]["data"]["endpoints"] == [backend.address]
    assert router.get("/", host="stale.example.com").status == 404


def test_heartbeats_keep_a_route_alive(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory(SHORT)
    register(nats_client, backend.port, ["alive.example.com"])
    wait_routed(router, "alive.example.com")
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        register(nats_client, backend.port, ["alive.example.com"])
        assert route_addresses(router, "alive.example.com") == [backend.address]
        time.sleep(0.5)  # the heartbeat interval under test
    assert not router.events_named("pruned-route")


def test_per_route_threshold_only_shortens(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory(
        {"droplet_stale_threshold": 30, "prune_stale_droplets_interval": "0.25s"}
    )
    register(nats_client, backend.port, ["short.example.com"], stale_threshold_in_seconds=1)
    register(nats_client, backend.port, ["long.example.com"], stale_threshold_in_seconds=3600)
    wait_routed(router, "long.example.com")
    wait_until(
        lambda: "short.example.com" not in router.status_json("/routes"), timeout=10, what="prune"
    )
    assert router.status_json("/routes")["long.example.com"][0]["ttl"] == 30


def test_tls_endpoints_are_not_pruned_by_age(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory(SHORT)
    register(nats_client, backend.port, ["plain.example.com"])
    register(
        nats_client, 0, ["tls.example.com"], tls_port=9443, server_cert_domain_san="x.internal"
    )
    wait_until(lambda: "tls.example.com" in router.status_json("/routes"), what="tls route")
    wait_until(
        lambda: "plain.example.com" not in router.status_json("/routes"), timeout=10, what="prune"
    )
    assert "tls.example.com" in router.status_json("/routes")


def test_nats_outage_suspends_pruning_and_router_keeps_serving(
    routerd_factory, nats_server, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory(SHORT)
    register(nats_client, backend.port, ["outage.example.com"])
    wait_routed(router, "outage.example.com")
    nats_client.close()
    nats_server.stop()
    wait_until(lambda: router.events_named("prune-suspended"), timeout=10, what="prune-suspended")
    # Longer than the stale threshold without any heartbeat: still routed, still served.
    outage_end = time.monotonic() + 4
    while time.monotonic() < outage_end:
        assert router.get("/", host="outage.example.com").status == 200
        time.sleep(0.25)
    assert "outage.example.com" in router.status_json("/routes")
    assert router.status_json("/varz")["nats"]["connected"] is False
    nats_server.start()
    wait_until(
        lambda: router.status_json("/varz")["nats"]["connected"], timeout=20, what="reconnect"
    )
    # Freshened on reconnect: nothing is pruned at once, only a full threshold later.
    back = time.monotonic()
    while time.monotonic() - back < 1.5:
        assert "outage.example.com" in router.status_json("/routes")
        time.sleep(0.1)
    assert not router.events_named("pruned-route")
    with NatsClient(nats_server.port) as client:
        register(client, backend.port, ["outage.example.com"])
    assert router.get("/", host="outage.example.com").status == 200


def test_static_routes_are_served_and_never_pruned(routerd_factory, backend_factory):
    backend = backend_factory(name="static")
    router = routerd_factory(
        {
            **SHORT,
            "static_routes": [
                {"host": "127.0.0.1", "port": backend.port, "uris": ["static.example.com"]}
            ],
        }
    )
    assert router.get("/", host="static.example.com").header("X-Backend") == "static"
    # Several stale thresholds later it is still there, without a single heartbeat.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert router.get("/", host="static.example.com").status == 200
        time.sleep(0.25)
    assert router.status_json("/routes?ttl_left=1")["static.example.com"][0]["ttl_left"] is None

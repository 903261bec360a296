"""A registration storm sent faster than routerd applies it. nats-server drops everything queued
for a client once one write to it blocks for its write_deadline (1 s here), and only says so in
its own log; routerd reads on while it applies, so the backlog waits in routerd and every route
arrives."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.nats import NatsServer, register_message
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

STORM = 40_000  # about 20 MB of messages: far more than routerd applies in a second


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer(settings='write_deadline: "1s"\n')
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def storm_address(index: int) -> str:
    return f"127.0.{10 + index // 250 % 200}.{index % 250 + 1}:{61_000 + index % 1000}"


def storm_message(index: int) -> bytes:
    """A registration in the shape Cloud Foundry's route emitter sends (about 500 bytes)."""
    host, port = storm_address(index).split(":")
    message = {
        "host": host,
        "port": int(port),
        "uris": [f"storm-{index}.apps.example.com"],
        "app": f"5d2a1c3e-{index:012d}",
        "private_instance_id": f"a1b2c3d4-e5f6-{index:012d}",
        "private_instance_index": "0",
        "tags": {
            "component": "route-emitter",
            "app_id": f"5d2a1c3e-{index:012d}",
            "app_name": f"storm-app-{index}",
            "organization_id": "8f2b6c1a-0000-4000-8000-000000000001",
            "organization_name": "storm-org",
            "process_type": "web",
            "source_id": f"5d2a1c3e-{index:012d}",
            "space_id": "1c9d8e7f-0000-4000-8000-000000000002",
            "space_name": "storm-space",
        },
    }
    return json.dumps(message, separators=(",", ":")).encode()


def test_a_storm_faster_than_routerd_applies_it_loses_no_route(
    routerd_factory, nats_server, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory()
    for index in range(STORM):
        nats_client.publish("router.register", storm_message(index))
    register(nats_client, backend.port, ["after-storm.example.com"])
    nats_client.flush()

    wait_routed(router, "after-storm.example.com", timeout=60)
    varz = wait_until(
        lambda: (v := router.status_json("/varz"))["urls"] >= STORM + 1 and v,
        timeout=30,
        what="every route of the storm",
    )
    assert varz["urls"] == STORM + 1
    assert varz["nats"]["messages"]["router.register"] == STORM + 1
    assert varz["nats"]["slow_consumer_events"] == 0
    assert nats_server.process is not None
    assert "Slow Consumer" not in nats_server.process.log_tail(1000)
    # The last of the storm is there as it was sent (never dialled: nothing listens there).
    last = router.status_json("/routes")[f"storm-{STORM - 1}.apps.example.com"]
    assert [entry["address"] for entry in last] == [storm_address(STORM - 1)]
    assert router.get("/", host="after-storm.example.com").status == 200


def test_register_and_unregister_apply_in_the_order_sent(routerd_factory, nats_client):
    # Register, unregister, register again, for many routes back to back: applied in the order
    # sent, every route ends registered (a subject that overtook another would unregister last).
    router = routerd_factory()
    routes = 300
    for index in range(routes):
        message = register_message(62_000 + index, [f"order-{index}.example.com"])
        nats_client.publish("router.register", message)
        nats_client.publish("router.unregister", message)
        nats_client.publish("router.register", message)
    nats_client.flush()
    varz = wait_until(
        lambda: (
            (v := router.status_json("/varz"))["nats"]["messages"].get("router.register")
            == 2 * routes
            and v
        ),
        timeout=30,
        what="every registration applied",
    )
    assert varz["nats"]["messages"]["router.unregister"] == routes
    assert varz["urls"] == routes

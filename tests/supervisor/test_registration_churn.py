"""Registration churn: messages queued behind a backlog of heartbeats and changes are applied,
in order, and the routes they make serve traffic."""

from __future__ import annotations

import json

import pytest

from tests.support.routes import register, unregister, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

CHURN_ROUTES = 2_000
CHURN_ROUNDS = 11  # odd: the last round restores bytes first sent in round 0


def churn_message(index: int, round_: int) -> bytes:
    """A heartbeat of route `index`; every tenth route changes its instance index each round."""
    message = {
        "host": "10.9.0.1",
        "port": 10_000 + index,
        "uris": [f"churn-{index}.example.com"],
        "private_instance_index": str(round_ % 2 if index % 10 == 0 else 0),
    }
    return json.dumps(message, separators=(",", ":")).encode()


def test_registrations_behind_a_backlog_of_churn_are_applied(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory()
    for round_ in range(CHURN_ROUNDS):
        for index in range(CHURN_ROUTES):
            nats_client.publish("router.register", churn_message(index, round_))
    # Behind the backlog: a new route, and an existing route moved to a live backend.
    register(nats_client, backend.port, ["late.example.com"])
    register(nats_client, backend.port, ["churn-7.example.com"])
    unregister(nats_client, 10_007, ["churn-7.example.com"], host="10.9.0.1")
    sent = CHURN_ROUNDS * CHURN_ROUTES + 2

    wait_routed(router, "late.example.com", timeout=60)
    varz = wait_until(
        lambda: (
            (v := router.status_json("/varz"))["nats"]["messages"].get("router.unregister") == 1
            and v
        ),
        timeout=60,
        what="the unregister behind the backlog",
    )
    assert varz["nats"]["messages"]["router.register"] == sent
    assert varz["nats"]["rejected"] == {}
    assert varz["urls"] == CHURN_ROUTES + 1
    assert router.get("/", host="late.example.com").status == 200
    assert router.get("/", host="churn-7.example.com").status == 200
    routes = router.status_json("/routes")
    assert [entry["address"] for entry in routes["churn-7.example.com"]] == [
        f"127.0.0.1:{backend.port}"
    ]
    # The last round's changes are what the table holds.
    last = str((CHURN_ROUNDS - 1) % 2)
    assert routes["churn-10.example.com"][0]["private_instance_index"] == last
    assert routes["churn-11.example.com"][0]["private_instance_index"] == "0"

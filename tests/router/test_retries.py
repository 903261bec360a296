"""No avoidable 502s: retries on dead endpoints and on the keep-alive race, none when unsafe."""

from __future__ import annotations

import concurrent.futures
import random
import time

import pytest

from tests.support.ports import free_port
from tests.support.routes import register, wait_routed

pytestmark = pytest.mark.integration


def test_dead_endpoint_next_to_live_one_never_fails(routerd_factory, nats_client, backend_factory):
    live = backend_factory(name="live")
    router = routerd_factory()
    dead_port = free_port()
    register(nats_client, dead_port, ["mixed.example.com"])
    register(nats_client, live.port, ["mixed.example.com"])
    wait_until_two = router.status_json  # the pool holds both before we start
    assert len(wait_until_two("/routes")["mixed.example.com"]) in (1, 2)
    wait_routed(router, "mixed.example.com")
    statuses = []
    for index in range(20):
        statuses.append(router.get(f"/get/{index}", host="mixed.example.com").status)
        body = f"payload {index}".encode()
        response = router.request("POST", f"/post/{index}", host="mixed.example.com", body=body)
        statuses.append(response.status)
        assert response.json()["body_len"] == len(body)
    assert statuses == [200] * 40
    seen = live.requests_seen()
    assert len([r for r in seen if r["method"] == "POST"]) == 20


def test_reset_after_post_body_is_one_502_and_one_attempt(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory("--mode", "reset-after-body", name="resetter")
    router = routerd_factory()
    register(nats_client, backend.port, ["reset.example.com"])
    wait_routed(router, "reset.example.com")
    before = len(backend.requests_seen())
    response = router.request("POST", "/submit", host="reset.example.com", body=b"x" * 1000)
    assert response.status == 502
    assert response.text == "502 Bad Gateway: Registered endpoint failed to handle the request.\n"
    assert response.header("X-Cf-RouterError").startswith("endpoint_failure (")
    attempts = [r for r in backend.requests_seen()[before:] if r["method"] == "POST"]
    assert len(attempts) == 1


def test_reused_connection_closed_before_response_is_retried(
    routerd_factory, nats_client, backend_factory
):
    """The keep-alive race, made deterministic: every reuse of a pooled connection fails."""
    backend = backend_factory("--mode", "close-reused", name="racy")
    router = routerd_factory({"workers": 1, "backends": {"idle_timeout": "30s"}})
    register(nats_client, backend.port, ["racy.example.com"])
    wait_routed(router, "racy.example.com")
    statuses = [router.get(f"/{i}", host="racy.example.com").status for i in range(30)]
    assert statuses == [200] * 30
    # The router did reuse connections (and lost the race) along the way.
    reuses = [r for r in backend.requests_seen() if r["connection_requests"] > 1]
    assert reuses


def test_non_idempotent_request_on_the_race_is_502_unless_it_has_an_idempotency_key(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory("--mode", "close-reused", name="racy-post")
    router = routerd_factory({"workers": 1, "backends": {"idle_timeout": "30s"}})
    register(nats_client, backend.port, ["racypost.example.com"])
    wait_routed(router, "racypost.example.com")  # leaves a pooled connection behind
    plain = router.request("POST", "/", host="racypost.example.com", body=b"{}")
    assert plain.status == 502
    assert router.get("/", host="racypost.example.com").status == 200  # pool another connection
    keyed = router.request(
        "POST",
        "/",
        host="racypost.example.com",
        body=b"{}",
        headers={"Idempotency-Key": "abc-123"},
    )
    assert keyed.status == 200


def test_backend_idle_timeout_race_gives_no_502s(routerd_factory, nats_client, backend_factory):
    """Requests every 0.9-1.1 s against backends that close idle connections after 1 s."""
    router = routerd_factory({"backends": {"idle_timeout": "30s"}})
    hosts = []
    for index in range(3):
        backend = backend_factory("--keepalive-timeout", "1.0", name=f"idle{index}")
        host = f"idle{index}.example.com"
        register(nats_client, backend.port, [host])
        wait_routed(router, host)
        hosts.append(host)

    def sequence(host: str) -> list[int]:
        rng = random.Random(host)
        statuses = []
        for _ in range(11):
            time.sleep(rng.uniform(0.9, 1.1))  # the traffic pattern under test, not a wait
            statuses.append(router.get("/", host=host).status)
        return statuses

    with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
        results = list(pool.map(sequence, hosts))
    statuses = [status for result in results for status in result]
    assert len(statuses) >= 30
    assert statuses.count(502) == 0, statuses

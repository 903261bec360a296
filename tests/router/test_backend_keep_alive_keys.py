"""Gorouter's backend keep-alive keys as a backend sees them: disable_keep_alives (every request
on a new connection, saying `Connection: close`; HTTP/2 backends get one stream a connection),
max_idle_conns_per_host and max_idle_conns (no more idle connections kept than the caps, once a
burst of concurrent requests is over)."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.record_backend import seen
from tests.support.routerd import Routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
HOST = "keepalive.example.com"
BURST = 12
# Idle connections must outlive the burst's settling here; only the caps may close them.
LONG_IDLE = {"backends": {"idle_timeout": "30s"}}
ESTABLISHED = "01"


def established_to(port: int) -> int:
    """Open connections the backend listening on `port` has accepted (its side of each)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                lines = handle.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == ESTABLISHED:
                count += 1
    return count


def burst(router: Routerd, host: str, count: int) -> None:
    """`count` requests at once, each held by the backend long enough to overlap the others."""
    with ThreadPoolExecutor(count) as pool:
        statuses = list(
            pool.map(lambda _: router.get("/slow?seconds=0.5", host=host).status, range(count))
        )
    assert statuses == [200] * count


def settles_at(port: int, expected: int) -> None:
    wait_until(
        lambda: established_to(port) == expected,
        timeout=10,
        what=f"the backend on {port} to hold {expected} connections",
    )


def test_disable_keep_alives_puts_every_request_on_a_new_connection(
    routerd_factory, nats_client, backend_factory
):
    router = routerd_factory({"workers": 1, "disable_keep_alives": True})
    backend = backend_factory("--mode", "record", name="fresh")
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)
    for index in range(5):
        assert router.get(f"/fresh/{index}", host=HOST).status == 200

    requests, errors = seen(backend.requests_seen())
    assert errors == []
    fresh = [r for r in requests if r["url"].startswith("/fresh/")]
    assert len(fresh) == 5
    assert len({r["conn"] for r in fresh}) == 5
    assert all(["Connection", "close"] in r["headers"] for r in fresh)
    settles_at(backend.port, 0)


def test_backend_connections_are_reused_by_default(routerd_factory, nats_client, backend_factory):
    router = routerd_factory({"workers": 1})
    backend = backend_factory("--mode", "record", name="reused")
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)
    for index in range(5):
        assert router.get(f"/reused/{index}", host=HOST).status == 200

    requests, _ = seen(backend.requests_seen())
    reused = [r for r in requests if r["url"].startswith("/reused/")]
    assert len({r["conn"] for r in reused}) == 1
    assert not any(["Connection", "close"] in r["headers"] for r in reused)


def test_disable_keep_alives_gives_http2_backends_one_stream_a_connection(
    routerd_factory, nats_client, h2_backends
):
    router = routerd_factory({"workers": 1, "disable_keep_alives": True})
    backend = h2_backends()
    register(nats_client, backend.port, [HOST], protocol="http2")
    wait_routed(router, HOST, "/ready")
    for index in range(4):
        assert router.get(f"/h2/{index}", host=HOST).status == 200

    events: list[dict[str, Any]] = backend.requests_seen()
    asked = [e for e in events if e["event"] == "request" and e["path"].startswith("/h2/")]
    assert len({e["conn"] for e in asked}) == 4
    settles_at(backend.port, 0)


def test_max_idle_conns_per_host_caps_what_a_burst_leaves_open(
    routerd_factory, nats_client, backend_factory
):
    router = routerd_factory({"workers": 1, "max_idle_conns_per_host": 3, **LONG_IDLE})
    backend = backend_factory(name="capped")
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)

    burst(router, HOST, BURST)

    settles_at(backend.port, 3)
    assert router.get("/after", host=HOST).status == 200  # an idle one serves it
    settles_at(backend.port, 3)


def test_max_idle_conns_caps_idle_connections_over_all_endpoints(
    routerd_factory, nats_client, backend_factory
):
    router = routerd_factory(
        {"workers": 1, "max_idle_conns": 4, "max_idle_conns_per_host": 10, **LONG_IDLE}
    )
    first, second = backend_factory(name="first"), backend_factory(name="second")
    register(nats_client, first.port, ["first." + HOST])
    register(nats_client, second.port, ["second." + HOST])
    wait_routed(router, "first." + HOST)
    wait_routed(router, "second." + HOST)

    burst(router, "first." + HOST, 6)
    settles_at(first.port, 4)
    # The second endpoint's idle connections push out the first's, longest idle first.
    burst(router, "second." + HOST, 6)

    settles_at(second.port, 4)
    settles_at(first.port, 0)


def test_max_idle_conns_below_the_per_host_cap_bounds_one_endpoint(
    routerd_factory, nats_client, backend_factory
):
    router = routerd_factory(
        {"workers": 1, "max_idle_conns": 1, "max_idle_conns_per_host": 10, **LONG_IDLE}
    )
    backend = backend_factory(name="single")
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)

    for _ in range(2):  # the second burst finds the first's idle connections
        burst(router, HOST, 6)
        settles_at(backend.port, 1)


def test_sighup_turns_keep_alive_off(routerd_factory, nats_client, backend_factory):
    router = routerd_factory({"workers": 1})
    backend = backend_factory("--mode", "record", name="hup")
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)
    router.config["disable_keep_alives"] = True
    router.write_config()
    router.signal(signal.SIGHUP)
    wait_until(lambda: router.events_named("worker-config-reloaded"), what="the reload")
    for index in range(3):
        assert router.get(f"/after-hup/{index}", host=HOST).status == 200

    requests, _ = seen(backend.requests_seen())
    after = [r for r in requests if r["url"].startswith("/after-hup/")]
    assert len({r["conn"] for r in after}) == 3
    assert all(["Connection", "close"] in r["headers"] for r in after)

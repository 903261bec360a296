"""The NATS link proves itself: a frozen server or a hung cluster node never costs routes.

Real nats-server processes frozen with SIGSTOP (a wedged node keeps its sockets open, so the
client still says "connected"), a real routerd, real backends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.nats import NatsClient, NatsCluster, NatsServer
from tests.support.routerd import new_routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# Timers short enough that a few seconds of silence would prune every route without the fix:
# the reproduction, scaled down.
TIMERS: dict[str, Any] = {
    "nats_client_ping_interval": 1,
    "droplet_stale_threshold": 3,
    "prune_stale_droplets_interval": "0.5s",
    "publish_start_message_interval": 1,
}


class Heartbeat:
    """Re-registers routes every `interval` from a thread, as a route emitter does."""

    def __init__(self, port: int, messages: list[dict[str, Any]], interval: float = 0.5) -> None:
        self.client = NatsClient(port)
        self.messages = messages
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for message in self.messages:
                try:
                    self.client.publish("router.register", message)
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    nodes = NatsCluster()
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.cleanup()


def assert_served_throughout(router: Any, host: str, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        response = router.get("/", host=host)
        assert response.status == 200, (response.status, response.text)
        time.sleep(0.1)


def test_a_frozen_nats_suspends_pruning_and_the_link_recovers(
    nats_server: NatsServer, backend_factory: Any
) -> None:
    backend = backend_factory()
    router = new_routerd(nats_server.port, TIMERS)
    router.start()
    try:
        message = {"host": "127.0.0.1", "port": backend.port, "uris": ["beat.example.com"]}
        beat = Heartbeat(nats_server.port, [message])
        wait_routed(router, "beat.example.com")
        nats_server.freeze()
        try:
            # Unproven within the ping interval (plus a probe), and pruning is suspended.
            wait_until(
                lambda: router.status_json("/varz")["nats"]["connected"] is False,
                timeout=5,
                what="the silent link to be reported",
            )
            # Longer than the stale threshold: the heartbeated route keeps serving.
            assert_served_throughout(router, "beat.example.com", 4.0)
            varz = router.status_json("/varz")
            assert varz["nats"]["state"] in ("unproven", "connecting")
            assert varz["nats"]["ms_since_last_message"] > 1000
        finally:
            nats_server.thaw()
        wait_until(
            lambda: router.status_json("/varz")["nats"]["connected"], timeout=15, what="recovery"
        )
        # New registrations are applied again (before the fix, the read loop was dead).
        with NatsClient(nats_server.port) as client:
            register(client, backend.port, ["after.example.com"])
        wait_routed(router, "after.example.com", timeout=5)
        assert_served_throughout(router, "beat.example.com", 2.0)
        assert not router.events_named("pruned-route")
        unproven = router.events_named("nats-connection-unproven")
        # Silent for about the ping interval (1 s) when found unproven; logged to the ms.
        assert unproven and unproven[0]["data"]["seconds_since_last_message"] >= 0.9
        assert router.status_json("/varz")["nats"]["unproven_reconnects"] >= 1
        beat.close()
    finally:
        router.stop()


def test_router_start_republish_during_a_freeze_does_not_break_the_client(
    nats_server: NatsServer, backend_factory: Any
) -> None:
    """The issue's exact trigger: router.start every second while NATS freezes 4 s."""
    backend = backend_factory()
    # A long ping interval: recovery here must not depend on the watchdog rebuilding the link.
    router = new_routerd(nats_server.port, {**TIMERS, "nats_client_ping_interval": 60})
    router.start()
    try:
        with NatsClient(nats_server.port) as client:
            register(client, backend.port, ["before.example.com"])
            wait_routed(router, "before.example.com")
            nats_server.freeze()
            time.sleep(3.5)  # the fault itself: frozen well past the old 2 s flush timeout
            nats_server.thaw()
            register(client, backend.port, ["thawed.example.com"])
        wait_routed(router, "thawed.example.com", timeout=5)
        assert router.status_json("/varz")["nats"]["connected"] is True
        assert "Traceback" not in router.log_text()
    finally:
        router.stop()


def test_a_hung_cluster_node_is_left_for_the_next_and_no_route_is_lost(
    cluster: NatsCluster, backend_factory: Any
) -> None:
    backend = backend_factory()
    first = cluster.nodes[0]
    router = new_routerd(
        first.port,
        {
            **TIMERS,
            "nats": {"hosts": [{"hostname": "127.0.0.1", "port": n.port} for n in cluster.nodes]},
        },
    )
    router.start()
    try:
        established = wait_until(
            lambda: router.events_named("nats-connection-established"), what="connection"
        )
        server = established[-1]["data"]["server"]
        hung = cluster.node_on(int(server.rsplit(":", 1)[1]))
        others = [node for node in cluster.nodes if node is not hung]
        beat_message = {"host": "127.0.0.1", "port": backend.port, "uris": ["kept.example.com"]}
        beat = Heartbeat(others[0].port, [beat_message])
        wait_routed(router, "kept.example.com")
        hung.freeze()
        started = time.monotonic()
        # Registrations through the healthy nodes become routable once routerd moves over.
        with NatsClient(others[1].port) as client:
            uris = [f"app-{index}.example.com" for index in range(20)]
            for uri in uris:
                register(client, backend.port, [uri])

            def moved() -> bool:
                register(client, backend.port, ["late.example.com"])
                return router.get("/", host="late.example.com").status == 200

            wait_until(moved, timeout=15, interval=0.2, what="routerd on a healthy node")
        moved_after = time.monotonic() - started
        assert moved_after < 10, moved_after  # nats-py alone took 351 s
        assert_served_throughout(router, "kept.example.com", 1.0)
        rebuilt = router.events_named("nats-connection-rebuilt")
        assert rebuilt and rebuilt[-1]["data"]["server"] != server
        # The heartbeated route was never pruned while the link was being moved.
        assert not router.events_named("pruned-route")
        beat.close()
        hung.thaw()
    finally:
        router.stop()

"""A worker in a crash loop: reported, and no new connection waits out its respawn backoff."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

KILLS = 7  # backoffs 0.1 … 3.2 s, then 6.4 s: longer than any connection may wait


def test_crash_looping_worker_stalls_no_new_connection(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory({"workers": 2})
    register(nats_client, backend.port, ["loop.example.com"])
    wait_routed(router, "loop.example.com")
    killed: set[int] = set()
    for _ in range(KILLS):
        pid = wait_until(
            lambda: (p := router.workers()[0]["pid"]) not in killed and p,
            timeout=15,
            interval=0.01,
            what="worker 0 to be respawned",
        )
        os.kill(pid, signal.SIGKILL)
        killed.add(pid)
    looping = wait_until(
        lambda: (w := router.workers()[0])["crashes"] == KILLS and w["state"] == "backoff" and w,
        timeout=10,
        what=f"worker 0 to be in backoff after {KILLS} crashes",
    )
    assert looping["respawn_in_seconds"] > 3

    durations = []
    for _ in range(20):
        started = time.monotonic()
        response = router.get("/", host="loop.example.com", timeout=20)
        durations.append(time.monotonic() - started)
        assert response.status == 200

    # The old behaviour: about half of these waited for the respawn, ~6 s.
    assert max(durations) < 3, durations
    after = router.workers()
    assert after[0]["state"] == "backoff", "the requests must have run during the backoff"
    assert after[0]["crashes"] == KILLS
    # The kernel hashed some connections to the dead worker's socket; the live one served them.
    assert after[0]["connections_handed_off"] > 0
    assert after[1]["state"] == "ready"
    loop_lines = router.events_named("worker-crash-loop")
    assert [line["data"]["crashes"] for line in loop_lines] == list(range(2, KILLS + 1))
    assert loop_lines[-1]["data"]["respawn_in_seconds"] == pytest.approx(6.4)
    assert [line["data"]["crashes"] for line in router.events_named("worker-exited")] == [1]
    metrics = router.status_request("GET", "/metrics").text
    assert f'routerd_worker_crashes{{worker="0"}} {KILLS}' in metrics

    # The worker comes back and takes its own share again; the count resets only when it
    # has stayed up, so it still shows the loop.
    back = wait_until(
        lambda: (w := router.workers()[0])["state"] == "ready" and w,
        timeout=15,
        what="worker 0 to come back",
    )
    assert back["crashes"] == KILLS
    for _ in range(10):
        assert router.get("/", host="loop.example.com").status == 200


def test_with_every_worker_down_connections_wait_for_the_first_one_back(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory({"workers": 2})
    register(nats_client, backend.port, ["down.example.com"])
    wait_routed(router, "down.example.com")
    before = router.workers()
    for worker in before:
        os.kill(worker["pid"], signal.SIGKILL)

    # Queued on the sockets the supervisor kept: the port stays bound and none is reset.
    statuses = [router.get("/", host="down.example.com", timeout=20).status for _ in range(10)]

    assert statuses == [200] * 10
    after = router.workers()
    assert [w["restarts"] for w in after] == [w["restarts"] + 1 for w in before]
    assert all(w["pid"] not in {b["pid"] for b in before} for w in after)

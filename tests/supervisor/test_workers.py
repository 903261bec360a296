"""Worker processes: respawned on the same socket when killed, replaced when hung."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import pytest

from tests.support.routerd import logged_at
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def listening_socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            inodes.add(target)
    return inodes


def test_killed_worker_is_back_within_two_seconds_on_the_same_socket(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory({"workers": 2})
    register(nats_client, backend.port, ["respawn.example.com"])
    wait_routed(router, "respawn.example.com")
    victim = router.workers()[0]
    old_sockets = listening_socket_inodes(victim["pid"])
    os.kill(victim["pid"], signal.SIGKILL)

    def respawned():
        current = router.workers()[0]
        return current if current["pid"] != victim["pid"] and current["state"] == "ready" else None

    current = wait_until(respawned, timeout=10, interval=0.05, what="worker 0 to be respawned")
    # By routerd's own clock (its log), not by when this busy test got to look.
    (exited,) = router.events_named("worker-exited")
    ready = [e for e in router.events_named("worker-ready") if e["data"]["pid"] == current["pid"]]
    assert logged_at(ready[0]) - logged_at(exited) < 2.0
    assert current["restarts"] == victim["restarts"] + 1
    # The replacement serves the very socket the supervisor kept for worker 0.
    assert old_sockets & listening_socket_inodes(current["pid"])
    for _ in range(20):
        assert router.get("/", host="respawn.example.com").status == 200
    assert router.events_named("worker-exited")


def test_hung_worker_is_replaced(routerd_factory):
    router = routerd_factory({"workers": 2, "worker_liveness_timeout": "1s"})
    victim = router.workers()[1]
    os.kill(victim["pid"], signal.SIGSTOP)
    try:
        current = wait_until(
            lambda: (
                (w := router.workers()[1])["pid"] != victim["pid"] and w["state"] == "ready" and w
            ),
            timeout=10,
            what="the stopped worker to be replaced",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim["pid"], signal.SIGCONT)
    assert current["restarts"] == 1
    unresponsive = router.events_named("worker-unresponsive")
    assert unresponsive and unresponsive[0]["data"]["pid"] == victim["pid"]


def test_process_titles(routerd_factory):
    router = routerd_factory({"workers": 2})
    pids = [w["pid"] for w in router.workers()]
    titles = subprocess.run(
        ["ps", "-o", "pid=,args=", "-p", ",".join(str(p) for p in [router.process.pid, *pids])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "routerd: supervisor" in titles
    assert "routerd: worker 0" in titles
    assert "routerd: worker 1" in titles

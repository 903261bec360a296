"""Workers ignore SIGHUP and SIGINT: the supervisor coordinates reload and stop, so a signal to
the whole process group (a terminal's hangup or Ctrl-C, `pkill -HUP routerd`) kills no worker,
not even one that is still starting."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time

import pytest

from tests.support.processes import ignored_signals
from tests.support.routerd import Routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HOST = "signals.example.com"
# Traffic while the signals land: bounded in count and in time.
MAX_REQUESTS = 400
MAX_TRAFFIC_SECONDS = 20.0


def traffic(router: Routerd, stop: threading.Event) -> list[int]:
    statuses: list[int] = []
    deadline = time.monotonic() + MAX_TRAFFIC_SECONDS
    while not stop.is_set() and len(statuses) < MAX_REQUESTS and time.monotonic() < deadline:
        try:
            statuses.append(router.get("/", host=HOST, timeout=5).status)
        except OSError as exc:  # a worker died under the request
            statuses.append(-1)
            print(f"request failed: {exc!r}")
    return statuses


def test_sighup_to_the_whole_process_group_kills_no_worker(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory({"workers": 2})
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)
    before = [worker["pid"] for worker in router.workers()]
    assert router.process is not None
    stop = threading.Event()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        load = pool.submit(traffic, router, stop)
        # routerd runs in its own session: its process group is the supervisor and its workers.
        for _ in range(3):
            os.killpg(router.process.pid, signal.SIGHUP)
            wait_until(
                lambda: len(router.events_named("worker-config-reloaded")) >= 2, what="reload"
            )
        stop.set()
        statuses = load.result(timeout=30)

    assert statuses and set(statuses) == {200}, statuses
    assert [worker["pid"] for worker in router.workers()] == before
    assert not router.events_named("worker-exited")
    assert router.events_named("config-reloaded")
    assert router.health().status == 200


def test_sigint_to_a_worker_alone_does_not_stop_it(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory({"workers": 1})
    register(nats_client, backend.port, [HOST])
    wait_routed(router, HOST)
    (worker,) = router.workers()

    os.kill(worker["pid"], signal.SIGINT)
    os.kill(worker["pid"], signal.SIGHUP)
    # A reload round trip: the worker has run since the signals were sent, and answered.
    router.signal(signal.SIGHUP)
    wait_until(lambda: router.events_named("worker-config-reloaded"), what="worker reload")

    assert {signal.SIGHUP, signal.SIGINT} <= ignored_signals(worker["pid"])
    assert [w["pid"] for w in router.workers()] == [worker["pid"]]
    assert router.get("/", host=HOST).status == 200
    assert not router.events_named("worker-exited")
    assert not router.events_named("worker-stopped")


def test_a_worker_ignores_sighup_while_it_is_still_starting(routerd_factory):
    router = routerd_factory({"workers": 1})
    (victim,) = router.workers()
    os.kill(victim["pid"], signal.SIGKILL)

    def replacement() -> dict[str, object] | None:
        (current,) = router.workers()
        return current if current["pid"] not in (None, victim["pid"]) else None

    # The replacement spends most of a second importing before its event loop exists: hang up on
    # it over and over during that time, until it serves.
    fresh = wait_until(replacement, timeout=15, interval=0.005, what="a replacement worker")
    pid = fresh["pid"]
    assert isinstance(pid, int)
    hangups = 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        (current,) = router.workers()
        if current["pid"] != pid or current["state"] == "ready":
            break
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            break
        hangups += 1
        time.sleep(0.005)  # between hangups, not a wait for a condition

    (current,) = router.workers()
    assert hangups > 0
    assert current["pid"] == pid, router.events_named("worker-exited")
    assert current["state"] == "ready", "\n".join(router.log_text().splitlines()[-8:])
    assert current["restarts"] == 1
    assert len(router.events_named("worker-exited")) == 1  # the SIGKILL only

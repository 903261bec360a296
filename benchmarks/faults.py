"""The soak's faults: what each does to routerd's world, one at a time, in turn.

Each fault is an async function of the `Stage` (everything the soak started) and its time
budget; it injects the fault, waits for what it broke to come back where that is the point
(a killed node restarted and routing again, a killed worker respawned), and returns a note for
the report. The soak gives each fault a turn of `--fault-every` seconds; failures during a
turn are charged to that fault. `lose-route` is not in the default rotation: it breaks the bar
on purpose so that a test can check the harness notices.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.nats_wire import Bus
from benchmarks.processes import process_tree
from benchmarks.soak_probe import Prober
from benchmarks.soak_routes import Kind, RouteBook
from benchmarks.soak_verdict import Timeline
from tests.support.nats import NatsCluster, NatsServer
from tests.support.routerd import Routerd

RESPAWN_TIMEOUT = 30.0
ROUTED_TIMEOUT = 30.0
LOSE_AGAIN_AFTER = 1.5


@dataclass(frozen=True)
class FaultSettings:
    freeze_seconds: float  # how long a NATS node stays stopped
    node_down_seconds: float  # how long a killed NATS node stays down
    churn_rounds: int  # unregister-all/register-all rounds per churn
    keepalive_idle: float  # the keep-alive backend's idle close, seconds
    keepalive_lanes: int


@dataclass
class Stage:
    """What the faults act on; built by the soak once everything is up."""

    cluster: NatsCluster
    bus: Bus
    router: Routerd
    book: RouteBook
    prober: Prober
    timeline: Timeline
    settings: FaultSettings
    say: Callable[[str], None]
    turns: dict[str, int] = field(default_factory=dict)

    async def varz(self) -> dict[str, Any] | None:
        varz: dict[str, Any] | None = await self.prober.status_json("/varz")
        return varz

    def routerd_node(self) -> NatsServer | None:
        return self.cluster.node_serving(self.router.supervisor_pid)


Inject = Callable[[Stage, float], Awaitable[str]]


async def worker_kill(stage: Stage, budget: float) -> str:
    """kill -9 one worker (each in turn); wait until the supervisor has a new one ready."""
    varz = await stage.varz()
    workers = [w for w in (varz or {}).get("workers", []) if w.get("pid")]
    if not workers:
        return "no worker to kill: /varz listed none"
    turn = stage.turns.get("worker-kill", 0)
    stage.turns["worker-kill"] = turn + 1
    victim = workers[turn % len(workers)]
    stage.timeline.kills.append(time.monotonic())
    os.kill(int(victim["pid"]), signal.SIGKILL)
    killed = time.monotonic()

    def is_back(varz: dict[str, Any] | None) -> bool:
        for worker in (varz or {}).get("workers", []):
            if worker["index"] == victim["index"]:
                return bool(worker["pid"] != victim["pid"] and worker["state"] == "ready")
        return False

    who = f"worker {victim['index']} (pid {victim['pid']})"
    while time.monotonic() - killed < min(budget, RESPAWN_TIMEOUT):
        if is_back(await stage.varz()):
            return f"{who} back after {time.monotonic() - killed:.1f} s"
        await asyncio.sleep(0.1)
    return f"{who} NOT back after {time.monotonic() - killed:.0f} s"


async def nats_freeze(stage: Stage, budget: float) -> str:
    """SIGSTOP the NATS node routerd is connected to for a few seconds, then SIGCONT."""
    node = stage.routerd_node()
    if node is None:
        return "routerd held no NATS connection: nothing frozen"
    node.freeze()
    try:
        await asyncio.sleep(min(stage.settings.freeze_seconds, budget))
    finally:
        node.thaw()
    return f"{node.name} (routerd's) stopped for {stage.settings.freeze_seconds:g} s"


async def nats_node_kill(stage: Stage, budget: float) -> str:
    """kill -9 the node routerd is connected to; start it again; wait until it routes."""
    node = stage.routerd_node() or stage.cluster.nodes[0]
    node.kill()
    await asyncio.sleep(min(stage.settings.node_down_seconds, budget))
    await asyncio.to_thread(node.restart)
    routed = await stage.bus.wait_routed(node, ROUTED_TIMEOUT)
    after = stage.routerd_node()
    return (
        f"{node.name} killed, down {stage.settings.node_down_seconds:g} s, routing again "
        f"{routed:.1f} s after its restart; routerd now on {after.name if after else 'none'}"
    )


async def churn(stage: Stage, budget: float) -> str:
    """Unregister and register again every churn route, round after round, through one node;
    they end registered, and must serve again within the book's settle time."""
    routes = stage.book.of_kind(Kind.CHURN)
    stage.book.churning(routes)
    messages = [route.message() for route in routes]
    node = next((n for n in stage.cluster.nodes if n.is_up), None)
    if node is None:
        return "no NATS node up: no churn"
    started = time.monotonic()
    for _ in range(stage.settings.churn_rounds):
        await stage.bus.publish_via(node, "router.unregister", messages)
        await stage.bus.publish_via(node, "router.register", messages)
    await stage.bus.wires[node.index].ping(ROUTED_TIMEOUT)
    stage.book.registered(routes, time.monotonic())
    sent = 2 * len(messages) * stage.settings.churn_rounds
    return f"{sent:,} messages through {node.name} in {time.monotonic() - started:.2f} s"


async def sighup(stage: Stage, budget: float) -> str:
    """SIGHUP to every routerd process: the supervisor and each worker."""
    pids = process_tree(stage.router.supervisor_pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            continue
    return f"SIGHUP to {len(pids)} processes"


async def keepalive_close(stage: Stage, budget: float) -> str:
    """Rounds of requests spaced around the backend's idle keep-alive close."""
    [route] = stage.book.of_kind(Kind.KEEPALIVE)
    settings = stage.settings
    seconds = max(budget - 1.0, settings.keepalive_idle * 2)
    rounds = await stage.prober.keepalive_rounds(
        route.host, settings.keepalive_idle, settings.keepalive_lanes, seconds
    )
    lanes, idle = settings.keepalive_lanes, settings.keepalive_idle
    return f"{rounds} rounds of {lanes} requests around a {idle:g} s idle close"


async def lose_route(stage: Stage, budget: float) -> str:
    """For testing the harness: unregister one watched route and stop its heartbeats, while
    the bar still expects it. A soak with this fault must fail."""
    watched = stage.book.of_kind(Kind.WATCHED)
    deadline = time.monotonic() + budget / 2
    while (now := time.monotonic()) < deadline:
        route = next((r for r in watched if r.heartbeated and r.is_due(now)), None)
        if route is not None:
            break
        await asyncio.sleep(0.1)
    else:
        return "no due watched route to lose"
    stage.book.lost_on_purpose(route)
    await stage.bus.publish("router.unregister", [route.message()])
    # A heartbeat sent just before, through another node, may arrive after that: say it again
    # once every heartbeat sent before has long been delivered.
    await asyncio.sleep(LOSE_AGAIN_AFTER)
    await stage.bus.publish("router.unregister", [route.message()])
    return f"{route.host} unregistered, its heartbeats stopped"


FAULTS: dict[str, Inject] = {
    "worker-kill": worker_kill,
    "nats-freeze": nats_freeze,
    "nats-node-kill": nats_node_kill,
    "churn": churn,
    "sighup": sighup,
    "keepalive-close": keepalive_close,
    "lose-route": lose_route,
}
DEFAULT_ROTATION = (
    "worker-kill",
    "nats-freeze",
    "nats-node-kill",
    "churn",
    "sighup",
    "keepalive-close",
)

"""Registration storm against a real routerd: one publisher sends distinct `router.register`
messages as fast as it can; we time how long until routerd's shared table shows them all, count
what was lost, and read the supervisor's peak memory. Then steady heartbeats: part of the routes
re-registered evenly over Gorouter's usual 20 s interval, and the supervisor's CPU meanwhile.
Then churn (benchmarks/churn.py): every route re-registered at a fixed, high rate, a share of
them changed, while new routes are timed from register to routable; and /routes fetched while
/health is timed (benchmarks/routes_fetch.py), to see how long the supervisor's loop stalls.

The storm runs once per log level: `info` is Gorouter's default (two log lines per new route),
`error` shows what the per-registration logging costs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nats

from benchmarks.churn import ChurnSettings, churn_frames, run_churn
from benchmarks.processes import cpu_seconds, status_kib, tree_cpu_seconds
from benchmarks.routerd import TableRouterd, bench_routerd, start_nats
from benchmarks.routes_fetch import fetch_routes
from benchmarks.table_build import registration
from registry.lookup import RouteLookup
from tests.support.launcher import Process, ProcessGroup

Say = Callable[[str], None]
SUBJECT = "router.register"
FLUSH_EVERY = 5000
POLL_SECONDS = 0.01
# The longest the churn phase waits for the supervisor to take what it was sent.
CHURN_DRAIN_SECONDS = 30.0


@dataclass(frozen=True)
class StormSettings:
    messages: int
    levels: tuple[str, ...]
    visible_timeout: float
    stall_timeout: float
    heartbeat_routes: int
    heartbeat_interval: float
    heartbeat_window: float
    churn: ChurnSettings
    routes_fetches: int


def storm_messages(count: int) -> list[bytes]:
    return [registration(index, 0, family="storm") for index in range(count)]


async def publish_flat_out(port: int, messages: list[bytes]) -> float:
    """Publish back to back, flushing now and then; returns seconds until the server had all."""
    client = await nats.connect(f"nats://127.0.0.1:{port}", name="benchmarks-storm")
    try:
        started = time.perf_counter()
        for index, data in enumerate(messages, 1):
            await client.publish(SUBJECT, data)
            if index % FLUSH_EVERY == 0:
                await client.flush(timeout=30)
        await client.flush(timeout=30)
        return time.perf_counter() - started
    finally:
        await client.close()


async def publish_paced(port: int, messages: list[bytes], interval: float, window: float) -> int:
    """Send `messages` evenly over each `interval`, round after round, for `window` seconds;
    returns how many were sent."""
    client = await nats.connect(f"nats://127.0.0.1:{port}", name="benchmarks-heartbeats")
    rate = len(messages) / interval
    sent = 0
    try:
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < window:
            due = int(elapsed * rate) + 1
            while sent < due:
                await client.publish(SUBJECT, messages[sent % len(messages)])
                sent += 1
            await asyncio.sleep(POLL_SECONDS)
        await client.flush(timeout=30)
        return sent
    finally:
        await client.close()


def wait_visible(
    router: TableRouterd, expected: int, started: float, settings: StormSettings
) -> tuple[float | None, int, list[tuple[float, int]]]:
    """Poll the shared table's route count until it reaches `expected`, stops growing for
    `stall_timeout`, or `visible_timeout` passes. Returns (seconds from `started` when all
    were visible, or None; routes seen; a coarse timeline)."""
    timeline: list[tuple[float, int]] = []
    last_count, last_change = -1, time.perf_counter()
    while True:
        now = time.perf_counter()
        count = router.routes_in_table()
        if not timeline or now - started - timeline[-1][0] >= 0.5 or count >= expected:
            timeline.append((round(now - started, 3), count))
        if count >= expected:
            return now - started, count, timeline
        if count != last_count:
            last_count, last_change = count, now
        if now - last_change > settings.stall_timeout or now - started > settings.visible_timeout:
            return None, count, timeline
        time.sleep(POLL_SECONDS)


def nats_slow_consumers(nats_process: Process) -> int:
    """Slow-consumer reports in nats-server's log (it drops messages to such clients)."""
    return nats_process.log_tail(100_000).count("Slow Consumer")


def run_one_storm(
    group: ProcessGroup,
    nats_process: Process,
    nats_port: int,
    level: str,
    messages: list[bytes],
    settings: StormSettings,
    with_heartbeats: bool,
    run_root: Path,
    say: Say,
) -> dict[str, Any]:
    router = bench_routerd(
        group, nats_port, name=f"routerd-{level}", log_level=level, run_root=run_root
    )
    router.start()
    try:
        pid = router.supervisor_pid
        workers = router.worker_pids()
        slow_before = nats_slow_consumers(nats_process)
        cpu_before = cpu_seconds(pid)
        say(f"storm at log level {level}: publishing {len(messages)} registrations")
        started = time.perf_counter()
        publish_seconds = asyncio.run(publish_flat_out(nats_port, messages))
        visible_after, visible, timeline = wait_visible(router, len(messages), started, settings)
        storm_cpu = cpu_seconds(pid) - cpu_before
        varz = router.varz()
        result: dict[str, Any] = {
            "log_level": level,
            "messages": len(messages),
            "publish_seconds": round(publish_seconds, 3),
            "publish_msgs_per_s": round(len(messages) / publish_seconds),
            "all_visible_seconds": round(visible_after, 3) if visible_after is not None else None,
            "visible": visible,
            "dropped": len(messages) - visible,
            "varz_urls": varz.get("urls"),
            "varz_nats_messages": varz.get("nats", {}).get("messages", {}),
            "varz_rejected": varz.get("nats", {}).get("rejected", {}),
            "varz_slow_consumer_events": varz.get("nats", {}).get("slow_consumer_events"),
            "nats_server_slow_consumer_reports": nats_slow_consumers(nats_process) - slow_before,
            "supervisor_cpu_seconds": round(storm_cpu, 3),
            "supervisor_vmhwm_kib": status_kib(pid, "VmHWM"),
            "supervisor_vmrss_kib": status_kib(pid, "VmRSS"),
            "worker_vmhwm_kib": [status_kib(worker, "VmHWM") for worker in workers],
            "table_generation": router.table_generation(),
            "timeline": timeline,
        }
        say(
            f"storm at {level}: {visible}/{len(messages)} visible"
            + (f" after {visible_after:.1f} s" if visible_after is not None else " (gave up)")
        )
        if with_heartbeats:
            beats = messages[: settings.heartbeat_routes]
            result["heartbeats"] = run_heartbeats(router, nats_port, beats, workers, settings, say)
            result["churn"] = run_churn_phase(router, nats_port, len(messages), settings.churn, say)
            say(f"/routes of {router.routes_in_table()} routes, {settings.routes_fetches} times")
            result["routes_fetch"] = fetch_routes(router, settings.routes_fetches)
        return result
    finally:
        router.stop()


def run_heartbeats(
    router: TableRouterd,
    nats_port: int,
    beats: list[bytes],
    workers: list[int],
    settings: StormSettings,
    say: Say,
) -> dict[str, Any]:
    """Re-register `beats` evenly over each heartbeat interval; nothing changes, so the
    supervisor should only update last-seen times and publish nothing."""
    say(
        f"heartbeats: {len(beats)} routes every {settings.heartbeat_interval:.0f} s "
        f"for {settings.heartbeat_window:.0f} s"
    )
    pid = router.supervisor_pid
    generation = router.table_generation()
    cpu_before, workers_before = cpu_seconds(pid), tree_cpu_seconds(workers)
    started = time.perf_counter()
    sent = asyncio.run(
        publish_paced(nats_port, beats, settings.heartbeat_interval, settings.heartbeat_window)
    )
    wall = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    worker_cpu = tree_cpu_seconds(workers) - workers_before
    return {
        "routes": len(beats),
        "interval_seconds": settings.heartbeat_interval,
        "window_seconds": round(wall, 3),
        "sent": sent,
        "msgs_per_s": round(sent / wall),
        "supervisor_cpu_percent": round(100 * cpu / wall, 1),
        "supervisor_cpu_us_per_msg": round(1e6 * cpu / sent, 1) if sent else 0.0,
        "workers_cpu_percent": round(100 * worker_cpu / wall, 1),
        "table_generations_during": router.table_generation() - generation,
        "supervisor_vmrss_kib": status_kib(pid, "VmRSS"),
    }


def run_churn_phase(
    router: TableRouterd, nats_port: int, routes: int, settings: ChurnSettings, say: Say
) -> dict[str, Any]:
    """Churn over the storm's routes while probes time register→routable."""
    say(
        f"churn: {settings.rate} msg/s over {routes} routes for {settings.seconds:.0f} s, "
        f"a new route every {settings.probe_interval:.1f} s"
    )
    frames = churn_frames(routes, "storm", settings.change_every)
    pid = router.supervisor_pid

    def received_since(before: int) -> int:
        return int(router.varz().get("nats", {}).get("messages", {}).get(SUBJECT, 0)) - before

    received_before = received_since(0)
    cpu_before, started = cpu_seconds(pid), time.perf_counter()
    result = run_churn(nats_port, RouteLookup(router.table()), frames, settings)
    # The last probe can be routable while churn sent before it still waits in the supervisor's
    # queue: count (and charge CPU for) every message, waiting a bounded time for the backlog.
    drained_by = time.monotonic() + CHURN_DRAIN_SECONDS
    received = received_since(received_before)
    while received < result["sent"] and time.monotonic() < drained_by:
        time.sleep(0.05)
        received = received_since(received_before)
    cpu, wall = cpu_seconds(pid) - cpu_before, time.perf_counter() - started
    result.update(
        received=received,
        supervisor_cpu_percent=round(100 * cpu / wall, 1),
        supervisor_cpu_us_per_msg=round(1e6 * cpu / received, 1) if received else 0.0,
    )
    routable = result["routable_ms"]
    say(
        f"churn at {result['msgs_per_s']} msg/s: register→routable p50 {routable['p50']} ms, "
        f"p99 {routable['p99']} ms, {result['probes_unseen']} of {result['probes']} never seen"
    )
    return result


def run_storm(workdir: Path, run_root: Path, settings: StormSettings, say: Say) -> dict[str, Any]:
    with ProcessGroup(workdir) as group:
        nats = start_nats(group, name="nats-server-storm")
        assert nats.process is not None
        nats_process, nats_port = nats.process, nats.port
        messages = storm_messages(settings.messages)
        runs = {
            level: run_one_storm(
                group,
                nats_process,
                nats_port,
                level,
                messages,
                settings,
                with_heartbeats=index == 0,
                run_root=run_root,
                say=say,
            )
            for index, level in enumerate(settings.levels)
        }
        return {"settings": asdict(settings), "runs": runs}

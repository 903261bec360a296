"""The processes of the table micro benchmarks: `python -m benchmarks.table_procs ROLE ...`.

Each role runs in its own interpreter (so a reader's caches and memory are a worker's, not the
harness's), prints one JSON object on stdout and exits. Writers and readers that run together
meet through marker files: `built` (table complete), `ready` (reader warm), `done` (writer
finished). Every wait and loop is bounded by `--timeout`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.processes import status_kib
from benchmarks.table_build import (
    LiveTable,
    registration,
    registrations,
    route_host,
    wait_for_file,
)
from registry.lookup import RouteLookup
from registry.records import PoolRecord
from registry.shm.reader import TableReader
from registry.shm.region import FileRegion
from runtime import gc_tuning

Role = Callable[[argparse.Namespace], dict[str, Any]]


def memory() -> dict[str, int]:
    """This process's memory, in KiB: the mapped table shows up as RssShmem or RssFile."""
    fields = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")
    return {name: status_kib(os.getpid(), name) for name in fields}


def open_lookup(path: Path) -> tuple[TableReader, RouteLookup]:
    reader = TableReader(FileRegion.open(str(path)))
    return reader, RouteLookup(reader)


def shuffled_hosts(routes: int, family: str = "app", seed: int = 1) -> list[str]:
    hosts = [route_host(index, family) for index in range(routes)]
    random.Random(seed).shuffle(hosts)
    return hosts


def timed_passes(
    action: Callable[[str, str], object], hosts: list[str], seconds: float, max_passes: int
) -> float:
    """Nanoseconds per call of `action(host, "/")`: the fastest of repeated passes over `hosts`
    (bounded in time and count), so preemption by other load on the machine counts least."""
    best = float("inf")
    deadline = time.perf_counter_ns() + int(seconds * 1e9)
    for _ in range(max_passes):
        started = time.perf_counter_ns()
        for host in hosts:
            action(host, "/")
        finished = time.perf_counter_ns()
        best = min(best, (finished - started) / len(hosts))
        if finished >= deadline:
            break
    return best


class GcTimer:
    """Counts the cyclic garbage collector's runs, total and longest pause, while installed."""

    def __init__(self) -> None:
        self.collections = 0
        self.full_collections = 0
        self.seconds = 0.0
        self.longest = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.collections += 1
        self.full_collections += info.get("generation") == 2
        self.seconds += pause
        self.longest = max(self.longest, pause)

    def close(self) -> dict[str, Any]:
        gc.callbacks.remove(self._on_gc)
        return {
            "collections": self.collections,
            "full_collections": self.full_collections,
            "seconds": round(self.seconds, 4),
            "longest_ms": round(self.longest * 1000, 1),
        }


# -- roles ---------------------------------------------------------------------------------------


def role_build(args: argparse.Namespace) -> dict[str, Any]:
    """Build a table of routes x endpoints; time new routes, heartbeats and changes."""
    live = LiveTable(Path(args.path))
    new = registrations(args.routes, args.endpoints)
    gc_timer = GcTimer()
    new_seconds = live.apply_all(new)
    publishes, shards = live.publishes, live.shards_published
    heartbeat_seconds = live.apply_all(new)
    heartbeat_publishes = live.publishes - publishes
    changes = registrations(args.routes, 1, app="changed")
    change_seconds = live.apply_all(changes)
    return {
        "messages": len(new),
        "new_msgs_per_s": round(len(new) / new_seconds),
        "new_publishes": publishes,
        "new_shards_published": shards,
        "heartbeat_msgs_per_s": round(len(new) / heartbeat_seconds),
        "heartbeat_publishes": heartbeat_publishes,
        "change_messages": len(changes),
        "change_msgs_per_s": round(len(changes) / change_seconds),
        "rejected": live.rejected,
        "gc": gc_timer.close(),
        **live.sizes(),
        "writer_memory_kib": memory(),
    }


def role_lookup(args: argparse.Namespace) -> dict[str, Any]:
    """Lookup cost in a fresh reader: first touch (decodes), then warm, then misses."""
    mapped = memory()
    reader, lookup = open_lookup(Path(args.path))
    hosts = shuffled_hosts(args.routes)
    started = time.perf_counter_ns()
    found = sum(1 for host in hosts if isinstance(lookup.find(host, "/"), PoolRecord))
    cold_ns = (time.perf_counter_ns() - started) / len(hosts)
    decoded = memory()
    warm_ns = timed_passes(lookup.find, hosts, args.seconds, max_passes=1000)
    misses = [f"missing-{index}.table.example.com" for index in range(min(len(hosts), 10_000))]
    miss_ns = timed_passes(lookup.find, misses, args.seconds / 4, max_passes=1000)

    def noop(host: str, path: str) -> None:
        return None

    loop_ns = timed_passes(noop, hosts, args.seconds / 4, max_passes=1000)
    return {
        "routes": args.routes,
        "found": found,
        "first_touch_ns": round(cold_ns),
        "warm_ns": round(warm_ns),
        "miss_ns": round(miss_ns),
        "loop_overhead_ns": round(loop_ns),
        "decodes": reader.decodes,
        "retries": reader.retries,
        "memory_kib_mapped": mapped,
        "memory_kib_decoded": decoded,
    }


def role_visibility_writer(args: argparse.Namespace) -> dict[str, Any]:
    """Preload routes, wait for the reader, then register new routes at `--rate` per second
    (0: back to back), recording when each registration was applied (time.time_ns)."""
    workdir = Path(args.workdir)
    live = LiveTable(Path(args.path))
    live.apply_all(registrations(args.preload, 2))
    (workdir / "built").touch()
    wait_for_file(workdir / "ready", args.timeout)
    messages = [registration(index, 0, family="new") for index in range(args.count)]
    applied: list[int] = []
    gc_timer = GcTimer()
    started = time.perf_counter()
    deadline = started + args.timeout
    while len(applied) < len(messages) and time.perf_counter() < deadline:
        now = time.perf_counter()
        due = (
            len(messages)
            if args.rate <= 0
            else min(len(messages), int((now - started) * args.rate) + 1)
        )
        while len(applied) < due:
            applied.append(time.time_ns())
            live.register(messages[len(applied) - 1])
            if len(applied) & 31 == 0:
                live.publish_if_due(time.perf_counter())
        live.publish_if_due(time.perf_counter())
        if args.rate > 0:
            next_message = started + len(applied) / args.rate
            wake = min(next_message, live.next_publish or next_message)
            time.sleep(max(0.0, wake - time.perf_counter()))
    while live.next_publish is not None and time.perf_counter() < deadline:
        time.sleep(max(0.0, live.next_publish - time.perf_counter()))
        live.publish_if_due(time.perf_counter())
    live.publish()
    elapsed = time.perf_counter() - started
    return {
        "applied_ns": applied,
        "applied": len(applied),
        "seconds": round(elapsed, 3),
        "publishes": live.publishes,
        "gc": gc_timer.close(),
    }


def role_visibility_reader(args: argparse.Namespace) -> dict[str, Any]:
    """Poll for the writer's new routes in order; record when each became visible."""
    workdir = Path(args.workdir)
    wait_for_file(workdir / "built", args.timeout)
    reader, lookup = open_lookup(Path(args.path))
    for host in shuffled_hosts(args.preload):
        lookup.find(host, "/")  # warm: every shard decoded, as in a busy worker
    hosts = [route_host(index, "new") for index in range(args.count)]
    visible: list[int] = []
    (workdir / "ready").touch()
    gc_timer = GcTimer()
    deadline = time.monotonic() + args.timeout
    while len(visible) < len(hosts) and time.monotonic() < deadline:
        while len(visible) < len(hosts) and lookup.find(hosts[len(visible)], "/") is not None:
            visible.append(time.time_ns())
        time.sleep(args.poll)
    return {
        "visible_ns": visible,
        "decodes": reader.decodes,
        "retries": reader.retries,
        "gc": gc_timer.close(),
    }


def role_storm_writer(args: argparse.Namespace) -> dict[str, Any]:
    """Build routes x 2 endpoints, wait for the reader, then change every route once."""
    workdir = Path(args.workdir)
    live = LiveTable(Path(args.path))
    live.apply_all(registrations(args.routes, 2))
    (workdir / "built").touch()
    wait_for_file(workdir / "ready", args.timeout)
    publishes, shards = live.publishes, live.shards_published
    changes = registrations(args.routes, 1, app="changed")
    gc_timer = GcTimer()
    seconds = live.apply_all(changes)
    (workdir / "done").touch()
    return {
        "messages": len(changes),
        "seconds": round(seconds, 3),
        "msgs_per_s": round(len(changes) / seconds),
        "publishes": live.publishes - publishes,
        "shards_published": live.shards_published - shards,
        "gc": gc_timer.close(),
    }


def role_storm_reader(args: argparse.Namespace) -> dict[str, Any]:
    """Look up random routes as fast as a busy worker would while the writer's storm runs,
    timing every shard re-read (copy + decode)."""
    workdir = Path(args.workdir)
    wait_for_file(workdir / "built", args.timeout)
    reader, lookup = open_lookup(Path(args.path))
    hosts = shuffled_hosts(args.routes)
    for host in hosts:
        lookup.find(host, "/")
    rest_ns = timed_passes(lookup.find, hosts, 1.0, max_passes=100)
    gc_timer = GcTimer()
    decodes_before = reader.decodes
    reload_before = (reader.reload_ns, reader.reload_cpu_ns)
    done = workdir / "done"
    (workdir / "ready").touch()
    lookups = 0
    started = time.perf_counter_ns()
    cpu_started = time.process_time()
    deadline = time.monotonic() + args.timeout
    index = 0
    while time.monotonic() < deadline:
        for _ in range(1024):
            lookup.find(hosts[index], "/")
            index = (index + 1) % len(hosts)
        lookups += 1024
        if done.exists():
            break
    wall_ns = time.perf_counter_ns() - started
    cpu_seconds = time.process_time() - cpu_started
    gc_stats = gc_timer.close()
    decodes = reader.decodes - decodes_before
    spent = (reader.reload_ns - reload_before[0], reader.reload_cpu_ns - reload_before[1])
    return {
        "lookups": lookups,
        "seconds": round(wall_ns / 1e9, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "lookups_per_s_during_storm": round(lookups / (wall_ns / 1e9)),
        "lookups_per_s_at_rest": round(1e9 / rest_ns),
        "decodes": decodes,
        "decode_seconds": round(spent[0] / 1e9, 4),
        "decode_cpu_seconds": round(spent[1] / 1e9, 4),
        "decode_us_mean": round(spent[0] / decodes / 1e3, 1) if decodes else 0.0,
        "decode_cpu_us_mean": round(spent[1] / decodes / 1e3, 1) if decodes else 0.0,
        "decode_cpu_share": round(spent[1] / 1e9 / cpu_seconds, 3) if cpu_seconds else 0.0,
        "gc": gc_stats,
        "retries": reader.retries,
    }


ROLES: dict[str, Role] = {
    "build": role_build,
    "lookup": role_lookup,
    "visibility-writer": role_visibility_writer,
    "visibility-reader": role_visibility_reader,
    "storm-writer": role_storm_writer,
    "storm-reader": role_storm_reader,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.table_procs")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--path", required=True)
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=2)
    parser.add_argument("--preload", type=int, default=10_000)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--poll", type=float, default=0.0005)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    # The garbage-collector settings of the processes each role stands for: writers run as the
    # supervisor does, readers as workers do.
    is_writer = args.role == "build" or args.role.endswith("-writer")
    gc.set_threshold(*(gc_tuning.SUPERVISOR if is_writer else gc_tuning.WORKER))
    print(json.dumps(ROLES[args.role](args)))


if __name__ == "__main__":
    main()

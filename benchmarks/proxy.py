"""The headline benchmark: routerd against a direct connection, nginx, HAProxy and a naive
aiohttp proxy, all in front of the same nginx backend, measured in alternating rounds.

Every target runs for the whole phase; rounds visit them in a rotating order so that drift on a
shared machine (other jobs, thermal limits) falls on all of them alike. Each target's figure is
its best round (the round least disturbed by outside load); every round is kept in the JSON.
Latency below saturation is the `latency` benchmark's (open-loop, benchmarks/latency.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import wrk
from benchmarks.processes import ProcessGroup, process_tree, tree_cpu_seconds
from benchmarks.proxies import (
    Target,
    check_tools,
    start_backend,
    start_haproxy,
    start_naive_proxy,
    start_nginx_proxy,
    wait_serving,
)
from benchmarks.routerd import Routerd, publish, register_message, start_nats

ROUTE_HOST = "bench.example.com"
CONNECTIONS = 64
RATIO_BASES = ("nginx", "naive", "haproxy", "direct")

Say = Callable[[str], None]


@dataclass(frozen=True)
class ProxySettings:
    seconds: float
    rounds: int
    warmup_seconds: float


def start_routerd_target(
    group: ProcessGroup,
    backend_port: int,
    run_root: Path,
    nats_port: int | None = None,
    workers: int = 2,
    name: str = "routerd",
) -> tuple[Routerd, Target]:
    """routerd with `workers` workers, the backend registered over NATS under ROUTE_HOST; with no
    `nats_port`, a nats-server of its own."""
    if nats_port is None:
        _, nats_port = start_nats(group)
    router = Routerd(
        group,
        nats_port,
        name=name,
        workers=workers,
        log_level="error",
        overrides={
            # The phase may outlast Gorouter's 120 s stale threshold; one registration must do.
            "droplet_stale_threshold": 3600,
            # nginx and HAProxy have no per-backend limit; the default 500 would answer the
            # 512-connection sweep with 503s (Connection Limit Reached) that they never give.
            "backends": {"max_conns": 0},
        },
        run_root=run_root,
    )
    router.start()
    assert router.process is not None
    publish(nats_port, "router.register", [register_message(backend_port, [ROUTE_HOST])])
    label = f"routerd ({workers} worker{'s' if workers > 1 else ''})"
    target = Target("routerd", label, router.port, ROUTE_HOST, router.process)
    return router, wait_serving(target)


def measure(
    target: Target,
    seconds: float,
    script: Path | None = None,
    path: str = "/",
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """One wrk run, with the CPU time the target's processes used meanwhile."""
    target.process.check_running()
    pids = process_tree(target.process.pid)
    cpu_before = tree_cpu_seconds(pids)
    started = time.monotonic()
    result = wrk.run(
        target.port, target.host, seconds, connections=connections, script=script, path=path
    )
    wall = time.monotonic() - started
    cpu = tree_cpu_seconds(pids) - cpu_before
    run = result.to_json()
    run["cpu_seconds"] = round(cpu, 3)
    run["cpu_percent"] = round(100 * cpu / wall, 1) if wall else 0.0
    run["cpu_us_per_request"] = round(1e6 * cpu / result.requests, 1) if result.requests else 0.0
    run["processes"] = len(pids)
    return run


def run_proxy(workdir: Path, run_root: Path, settings: ProxySettings, say: Say) -> dict[str, Any]:
    check_tools()
    with ProcessGroup(workdir) as group:
        say("starting backend nginx, nginx proxy, HAProxy, naive proxy, nats-server, routerd")
        backend = start_backend(group)
        targets = [
            backend,
            start_nginx_proxy(group, backend.port),
            start_haproxy(group, backend.port),
            start_naive_proxy(group, backend.port),
            start_routerd_target(group, backend.port, run_root)[1],
        ]
        for target in targets:
            say(f"warm-up {target.label} ({settings.warmup_seconds:.0f} s)")
            wrk.run(target.port, target.host, settings.warmup_seconds, CONNECTIONS)
        runs: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
        for round_index in range(settings.rounds):
            shift = round_index % len(targets)
            for target in targets[shift:] + targets[:shift]:
                run = measure(target, settings.seconds)
                run["round"] = round_index + 1
                runs[target.name].append(run)
                say(
                    f"round {round_index + 1}/{settings.rounds} {target.label}: "
                    f"{run['rps']:.0f} req/s, p99 {run['p99_ms']:.2f} ms"
                )
        best = {name: max(results, key=lambda run: run["rps"]) for name, results in runs.items()}
        router_rps = best["routerd"]["rps"]
        ratios = {
            f"routerd/{base}": round(router_rps / best[base]["rps"], 3) if best[base]["rps"] else 0
            for base in RATIO_BASES
        }
        return {
            "settings": {**settings.__dict__, "connections": CONNECTIONS, "wrk_threads": 1},
            "selection": "best round by req/s; latency percentiles from that round",
            "labels": {target.name: target.label for target in targets},
            "runs": runs,
            "best": best,
            "ratios": ratios,
            "same_round_ratios": same_round_ratios(runs),
        }


def same_round_ratios(runs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """routerd's req/s over each base's in the same round, the median over rounds.

    Best rounds may come from different minutes, and on a shared machine the speed of a minute
    drifts by tens of percent; two targets in one round ran seconds apart, so their ratio drifts
    far less. Reported beside the best-round ratios, which stay for comparison with older runs.
    """
    router = {run["round"]: run["rps"] for run in runs["routerd"]}
    medians = {}
    for base in RATIO_BASES:
        per_round = [
            router[run["round"]] / run["rps"]
            for run in runs[base]
            if run["rps"] and run["round"] in router
        ]
        medians[f"routerd/{base}"] = round(statistics.median(per_round), 3) if per_round else 0
    return medians

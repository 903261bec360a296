"""The headline benchmark: routerd against a direct connection, nginx, HAProxy and a naive
aiohttp proxy, all in front of the same nginx backend, measured in alternating rounds.

routerd, nginx and HAProxy each run twice: access log off, and access log written to a file
(routerd with `access_log.file` set, as etc/router.yml is installed; nginx and HAProxy as in
benchmarks/proxies.py), so that like is compared with like. With a Gorouter binary (see
benchmarks/gorouter.py), Gorouter joins, also with and without its access log, registered over
routerd's nats-server.

Every target runs for the whole phase; rounds visit them in a rotating order so that drift on a
shared machine (other jobs, thermal limits) falls on all of them alike. Each target's figure is
its best round (the round least disturbed by outside load); every round is kept in the JSON.
Latency below saturation is the `latency` benchmark's (open-loop, benchmarks/latency.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from benchmarks import wrk
from benchmarks.gorouter import binary as gorouter_binary
from benchmarks.gorouter import start_gorouter
from benchmarks.processes import process_tree, tree_cpu_seconds
from benchmarks.proxies import (
    Target,
    check_tools,
    logged_name,
    start_backend,
    start_floor_proxy,
    start_haproxy,
    start_naive_proxy,
    start_nginx_proxy,
    wait_logging,
    wait_serving,
)
from benchmarks.routerd import TableRouterd, bench_routerd, publish, start_nats
from tests.support.launcher import ProcessGroup
from tests.support.nats import register_message

ROUTE_HOST = "bench.example.com"
CONNECTIONS = 64
# (target, base): each ratio reported is target's req/s over base's. The first is the headline:
# both write an access log, as each runs in production.
RATIOS = (
    ("routerd-log", "nginx-log"),
    ("routerd-log", "routerd"),
    ("routerd", "nginx"),
    ("routerd", "naive"),
    ("routerd", "floor"),
    ("routerd", "haproxy"),
    ("routerd", "direct"),
    ("routerd-log", "haproxy-log"),
    ("nginx-log", "nginx"),
    ("haproxy-log", "haproxy"),
)
GOROUTER_RATIOS = (("routerd-log", "gorouter-log"), ("routerd", "gorouter"))

Say = Callable[[str], None]
T = TypeVar("T", bound="Measured")


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
    access_log: bool = False,
    source: Path | None = None,
) -> tuple[TableRouterd, Target]:
    """routerd with `workers` workers, the backend registered over NATS under ROUTE_HOST; with no
    `nats_port`, a nats-server of its own. With `access_log`, the target is `routerd-log`, logging
    to <workdir>/<name>-access.log. `source`: another checkout whose code to run."""
    if nats_port is None:
        nats_port = start_nats(group).port
    log_path = group.workdir / f"{name}-access.log" if access_log else None
    router = bench_routerd(
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
            "access_log": {"file": str(log_path) if log_path is not None else ""},
        },
        run_root=run_root,
    )
    if source is not None:
        router.source = source
    router.start()
    assert router.process is not None
    publish(nats_port, "router.register", [register_message(backend_port, [ROUTE_HOST])])
    label = f"routerd ({workers} worker{'s' if workers > 1 else ''}"
    label += ", access log)" if access_log else ")"
    target = Target(
        logged_name("routerd", access_log), label, router.port, ROUTE_HOST, router.process, log_path
    )
    return router, wait_logging(wait_serving(target))


def measure(
    target: Target,
    seconds: float,
    script: Path | None = None,
    path: str = "/",
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """One wrk run, with the CPU time the target's processes used meanwhile and, for a target
    with an access log, how many bytes it wrote there."""
    target.process.check_running()
    pids = process_tree(target.process.pid)
    log_before = log_size(target)
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
    if target.access_log is not None:
        # What the row claims: its requests were logged meanwhile (HAProxy's file also holds
        # its few own messages).
        run["access_log_bytes"] = log_size(target) - log_before
    return run


def log_size(target: Target) -> int:
    """The size of the target's access log file (0 without one, or before its first line)."""
    if target.access_log is None:
        return 0
    try:
        return target.access_log.stat().st_size
    except OSError:
        return 0


def start_targets(
    group: ProcessGroup, run_root: Path, gorouter: Path | None, say: Say
) -> list[Target]:
    """Every target, in front of one nginx backend; routerd (and Gorouter) on one nats-server.
    Each proxy's access-log row follows its log-off row."""
    say(
        "starting backend nginx, nginx proxies, HAProxies, naive and floor proxies, nats-server,"
        " routerds"
    )
    backend = start_backend(group)
    nats_port = start_nats(group).port
    targets = [backend]
    for logged in (False, True):
        name = logged_name("nginx", logged)
        targets.append(start_nginx_proxy(group, backend.port, name=name, access_log=logged))
    for logged in (False, True):
        name = logged_name("haproxy", logged)
        targets.append(start_haproxy(group, backend.port, name=name, access_log=logged))
    targets.append(start_naive_proxy(group, backend.port))
    targets.append(start_floor_proxy(group, backend.port))
    for logged in (False, True):
        name = logged_name("routerd", logged)
        started = start_routerd_target(
            group, backend.port, run_root, nats_port, name=name, access_log=logged
        )
        targets.append(started[1])
    if gorouter is not None:
        say(f"starting Gorouter ({gorouter}), access log off and on")
        executable = gorouter_binary(gorouter, group.workdir)
        for logged in (False, True):
            targets.append(
                start_gorouter(group, executable, nats_port, backend.port, ROUTE_HOST, logged)
            )
    return targets


def run_proxy(
    workdir: Path, run_root: Path, settings: ProxySettings, say: Say, gorouter: Path | None = None
) -> dict[str, Any]:
    """`gorouter`: a Gorouter binary (or its .xz) to measure beside routerd, or None."""
    check_tools()
    with ProcessGroup(workdir) as group:
        targets = start_targets(group, run_root, gorouter, say)
        for target in targets:
            say(f"warm-up {target.label} ({settings.warmup_seconds:.0f} s)")
            wrk.run(target.port, target.host, settings.warmup_seconds, CONNECTIONS)
        runs = alternating_rounds(
            targets,
            settings.rounds,
            lambda target: measure(target, settings.seconds),
            lambda run: f"{run['rps']:.0f} req/s, p99 {run['p99_ms']:.2f} ms",
            say,
        )
        best = {name: max(results, key=lambda run: run["rps"]) for name, results in runs.items()}
        pairs = [pair for pair in (*RATIOS, *GOROUTER_RATIOS) if pair[1] in runs]
        ratios = {
            f"{name}/{base}": round(best[name]["rps"] / best[base]["rps"], 3)
            if best[base]["rps"]
            else 0
            for name, base in pairs
        }
        return {
            "settings": {**settings.__dict__, "connections": CONNECTIONS, "wrk_threads": 1},
            "selection": "best round by req/s; latency percentiles from that round",
            "labels": {target.name: target.label for target in targets},
            "runs": runs,
            "best": best,
            "ratios": ratios,
            "same_round_ratios": same_round_ratios(runs, pairs),
        }


class Measured(Protocol):
    name: str
    label: str


def alternating_rounds(
    targets: Sequence[T],
    rounds: int,
    measure_one: Callable[[T], dict[str, Any]],
    summary: Callable[[dict[str, Any]], str],
    say: Say,
    start: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """Every target measured once per round, by name; each round starts one target later, so
    that drift on a shared machine falls on all of them alike (the first round with target
    `start`)."""
    runs: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
    for round_index in range(rounds):
        shift = (start + round_index) % len(targets)
        for target in [*targets[shift:], *targets[:shift]]:
            run = measure_one(target)
            run["round"] = round_index + 1
            runs[target.name].append(run)
            say(f"round {round_index + 1}/{rounds} {target.label}: {summary(run)}")
    return runs


def same_round_ratios(
    runs: dict[str, list[dict[str, Any]]], pairs: list[tuple[str, str]]
) -> dict[str, float]:
    """For each (target, base) pair, target's req/s over base's in the same round, the median
    over rounds; keyed "target/base".

    Best rounds may come from different minutes, and on a shared machine the speed of a minute
    drifts by tens of percent; two targets in one round ran seconds apart, so their ratio drifts
    far less. Reported beside the best-round ratios, which stay for comparison with older runs.
    """
    medians = {}
    for name, base in pairs:
        target = {run["round"]: run["rps"] for run in runs[name]}
        per_round = [
            target[run["round"]] / run["rps"]
            for run in runs[base]
            if run["rps"] and run["round"] in target
        ]
        medians[f"{name}/{base}"] = round(statistics.median(per_round), 3) if per_round else 0
    return medians

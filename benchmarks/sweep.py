"""Sweeps: direct, routerd, nginx and HAProxy under one changed condition at a time.

The baseline is a 2-byte GET over 64 keep-alive connections to one route, routerd with 2
workers. Each scenario changes one thing: the response size (16 KiB, 1 MiB), a 16 KiB POST
body, the connection count (1, 512), routerd's workers (1), or the route table (10k, 100k
routes, the request Host drawn at random from them by a wrk script; nginx and HAProxy then route
by a Host map of the same size). In a route scenario each target also runs, in the same round,
with every request to one of those hosts (the same script with one host), and `to_one_host` is
the same-round ratio of the two: what spreading lookups over the table costs, measured seconds
apart, where comparing with the baseline would charge the script and a minute's drift to it.
Every target runs in every round, in an order that rotates per round; a target's figure is its
median round, and each proxy is given as a ratio to nginx and to direct, with its CPU time per
request from /proc (its own processes; the backend's not included).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import wrk
from benchmarks.proxies import (
    UPLOAD_PATH,
    Target,
    bytes_path,
    check_tools,
    start_backend,
    start_haproxy,
    start_nginx_proxy,
    write_host_maps,
)
from benchmarks.proxy import measure, same_round_ratios, start_routerd_target
from benchmarks.routerd import publish, start_nats
from tests.support.launcher import ProcessGroup
from tests.support.nats import register_message
from tests.support.waiting import wait_until

Say = Callable[[str], None]
TARGETS = ("direct", "routerd", "nginx", "haproxy")
ROUTE_TEMPLATE = "r%d.routes.example.com"
URIS_PER_MESSAGE = 1000
WARMUP_SECONDS = 1


@dataclass(frozen=True)
class Scenario:
    """One point of a sweep: `axis` names what changed from the baseline, `value` to what."""

    name: str
    axis: str
    value: str
    path: str = bytes_path(2)
    connections: int = 64
    workers: int = 2
    routes: int = 1
    post_bytes: int = 0

    @property
    def spreads_hosts(self) -> bool:
        """Requests carry a Host drawn from `routes` registered routes (the wrk hosts script)."""
        return self.routes > 1


BASELINE = Scenario("baseline", "baseline", "2 B GET, 64 conns, 2 workers, 1 route")
SCENARIOS = (
    BASELINE,
    Scenario("response-16KiB", "response size", "16 KiB", path=bytes_path(16 * 1024)),
    Scenario("response-1MiB", "response size", "1 MiB", path=bytes_path(1024 * 1024)),
    Scenario("post-16KiB", "request body", "POST 16 KiB", path=UPLOAD_PATH, post_bytes=16 * 1024),
    Scenario("connections-1", "connections", "1", connections=1),
    Scenario("connections-512", "connections", "512", connections=512),
    Scenario("workers-1", "routerd workers", "1", workers=1),
    Scenario("routes-10k", "routes", "10k", routes=10_000),
    Scenario("routes-100k", "routes", "100k", routes=100_000),
)


@dataclass(frozen=True)
class SweepSettings:
    seconds: float
    rounds: int
    warmup_seconds: float
    scenarios: tuple[Scenario, ...] = field(default=SCENARIOS)
    # Route scenarios judge a same-round ratio (spread ÷ one host) that moves a few percent
    # between 2-second pairs; more pairs give a steadier median. 0: as many as `rounds`.
    route_rounds: int = 0

    def rounds_for(self, scenario: Scenario) -> int:
        return (self.route_rounds or self.rounds) if scenario.spreads_hosts else self.rounds


class Bench:
    """The long-lived targets, and what a scenario starts on top of them."""

    def __init__(self, group: ProcessGroup, run_root: Path, say: Say) -> None:
        self.group = group
        self.run_root = run_root
        self.say = say
        self.backend = start_backend(group)
        self.nats_port = start_nats(group).port
        self.router, routerd = start_routerd_target(
            group, self.backend.port, run_root, self.nats_port
        )
        self.targets = {
            "direct": self.backend,
            "routerd": routerd,
            "nginx": start_nginx_proxy(group, self.backend.port),
            "haproxy": start_haproxy(group, self.backend.port),
        }
        self.registered = 0

    def register_routes(self, count: int) -> None:
        """Grow routerd's table to `count` ROUTE_TEMPLATE hosts (plus the baseline route)."""
        if count <= self.registered:
            return
        hosts = [ROUTE_TEMPLATE % index for index in range(self.registered, count)]
        messages = [
            register_message(self.backend.port, hosts[start : start + URIS_PER_MESSAGE])
            for start in range(0, len(hosts), URIS_PER_MESSAGE)
        ]
        publish(self.nats_port, "router.register", messages)
        router = self.router
        wait_until(
            lambda: router.routes_in_table() >= count + 1,
            120,
            what=f"routerd to hold {count} routes",
        )
        self.registered = count

    @contextmanager
    def scenario(self, scenario: Scenario, workdir: Path) -> Iterator[dict[str, Target]]:
        """The four targets for `scenario`, with whatever it needs started and then stopped."""
        targets = dict(self.targets)
        extra: list[Target] = []
        if scenario.workers != 2:
            _, target = start_routerd_target(
                self.group,
                self.backend.port,
                self.run_root,
                self.nats_port,
                workers=scenario.workers,
                name=f"routerd-w{scenario.workers}",
            )
            targets["routerd"] = target
            extra.append(target)
        if scenario.spreads_hosts:
            self.say(f"registering {scenario.routes} routes in routerd, nginx and HAProxy")
            self.register_routes(scenario.routes)
            hosts = [ROUTE_TEMPLATE % index for index in range(scenario.routes)]
            nginx_map, haproxy_map = write_host_maps(workdir, hosts)
            suffix = f"routes{scenario.routes}"
            targets["nginx"] = start_nginx_proxy(
                self.group, self.backend.port, nginx_map, hosts[-1], f"nginx-{suffix}"
            )
            targets["haproxy"] = start_haproxy(
                self.group, self.backend.port, haproxy_map, hosts[-1], f"haproxy-{suffix}"
            )
            extra += [targets["nginx"], targets["haproxy"]]
        try:
            yield targets
        finally:
            for target in extra:
                self.group.stop(target.process)


def request_script(scenario: Scenario, workdir: Path) -> Path | None:
    if scenario.post_bytes:
        return wrk.post_script(workdir, scenario.post_bytes)
    if scenario.spreads_hosts:
        return wrk.hosts_script(workdir, scenario.routes, ROUTE_TEMPLATE)
    return None


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median req/s, CPU per request and latency per target; ratios to nginx and to direct."""
    median = {
        name: {
            key: round(statistics.median(run[key] for run in target_runs), 2)
            for key in ("rps", "cpu_us_per_request", "p50_ms", "p99_ms")
        }
        | {"errors": sum(run["errors"] for run in target_runs)}
        for name, target_runs in runs.items()
    }
    ratios = {
        name: {
            f"to_{base}": round(figures["rps"] / median[base]["rps"], 3)
            if median[base]["rps"]
            else 0.0
            for base in ("nginx", "direct")
        }
        for name, figures in median.items()
    }
    return {"median": median, "ratios": ratios}


def run_scenario(
    bench: Bench, scenario: Scenario, settings: SweepSettings, workdir: Path, say: Say
) -> dict[str, Any]:
    script = request_script(scenario, workdir)
    # Route scenarios: the same script over one host, run beside the spread one in each round.
    one_host = wrk.hosts_script(workdir, 1, ROUTE_TEMPLATE) if scenario.spreads_hosts else None
    with bench.scenario(scenario, workdir) as targets:
        order = [targets[name] for name in TARGETS]
        if scenario.workers != 2 or scenario.spreads_hosts:
            for target in order:
                wrk.run(target.port, target.host, settings.warmup_seconds, 64, script=script)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}
        one_host_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}
        for round_index in range(settings.rounds_for(scenario)):
            shift = round_index % len(order)
            for target in order[shift:] + order[:shift]:
                kinds = [(script, runs)] + ([(one_host, one_host_runs)] if one_host else [])
                for kind_script, into in kinds[:: 1 if round_index % 2 == 0 else -1]:
                    run = measure(
                        target, settings.seconds, kind_script, scenario.path, scenario.connections
                    )
                    run["round"] = round_index + 1
                    into[target.name].append(run)
        labels = {name: targets[name].label for name in TARGETS}
    summary = summarize(runs)
    if one_host:
        spread = same_round_ratios(
            {**runs, **{f"{name}-one-host": one_host_runs[name] for name in TARGETS}},
            [(name, f"{name}-one-host") for name in TARGETS],
        )
        for name in TARGETS:
            summary["ratios"][name]["to_one_host"] = spread[f"{name}/{name}-one-host"]
        summary["one_host_runs"] = one_host_runs
    say(
        f"{scenario.name}: "
        + ", ".join(
            f"{name} {summary['median'][name]['rps']:,.0f}/s"
            + (f" ({summary['ratios'][name]['to_nginx']:.2f}x nginx)" if name != "nginx" else "")
            for name in TARGETS
        )
    )
    return {"scenario": asdict(scenario), "labels": labels, "runs": runs, **summary}


@contextmanager
def started_bench(workdir: Path, run_root: Path, say: Say) -> Iterator[Bench]:
    """The four targets, warmed up; shared by the latency and sweep benchmarks of one run.

    Run latency first: the sweep grows routerd's table, which latency should not inherit."""
    check_tools()
    with ProcessGroup(workdir) as group:
        say("starting backend nginx, nginx proxy, HAProxy, nats-server, routerd")
        bench = Bench(group, run_root, say)
        for target in bench.targets.values():
            wrk.run(target.port, target.host, WARMUP_SECONDS, 64, path=BASELINE.path)
        yield bench


def run_sweep(bench: Bench, settings: SweepSettings, workdir: Path, say: Say) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    for index, scenario in enumerate(settings.scenarios, 1):
        say(f"scenario {index}/{len(settings.scenarios)} {scenario.name} ({scenario.value})")
        scenarios[scenario.name] = run_scenario(bench, scenario, settings, workdir, say)
    return {
        "settings": {
            "seconds": settings.seconds,
            "rounds": settings.rounds,
            "route_rounds": settings.route_rounds or settings.rounds,
            "warmup_seconds": settings.warmup_seconds,
            "wrk_threads": 1,
        },
        "selection": "median round per target; rounds alternate the order of targets",
        "targets": list(TARGETS),
        "scenarios": scenarios,
    }

"""Soak: traffic through routerd for minutes while faults rotate; the bar is zero non-2xx and
no route lost. `python -m benchmarks soak [--minutes N] ...` (`make soak MINUTES=N`).

Everything runs on 127.0.0.1: a 3-node nats-server cluster, two nginx backends (one closes
idle keep-alive connections after ~1 s), routerd with short timers, a traffic process, and
this harness, which registers the routes, heartbeats them every second through the NATS nodes
in turn, probes every due route again and again, injects one fault per turn (see faults.py),
and samples /varz and the processes' RSS. It prints a line per sample as it goes, then a
summary; the JSON and a plot go to benchmarks/results/soak-<stamp>.{json,png}. Exit status:
0 when the bar is met, 1 when it is missed (each failure is charged to the fault active when
it happened), 2 when the harness itself could not do its part, 130 when interrupted. Every
process it started is stopped on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import plots
from benchmarks.faults import DEFAULT_ROTATION, FAULTS, FaultSettings
from benchmarks.processes import BENCHMARK_FAILURES, BenchmarkError
from benchmarks.proxies import repo_root, start_backend
from benchmarks.routerd import bench_routerd
from benchmarks.run import RESULTS_DIR, raise_interrupt, say, shm_root
from benchmarks.soak_report import summary_lines
from benchmarks.soak_routes import Kind, RouteBook
from benchmarks.soak_run import Soak, SoakSettings
from benchmarks.soak_verdict import Timeline, judge
from tests.support.launcher import ProcessGroup
from tests.support.nats import NatsCluster
from tests.support.routerd import Routerd

# Short timers so that a fault shows its effect within a turn: a route not heard of for 10 s
# is pruned, the pruner runs every 2 s, router.start goes out every second, and (where routerd
# knows the key) a NATS server that stops answering PINGs is noticed within seconds.
ROUTERD_TIMERS: dict[str, Any] = {
    "droplet_stale_threshold": 10,
    "prune_stale_droplets_interval": 2,
    "publish_start_message_interval": 1,
}
OPTIONAL_TIMERS: dict[str, Any] = {"nats_client_ping_interval": 2}
KEEPALIVE_IDLE = 1.0
# routerd log events worth a count in the summary.
NOTABLE_EVENTS = (
    "worker-exited",
    "nats-connection-disconnected",
    "nats-connection-reconnected",
    "failed-to-publish-start-message",
    "nats-error",
    "pruned-route",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--seconds", type=float, help="how long, in seconds (overrides --minutes)")
    parser.add_argument(
        "--faults",
        default=",".join(DEFAULT_ROTATION),
        help=f"comma-separated, in turn (default {','.join(DEFAULT_ROTATION)}; also: "
        f"{', '.join(sorted(set(FAULTS) - set(DEFAULT_ROTATION)))})",
    )
    parser.add_argument("--fault-every", type=float, default=20.0, help="seconds per fault turn")
    parser.add_argument("--warmup", type=float, default=5.0, help="quiet seconds before faults")
    parser.add_argument("--rate", type=float, default=400.0, help="traffic requests per second")
    parser.add_argument("--connections", type=int, default=8, help="traffic keep-alive lanes")
    parser.add_argument("--probe-rate", type=float, default=100.0, help="probes per second")
    parser.add_argument("--traffic-routes", type=int, default=4)
    parser.add_argument("--watched-routes", type=int, default=100)
    parser.add_argument("--churn-routes", type=int, default=1000)
    parser.add_argument("--churn-rounds", type=int, default=3)
    parser.add_argument("--nats-nodes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="routerd workers")
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds a (re)registered route may take"
    )
    parser.add_argument("--freeze-seconds", type=float, default=4.0)
    parser.add_argument("--node-down-seconds", type=float, default=3.0)
    parser.add_argument("--print-every", type=float, default=5.0)
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where the JSON and plot go (default {RESULTS_DIR})",
    )
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")


def settings_from(args: argparse.Namespace) -> SoakSettings:
    faults = tuple(name.strip() for name in args.faults.split(",") if name.strip())
    unknown = [name for name in faults if name not in FAULTS]
    if unknown:
        raise BenchmarkError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    positive = {
        "length": seconds,
        "--fault-every": args.fault_every,
        "--rate": args.rate,
        "--connections": args.connections,
        "--probe-rate": args.probe_rate,
        "--traffic-routes": args.traffic_routes,
        "--nats-nodes": args.nats_nodes,
        "--workers": args.workers,
        "--print-every": args.print_every,
    }
    for name, value in positive.items():
        if value <= 0:
            raise BenchmarkError(f"{name} must be positive (got {value})")
    return SoakSettings(
        seconds=seconds,
        fault_every=args.fault_every,
        faults=faults,
        warmup=args.warmup,
        rate=args.rate,
        connections=args.connections,
        probe_rate=args.probe_rate,
        traffic_routes=args.traffic_routes,
        watched_routes=args.watched_routes,
        churn_routes=args.churn_routes,
        nats_nodes=args.nats_nodes,
        workers=args.workers,
        settle=args.settle,
        sample_every=1.0,
        print_every=args.print_every,
        fault=FaultSettings(
            freeze_seconds=args.freeze_seconds,
            node_down_seconds=args.node_down_seconds,
            churn_rounds=args.churn_rounds,
            keepalive_idle=KEEPALIVE_IDLE,
            keepalive_lanes=8,
        ),
    )


def accepted_timers(router: Routerd, workdir: Path) -> tuple[dict[str, Any], list[str]]:
    """The optional keys `routerd --check-config` accepts with this config; and notes on the
    ones it does not know (yet)."""
    accepted: dict[str, Any] = {}
    notes = []
    for key, value in OPTIONAL_TIMERS.items():
        path = workdir / f"check-{key}.yml"
        path.write_text(json.dumps({**router.config, key: value}))
        done = subprocess.run(
            [sys.executable, "-m", "supervisor", "--config", str(path), "--check-config"],
            cwd=repo_root(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            accepted[key] = value
        else:
            notes.append(f"{key} left out: {(done.stderr or done.stdout).strip()[-200:]}")
    return accepted, notes


def start_world(
    group: ProcessGroup, shmdir: Path, settings: SoakSettings, stack: contextlib.ExitStack
) -> tuple[NatsCluster, Routerd, RouteBook, list[str]]:
    say(f"starting a {settings.nats_nodes}-node nats-server cluster and two nginx backends")
    cluster = NatsCluster(settings.nats_nodes, group, name="soak")
    cluster.start()
    stack.callback(cluster.thaw_all)  # before the group stops them: a stopped node ignores TERM
    backend = start_backend(group)
    keepalive = start_backend(group, name="keepalive-backend", keepalive_timeout=KEEPALIVE_IDLE)
    overrides = {
        "nats": {"hosts": [{"hostname": "127.0.0.1", "port": port} for port in cluster.ports]},
        **ROUTERD_TIMERS,
    }
    router = bench_routerd(
        group,
        cluster.ports[0],
        workers=settings.workers,
        log_level="info",
        overrides=overrides,
        run_root=shmdir,
    )
    optional, notes = accepted_timers(router, group.workdir)
    router.config.update(optional)
    say(f"starting routerd ({settings.workers} workers) with {ROUTERD_TIMERS | optional}")
    router.start()
    book = RouteBook(settings.settle)
    book.add(Kind.TRAFFIC, settings.traffic_routes, backend.port)
    book.add(Kind.KEEPALIVE, 1, keepalive.port)
    book.add(Kind.WATCHED, settings.watched_routes, backend.port)
    book.add(Kind.CHURN, settings.churn_routes, backend.port)
    return cluster, router, book, notes


def routerd_log_notes(router: Routerd) -> dict[str, Any]:
    """Counts of routerd's notable log events, and its lines that are not JSON events
    (tracebacks, which go nowhere else)."""
    lines = router.log_text().splitlines()
    events = dict.fromkeys(NOTABLE_EVENTS, 0)
    odd = []
    for line in lines:
        if not line.lstrip().startswith("{"):
            if line.strip():
                odd.append(line)
            continue
        try:
            message = json.loads(line).get("message")
        except ValueError:
            odd.append(line)
            continue
        if message in events:
            events[message] += 1
    first = odd[0][:300] if odd else ""
    return {"lines": len(lines), "events": events, "not_json": len(odd), "first_not_json": first}


def run_soak(settings: SoakSettings, results_dir: Path, draw: bool) -> int:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="routerd-soak-"))
    shmdir = Path(tempfile.mkdtemp(prefix="routerd-soak-", dir=shm_root()))
    say(f"soak of {settings.seconds:.0f} s, faults {', '.join(settings.faults)}; logs in {workdir}")
    results: dict[str, Any] = {}
    code = 2
    try:
        with contextlib.ExitStack() as stack:
            group = stack.enter_context(ProcessGroup(workdir))
            cluster, router, book, notes = start_world(group, shmdir, settings, stack)
            timeline = Timeline(time.monotonic())
            soak = Soak(settings, group, cluster, router, book, timeline, say)
            results = asyncio.run(soak.run())
            results["routerd_log"] = routerd_log_notes(router)
            results["meta"]["notes"] = notes
        code = report(results, timeline, soak, results_dir, draw)
    except BENCHMARK_FAILURES as exc:
        say(f"soak could not run: {exc}")
    except KeyboardInterrupt:
        say("interrupted: every process started has been stopped")
        code = 130
    finally:
        shutil.rmtree(shmdir, ignore_errors=True)
        if code == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"logs and configs kept in {workdir}")
    return code


def report(
    results: dict[str, Any], timeline: Timeline, soak: Soak, results_dir: Path, draw: bool
) -> int:
    verdict = judge(soak.all_failures(), timeline, results["lost_at_end"])
    results["verdict"] = {
        "passed": verdict.passed,
        "failures": verdict.failures,
        "excused": verdict.excused,
        "lost_at_end": verdict.lost_at_end,
        "groups": [
            {
                "phase": group.phase,
                "outcome": group.outcome.value,
                "source": group.source,
                "count": group.count,
                "hosts": len(group.hosts),
                "first": asdict(group.first) | {"outcome": group.outcome.value}
                if group.first
                else None,
            }
            for group in verdict.groups
        ],
    }
    for line in summary_lines(results, verdict, timeline):
        print(line, flush=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"JSON results: {path}")
    if draw:
        for line in plots.write_soak(results, path):
            print(line)
    if results.get("harness_errors"):
        return 2
    return 0 if verdict.passed else 1


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except BenchmarkError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    return run_soak(settings, args.results_dir, not args.no_plot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""Running the benchmarks: plans (full, quick, tiny), run, report, save JSON and plots.

`python -m benchmarks run` (see benchmarks/__main__.py) is the entry; `python -m benchmarks.run`
still works and takes the same options. Results go to stdout (a readable report), to
benchmarks/results/<timestamp>.json and, when matplotlib is installed, to PNG plots beside it.
Temporary files live under one temp dir (logs, configs) and one tmpfs dir (shared tables, like
/run); both are removed at the end, except the log dir when something failed. Every process
started is stopped on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import gorouter, plots
from benchmarks.churn import ChurnSettings
from benchmarks.h2load import H2LOAD
from benchmarks.http2 import run_http2
from benchmarks.latency import LatencySettings, run_latency
from benchmarks.processes import BENCHMARK_FAILURES, load_average
from benchmarks.proxies import HAPROXY, NGINX, repo_root
from benchmarks.proxy import ProxySettings, run_proxy
from benchmarks.report import render
from benchmarks.storm import StormSettings, run_storm
from benchmarks.sweep import SCENARIOS, Bench, Scenario, SweepSettings, run_sweep, started_bench
from benchmarks.table import TableSettings, run_table
from benchmarks.wrk import WRK

# latency before sweep: they share targets, and the sweep grows routerd's route table.
BENCHMARKS = ("proxy", "http2", "latency", "sweep", "table", "storm")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    proxy: ProxySettings
    sweep: SweepSettings
    latency: LatencySettings
    table: TableSettings
    storm: StormSettings


def scenarios(*names: str) -> tuple[Scenario, ...]:
    return tuple(scenario for scenario in SCENARIOS if scenario.name in names)


# Each benchmark once, briefly: a smoke run under 2 minutes (no 100k-route sweep point).
QUICK = Plan(
    proxy=ProxySettings(seconds=2, rounds=1, warmup_seconds=1),
    sweep=SweepSettings(
        seconds=1,
        rounds=1,
        warmup_seconds=1,
        scenarios=tuple(scenario for scenario in SCENARIOS if scenario.routes <= 10_000),
    ),
    latency=LatencySettings(
        peak_seconds=1, peak_rounds=1, seconds=2, warmup_seconds=0.5, fractions=(0.5,)
    ),
    table=TableSettings(
        sizes=(1_000, 100_000),
        endpoints=2,
        lookup_seconds=1.0,
        visibility_preload=10_000,
        visibility_rate=2_000,
        visibility_count=4_000,
        burst_count=10_000,
        storm_routes=20_000,
        timeout=120,
    ),
    storm=StormSettings(
        messages=50_000,
        levels=("info", "error"),
        visible_timeout=60,
        stall_timeout=10,
        heartbeat_routes=25_000,
        heartbeat_interval=20,
        heartbeat_window=5,
        churn=ChurnSettings(
            rate=50_000, seconds=10, probe_interval=0.1, probe_timeout=30, change_every=10
        ),
        routes_fetches=2,
    ),
)

FULL = Plan(
    proxy=ProxySettings(seconds=4, rounds=3, warmup_seconds=2),
    sweep=SweepSettings(seconds=2, rounds=3, warmup_seconds=1, route_rounds=5),
    latency=LatencySettings(
        peak_seconds=2,
        peak_rounds=2,
        seconds=5,
        warmup_seconds=1,
        fractions=(0.5, 0.8),
        rounds=5,  # a p99 moves by half between runs on 2 shared cores; the median steadies it
    ),
    table=TableSettings(
        sizes=(1_000, 10_000, 100_000),
        endpoints=2,
        lookup_seconds=3.0,
        visibility_preload=100_000,
        visibility_rate=2_000,
        visibility_count=20_000,
        burst_count=50_000,
        storm_routes=100_000,
        timeout=240,
    ),
    storm=StormSettings(
        messages=200_000,
        levels=("info", "error"),
        visible_timeout=120,
        stall_timeout=20,
        heartbeat_routes=100_000,
        heartbeat_interval=20,
        heartbeat_window=60,
        churn=ChurnSettings(
            rate=50_000, seconds=30, probe_interval=0.1, probe_timeout=60, change_every=10
        ),
        routes_fetches=3,
    ),
)


# A few seconds each, every code path once: what tests/benchmarks runs so the harness cannot rot.
TINY = Plan(
    proxy=ProxySettings(seconds=1, rounds=1, warmup_seconds=1),
    sweep=SweepSettings(
        seconds=1,
        rounds=1,
        warmup_seconds=1,
        scenarios=(
            *scenarios("baseline", "post-16KiB", "workers-1"),
            Scenario("routes-1k", "routes", "1k", routes=1_000),
        ),
        route_rounds=2,
    ),
    latency=LatencySettings(
        peak_seconds=1,
        peak_rounds=1,
        seconds=0.5,
        warmup_seconds=0.2,
        fractions=(0.5,),
        rounds=2,
    ),
    table=TableSettings(
        sizes=(1_000,),
        endpoints=2,
        lookup_seconds=0.2,
        visibility_preload=1_000,
        visibility_rate=2_000,
        visibility_count=200,
        burst_count=500,
        storm_routes=2_000,
        timeout=60,
    ),
    storm=StormSettings(
        messages=2_000,
        levels=("error",),
        visible_timeout=30,
        stall_timeout=10,
        heartbeat_routes=1_000,
        heartbeat_interval=1,
        heartbeat_window=1,
        churn=ChurnSettings(
            rate=5_000, seconds=1, probe_interval=0.1, probe_timeout=20, change_every=10
        ),
        routes_fetches=1,
    ),
)
PLANS = {"full": FULL, "quick": QUICK, "tiny": TINY}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def git_commit() -> str:
    head = tool_version(["git", "-C", str(repo_root()), "rev-parse", "--short", "HEAD"])
    dirty = tool_version(["git", "-C", str(repo_root()), "status", "--porcelain"])
    return head + (" (uncommitted changes)" if dirty not in ("unknown", "unavailable") else "")


def metadata(mode: str, only: list[str], gorouter_path: Path | None) -> dict[str, Any]:
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": mode,
        "benchmarks": only,
        "cpus": os.cpu_count(),
        "load_before": load_average(),
        "commit": git_commit(),
        "python": sys.version.split()[0],
        "tools": {
            "wrk": tool_version([WRK, "--version"]),
            "nginx": tool_version([NGINX, "-v"]),
            "haproxy": tool_version([HAPROXY, "-v"]),
            "h2load": tool_version([H2LOAD, "--version"]),
            "nats-server": tool_version(["nats-server", "--version"]),
            "gorouter": str(gorouter_path) if gorouter_path is not None else "not measured",
        },
    }


def shm_root() -> str | None:
    """A tmpfs for shared tables, as systemd's /run/routerd is; None to use the temp dir."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def run_selected(
    only: list[str],
    mode: str,
    workdir: Path,
    shmdir: Path,
    results: dict[str, Any],
    gorouter_path: Path | None = None,
) -> None:
    plan = PLANS[mode]
    with contextlib.ExitStack() as stack:
        benches: list[Bench] = []

        def bench() -> Bench:
            """The targets latency and sweep share, started on first use."""
            if not benches:
                (workdir / "targets").mkdir()
                benches.append(stack.enter_context(started_bench(workdir / "targets", shmdir, say)))
            return benches[0]

        runners: dict[str, Callable[[], dict[str, Any]]] = {
            "proxy": lambda: run_proxy(workdir / "proxy", shmdir, plan.proxy, say, gorouter_path),
            "http2": lambda: run_http2(workdir / "http2", shmdir, plan.proxy, say),
            "latency": lambda: run_latency(bench(), plan.latency, workdir / "latency", say),
            "sweep": lambda: run_sweep(bench(), plan.sweep, workdir / "sweep", say),
            "table": lambda: run_table(shmdir, plan.table, say),
            "storm": lambda: run_storm(workdir / "storm", shmdir, plan.storm, say),
        }
        for index, name in enumerate(only):
            say(f"--- {name} ---")
            (workdir / name).mkdir(exist_ok=True)
            started = time.monotonic()
            try:
                results[name] = runners[name]()
            except BENCHMARK_FAILURES as exc:
                say(f"{name} failed: {exc}")
                results.setdefault("errors", {})[name] = str(exc)
            say(f"{name} took {time.monotonic() - started:.0f} s")
            if benches and not {"latency", "sweep"} & set(only[index + 1 :]):
                stack.close()
                benches.clear()


def save(results: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="short smoke run (under 2 minutes)")
    modes.add_argument(
        "--tiny", action="store_true", help="seconds per benchmark, for the harness's own test"
    )
    parser.add_argument(
        "--only", choices=BENCHMARKS, action="append", help="run only this one (repeatable)"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where the JSON and plots go (default {RESULTS_DIR})",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the JSON only")
    parser.add_argument(
        "--gorouter",
        type=Path,
        default=os.environ.get(gorouter.ENVIRONMENT) or None,
        metavar="PATH",
        help=f"a Gorouter binary (or its .xz) to add to the proxy benchmark, with and without its "
        f"access log (default: ${gorouter.ENVIRONMENT}, if set)",
    )


def run(args: argparse.Namespace) -> int:
    only = [name for name in BENCHMARKS if not args.only or name in args.only]
    if args.gorouter is not None and not args.gorouter.is_file():
        # Before anything starts: a mistyped path should not cost a run.
        print(
            f"no Gorouter binary at {args.gorouter} (--gorouter or ${gorouter.ENVIRONMENT})",
            file=sys.stderr,
        )
        return 2
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    workdir = Path(tempfile.mkdtemp(prefix="routerd-bench-"))
    shmdir = Path(tempfile.mkdtemp(prefix="routerd-bench-", dir=shm_root()))
    results: dict[str, Any] = {"meta": metadata(mode, only, args.gorouter)}
    interrupted = False
    started = time.monotonic()
    say(f"{mode} run of {', '.join(only)}; logs in {workdir}")
    try:
        run_selected(only, mode, workdir, shmdir, results, args.gorouter)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: every process started has been stopped")
    finally:
        shutil.rmtree(shmdir, ignore_errors=True)
        results["meta"]["load_after"] = load_average()
        results["meta"]["interrupted"] = interrupted
        results["meta"]["seconds"] = round(time.monotonic() - started, 1)
        failed = interrupted or bool(results.get("errors"))
        if failed:
            say(f"logs and configs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    path = save(results, args.results_dir)
    print(render(results))
    print(f"JSON results: {path}")
    if not args.no_plots:
        for line in plots.write_all(results, path):
            print(line)
    say(f"done in {results['meta']['seconds']:.0f} s")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

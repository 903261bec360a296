"""Shared-table micro benchmarks: lookup cost, update rate, register→visible latency, memory,
and what a registration storm costs a busy worker. No network: writer and reader processes
(benchmarks.table_procs) share a table file, as the supervisor and workers do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.processes import BenchmarkError
from benchmarks.proxies import repo_root
from benchmarks.table_build import PUBLISH_INTERVAL, SHARDS

Say = Callable[[str], None]
MIB = 1 << 20


@dataclass(frozen=True)
class TableSettings:
    sizes: tuple[int, ...]
    endpoints: int
    lookup_seconds: float
    visibility_preload: int
    visibility_rate: float
    visibility_count: int
    burst_count: int
    storm_routes: int
    timeout: float


def role_argv(role: str, **options: object) -> list[str]:
    argv = [sys.executable, "-m", "benchmarks.table_procs", role]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def run_role(role: str, timeout: float, **options: object) -> dict[str, Any]:
    try:
        done = subprocess.run(
            role_argv(role, timeout=timeout, **options),
            cwd=repo_root(),
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"table role {role} did not finish in {timeout + 30:.0f} s") from None
    return _result(role, done.returncode, done.stdout, done.stderr)


def run_pair(
    writer: str, reader: str, timeout: float, **options: object
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A writer and a reader process side by side; both are stopped whatever happens."""
    argv_w = role_argv(writer, timeout=timeout, **options)
    argv_r = role_argv(reader, timeout=timeout, **options)
    kwargs: dict[str, Any] = {
        "cwd": repo_root(),
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
    }
    with subprocess.Popen(argv_w, **kwargs) as proc_w, subprocess.Popen(argv_r, **kwargs) as proc_r:
        try:
            out_r, err_r = proc_r.communicate(timeout=timeout + 30)
            out_w, err_w = proc_w.communicate(timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"{writer}/{reader} did not finish in time") from None
        finally:
            for proc in (proc_r, proc_w):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
    return (
        _result(writer, proc_w.returncode, out_w, err_w),
        _result(reader, proc_r.returncode, out_r, err_r),
    )


def _result(role: str, code: int, stdout: str, stderr: str) -> dict[str, Any]:
    if code != 0:
        raise BenchmarkError(f"table role {role} failed ({code}):\n{stderr[-2000:]}")
    result: dict[str, Any] = json.loads(stdout)
    return result


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def latency_summary(writer: dict[str, Any], reader: dict[str, Any]) -> dict[str, Any]:
    applied, visible = writer.pop("applied_ns"), reader.pop("visible_ns")
    latencies = sorted((seen - sent) / 1e6 for sent, seen in zip(applied, visible, strict=False))
    return {
        "registered": len(applied),
        "visible": len(visible),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else 0.0,
        "writer": writer,
        "reader": reader,
    }


def run_table(workdir: Path, settings: TableSettings, say: Say) -> dict[str, Any]:
    results: dict[str, Any] = {
        "settings": {
            **settings.__dict__,
            "shards": SHARDS,
            "publish_interval_s": PUBLISH_INTERVAL,
        }
    }
    sizes: dict[str, Any] = {}
    for routes in settings.sizes:
        path = workdir / f"table-{routes}.shm"
        say(f"building {routes} routes x {settings.endpoints} endpoints (writer process)")
        build = run_role(
            "build", settings.timeout, path=path, routes=routes, endpoints=settings.endpoints
        )
        say(f"lookups over {routes} routes (fresh reader process)")
        lookup = run_role(
            "lookup", settings.timeout, path=path, routes=routes, seconds=settings.lookup_seconds
        )
        if lookup["found"] != routes:
            raise BenchmarkError(f"reader found {lookup['found']} of {routes} routes")
        sizes[str(routes)] = {"build": build, "lookup": lookup}
        path.unlink(missing_ok=True)
    results["sizes"] = sizes

    for name, rate, count in (
        ("paced", settings.visibility_rate, settings.visibility_count),
        ("burst", 0.0, settings.burst_count),
    ):
        label = f"{rate:.0f}/s" if rate else "back to back"
        say(f"register→visible latency, {count} new routes {label}")
        run_dir = workdir / f"visibility-{name}"
        run_dir.mkdir()
        writer, reader = run_pair(
            "visibility-writer",
            "visibility-reader",
            settings.timeout,
            path=run_dir / "table.shm",
            workdir=run_dir,
            preload=settings.visibility_preload,
            count=count,
            rate=rate,
        )
        results[f"visibility_{name}"] = {"rate": rate, **latency_summary(writer, reader)}
        (run_dir / "table.shm").unlink(missing_ok=True)

    say(f"storm: {settings.storm_routes} routes change under a busy reader")
    run_dir = workdir / "storm"
    run_dir.mkdir()
    writer, reader = run_pair(
        "storm-writer",
        "storm-reader",
        settings.timeout,
        path=run_dir / "table.shm",
        workdir=run_dir,
        routes=settings.storm_routes,
    )
    results["storm"] = {"writer": writer, "reader": reader}
    (run_dir / "table.shm").unlink(missing_ok=True)
    return results

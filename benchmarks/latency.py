"""Latency below saturation, open-loop: each target paced at fixed fractions of its own peak.

First each target's peak is measured closed-loop with wrk (median of alternating rounds, the
sweep's baseline request: a 2-byte GET over 64 connections). Then benchmarks.loadgen sends
requests on a fixed schedule at each fraction of that peak, over the same 64 keep-alive
connections, measuring every latency from the request's scheduled send time, so a stall counts
for every request it delays (no coordinated omission). The generator's achieved rate and send
lag are kept beside each result: a run whose generator fell behind is marked.

Each fraction is paced `rounds` times, the targets' order turning each round; a target's result
at a fraction is its round with the median p99, the other rounds' percentiles kept beside it.
One 5 s run's p99 rests on its slowest 1 %: a few hundred requests, which one burst of outside
load can move by half (nginx's own p99 at half its peak was 2.3 ms in one run and 4.2 in the
next, on this project's 2-core machine).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.proxies import Target, bytes_path
from benchmarks.proxy import measure
from benchmarks.sweep import TARGETS, Bench

Say = Callable[[str], None]
CONNECTIONS = 64
PATH = bytes_path(2)
# Below this share of the target rate, the generator (or the target) did not keep up.
KEPT_UP = 0.97


@dataclass(frozen=True)
class LatencySettings:
    peak_seconds: float
    peak_rounds: int
    seconds: float
    warmup_seconds: float
    fractions: tuple[float, ...]
    rounds: int = 1


def measure_peaks(
    targets: dict[str, Target], settings: LatencySettings, say: Say
) -> dict[str, dict[str, Any]]:
    order = [targets[name] for name in TARGETS]
    runs: dict[str, list[float]] = {name: [] for name in TARGETS}
    for round_index in range(settings.peak_rounds):
        shift = round_index % len(order)
        for target in order[shift:] + order[:shift]:
            runs[target.name].append(measure(target, settings.peak_seconds, path=PATH)["rps"])
    peaks = {
        name: {"rps": statistics.median(values), "rounds": values} for name, values in runs.items()
    }
    say("peaks: " + ", ".join(f"{name} {peak['rps']:,.0f}/s" for name, peak in peaks.items()))
    return peaks


def paced_run(
    binary: Path | None, target: Target, rate: float, settings: LatencySettings
) -> dict[str, Any]:
    report = loadgen.run(
        binary,
        target.port,
        target.host,
        rate,
        settings.seconds,
        CONNECTIONS,
        warmup=settings.warmup_seconds,
        path=PATH,
    )
    report["kept_up"] = report["achieved_rps"] >= KEPT_UP * rate
    return report


def median_round(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median p99 (the lower middle one of an even count), with every
    round's percentiles under "rounds_latency_us"."""
    chosen = sorted(reports, key=lambda report: report["latency_us"]["p99"])[
        (len(reports) - 1) // 2
    ]
    return {**chosen, "rounds_latency_us": [report["latency_us"] for report in reports]}


def run_latency(bench: Bench, settings: LatencySettings, workdir: Path, say: Say) -> dict[str, Any]:
    binary = loadgen.build(workdir)
    say(
        "load generator: "
        + (f"loadgen.c built in {binary}" if binary else "no C compiler, the Python fallback")
    )
    targets = bench.targets
    peaks = measure_peaks(targets, settings, say)
    results: dict[str, dict[str, Any]] = {}
    for fraction_index, fraction in enumerate(settings.fractions):
        key = f"{fraction:g}"
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}
        for round_index in range(settings.rounds):
            shift = (fraction_index + round_index) % len(TARGETS)
            for name in TARGETS[shift:] + TARGETS[:shift]:
                rate = fraction * peaks[name]["rps"]
                report = paced_run(binary, targets[name], rate, settings)
                rounds[name].append(report)
                lat = report["latency_us"]
                say(
                    f"{name} at {fraction:.0%} of peak ({rate:,.0f}/s), round {round_index + 1}: "
                    f"p50 {lat['p50'] / 1000:.2f} ms, p99 {lat['p99'] / 1000:.2f} ms, "
                    f"p99.9 {lat['p99.9'] / 1000:.2f} ms"
                    + (
                        ""
                        if report["kept_up"]
                        else f" (achieved only {report['achieved_rps']:,.0f}/s)"
                    )
                )
        results[key] = {name: median_round(reports) for name, reports in rounds.items()}
    labels = {name: targets[name].label for name in TARGETS}
    return {
        "settings": {**settings.__dict__, "connections": CONNECTIONS, "path": PATH},
        "generator": "c" if binary else "python",
        "labels": labels,
        "peaks": peaks,
        "fractions": results,
    }

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
from benchmarks.proxy import alternating_rounds, measure
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
    runs = alternating_rounds(
        [targets[name] for name in TARGETS],
        settings.peak_rounds,
        lambda target: measure(target, settings.peak_seconds, path=PATH),
        lambda run: f"peak {run['rps']:,.0f}/s",
        say,
    )
    peaks: dict[str, dict[str, Any]] = {}
    for name in TARGETS:
        values = [run["rps"] for run in runs[name]]
        peaks[name] = {"rps": statistics.median(values), "rounds": values}
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


def paced_rounds(
    binary: Path | None,
    targets: dict[str, Target],
    peaks: dict[str, dict[str, Any]],
    fraction: float,
    start: int,
    settings: LatencySettings,
    say: Say,
) -> dict[str, list[dict[str, Any]]]:
    """Every target paced at `fraction` of its own peak, `settings.rounds` times (the first
    round starting with target `start`)."""

    def pace(target: Target) -> dict[str, Any]:
        return paced_run(binary, target, fraction * peaks[target.name]["rps"], settings)

    def summary(report: dict[str, Any]) -> str:
        lat = report["latency_us"]
        return (
            f"at {fraction:.0%} of peak ({report['target_rps']:,.0f}/s): "
            f"p50 {lat['p50'] / 1000:.2f} ms, p99 {lat['p99'] / 1000:.2f} ms, "
            f"p99.9 {lat['p99.9'] / 1000:.2f} ms"
            + ("" if report["kept_up"] else f" (achieved only {report['achieved_rps']:,.0f}/s)")
        )

    targeted = [targets[name] for name in TARGETS]
    return alternating_rounds(targeted, settings.rounds, pace, summary, say, start=start)


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
        rounds = paced_rounds(binary, targets, peaks, fraction, fraction_index, settings, say)
        results[key] = {name: median_round(reports) for name, reports in rounds.items()}
    labels = {name: targets[name].label for name in TARGETS}
    return {
        "settings": {**settings.__dict__, "connections": CONNECTIONS, "path": PATH},
        "generator": "c" if binary else "python",
        "labels": labels,
        "peaks": peaks,
        "fractions": results,
    }

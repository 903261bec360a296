"""What the soak prints: a line per sample as it goes, and the summary at the end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.soak_verdict import Timeline, Verdict, verdict_lines

KIB_PER_MIB = 1024


def mib(kib: int | None) -> str:
    return "-" if not kib else f"{kib / KIB_PER_MIB:.1f}"


def progress_line(sample: dict[str, Any]) -> str:
    """One line of the running record: time, fault, failures so far, routes, NATS link, RSS."""
    urls = sample["urls"]
    routes = f"{urls:,}" if urls is not None else "?"
    nats = {True: "up", False: "DOWN", None: "?"}[sample["nats_connected"]]
    workers = " + ".join(mib(kib) for kib in sample["worker_rss_kib"]) or "-"
    return (
        f"[{sample['t']:6.1f} s] {sample['phase']:<20} "
        f"traffic {sample['traffic_ok']:,} ok {sample['traffic_failed']:,} failed, "
        f"probes {sample['probes']:,} ({sample['probe_failures']:,} failed), "
        f"all failures {sample['failures']:,}; "
        f"routes {routes}/{sample['expected_routes']:,}; nats {nats}; "
        f"rss MiB supervisor {mib(sample['supervisor_rss_kib'])} workers {workers}"
    )


def series_range(samples: Sequence[dict[str, Any]], key: str) -> str:
    values = [sample[key] for sample in samples if sample[key]]
    if not values:
        return "no readings"
    return f"start {mib(values[0])}, max {mib(max(values))}, end {mib(values[-1])} MiB"


def worker_range(samples: Sequence[dict[str, Any]]) -> str:
    totals = [sum(sample["worker_rss_kib"]) for sample in samples if sample["worker_rss_kib"]]
    if not totals:
        return "no readings"
    return f"start {mib(totals[0])}, max {mib(max(totals))}, end {mib(totals[-1])} MiB (sum)"


def summary_lines(results: dict[str, Any], verdict: Verdict, timeline: Timeline) -> list[str]:
    meta, counts, samples = results["meta"], results["counts"], results["samples"]
    rotation = ", ".join(
        f"{name} x{sum(fault['name'] == name for fault in results['faults'])}"
        for name in dict.fromkeys(fault["name"] for fault in results["faults"])
    )
    urls = [(sample["t"], sample["urls"]) for sample in samples if sample["urls"] is not None]
    lowest = min(urls, key=lambda pair: pair[1]) if urls else None
    lines = [
        "",
        f"SOAK  {meta['seconds']:.0f} s against routerd {meta['commit']}; a fault every "
        f"{meta['settings']['fault_every']:g} s: {rotation or 'none'}",
        f"  traffic: {counts['traffic_ok'] + counts['traffic_failed']:,} requests, "
        f"{counts['traffic_failed']:,} failed; probes: {counts['probe']:,}; keep-alive "
        f"rounds: {counts['keepalive']:,} requests; final sweep: {counts['final']:,} routes",
        f"  routes (/varz urls): {meta['expected_routes_at_end']:,} expected at the end, "
        + (f"lowest {lowest[1]:,} at {lowest[0]:.1f} s, " if lowest else "")
        + f"{results['routes_listed_at_end'] or 0:,} listed in /routes at the end",
        *(f"  routerd config: {note}" for note in meta.get("notes", [])),
        f"  RSS supervisor: {series_range(samples, 'supervisor_rss_kib')}",
        f"  RSS workers: {worker_range(samples)}",
        f"  heartbeats: {counts['heartbeat_rounds']:,} rounds of up to "
        f"{counts['heartbeat_routes']:,} routes, {counts['heartbeat_rounds_dropped']} rounds "
        "no NATS node took",
        "  faults:",
        *(
            f"    {fault['at']:6.1f} s {fault['name']} #{fault['number']}: {fault['note']}"
            for fault in results["faults"]
        ),
    ]
    if verdict.excused:
        lines.append(
            f"  excused: {verdict.excused:,} requests without a response within a few "
            "seconds of a worker kill -9 (they were on the killed process)"
        )
    varz = results.get("varz_at_end")
    if varz:
        causes = {name: n for name, n in (varz["bad_gateways_by_cause"] or {}).items() if n}
        by_cause = f" {causes}" if causes else ""
        lines.append(
            f"  routerd /varz at the end: {varz['requests']:,} requests, {varz['retries']:,} "
            f"retried attempts, {varz['bad_gateways']:,} bad gateways{by_cause}, "
            f"{varz['pruned_endpoints']:,} pruned endpoints, NATS reconnects "
            f"{(varz['nats'] or {}).get('reconnects')}"
        )
    log_notes = results["routerd_log"]
    events = ", ".join(f"{name} {count:,}" for name, count in log_notes["events"].items())
    lines.append(f"  routerd log events: {events}")
    if log_notes["not_json"]:
        lines.append(
            f"  routerd log: {log_notes['not_json']} lines that are not JSON (tracebacks?); "
            f"first: {log_notes['first_not_json']}"
        )
    if results.get("harness_errors"):
        lines += ["  HARNESS ERRORS (the run is not valid):"]
        lines += [f"    {error}" for error in results["harness_errors"]]
    if verdict.passed:
        lines.append("RESULT: PASSED (zero non-2xx, every due route routable throughout)")
    else:
        lines.append(
            f"RESULT: FAILED: {verdict.failures:,} failed requests, "
            f"{len(verdict.lost_at_end):,} routes lost at the end "
            "(bar: zero non-2xx, no route lost); by the fault active when each happened:"
        )
        lines += verdict_lines(verdict, timeline)
    return lines

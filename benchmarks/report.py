"""The readable report: one section per benchmark, then the targets met or missed."""

from __future__ import annotations

import statistics
from typing import Any

MIB = 1 << 20

# What the project aims for (see DESIGN.md and the benchmark brief).
TABLE_LIMIT_MIB = 64
UPDATES_TARGET = 50_000
VISIBLE_P99_TARGET_MS = 50.0
STORM_VISIBLE_TARGET_S = 20.0
# A new route routable within a second while 50k registrations a second flow in.
CHURN_ROUTABLE_P99_MS = 1000.0
# Small GETs over h2, routerd's req/s over nginx's (both TLS with an access log).
H2_RATIO_TARGET = 0.5
# routerd's req/s with requests spread over the largest route table swept ÷ its req/s with
# every request to one of those routes, in the same round.
ROUTES_RATIO_TARGET = 0.9
# The worker's HTTP/1 front end, like for like: routerd and nginx each writing an access log.
LOGGED_RATIO_TARGET = 0.6  # routerd-log ÷ nginx-log, req/s, same-round median
LOG_COST_TARGET = 0.9  # routerd-log ÷ routerd (log on ÷ log off), same-round median
CPU_RATIO_TARGET = 2.0  # routerd-log's CPU per request ÷ nginx-log's, medians over rounds
P99_RATIO_TARGET = 2.0  # p99 at half of each one's own peak, routerd ÷ nginx (open loop)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def table_rows(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = [str(cell).rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  " + "  ".join([first, *rest])

    return [line(header), *(line(row) for row in rows)]


def proxy_section(proxy: dict[str, Any]) -> list[str]:
    settings = proxy["settings"]
    out = [
        f"PROXY  wrk -t1 -c{settings['connections']}, {settings['seconds']:.0f} s x "
        f"{settings['rounds']} alternating rounds per target; best round shown",
    ]
    rows = []
    for name, run in proxy["best"].items():
        rows.append(
            [
                proxy["labels"][name],
                fmt_rate(run["rps"]),
                f"{run['p50_ms']:.2f}",
                f"{run['p99_ms']:.2f}",
                f"{run['cpu_us_per_request']:.0f}",
                f"{run['cpu_percent']:.0f}%",
                str(run["errors"]),
            ]
        )
    header = ["target", "req/s", "p50 ms", "p99 ms", "CPU us/req", "CPU", "errors"]
    out += table_rows(header, rows)
    # Same-round medians are absent from results older than them; the first ratio is the
    # headline (routerd-log ÷ nginx-log) in results that have it.
    same_round = proxy.get("same_round_ratios") or {}
    rows = [
        [
            key.replace("/", " ÷ "),
            fmt_ratio(same_round[key]) if key in same_round else "-",
            fmt_ratio(value),
        ]
        for key, value in proxy["ratios"].items()
    ]
    out += table_rows(["req/s ratio", "same round (median)", "best rounds"], rows)
    out.append("  (CPU: the target's own processes; the backend's CPU is not included for proxies)")
    return out


def http2_section(http2: dict[str, Any]) -> list[str]:
    settings = http2["settings"]
    out = [
        f"HTTP2  h2load -t1 -c{settings['connections']} -m{settings['streams']}, "
        f"{settings['seconds']:.0f} s x {settings['rounds']} alternating rounds; best round shown",
    ]
    rows = []
    for name, runs in http2["runs"].items():
        run = max(runs, key=lambda run: run["rps"])
        rows.append(
            [
                http2["labels"][name],
                fmt_rate(run["rps"]),
                f"{run['mean_ms']:.2f}",
                f"{run['cpu_us_per_request']:.0f}",
                str(run["failed"] + run["non_2xx"]),
            ]
        )
    out += table_rows(["target", "req/s", "mean ms", "CPU us/req", "errors"], rows)
    rows = [
        [key.replace("/", " ÷ "), fmt_ratio(value)]
        for key, value in http2["same_round_ratios"].items()
    ]
    out += table_rows(["req/s ratio", "same round (median)"], rows)
    return out


def sweep_section(sweep: dict[str, Any]) -> list[str]:
    settings = sweep["settings"]
    targets = sweep["targets"]
    out = [
        f"SWEEP  wrk -t1, {settings['seconds']:.0f} s x {settings['rounds']} alternating rounds"
        + (
            f" ({route_rounds} for route scenarios)"
            if (route_rounds := settings.get("route_rounds", settings["rounds"]))
            != settings["rounds"]
            else ""
        )
        + ", median round; ÷nginx, ÷direct: req/s ratios;",
        "  CPU: the target's own processes (for proxies, the backend's is not included)",
    ]
    header = ["scenario", "target", "req/s", "÷nginx", "÷direct", "CPU us/req", "p99 ms", "errors"]
    rows = []
    for name, scenario in sweep["scenarios"].items():
        median, ratios = scenario["median"], scenario["ratios"]
        for index, target in enumerate(targets):
            rows.append(
                [
                    name if index == 0 else "",
                    target,
                    fmt_rate(median[target]["rps"]),
                    f"{ratios[target]['to_nginx']:.2f}",
                    f"{ratios[target]['to_direct']:.2f}",
                    f"{median[target]['cpu_us_per_request']:.0f}",
                    f"{median[target]['p99_ms']:.2f}",
                    str(median[target]["errors"]),
                ]
            )
    out += table_rows(header, rows)
    out += route_ratio_lines(sweep)
    return out


def route_scenarios(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """The sweep's route scenarios: those measured spread over their routes and to one host."""
    return [
        scenario
        for scenario in sweep["scenarios"].values()
        if "to_one_host" in scenario["ratios"].get("routerd", {})
    ]


def route_ratio_lines(sweep: dict[str, Any]) -> list[str]:
    """Each target, requests spread over 10k/100k routes ÷ all to one of them, same round."""
    spread = {
        scenario["scenario"]["value"]: scenario["ratios"] for scenario in route_scenarios(sweep)
    }
    if not spread:
        return []
    cells = [
        target
        + "".join(
            f" {value} {ratios[target]['to_one_host']:.2f}" for value, ratios in spread.items()
        )
        for target in sweep["targets"]
    ]
    return ["  routes, spread ÷ one host (same table, same round): " + "; ".join(cells)]


def largest_route_ratio(sweep: dict[str, Any]) -> tuple[int, float] | None:
    """(routes, routerd's spread ÷ one-host ratio) for the largest route scenario swept."""
    found = [
        (scenario["scenario"]["routes"], scenario["ratios"]["routerd"]["to_one_host"])
        for scenario in route_scenarios(sweep)
    ]
    return max(found) if found else None


def latency_section(latency: dict[str, Any]) -> list[str]:
    settings = latency["settings"]
    out = [
        f"LATENCY  open loop ({latency['generator']} generator), {settings['connections']} "
        f"connections, {settings['seconds']:g} s per run; latency from each request's scheduled "
        "send time"
        + (
            f"; each target's round with the median p99 of {rounds}"
            if (rounds := settings.get("rounds", 1)) > 1
            else ""
        ),
    ]
    header = ["target", "load", "rate/s", "achieved/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"]
    header += ["gen lag p99 us", "p99 ms, rounds"]
    rows = []
    for fraction, runs in latency["fractions"].items():
        for name, report in runs.items():
            lat = report["latency_us"]
            rows.append(
                [
                    latency["labels"][name],
                    f"{float(fraction):.0%} of {fmt_rate(latency['peaks'][name]['rps'])}",
                    fmt_rate(report["target_rps"]),
                    fmt_rate(report["achieved_rps"]) + ("" if report["kept_up"] else " (behind)"),
                    f"{lat['p50'] / 1000:.2f}",
                    f"{lat['p99'] / 1000:.2f}",
                    f"{lat['p99.9'] / 1000:.2f}",
                    f"{lat['max'] / 1000:.2f}",
                    f"{report['send_lag_us']['p99']:.0f}",
                    " ".join(
                        f"{each['p99'] / 1000:.2f}"
                        for each in report.get("rounds_latency_us", [lat])
                    ),
                ]
            )
    out += table_rows(header, rows)
    return out


def table_section(table: dict[str, Any]) -> list[str]:
    settings = table["settings"]
    out = [
        f"TABLE  {settings['shards']} shards, publish every "
        f"{settings['publish_interval_s'] * 1000:.0f} ms; {settings['endpoints']} endpoints "
        "per route; readers are separate processes",
        "  lookup: best pass, warm; 1st: first touch (decodes); new/change/beat: registrations",
        "  per second through parse, table and writer; MiB: table bytes in use / mapped; RSS:",
        "  a reader's RSS with every shard decoded",
    ]
    rows = []
    for routes, size in table["sizes"].items():
        build, lookup = size["build"], size["lookup"]
        rows.append(
            [
                fmt_rate(int(routes)),
                str(lookup["warm_ns"]),
                str(lookup["first_touch_ns"]),
                str(lookup["miss_ns"]),
                fmt_rate(build["new_msgs_per_s"]),
                fmt_rate(build["change_msgs_per_s"]),
                fmt_rate(build["heartbeat_msgs_per_s"]),
                f"{build['bytes_in_use'] / MIB:.1f}/{build['mapped_size'] / MIB:.1f}",
                f"{lookup['memory_kib_decoded']['VmRSS'] / 1024:.0f}",
            ]
        )
    header = [
        "routes",
        "lookup ns",
        "1st ns",
        "miss ns",
        "new/s",
        "change/s",
        "beat/s",
        "MiB used/map",
        "RSS MiB",
    ]
    out += table_rows(header, rows)
    for name in ("visibility_paced", "visibility_burst"):
        vis = table[name]
        label = f"{vis['rate']:.0f}/s" if vis["rate"] else "back to back"
        out.append(
            f"  register→visible ({vis['registered']} new routes {label}, "
            f"{settings['visibility_preload']} preloaded): p50 {vis['p50_ms']:.1f} ms, "
            f"p99 {vis['p99_ms']:.1f} ms, max {vis['max_ms']:.1f} ms, "
            f"{vis['visible']}/{vis['registered']} seen"
        )
    largest = max(table["sizes"], key=int)
    build_gc = table["sizes"][largest]["build"]["gc"]
    reader_gc = table["visibility_paced"]["reader"]["gc"]
    out.append(
        f"  GC pauses: writer building {fmt_rate(int(largest))} routes longest "
        f"{build_gc['longest_ms']:.0f} ms ({build_gc['full_collections']} full); "
        f"reader during the paced run longest {reader_gc['longest_ms']:.0f} ms "
        f"({reader_gc['full_collections']} full)"
    )
    storm = table["storm"]
    writer, reader = storm["writer"], storm["reader"]
    out.append(
        f"  storm: {writer['messages']} routes changed at {fmt_rate(writer['msgs_per_s'])} msg/s "
        f"({writer['shards_published']} shard publishes) under a busy reader:"
    )
    out.append(
        f"    it re-decoded {reader['decodes']} shards at "
        f"{reader['decode_cpu_us_mean']:.0f} us CPU each, "
        f"{100 * reader['decode_cpu_share']:.0f}% of its CPU; lookups/s "
        f"{fmt_rate(reader['lookups_per_s_at_rest'])} at rest, "
        f"{fmt_rate(reader['lookups_per_s_during_storm'])} during"
    )
    return out


def storm_section(storm: dict[str, Any]) -> list[str]:
    settings = storm["settings"]
    out = [
        f"STORM  routerd (2 workers), {settings['messages']} distinct registrations, one publisher"
    ]
    rows = []
    for level, run in storm["runs"].items():
        visible = run["all_visible_seconds"]
        rows.append(
            [
                level,
                f"{run['publish_seconds']:.1f}",
                f"{visible:.1f}" if visible is not None else "not all",
                str(run["dropped"]),
                str(run["varz_slow_consumer_events"]),
                str(run["nats_server_slow_consumer_reports"]),
                str(sum(run["varz_rejected"].values()) if run["varz_rejected"] else 0),
                f"{run['supervisor_cpu_seconds']:.1f}",
                f"{run['supervisor_vmhwm_kib'] / 1024:.0f}",
            ]
        )
    header = [
        "log level",
        "publish s",
        "all visible s",
        "dropped",
        "slow cons.",
        "nats slow",
        "rejected",
        "sup CPU s",
        "sup peak RSS MiB",
    ]
    out += table_rows(header, rows)
    for level, run in storm["runs"].items():
        beats = run.get("heartbeats")
        if beats:
            out.append(
                f"  heartbeats ({level}): {beats['routes']} routes every "
                f"{beats['interval_seconds']:.0f} s ({fmt_rate(beats['msgs_per_s'])} msg/s) "
                f"for {beats['window_seconds']:.0f} s:"
            )
            out.append(
                f"    supervisor CPU {beats['supervisor_cpu_percent']}% "
                f"({beats['supervisor_cpu_us_per_msg']:.0f} us/msg), workers "
                f"{beats['workers_cpu_percent']}%, table generations during the window "
                f"{beats['table_generations_during']}"
            )
        churn = run.get("churn")
        if churn:
            routable = churn["routable_ms"]
            out.append(
                f"  churn ({level}): {fmt_rate(churn['msgs_per_s'])} msg/s for "
                f"{churn['seconds']:.0f} s (1 in {settings['churn']['change_every']} changed), "
                f"supervisor CPU {churn['supervisor_cpu_percent']}% "
                f"({churn['supervisor_cpu_us_per_msg']:.1f} us/msg received)"
            )
            out.append(
                f"    register→routable of {churn['probes']} new routes: p50 {routable['p50']} ms, "
                f"p99 {routable['p99']} ms, max {routable['max']} ms, "
                f"{churn['probes_unseen']} never routable"
            )
        fetch = run.get("routes_fetch")
        if fetch:
            out.append(
                f"  /routes ({level}): {fetch['routes_bytes'] / MIB:.1f} MiB in at most "
                f"{fetch['routes_seconds_max']:.2f} s; /health meanwhile: max "
                f"{fetch['health_max_ms']} ms, p99 {fetch['health_p99_ms']} ms "
                f"({fetch['health_probes']} probes)"
            )
    return out


def front_end_checks(results: dict[str, Any]) -> list[tuple[str, bool]]:
    """The HTTP/1 front end's targets, from the proxy and latency benchmarks."""
    checks: list[tuple[str, bool]] = []
    proxy = results.get("proxy") or {}
    same_round = proxy.get("same_round_ratios") or {}
    for key, target, text in (
        ("routerd-log/nginx-log", LOGGED_RATIO_TARGET, "routerd-log ÷ nginx-log >="),
        ("routerd-log/routerd", LOG_COST_TARGET, "routerd log on ÷ log off >="),
    ):
        if key in same_round:
            ratio = same_round[key]
            checks.append((f"{text} {target} ({ratio:.2f})", ratio >= target))
    runs = proxy.get("runs", {})
    if runs.get("routerd-log") and runs.get("nginx-log"):
        routerd = statistics.median(run["cpu_us_per_request"] for run in runs["routerd-log"])
        nginx = statistics.median(run["cpu_us_per_request"] for run in runs["nginx-log"])
        ratio = routerd / nginx if nginx else float("inf")
        checks.append(
            (
                f"CPU per request, routerd-log ÷ nginx-log <= {CPU_RATIO_TARGET} "
                f"({routerd:.0f} ÷ {nginx:.0f} µs = {ratio:.2f})",
                ratio <= CPU_RATIO_TARGET,
            )
        )
    half = (results.get("latency") or {}).get("fractions", {}).get("0.5", {})
    if "routerd" in half and "nginx" in half:
        routerd_p99 = half["routerd"]["latency_us"]["p99"] / 1000
        nginx_p99 = half["nginx"]["latency_us"]["p99"] / 1000
        ratio = routerd_p99 / nginx_p99 if nginx_p99 else float("inf")
        checks.append(
            (
                f"p99 at half of each one's peak, routerd ÷ nginx <= {P99_RATIO_TARGET} "
                f"({routerd_p99:.2f} ÷ {nginx_p99:.2f} ms = {ratio:.2f})",
                ratio <= P99_RATIO_TARGET,
            )
        )
    return checks


def target_lines(results: dict[str, Any]) -> list[str]:
    checks = front_end_checks(results)
    table = results.get("table")
    if table and "100000" in table.get("sizes", {}):
        size = table["sizes"]["100000"]["build"]
        checks.append(
            (
                f"table at 100k routes < {TABLE_LIMIT_MIB} MiB "
                f"(mapped {size['mapped_size'] / MIB:.1f} MiB)",
                size["mapped_size"] < TABLE_LIMIT_MIB * MIB,
            )
        )
    if table:
        largest = max(table["sizes"], key=int)
        rate = table["sizes"][largest]["build"]["new_msgs_per_s"]
        checks.append(
            (
                f"updates >= {fmt_rate(UPDATES_TARGET)}/s at {fmt_rate(int(largest))} routes "
                f"({fmt_rate(rate)}/s)",
                rate >= UPDATES_TARGET,
            )
        )
        for name in ("visibility_paced", "visibility_burst"):
            p99 = table[name]["p99_ms"]
            checks.append(
                (
                    f"register→visible p99 < {VISIBLE_P99_TARGET_MS:.0f} ms, {name[11:]} "
                    f"({p99:.1f} ms)",
                    p99 < VISIBLE_P99_TARGET_MS,
                )
            )
    http2 = results.get("http2")
    if http2:
        ratio = http2["same_round_ratios"].get("routerd-h2/nginx-h2", 0)
        checks.append(
            (
                f"h2 small GETs: routerd ÷ nginx >= {H2_RATIO_TARGET} ({ratio:.2f})",
                ratio >= H2_RATIO_TARGET,
            )
        )
    largest = largest_route_ratio(results["sweep"]) if results.get("sweep") else None
    if largest:
        routes, ratio = largest
        checks.append(
            (
                f"routerd, requests spread over {fmt_rate(routes)} routes ÷ all to one of them "
                f">= {ROUTES_RATIO_TARGET} "
                f"({ratio:.3f})",
                ratio >= ROUTES_RATIO_TARGET,
            )
        )
    storm = results.get("storm")
    if storm:
        for level, run in storm["runs"].items():
            seconds = run["all_visible_seconds"]
            took = "not all" if seconds is None else f"{seconds:.1f} s"
            checks.append(
                (
                    f"storm at {level}: all {run['messages']} visible within "
                    f"{STORM_VISIBLE_TARGET_S:.0f} s, 0 dropped ({took}, {run['dropped']} dropped)",
                    seconds is not None
                    and seconds <= STORM_VISIBLE_TARGET_S
                    and run["dropped"] == 0,
                )
            )
    for level, run in (storm or {}).get("runs", {}).items():
        churn = run.get("churn")
        if churn:
            p99 = churn["routable_ms"]["p99"]
            checks.append(
                (
                    f"register→routable p99 <= {CHURN_ROUTABLE_P99_MS:.0f} ms under "
                    f"{fmt_rate(churn['msgs_per_s'])} msg/s of churn at {level} "
                    f"({p99} ms, {churn['probes_unseen']} never routable)",
                    p99 is not None
                    and p99 <= CHURN_ROUTABLE_P99_MS
                    and churn["probes_unseen"] == 0,
                )
            )
    return [f"  {'met   ' if ok else 'MISSED'} {text}" for text, ok in checks]


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"routerd benchmarks  {meta['started']}  ({meta['mode']} run, {meta['cpus']} CPUs, "
        f"load {meta['load_before'][0]:.1f} before / {meta['load_after'][0]:.1f} after)",
        "Compare ratios, not absolute numbers: everything was measured side by side on a shared",
        "machine whose other load drifts.",
        "",
    ]
    sections = (
        ("proxy", proxy_section),
        ("http2", http2_section),
        ("sweep", sweep_section),
        ("latency", latency_section),
        ("table", table_section),
        ("storm", storm_section),
    )
    for name, section in sections:
        if name in results:
            lines += [*section(results[name]), ""]
        elif name in results.get("errors", {}):
            lines += [f"{name.upper()}  failed: {results['errors'][name]}", ""]
    checks = target_lines(results)
    if checks:
        lines += ["TARGETS", *checks, ""]
    return "\n".join(lines)

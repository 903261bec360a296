"""What /varz and /metrics report, computed from the counter rows and the supervisor's state."""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.shm.counters import LATENCY_BOUNDS_US, Stat
from supervisor.gorouter_metrics import (
    VARZ_LATENCY_VALUE,
    GorouterView,
    prometheus_lines,
    varz_fields,
)

LATENCY_BUCKETS = [Stat.latency_le_1ms + i for i in range(len(LATENCY_BOUNDS_US))]
ERROR_CAUSES = {
    "dial": Stat.error_dial,
    "connection_reset": Stat.error_reset,
    "timeout": Stat.error_timeout,
    "closed_before_response": Stat.error_closed,
    "bad_response": Stat.error_bad_response,
    "tls_handshake": Stat.error_tls_handshake,
    "tls_untrusted": Stat.error_tls_untrusted,
    "tls_hostname_mismatch": Stat.error_tls_hostname,
    "tls_client_cert_required": Stat.error_tls_client_cert,
    "other": Stat.error_other,
}


@dataclass(frozen=True)
class Snapshot:
    """Everything the status endpoints show, gathered at one moment."""

    totals: Sequence[int]
    routes: int
    endpoints: int
    ms_since_last_registry_update: int
    nats_connected: bool
    nats_messages: dict[str, int]
    nats_rejected: dict[str, int]
    nats_slow_consumer_events: int
    nats_reconnects: int
    # The link's real state (supervisor/nats_liveness.py), not nats-py's "connected".
    nats_state: str
    nats_ms_since_last_message: int
    nats_rebuilds: int
    pruned_endpoints: int
    table_generation: int
    workers: list[dict[str, Any]]
    started_at: float
    healthy: bool
    state: str
    nats_rejected_by_reason: dict[str, dict[str, int]] = field(default_factory=dict)
    # Gorouter's names for what Gorouter reports (supervisor/gorouter_metrics.py).
    gorouter: GorouterView | None = None
    # The config's `index`, as Gorouter's /varz shows it.
    index: int = 0


def uptime_text(seconds: float) -> str:
    """Gorouter's `%dd:%dh:%dm:%ds`."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d:{hours}h:{minutes}m:{secs}s"


def latency_percentiles(totals: Sequence[int]) -> dict[str, float]:
    """Percentiles (seconds) estimated from the histogram: each bucket's upper bound."""
    counts = [totals[bucket] for bucket in LATENCY_BUCKETS] + [totals[Stat.latency_inf]]
    total = sum(counts)
    result: dict[str, float] = {}
    for name, quantile in (("50", 0.5), ("75", 0.75), ("90", 0.9), ("95", 0.95), ("99", 0.99)):
        if total == 0:
            result[name] = 0.0
            continue
        target = quantile * total
        running = 0
        value = LATENCY_BOUNDS_US[-1] / 1e6
        for index, count in enumerate(counts):
            running += count
            if running >= target:
                bound = LATENCY_BOUNDS_US[index] if index < len(LATENCY_BOUNDS_US) else None
                value = bound / 1e6 if bound is not None else float("inf")
                break
        result[name] = value
    return result


def varz(snapshot: Snapshot) -> dict[str, Any]:
    totals = snapshot.totals
    usage = resource.getrusage(resource.RUSAGE_SELF)
    uptime = time.time() - snapshot.started_at
    requests = totals[Stat.requests]
    document = {
        "type": "Router",
        "index": snapshot.index,
        "host": os.uname().nodename,
        "start": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(snapshot.started_at)),
        "uptime": uptime_text(uptime),
        "uptime_seconds": round(uptime, 3),
        "num_cores": os.cpu_count() or 1,
        "mem": usage.ru_maxrss,
        "cpu": round(usage.ru_utime + usage.ru_stime, 3),
        "requests": requests,
        "responses_1xx": totals[Stat.responses_1xx],
        "responses_2xx": totals[Stat.responses_2xx],
        "responses_3xx": totals[Stat.responses_3xx],
        "responses_4xx": totals[Stat.responses_4xx],
        "responses_5xx": totals[Stat.responses_5xx],
        "responses_xxx": totals[Stat.responses_xxx],
        "bad_requests": totals[Stat.bad_requests],
        "bad_gateways": totals[Stat.bad_gateways],
        "bad_gateways_by_cause": {name: totals[stat] for name, stat in ERROR_CAUSES.items()},
        "client_closed": totals[Stat.client_closed],
        "retries": totals[Stat.retries],
        "router_errors": {
            "unknown_route": totals[Stat.unknown_route],
            "no_endpoints": totals[Stat.no_endpoints],
            "connection_limit": totals[Stat.connection_limit],
            "empty_host": totals[Stat.empty_host],
            "invalid_app_instance": totals[Stat.invalid_app_instance],
            "malformed_host": totals[Stat.malformed_host],
            "max-request-size-exceeded": totals[Stat.max_request_size_exceeded],
        },
        "client_timeouts": {
            "header": totals[Stat.client_header_timeouts],
            "body": totals[Stat.client_body_timeouts],
        },
        "access_log": {
            "write_errors": totals[Stat.access_log_write_errors],
            "dropped_lines": totals[Stat.access_log_dropped_lines],
        },
        "accept_fd_exhausted": totals[Stat.accept_fd_exhausted],
        "client_cert_refused": totals[Stat.client_cert_refused],
        "latency": {
            **latency_percentiles(totals),
            "value": VARZ_LATENCY_VALUE,
            "samples": requests,
        },
        "droplets": snapshot.endpoints,
        "urls": snapshot.routes,
        "ms_since_last_registry_update": snapshot.ms_since_last_registry_update,
        "table_generation": snapshot.table_generation,
        "nats": {
            "connected": snapshot.nats_connected,
            "messages": snapshot.nats_messages,
            "rejected": snapshot.nats_rejected,
            "rejected_by_reason": snapshot.nats_rejected_by_reason,
            "slow_consumer_events": snapshot.nats_slow_consumer_events,
            "reconnects": snapshot.nats_reconnects,
            "state": snapshot.nats_state,
            "ms_since_last_message": snapshot.nats_ms_since_last_message,
            "unproven_reconnects": snapshot.nats_rebuilds,
        },
        "pruned_endpoints": snapshot.pruned_endpoints,
        "workers": snapshot.workers,
        "healthy": snapshot.healthy,
        "state": snapshot.state,
    }
    if snapshot.gorouter is not None:
        document.update(varz_fields(totals, snapshot.gorouter))
    return document


def prometheus(snapshot: Snapshot) -> str:
    totals = snapshot.totals
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP routerd_{name} {help_text}")
        lines.append(f"# TYPE routerd_{name} {kind}")
        for labels, value in samples:
            lines.append(f"routerd_{name}{labels} {_number(value)}")

    metric("requests_total", "counter", "Requests received.", [("", totals[Stat.requests])])
    metric(
        "responses_total",
        "counter",
        "Responses sent, by status class.",
        [
            (f'{{class="{name}"}}', totals[stat])
            for name, stat in (
                ("1xx", Stat.responses_1xx),
                ("2xx", Stat.responses_2xx),
                ("3xx", Stat.responses_3xx),
                ("4xx", Stat.responses_4xx),
                ("5xx", Stat.responses_5xx),
                ("xxx", Stat.responses_xxx),
            )
        ],
    )
    metric("bad_gateways_total", "counter", "502 responses.", [("", totals[Stat.bad_gateways])])
    metric("bad_requests_total", "counter", "400 responses.", [("", totals[Stat.bad_requests])])
    metric(
        "backend_errors_total",
        "counter",
        "Failed attempts to backends, by cause.",
        [(f'{{cause="{name}"}}', totals[stat]) for name, stat in ERROR_CAUSES.items()],
    )
    metric(
        "router_errors_total",
        "counter",
        "Requests the router answered itself, by X-Cf-RouterError.",
        [
            (f'{{error="{name}"}}', totals[stat])
            for name, stat in (
                ("unknown_route", Stat.unknown_route),
                ("no_endpoints", Stat.no_endpoints),
                ("connection_limit", Stat.connection_limit),
                ("empty_host", Stat.empty_host),
                ("invalid_app_instance", Stat.invalid_app_instance),
                ("max-request-size-exceeded", Stat.max_request_size_exceeded),
            )
        ],
    )
    metric(
        "client_timeouts_total",
        "counter",
        "Client connections closed for sending a request head or body too slowly.",
        [
            ('{phase="header"}', totals[Stat.client_header_timeouts]),
            ('{phase="body"}', totals[Stat.client_body_timeouts]),
        ],
    )
    metric(
        "access_log_write_errors_total",
        "counter",
        "Failed writes to the access log file.",
        [("", totals[Stat.access_log_write_errors])],
    )
    metric(
        "access_log_dropped_lines_total",
        "counter",
        "Access log lines lost to failed writes.",
        [("", totals[Stat.access_log_dropped_lines])],
    )
    metric("retries_total", "counter", "Retried attempts.", [("", totals[Stat.retries])])
    metric(
        "client_closed_total",
        "counter",
        "Clients gone before the response (499).",
        [("", totals[Stat.client_closed])],
    )
    metric(
        "websocket_upgrades_total",
        "counter",
        "WebSocket tunnels opened.",
        [("", totals[Stat.websocket_upgrades])],
    )
    metric(
        "upstream_connections_total",
        "counter",
        "New connections to backends.",
        [("", totals[Stat.upstream_connects])],
    )
    metric(
        "upstream_reuses_total",
        "counter",
        "Requests sent on pooled connections.",
        [("", totals[Stat.upstream_reuses])],
    )
    metric(
        "in_flight_requests", "gauge", "Requests being proxied now.", [("", totals[Stat.in_flight])]
    )
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, stat in zip(LATENCY_BOUNDS_US, LATENCY_BUCKETS, strict=True):
        cumulative += totals[stat]
        buckets.append((f'_bucket{{le="{bound / 1e6:g}"}}', cumulative))
    cumulative += totals[Stat.latency_inf]
    buckets.append(('_bucket{le="+Inf"}', cumulative))
    buckets.append(("_sum", totals[Stat.response_time_us_total] / 1e6))
    buckets.append(("_count", cumulative))
    lines.append("# HELP routerd_request_duration_seconds Time from request to last response byte.")
    lines.append("# TYPE routerd_request_duration_seconds histogram")
    lines.extend(
        f"routerd_request_duration_seconds{suffix} {_number(value)}" for suffix, value in buckets
    )
    metric("routes", "gauge", "Routes (uris) in the table.", [("", snapshot.routes)])
    metric(
        "endpoints", "gauge", "Distinct backend addresses in the table.", [("", snapshot.endpoints)]
    )
    metric(
        "ms_since_last_registry_update",
        "gauge",
        "Milliseconds since the last router.register.",
        [("", snapshot.ms_since_last_registry_update)],
    )
    metric(
        "nats_connected",
        "gauge",
        "1 when connected to NATS and the link proved itself within nats_client_ping_interval.",
        [("", int(snapshot.nats_connected))],
    )
    metric(
        "nats_ms_since_last_message",
        "gauge",
        "Milliseconds since anything (a message or a liveness probe) arrived from NATS.",
        [("", snapshot.nats_ms_since_last_message)],
    )
    metric(
        "nats_reconnects_total",
        "counter",
        "NATS reconnections: by nats-py after a lost connection, or by routerd after a silent one.",
        [
            ('{cause="disconnected"}', snapshot.nats_reconnects),
            ('{cause="unproven"}', snapshot.nats_rebuilds),
        ],
    )
    metric(
        "nats_messages_total",
        "counter",
        "NATS messages received, by subject.",
        [
            (f'{{subject="{subject}"}}', count)
            for subject, count in sorted(snapshot.nats_messages.items())
        ],
    )
    metric(
        "nats_messages_rejected_total",
        "counter",
        "NATS messages skipped as invalid, by subject.",
        [
            (f'{{subject="{subject}"}}', count)
            for subject, count in sorted(snapshot.nats_rejected.items())
        ],
    )
    metric(
        "nats_messages_rejected_by_reason_total",
        "counter",
        "NATS messages skipped as invalid, by subject and reason.",
        [
            (f'{{subject="{subject}",reason="{code}"}}', count)
            for subject, reasons in sorted(snapshot.nats_rejected_by_reason.items())
            for code, count in sorted(reasons.items())
        ],
    )
    metric(
        "nats_slow_consumer_total",
        "counter",
        "nats-py slow-consumer events (messages dropped).",
        [("", snapshot.nats_slow_consumer_events)],
    )
    metric(
        "pruned_endpoints_total",
        "counter",
        "Endpoints pruned as stale.",
        [("", snapshot.pruned_endpoints)],
    )
    metric(
        "worker_restarts_total",
        "counter",
        "Worker respawns, by worker.",
        [(f'{{worker="{w["index"]}"}}', w["restarts"]) for w in snapshot.workers],
    )
    metric(
        "worker_crashes",
        "gauge",
        "Crashes in a row, by worker (0 once it has stayed up 30 s).",
        [(f'{{worker="{w["index"]}"}}', w.get("crashes", 0)) for w in snapshot.workers],
    )
    metric(
        "connections_handed_off_total",
        "counter",
        "Connections the supervisor accepted for a worker that was down, by worker.",
        [
            (f'{{worker="{w["index"]}"}}', w.get("connections_handed_off", 0))
            for w in snapshot.workers
        ],
    )
    metric(
        "accept_fd_exhausted_total",
        "counter",
        "accept() calls that failed for want of a file descriptor (EMFILE/ENFILE).",
        [("", totals[Stat.accept_fd_exhausted])],
    )
    metric(
        "lb_health_checks_total",
        "counter",
        "Load balancers' health checks (healthcheck_user_agent) answered on the router's ports.",
        [("", totals[Stat.lb_health_checks])],
    )
    metric(
        "client_cert_refused_total",
        "counter",
        "TLS clients whose certificate verify_client_certificate_metadata refused.",
        [("", totals[Stat.client_cert_refused])],
    )
    metric("healthy", "gauge", "1 when /health answers 200.", [("", int(snapshot.healthy))])
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since routerd started.",
        [("", round(time.time() - snapshot.started_at, 3))],
    )
    if snapshot.gorouter is not None:
        lines.extend(
            prometheus_lines(
                totals,
                snapshot.gorouter,
                routes=snapshot.routes,
                ms_since_update=snapshot.ms_since_last_registry_update,
                pruned=snapshot.pruned_endpoints,
            )
        )
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    return f"{value:.6f}".rstrip("0").rstrip(".")

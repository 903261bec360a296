"""Gorouter's own metric names beside routerd's, so dashboards and alerts built on Gorouter keep
working: the Prometheus series Gorouter serves (gorouter's metrics_prometheus/metrics.go; names,
types, labels and help texts are Gorouter's) and the /varz fields its scrapers read
(gorouter's varz/varz.go).

Meanings follow Gorouter's: `total_requests`, `responses` and `latency` count requests routed to
a backend (not those the router answered itself, such as an unknown route's 404), labelled with
the endpoint's `component` tag; `registry_message` counts routes per registration (one message
naming three routes counts three), by whether the endpoint was new to the route ("added") or
already there ("updated").
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from registry.shm.counters import (
    C_LATENCY,
    C_LATENCY_SUM_US,
    C_RESPONSES,
    COMPONENT_BASE,
    COMPONENT_WORDS,
    GOROUTER_LATENCY_BOUNDS_US,
    MAX_COMPONENTS,
    Stat,
)
from supervisor.gorouter_rates import Meter, TopApps

# Gorouter's route_registration_latency histogram, in ms: the bucket bounds of the sample scrape
# in routing-release's observability docs (docs/04-observability.md).
REGISTRATION_LATENCY_BOUNDS_MS: Final = (0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
STATUS_GROUPS: Final = ("2xx", "3xx", "4xx", "5xx", "xxx")
# Gorouter folds every `dea-N` component into one series and calls it a routed app.
ROUTED_APP_PREFIX: Final = "dea-"
# Gorouter's varz always sends these two latency fields "for backwards compatibility with the
# collector": `value` is 0.5 (the first quantile) divided by time.Millisecond, a constant.
VARZ_LATENCY_VALUE: Final = 0.5 / 1e6
VARZ_LATENCY_SAMPLES: Final = 1
REJECTIONS: Final = (Stat.unknown_route, Stat.empty_host, Stat.invalid_app_instance)
PERCENTILES: Final = (("50", 0.5), ("75", 0.75), ("90", 0.9), ("95", 0.95), ("99", 0.99))


class Histogram:
    """Counts per bucket (the last one past every bound) and the sum of what was observed."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def __repr__(self) -> str:
        return f"Histogram(count={sum(self.counts)}, sum={self.total:g})"

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value


class RegistryCounts:
    """What Gorouter's route registry reports, counted by the supervisor as messages arrive."""

    __slots__ = ("registered", "registration_latency", "unregistered")

    def __init__(self) -> None:
        self.registered: Counter[tuple[str, str]] = Counter()  # (action, component) → routes
        self.unregistered: Counter[str] = Counter()  # component → routes
        self.registration_latency = Histogram(REGISTRATION_LATENCY_BOUNDS_MS)

    def __repr__(self) -> str:
        return (
            f"RegistryCounts(registered={sum(self.registered.values())}, "
            f"unregistered={sum(self.unregistered.values())})"
        )

    def register(
        self, tags: dict[str, str], *, added: int, updated: int, updated_at_ns: int, now_ns: int
    ) -> None:
        """One registration: `added` routes gained the endpoint, `updated` already had it.

        `updated_at_ns` is the message's `endpoint_updated_at_ns` (0: not sent); like Gorouter,
        each route that gained the endpoint observes how long ago the endpoint changed.
        """
        component = tags.get("component", "")
        if added:
            self.registered["added", component] += added
            if updated_at_ns > 0:  # nanoseconds since the epoch; 0 (or less): not sent
                # A sender's clock ahead of ours makes no negative latency.
                latency_ms = max(0, now_ns - updated_at_ns) / 1e6
                for _ in range(added):
                    self.registration_latency.observe(latency_ms)
        if updated:
            self.registered["updated", component] += updated

    def unregister(self, tags: dict[str, str], routes: int) -> None:
        self.unregistered[tags.get("component", "")] += routes


@dataclass(frozen=True)
class GorouterView:
    """The Gorouter-named figures of one snapshot."""

    uuid: str
    components: list[tuple[int, str]]
    rates: list[float]
    component_rates: dict[int, list[float]]
    top_apps: list[dict[str, Any]]
    registered: dict[tuple[str, str], int]
    unregistered: dict[str, int]
    registration_latency_counts: list[int]
    registration_latency_sum_ms: float
    log_counts: dict[str, int]


class GorouterState:
    """The supervisor's memory between snapshots: rate meters and the top-apps samples."""

    def __init__(self, now: float, uuid: str) -> None:
        self.uuid = uuid
        self.meter = Meter(now)
        self.component_meters: dict[int, Meter] = {}
        self.top_apps = TopApps(now)
        self._started = now

    def __repr__(self) -> str:
        return f"GorouterState(uuid={self.uuid!r}, components={len(self.component_meters)})"

    def view(
        self,
        *,
        now: float,
        totals: Sequence[int],
        components: list[tuple[int, str]],
        routed: array[int],
        apps_of: Callable[[Iterable[int]], dict[int, str]],
        registry: RegistryCounts,
        log_counts: dict[str, int],
    ) -> GorouterView:
        component_rates = {}
        for index, _name in components:
            meter = self.component_meters.get(index)
            if meter is None:
                meter = self.component_meters[index] = Meter(self._started)
            component_rates[index] = meter.update(now, routed_requests(totals, [index]))
        return GorouterView(
            uuid=self.uuid,
            components=components,
            rates=self.meter.update(now, routed_requests(totals)),
            component_rates=component_rates,
            top_apps=self.top_apps.update(now, routed, apps_of),
            registered=dict(registry.registered),
            unregistered=dict(registry.unregistered),
            registration_latency_counts=list(registry.registration_latency.counts),
            registration_latency_sum_ms=registry.registration_latency.total,
            log_counts=log_counts,
        )


def block(totals: Sequence[int], component: int) -> Sequence[int]:
    start = COMPONENT_BASE + component * COMPONENT_WORDS
    return totals[start : start + COMPONENT_WORDS]


def routed_requests(totals: Sequence[int], components: Iterable[int] | None = None) -> int:
    """Requests routed to a backend: of the given component ids, or of every one."""
    ids = range(MAX_COMPONENTS) if components is None else components
    return sum(responses(block(totals, index)) for index in ids)


def responses(counts: Sequence[int]) -> int:
    """A component's routed requests: every one ends in exactly one status group."""
    return sum(counts[C_RESPONSES : C_RESPONSES + len(STATUS_GROUPS)])


def series_name(component: str) -> tuple[str, str]:
    """Gorouter's (component, is_routed_app) labels for a component tag."""
    if component.startswith(ROUTED_APP_PREFIX):
        return ROUTED_APP_PREFIX + "*", "yes"
    return component, "no"


def label(value: str) -> str:
    """A Prometheus label value: names come from NATS messages, so escape what the format must."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_lines(
    totals: Sequence[int], view: GorouterView, routes: int, ms_since_update: int, pruned: int
) -> list[str]:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {number(value)}" for labels, value in samples)

    by_series: dict[tuple[str, str], list[int]] = {}
    for index, name in view.components:
        by_series.setdefault(series_name(name), []).append(index)
    metric(
        "backend_exhausted_conns",
        "counter",
        "number of errors related to backend connection limit reached",
        [("", totals[Stat.connection_limit])],
    )
    metric(
        "backend_invalid_id",
        "counter",
        "number of bad backend id errors received from backends",
        [("", totals[Stat.error_tls_hostname])],
    )
    metric(
        "backend_invalid_tls_cert",
        "counter",
        "number of tls certificate errors received from backends",
        [("", totals[Stat.error_tls_untrusted])],
    )
    metric(
        "backend_tls_handshake_failed",
        "counter",
        "number of backend handshake errors",
        [("", totals[Stat.error_tls_handshake] + totals[Stat.error_tls_client_cert])],
    )
    metric(
        "bad_gateways",
        "counter",
        "number of bad gateway errors received from backends",
        [("", totals[Stat.bad_gateways])],
    )
    lines.append("# HELP latency routing response latency in ms")
    lines.append("# TYPE latency histogram")
    for (component, _routed_app), ids in by_series.items():
        labels = f'component="{label(component)}"'
        cumulative = 0
        for position, bound in enumerate((*GOROUTER_LATENCY_BOUNDS_US, math.inf)):
            cumulative += sum(block(totals, index)[C_LATENCY + position] for index in ids)
            le = "+Inf" if bound == math.inf else number(bound / 1000)
            lines.append(f'latency_bucket{{{labels},le="{le}"}} {cumulative}')
        sum_ms = sum(block(totals, index)[C_LATENCY_SUM_US] for index in ids) / 1000
        lines.append(f"latency_sum{{{labels}}} {number(sum_ms)}")
        lines.append(f"latency_count{{{labels}}} {cumulative}")
    metric(
        "ms_since_last_registry_update",
        "gauge",
        "time since last registry update in ms",
        [("", ms_since_update)],
    )
    metric(
        "registry_message",
        "counter",
        "number of route registration messages",
        [
            (f'{{action="{label(action)}",component="{label(component)}"}}', count)
            for (action, component), count in sorted(view.registered.items())
        ],
    )
    # What Gorouter's lookup handler refuses (CaptureBadRequest): unknown routes (404) and its
    # 400s. Requests Go's HTTP server refuses before Gorouter sees them (bad syntax, a malformed
    # Host) are no rejection there, so routerd's other 400s are not either.
    rejected = sum(totals[stat] for stat in REJECTIONS)
    metric("rejected_requests", "counter", "number of rejected requests", [("", rejected)])
    metric(
        "responses",
        "counter",
        "number of responses",
        [
            (
                f'{{status_group="{group}"}}',
                sum(block(totals, index)[C_RESPONSES + offset] for index in range(MAX_COMPONENTS)),
            )
            for offset, group in enumerate(STATUS_GROUPS)
        ],
    )
    cumulative = 0
    lines.append("# HELP route_registration_latency route registration latency in ms")
    lines.append("# TYPE route_registration_latency histogram")
    for bound, count in zip(
        (*REGISTRATION_LATENCY_BOUNDS_MS, math.inf), view.registration_latency_counts, strict=True
    ):
        cumulative += count
        le = "+Inf" if bound == math.inf else number(bound)
        lines.append(f'route_registration_latency_bucket{{le="{le}"}} {cumulative}')
    lines.append(f"route_registration_latency_sum {number(view.registration_latency_sum_ms)}")
    lines.append(f"route_registration_latency_count {cumulative}")
    metric("routes_pruned", "counter", "number of pruned routes", [("", pruned)])
    metric(
        "total_requests",
        "counter",
        "number of routing requests",
        [
            (
                f'{{component="{label(component)}",is_routed_app="{routed_app}"}}',
                routed_requests(totals, ids),
            )
            for (component, routed_app), ids in by_series.items()
        ],
    )
    metric("total_routes", "gauge", "number of total routes", [("", routes)])
    metric(
        "unregistry_message",
        "counter",
        "number of unregister messages",
        [
            (f'{{component="{label(component)}"}}', count)
            for component, count in sorted(view.unregistered.items())
        ],
    )
    metric(
        "websocket_upgrades",
        "counter",
        "websocket upgrade to websocket",
        [("", totals[Stat.websocket_upgrades])],
    )
    return lines


def varz_fields(totals: Sequence[int], view: GorouterView) -> dict[str, Any]:
    """The fields Gorouter's /varz has and routerd's own did not."""
    tags: dict[str, Any] = {}
    for index, name in view.components:
        if not name:
            continue  # Gorouter tags only endpoints that carry a component tag
        counts = block(totals, index)
        tags[name] = {
            "requests": responses(counts),
            "rate": view.component_rates.get(index, [0.0, 0.0, 0.0]),
            **{
                f"responses_{group}": counts[C_RESPONSES + offset]
                for offset, group in enumerate(STATUS_GROUPS)
            },
            "latency": component_latency(counts),
        }
    return {
        "uuid": view.uuid,
        "rate": view.rates,
        "requests_per_sec": view.rates[0],
        "top10_app_requests": view.top_apps,
        "tags": {"component": tags},
        "log_counts": view.log_counts,
    }


def component_latency(counts: Sequence[int]) -> dict[str, float]:
    """Gorouter's latency percentiles (seconds) for one component, each a bucket's upper bound."""
    buckets = counts[C_LATENCY : C_LATENCY + len(GOROUTER_LATENCY_BOUNDS_US) + 1]
    total = sum(buckets)
    result: dict[str, float] = {}
    for name, quantile in PERCENTILES:
        value = 0.0
        running = 0
        for position, count in enumerate(buckets):
            running += count
            if total and running >= quantile * total:
                # Past the last bound JSON has no infinity: report the last bound, a lower limit.
                bound = GOROUTER_LATENCY_BOUNDS_US[min(position, len(buckets) - 2)]
                value = bound / 1e6
                break
        result[name] = value
    result["value"] = VARZ_LATENCY_VALUE
    result["samples"] = VARZ_LATENCY_SAMPLES
    return result


def number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6f}".rstrip("0").rstrip(".")

"""Text for people: tables that fit 80 columns (cut with an ellipsis) and the status report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

WIDTH: Final = 80
GAP: Final = "  "
ELLIPSIS: Final = "…"


@dataclass(frozen=True)
class Column:
    title: str
    min_width: int  # never cut narrower than this
    align_right: bool = False


def fit_widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Natural widths, then the widest cuttable column loses one character at a time."""
    widths = [
        max([len(column.title)] + [len(row[index]) for row in rows])
        for index, column in enumerate(columns)
    ]
    budget = width - len(GAP) * (len(columns) - 1)
    while sum(widths) > budget:
        cuttable = [
            index for index, column in enumerate(columns) if widths[index] > column.min_width
        ]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda index: widths[index])
        widths[widest] -= 1
    return widths


def cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    if width <= 0:
        return ""
    return text[: width - 1] + ELLIPSIS


def table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None = WIDTH
) -> str:
    """Rows under a header; `width=None` never cuts (`--wide`)."""
    widths = fit_widths(columns, rows, width if width is not None else 1 << 30)
    lines = []
    for cells in [[column.title for column in columns], *rows]:
        parts = []
        for index, column in enumerate(columns):
            text = cut(cells[index], widths[index])
            last = index == len(columns) - 1
            if column.align_right:
                parts.append(text.rjust(widths[index]))
            else:
                parts.append(text if last else text.ljust(widths[index]))
        lines.append(GAP.join(parts).rstrip())
    return "\n".join(lines)


# -- routes --------------------------------------------------------------------------------------

ROUTE_COLUMNS: Final = (
    Column("URI", 16),
    Column("ENDPOINT", 21),  # 255.255.255.255:65535 is never cut
    Column("TLS", 3),
    Column("TTL LEFT", 8, align_right=True),
    Column("APP", 8),
    Column("INSTANCE", 8),
)


def route_rows(routes: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    rows = []
    for uri in sorted(routes):
        endpoints = routes[uri]
        if not endpoints:
            rows.append([uri, "(no endpoints)", "", "", "", ""])
        for endpoint in endpoints:
            rows.append(
                [
                    uri,
                    str(endpoint.get("address", "")),
                    "yes" if endpoint.get("tls") else "no",
                    _ttl_left(endpoint),
                    str(endpoint.get("app") or "-"),
                    _instance(endpoint),
                ]
            )
    return rows


def routes_table(routes: dict[str, list[dict[str, Any]]], wide: bool = False) -> str:
    if not routes:
        return "no routes"
    return table(ROUTE_COLUMNS, route_rows(routes), None if wide else WIDTH)


def _ttl_left(endpoint: dict[str, Any]) -> str:
    if "ttl_left" not in endpoint:
        return "?"
    left = endpoint["ttl_left"]
    if left is None:
        return "-"  # TLS endpoints are not pruned for staleness, as in Gorouter
    return f"{float(left):.0f}s"


def _instance(endpoint: dict[str, Any]) -> str:
    index = str(endpoint.get("private_instance_index") or "")
    instance_id = str(endpoint.get("private_instance_id") or "")
    if index and instance_id:
        return f"{index}/{instance_id}"
    return index or instance_id or "-"


def filter_routes(
    routes: dict[str, list[dict[str, Any]]], prefix: str | None
) -> dict[str, list[dict[str, Any]]]:
    """Routes whose uri starts with `prefix` (hosts are stored lower-case)."""
    if not prefix:
        return routes
    wanted = prefix.lower()
    return {uri: endpoints for uri, endpoints in routes.items() if uri.startswith(wanted)}


# -- status --------------------------------------------------------------------------------------

WORKER_COLUMNS: Final = (
    Column("WORKER", 6, align_right=True),
    Column("PID", 3, align_right=True),
    Column("STATE", 5),
    Column("RESTARTS", 8, align_right=True),
    Column("CRASHES", 7, align_right=True),
    Column("UPTIME", 6),
)


def status_text(summary: dict[str, Any]) -> str:
    health = "healthy" if summary["healthy"] else f"UNHEALTHY (/health {summary['health_status']})"
    nats = summary["nats"]
    nats_text = "connected" if nats["connected"] else nats["state"].upper()
    silent = nats.get("ms_since_last_message")
    if silent is not None and silent >= 0:
        nats_text += f" (last message {silent} ms ago)"
    nats_text += f", {nats['messages']} messages"
    if nats["rejected"]:
        nats_text += f" ({nats['rejected']} rejected)"
    reconnects = nats["reconnects"] + nats.get("unproven_reconnects", 0)
    if reconnects:
        nats_text += f", {reconnects} reconnects"
    since = summary["ms_since_last_registry_update"]
    update = "never" if since is None or since < 0 else f"{since} ms ago"
    responses = ", ".join(f"{name} {count}" for name, count in summary["responses"].items())
    lines = [
        ("health", f"{health}, {summary['state']}"),
        ("status server", str(summary["url"])),
        ("uptime", str(summary["uptime"])),
        ("nats", nats_text),
        ("registry", f"last update {update}"),
        ("routes", f"{summary['routes']} uris, {summary['endpoints']} endpoints"),
        ("requests", f"{summary['requests']} total, {_rate(summary['request_rate'])}"),
        ("responses", responses),
        ("502s", str(summary["bad_gateways"])),
        # /varz's bad_gateways_by_cause: also the TLS failures answered 525, 526, 503 or 496.
        ("  by cause", _nonzero(summary["bad_gateways_by_cause"])),
        ("router errors", _nonzero(summary["router_errors"])),
        ("other", f"{summary['client_closed']} client closed (499), {summary['retries']} retries"),
    ]
    text = "\n".join(cut(f"{label:<14}{value}", WIDTH) for label, value in lines)
    workers = [
        [
            str(worker["index"]),
            str(worker["pid"] or "-"),
            worker_state_text(worker),
            str(worker["restarts"]),
            str(worker.get("crashes") or 0),
            duration_text(float(worker["uptime_seconds"] or 0)),
        ]
        for worker in summary["workers"]
    ]
    if workers:
        text += "\n\n" + table(WORKER_COLUMNS, workers)
    return text


def worker_state_text(worker: dict[str, Any]) -> str:
    """The state; a worker crashing in a loop says so, with the time to its next respawn."""
    state = str(worker["state"])
    crashes = int(worker.get("crashes") or 0)
    if crashes < 2:
        return state
    respawn = worker.get("respawn_in_seconds")
    if state == "backoff" and respawn is not None:
        return f"crash-loop (respawn in {float(respawn):.1f}s)"
    return f"crash-loop ({state})"


def _rate(rate: dict[str, Any]) -> str:
    if rate["method"] == "sampled":
        return f"{rate['per_second']:.1f}/s over the last {rate['seconds']:.1f} s"
    return f"{rate['per_second']:.1f}/s average since start"


def _nonzero(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items() if count) or "none"


def duration_text(seconds: float) -> str:
    """`45s`, `12m05s`, `3h02m`, `4d06h`."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"

"""What `routerctl status` reports, computed from /health and /varz samples (no I/O here).

The request rate is measured: the difference of two /varz `requests` totals taken `interval`
seconds apart (1 s by default), divided by the time between the two answers. With `--interval 0`
there is a single sample and the rate is the lifetime average, `requests / uptime_seconds`; the
output says which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESPONSE_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "xxx")


@dataclass(frozen=True)
class Sample:
    """One /varz answer and the monotonic time it arrived."""

    varz: dict[str, Any]
    at: float


@dataclass(frozen=True)
class RequestRate:
    per_second: float
    method: str  # "sampled" (two samples) or "average" (since start)
    seconds: float  # the time the rate is measured over


def request_rate(first: Sample, second: Sample | None) -> RequestRate:
    if second is not None and second.at > first.at:
        elapsed = second.at - first.at
        delta = _int(second.varz, "requests") - _int(first.varz, "requests")
        return RequestRate(max(delta, 0) / elapsed, "sampled", elapsed)
    latest = second or first
    uptime = float(latest.varz.get("uptime_seconds") or 0.0)
    total = _int(latest.varz, "requests")
    return RequestRate(total / uptime if uptime > 0 else 0.0, "average", uptime)


def summarize(
    url: str, health_status: int, latest: dict[str, Any], rate: RequestRate
) -> dict[str, Any]:
    """The status as one JSON-able object (`--json` prints it as is)."""
    nats = latest.get("nats") or {}
    messages = nats.get("messages") or {}
    rejected = nats.get("rejected") or {}
    return {
        "url": url,
        "healthy": health_status == 200,
        "health_status": health_status,
        "state": latest.get("state", ""),
        "uptime": latest.get("uptime", ""),
        "uptime_seconds": latest.get("uptime_seconds", 0),
        "workers": [
            {
                "index": worker.get("index"),
                "pid": worker.get("pid"),
                "state": worker.get("state"),
                "restarts": worker.get("restarts", 0),
                "uptime_seconds": worker.get("uptime_seconds", 0),
                "crashes": worker.get("crashes", 0),
                "respawn_in_seconds": worker.get("respawn_in_seconds"),
            }
            for worker in latest.get("workers") or []
        ],
        "nats": {
            "connected": bool(nats.get("connected")),
            "messages": sum(int(count) for count in messages.values()),
            "rejected": sum(int(count) for count in rejected.values()),
            "reconnects": int(nats.get("reconnects") or 0),
            "unproven_reconnects": int(nats.get("unproven_reconnects") or 0),
            "state": str(
                nats.get("state") or ("connected" if nats.get("connected") else "disconnected")
            ),
            "ms_since_last_message": nats.get("ms_since_last_message"),
        },
        "ms_since_last_registry_update": latest.get("ms_since_last_registry_update", -1),
        "routes": _int(latest, "urls"),
        "endpoints": _int(latest, "droplets"),
        "requests": _int(latest, "requests"),
        "request_rate": {
            "per_second": round(rate.per_second, 3),
            "method": rate.method,
            "seconds": round(rate.seconds, 3),
        },
        "responses": {name: _int(latest, f"responses_{name}") for name in RESPONSE_CLASSES},
        "bad_gateways": _int(latest, "bad_gateways"),
        "bad_gateways_by_cause": dict(latest.get("bad_gateways_by_cause") or {}),
        "router_errors": dict(latest.get("router_errors") or {}),
        "client_closed": _int(latest, "client_closed"),
        "retries": _int(latest, "retries"),
    }


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    return int(value) if isinstance(value, int | float) else 0

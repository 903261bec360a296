"""routerctl's pieces without a router: tables, the status report, the rate, the drain watch."""

from __future__ import annotations

import itertools
import os
import subprocess
from typing import Any

import pytest

from supervisor.ctl import drain, output
from supervisor.ctl.errors import Unhealthy, Unreachable
from supervisor.ctl.routerd_process import read_pid
from supervisor.ctl.summary import Sample, request_rate, summarize
from tests.ctl.conftest import PATIENCE
from tests.support.waiting import wait_until


def endpoint(**fields: Any) -> dict[str, Any]:
    base = {
        "address": "10.0.0.1:8080",
        "tls": False,
        "ttl": 120,
        "ttl_left": 118.4,
        "app": "",
        "private_instance_id": "",
        "private_instance_index": "",
    }
    return {**base, **fields}


def test_routes_table_cuts_long_cells_to_80_columns_with_an_ellipsis() -> None:
    long_host = "x" * 100 + ".example.com"
    routes = {
        long_host: [
            endpoint(app="5e4d6f8a-1234-4bcd-9876-0123456789ab", private_instance_id="i" * 40)
        ],
        "short.test": [endpoint(address="[2001:db8::1]:8080")],
    }

    text = output.routes_table(routes)
    wide = output.routes_table(routes, wide=True)

    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert lines[1].split()[:2] == ["short.test", "[2001:db8::1]:8080"]
    assert lines[2].startswith("xxxxxxxxxxxxxxx…  ")
    assert lines[2].split()[4].startswith("5e4d6f8a") and lines[2].split()[4].endswith("…")
    assert long_host in wide and "i" * 40 in wide
    assert max(len(line) for line in wide.splitlines()) > 80


@pytest.mark.parametrize(
    ("fields", "ttl", "instance"),
    [
        ({}, "118s", "-"),
        ({"tls": True, "ttl_left": None}, "-", "-"),  # TLS endpoints are never pruned as stale
        ({"private_instance_index": "2"}, "118s", "2"),
        ({"private_instance_index": "2", "private_instance_id": "abc"}, "118s", "2/abc"),
    ],
)
def test_route_rows(fields: dict[str, Any], ttl: str, instance: str) -> None:
    (row,) = output.route_rows({"a.test": [endpoint(**fields)]})

    assert row[3] == ttl
    assert row[5] == instance
    assert row[2] == ("yes" if fields.get("tls") else "no")


def test_route_rows_without_ttl_left_or_endpoints() -> None:
    no_ttl = {k: v for k, v in endpoint().items() if k != "ttl_left"}

    rows = output.route_rows({"b.test": [no_ttl], "a.test": []})

    assert rows == [
        ["a.test", "(no endpoints)", "", "", "", ""],
        ["b.test", "10.0.0.1:8080", "no", "?", "-", "-"],
    ]


def test_filter_routes_is_a_case_insensitive_prefix() -> None:
    routes: dict[str, list[dict[str, Any]]] = {"app.test": [], "app.test/api": [], "b.test": []}

    assert list(output.filter_routes(routes, "APP.")) == ["app.test", "app.test/api"]
    assert output.filter_routes(routes, None) == routes


def test_request_rate_from_two_samples_or_the_lifetime_average() -> None:
    first = Sample({"requests": 100, "uptime_seconds": 50.0}, at=10.0)
    second = Sample({"requests": 130, "uptime_seconds": 52.0}, at=12.0)

    sampled = request_rate(first, second)
    average = request_rate(second, None)

    assert (sampled.per_second, sampled.method, sampled.seconds) == (15.0, "sampled", 2.0)
    assert (average.per_second, average.method) == (2.5, "average")
    assert request_rate(Sample({"requests": 0, "uptime_seconds": 0}, 1.0), None).per_second == 0


def test_status_text_fits_80_columns() -> None:
    varz = {
        "state": "draining",
        "uptime": "1d:2h:3m:4s",
        "uptime_seconds": 93784.0,
        "requests": 123456789,
        "urls": 100000,
        "droplets": 250000,
        "ms_since_last_registry_update": 12,
        "nats": {"connected": False, "messages": {"router.register": 9}, "rejected": {"x": 1}},
        "bad_gateways": 7,
        "bad_gateways_by_cause": {"dial": 3, "connection_reset": 2, "timeout": 1, "other": 1},
        "router_errors": {"unknown_route": 5, "no_endpoints": 0},
        "workers": [
            {"index": 0, "pid": 4242, "state": "ready", "restarts": 3, "uptime_seconds": 4000}
        ],
        **{f"responses_{name}": 10**9 for name in ("1xx", "2xx", "3xx", "4xx", "5xx", "xxx")},
    }
    rate = request_rate(Sample(varz, 0.0), None)
    summary = summarize("http://[2001:db8::1234:5678]:8082", 503, varz, rate)

    text = output.status_text(summary)

    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "UNHEALTHY (/health 503), draining" in text
    assert "nats          DISCONNECTED, 9 messages (1 rejected)" in text
    assert "502s          7\n" in text
    assert "  by cause    dial 3, connection_reset 2, timeout 1, other 1\n" in text
    assert "router errors unknown_route 5" in text
    assert "     0  4242  ready         3        0  1h06m" in text


def test_status_text_names_a_crash_loop() -> None:
    varz = {
        "state": "running",
        "nats": {"connected": True},
        "bad_gateways_by_cause": {},
        "router_errors": {},
        "workers": [
            {"index": 0, "pid": 4242, "state": "ready", "restarts": 0, "uptime_seconds": 60},
            {
                "index": 1,
                "pid": None,
                "state": "backoff",
                "restarts": 7,
                "uptime_seconds": 0,
                "crashes": 7,
                "respawn_in_seconds": 5.83,
            },
        ],
    }
    summary = summarize("http://127.0.0.1:8082", 200, varz, request_rate(Sample(varz, 0.0), None))

    text = output.status_text(summary)

    assert all(len(line) <= 80 for line in text.splitlines()), text
    header, ready, looping = text.splitlines()[-3:]
    assert header.split() == ["WORKER", "PID", "STATE", "RESTARTS", "CRASHES", "UPTIME"]
    assert ready.split() == ["0", "4242", "ready", "0", "0", "1m00s"]
    assert looping == "     1     -  crash-loop (respawn in 5.8s)         7        7  0s"


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (65, "1m05s"), (3700, "1h01m"), (90000, "1d01h")]
)
def test_duration_text(seconds: float, text: str) -> None:
    assert output.duration_text(seconds) == text


def test_an_exited_unreaped_child_is_not_running() -> None:
    child = subprocess.Popen(["true"])
    try:
        # Not reaped yet: kill(pid, 0) still succeeds, but the process is a zombie.
        wait_until(
            lambda: not drain.is_running(child.pid), timeout=PATIENCE, what="the child to exit"
        )
        os.kill(child.pid, 0)
    finally:
        child.wait()
    assert drain.is_running(os.getpid())


def test_follow_gives_up_after_its_budget() -> None:
    ticks = itertools.count(0.0, 1.0)
    reports: list[str] = []

    with pytest.raises(Unhealthy, match=r"still running 5s after SIGUSR1"):
        drain.follow(
            os.getpid(),
            health=lambda: 503,
            budget=5,
            report=reports.append,
            clock=lambda: next(ticks),
            sleep=lambda _: None,
        )
    assert reports == ["/health 503: load balancers stop sending new requests"]


def test_read_pid_rejects_garbage(tmp_path: Any) -> None:
    pid_file = tmp_path / "routerd.pid"
    pid_file.write_text("not a pid\n")

    with pytest.raises(Unreachable, match="does not hold a PID"):
        read_pid(str(pid_file))

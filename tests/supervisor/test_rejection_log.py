"""Rejected registrations are all counted by subject and reason, but only sampled in the log."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from registry.routes import RouteTable
from registry.shm.counters import CounterTable, counters_size
from registry.shm.region import MemoryRegion
from registry.shm.writer import TableWriter, initial_size
from registry.slots import SlotAllocator
from runtime.config_model import Config
from supervisor.routing import Routing
from tests.support.clock import ManualClock as Clock

NOT_A_HOST = b'{"host":"not a host!","port":8080,"uris":["a.example.com"]}'
BIG_APP = json.dumps(
    {"host": "10.0.0.1", "port": 8080, "uris": ["a.example.com"], "app": "x" * 100_000}
).encode()


# The defaults of logging.error_samples_per_interval and logging.error_sample_interval.
REJECTIONS_LOGGED_PER_INTERVAL = Config().logging.error_samples_per_interval
REJECTION_LOG_INTERVAL = float(Config().logging.error_sample_interval)


def events(stream: io.BytesIO, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line["data"] for line in lines if line["message"] == name]


def new_routing(clock: Clock) -> tuple[Routing, list[tuple[float, Callable[[], None]]]]:
    table = RouteTable(8, SlotAllocator(64, 30.0))
    writer = TableWriter(MemoryRegion(initial_size(8)), 8)
    counters = CounterTable.format(MemoryRegion(counters_size(1, 64)), 1, 64)
    routing = Routing(Config(), table, writer, counters, clock=clock)
    timers: list[tuple[float, Callable[[], None]]] = []
    routing.schedule_later = lambda delay, callback: timers.append((delay, callback))
    return routing, timers


def test_a_flood_is_counted_whole_and_logged_in_samples(component_log: io.BytesIO) -> None:
    clock = Clock()
    routing, timers = new_routing(clock)
    for _ in range(1000):
        assert routing.handle_register(NOT_A_HOST) is False
        clock.now += 0.001
    routing.handle_unregister(BIG_APP)
    assert routing.rejections == {"router.register": 1000, "router.unregister": 1}
    assert routing.rejections_by_reason() == {
        "router.register": {"host_invalid": 1000},
        "router.unregister": {"field_too_long": 1},
    }
    logged = events(component_log, "validation-error")
    assert len(logged) == REJECTIONS_LOGGED_PER_INTERVAL
    assert logged[0]["reason"] == "host_invalid"
    assert logged[0]["subject"] == "router.register"
    assert "not an IP address or a DNS name" in logged[0]["error"]
    # One timer, for the end of the window; when it fires, one summary line.
    assert [delay for delay, _ in timers] == [pytest.approx(REJECTION_LOG_INTERVAL - 0.005)]
    assert events(component_log, "validation-errors-suppressed") == []
    clock.now += REJECTION_LOG_INTERVAL
    timers[0][1]()
    summary = events(component_log, "validation-errors-suppressed")
    assert len(summary) == 1
    assert summary[0]["count"] == 1001 - REJECTIONS_LOGGED_PER_INTERVAL
    assert summary[0]["reasons"] == {
        "host_invalid": 1000 - REJECTIONS_LOGGED_PER_INTERVAL,
        "field_too_long": 1,
    }
    # A new window logs again.
    routing.handle_register(NOT_A_HOST)
    assert len(events(component_log, "validation-error")) == REJECTIONS_LOGGED_PER_INTERVAL + 1


def test_a_logged_payload_is_a_bounded_preview(component_log: io.BytesIO) -> None:
    routing, _ = new_routing(Clock())
    routing.handle_register(BIG_APP)
    (logged,) = events(component_log, "validation-error")
    assert logged["reason"] == "field_too_long"
    assert len(logged["payload"]) <= 512
    assert len(logged["error"]) <= 512
    assert len(component_log.getvalue()) < 2048


def test_the_summary_also_comes_with_the_next_rejection(component_log: io.BytesIO) -> None:
    clock = Clock()
    routing, timers = new_routing(clock)  # its timer has not fired yet
    for _ in range(REJECTIONS_LOGGED_PER_INTERVAL + 3):
        routing.handle_register(b"{")
    clock.now += REJECTION_LOG_INTERVAL + 1
    routing.handle_register(b"{")
    (summary,) = events(component_log, "validation-errors-suppressed")
    assert (summary["count"], summary["reasons"]) == (3, {"invalid_json": 3})
    assert len(events(component_log, "validation-error")) == REJECTIONS_LOGGED_PER_INTERVAL + 1
    # The first window's timer, firing late, leaves the window now open alone.
    timers[0][1]()
    for _ in range(REJECTIONS_LOGGED_PER_INTERVAL):
        routing.handle_register(b"{")
    assert len(events(component_log, "validation-errors-suppressed")) == 1
    assert len(events(component_log, "validation-error")) == 2 * REJECTIONS_LOGGED_PER_INTERVAL


def test_accepted_registrations_with_caveats_are_routed_and_warned_in_samples(
    component_log: io.BytesIO,
) -> None:
    clock = Clock()
    routing, timers = new_routing(clock)
    for index in range(50):
        magic = json.dumps(
            {
                "host": "10.0.0.1",
                "port": 8080 + index,
                "uris": [f"m{index}.example.com"],
                "options": {"loadbalancing": "magic"},
            }
        ).encode()
        assert routing.handle_register(magic) is True
        clock.now += 0.001
    assert routing.rejections == {}
    assert len(routing.table.pools) == 50
    assert routing.caveats == {
        "invalid-endpoint-load-balancing-algorithm-provided-keeping-pool-lb-algo": 50
    }
    warned = events(
        component_log, "invalid-endpoint-load-balancing-algorithm-provided-keeping-pool-lb-algo"
    )
    assert len(warned) == REJECTIONS_LOGGED_PER_INTERVAL
    assert "'magic'" in warned[0]["reason"]
    clock.now += REJECTION_LOG_INTERVAL
    timers[0][1]()
    (summary,) = events(component_log, "validation-errors-suppressed")
    assert summary["reasons"] == {
        "invalid-endpoint-load-balancing-algorithm-provided-keeping-pool-lb-algo": (
            50 - REJECTIONS_LOGGED_PER_INTERVAL
        )
    }

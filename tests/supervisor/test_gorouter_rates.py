"""Gorouter's /varz rates and top apps, and its registry counts, worked out without I/O."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

import pytest

from registry.shm.counters import C_LATENCY, COMPONENT_WORDS
from supervisor.gorouter_metrics import RegistryCounts, component_latency, label, series_name
from supervisor.gorouter_rates import Meter, TopApps


def test_meter_starts_at_the_first_rate_then_decays_by_elapsed_time() -> None:
    meter = Meter(100.0)
    assert meter.update(110.0, 50) == [5.0, 5.0, 5.0]
    # A minute of silence: each window keeps exp(-60 / window) of its rate.
    rates = meter.update(170.0, 50)
    assert rates == pytest.approx([5 * math.exp(-1), 5 * math.exp(-0.2), 5 * math.exp(-60 / 900)])
    assert meter.update(170.0, 50) == rates  # no time passed: nothing changes
    assert repr(meter).startswith("Meter(count=50, rates=[1.839")


def test_meter_never_counts_backwards() -> None:
    meter = Meter(0.0, count=10)
    assert meter.update(10.0, 5) == [0.0, 0.0, 0.0]


def apps(table: dict[int, str]):  # type: ignore[no-untyped-def]
    def of(slots: Iterable[int]) -> dict[int, str]:
        return {slot: table[slot] for slot in slots if slot in table}

    return of


def test_top_apps_rank_the_last_minute_by_app() -> None:
    top = TopApps(0.0)
    owners = apps({0: "app-a", 1: "app-b", 2: "app-a", 3: ""})
    assert top.update(10.0, array("Q", [3, 10, 4, 99]), owners) == [
        {"application_id": "app-b", "rps": 0, "rpm": 10},
        {"application_id": "app-a", "rps": 0, "rpm": 7},
    ]
    # Seventy seconds later the sample of t=10 is the newest one a minute old: 120 requests in
    # 70 s make 102 in a minute.
    later = top.update(80.0, array("Q", [3, 130, 4, 99]), owners)
    assert later == [{"application_id": "app-b", "rps": 1, "rpm": 102}]
    # Thirty seconds on, that sample is still the base (the one of t=80 is not a minute old):
    # 150 requests in 100 s.
    assert top.update(110.0, array("Q", [3, 160, 4, 99]), owners) == [
        {"application_id": "app-b", "rps": 1, "rpm": 90}
    ]


def test_top_apps_scale_an_interval_longer_than_a_minute() -> None:
    top = TopApps(0.0)
    result = top.update(120.0, array("Q", [240]), apps({0: "app-a"}))
    assert result == [{"application_id": "app-a", "rps": 2, "rpm": 120}]


def test_top_apps_keep_ten_and_samples_at_most_every_five_seconds() -> None:
    top = TopApps(0.0)
    owners = apps({slot: f"app-{slot:02d}" for slot in range(12)})
    result = top.update(1.0, array("Q", range(1, 13)), owners)
    assert [entry["application_id"] for entry in result] == [
        f"app-{n:02d}" for n in range(11, 1, -1)
    ]
    for second in range(2, 5):
        top.update(float(second), array("Q", range(1, 13)), owners)
    assert repr(top) == "TopApps(samples=1)"
    top.update(6.0, array("Q", range(1, 13)), owners)
    assert repr(top) == "TopApps(samples=2)"


def test_registry_counts_routes_by_action_and_component() -> None:
    counts = RegistryCounts()
    counts.register({"component": "uaa"}, added=2, updated=1, updated_at_ns=1_000, now_ns=1_501_000)
    counts.register({}, added=1, updated=0, updated_at_ns=0, now_ns=5)
    counts.register({}, added=1, updated=0, updated_at_ns=10, now_ns=5)  # sender's clock ahead
    counts.register({}, added=1, updated=0, updated_at_ns=-7, now_ns=5)  # no time at all
    counts.unregister({"component": "uaa"}, 3)
    assert counts.registered == {("added", "uaa"): 2, ("updated", "uaa"): 1, ("added", ""): 3}
    assert counts.unregistered == {"uaa": 3}
    # 1.5 ms twice (le=1.5), 0 ms once (le=0.1); no latency for the message without a time.
    assert counts.registration_latency.counts == [1, 0, 0, 2, 0, 0, 0, 0, 0, 0]
    assert counts.registration_latency.total == pytest.approx(3.0)
    assert repr(counts) == "RegistryCounts(registered=6, unregistered=3)"


def test_component_labels_follow_gorouter() -> None:
    assert series_name("dea-12") == ("dea-*", "yes")
    assert series_name("CloudController") == ("CloudController", "no")
    assert series_name("") == ("", "no")
    assert label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_component_latency_reports_bucket_bounds_in_seconds() -> None:
    counts = [0] * COMPONENT_WORDS
    counts[C_LATENCY] = 50  # le=1 ms
    counts[C_LATENCY + 12] = 50  # past 1000 ms
    latency = component_latency(counts)
    assert latency["50"] == 0.001
    assert latency["99"] == 1.0  # past the last bound: the last bound, a lower limit
    assert latency["value"] == 5e-07 and latency["samples"] == 1
    assert component_latency([0] * COMPONENT_WORDS)["50"] == 0.0

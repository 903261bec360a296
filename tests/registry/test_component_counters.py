"""Component ids and the per-component, per-slot counters workers keep for Gorouter's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.components import OVERFLOW, UNTAGGED, ComponentIds
from registry.records import EndpointRecord, PoolRecord
from registry.shm.counters import (
    C_LATENCY,
    C_LATENCY_SUM_US,
    C_RESPONSES,
    COMPONENT_BASE,
    COMPONENT_WORDS,
    STAT_WORDS,
    CounterTable,
    Stat,
    counters_size,
)
from registry.shm.region import FileRegion, MemoryRegion


def component_words(totals: list[int], component: int) -> list[int]:
    start = COMPONENT_BASE + component * COMPONENT_WORDS
    return totals[start : start + COMPONENT_WORDS]


def test_component_ids_are_stable_and_run_out_into_overflow() -> None:
    ids = ComponentIds(capacity=4)
    assert ids.id_of({}) == UNTAGGED
    assert ids.id_of({"component": ""}) == UNTAGGED
    uaa = ids.id_of({"component": "uaa"})
    cc = ids.id_of({"component": "CloudController"})
    assert (uaa, cc) == (2, 3)
    assert ids.id_of({"component": "uaa", "other": "tag"}) == uaa
    assert ids.id_of({"component": "route-emitter"}) == OVERFLOW
    assert ids.named() == [(UNTAGGED, ""), (uaa, "uaa"), (cc, "CloudController")]
    assert repr(ids) == "ComponentIds(2 named, capacity=4)"


def test_component_blocks_fit_after_every_stat_index() -> None:
    stats = [value for name, value in vars(Stat).items() if not name.startswith("_")]
    assert max(stats) < COMPONENT_BASE
    assert COMPONENT_BASE + 32 * COMPONENT_WORDS == STAT_WORDS


@pytest.mark.parametrize(
    ("status", "group"), [(200, 0), (304, 1), (404, 2), (502, 3), (101, 4), (0, 4)]
)
def test_a_routed_request_counts_under_its_component(status: int, group: int) -> None:
    counters = CounterTable.format(MemoryRegion(counters_size(2, 64)), workers=2, slots=64)
    row = counters.row(1)
    endpoint = EndpointRecord(slot=9, host="10.0.0.1", port=8080, component=3)
    row.count_routed(endpoint, None, status, 3_500)  # 3.5 ms: the le=4 bucket
    words = component_words(counters.stat_totals(), 3)
    assert words[C_RESPONSES + group] == 1 and sum(words[C_RESPONSES:C_LATENCY]) == 1
    assert words[C_LATENCY + 2] == 1  # bounds 1, 2, 4 ms
    assert words[C_LATENCY_SUM_US] == 3_500
    assert counters.routed_totals(64)[9] == 1
    assert sum(component_words(counters.stat_totals(), 0)) == 0


def test_a_failed_request_counts_under_its_pool_and_an_answered_one_not_at_all() -> None:
    counters = CounterTable.format(MemoryRegion(counters_size(1, 16)), workers=1, slots=16)
    row = counters.row(0)
    endpoint = EndpointRecord(slot=4, host="10.0.0.1", port=8080, component=2)
    pool = PoolRecord(host="a.example.com", path="", endpoints=(endpoint,))
    row.count_routed(None, pool, 502, 1_000_000)
    row.count_routed(None, None, 404, 10)
    row.count_routed(None, PoolRecord(host="b.example.com", path="", endpoints=()), 502, 10)
    words = component_words(counters.stat_totals(), 2)
    assert words[C_RESPONSES + 3] == 1
    assert words[C_LATENCY + 11] == 1  # exactly 1000 ms is within le=1000
    # No endpoint answered, so no app gets the request.
    assert list(counters.routed_totals(16)) == [0] * 16


def test_a_respawn_clears_in_flight_cells_and_keeps_routed_counts(tmp_path: Path) -> None:
    slots = 5000  # the in-flight cells span whole pages, which are punched out
    region = FileRegion.create(str(tmp_path / "counters"), counters_size(2, slots))
    counters = CounterTable.format(region, workers=2, slots=slots)
    row = counters.row(0)
    endpoint = EndpointRecord(slot=slots - 1, host="10.0.0.1", port=8080, component=1)
    for slot in (0, 700, slots - 1):
        row.inflight[slot] += 2
        counters.row(1).inflight[slot] += 1
    row.count_routed(endpoint, None, 200, 10)
    counters.supervisor_row[slots - 1] = 1_700_000_000_000
    counters.clear_in_flight(0)
    assert [counters.in_flight(slot) for slot in (0, 700, slots - 1)] == [1, 1, 1]
    assert counters.routed_totals(slots)[slots - 1] == 1
    assert counters.stat_totals()[COMPONENT_BASE + COMPONENT_WORDS + C_RESPONSES] == 1
    assert counters.supervisor_row[slots - 1] == 1_700_000_000_000
    region.close()

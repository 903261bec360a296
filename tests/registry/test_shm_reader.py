"""The table reader's guards: wrong files, a writer stuck or dead mid-flip, counter rows."""

from __future__ import annotations

import msgspec
import pytest

from registry.records import encode_shard
from registry.shard_routes import decode_shard, pool_at
from registry.shm import layout as L
from registry.shm.counters import CounterTable, Stat, counters_size
from registry.shm.reader import ShardReadError, TableReader
from registry.shm.region import MemoryRegion
from registry.shm.writer import TableWriter, initial_size
from tests.registry.tables import SharedTable


def test_a_region_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ValueError, match="not a route table"):
        TableReader(MemoryRegion(initial_size(4)))


def test_a_table_of_another_layout_version_is_refused() -> None:
    region = MemoryRegion(initial_size(4))
    TableWriter(region, 4)
    region.buffer.cast("Q")[L.H_VERSION] = L.LAYOUT_VERSION + 1
    with pytest.raises(ValueError, match=f"layout version {L.LAYOUT_VERSION + 1}, expected"):
        TableReader(region)


def _stuck_mid_flip(shared: SharedTable, shard: int) -> None:
    """Leave `shard` as a writer that died between its two sequence bumps would."""
    words = shared.region.buffer.cast("Q")
    words[L.entry_word(shard) + L.E_SEQ] += 1


def _published(alive: bool) -> tuple[SharedTable, int, TableReader]:
    shared = SharedTable(shard_count=4)
    shared.register("app.example.com", address="10.0.0.1:8080")
    (shard,) = shared.publish()
    shared.register("app.example.com", address="10.0.0.2:8080")
    shared.publish()
    _stuck_mid_flip(shared, shard)
    reader = TableReader(shared.region, max_retries=5_000, is_writer_alive=lambda pid: alive)
    return shared, shard, reader


def test_writer_dead_mid_flip_still_leaves_a_complete_shard() -> None:
    _, shard, reader = _published(alive=False)
    routes = reader.shard(shard)
    assert not isinstance(routes, ShardReadError)
    pool = pool_at(routes, "app.example.com", "")
    assert pool is not None
    assert {endpoint.address for endpoint in pool.endpoints} == {"10.0.0.1:8080", "10.0.0.2:8080"}


def test_live_writer_stuck_mid_flip_gives_an_error_not_a_hang() -> None:
    _, shard, reader = _published(alive=True)
    result = reader.shard(shard)
    assert result == ShardReadError(f"shard {shard}: no consistent read after 5000 tries")
    assert reader.retries == 5_000


# One pool whose host is not UTF-8: msgpack [[b"\xff\xfe", "", []]].
BAD_UTF8_SHARD = b"\x91\x93\xa2\xff\xfe\xa0\x90"


@pytest.mark.parametrize("payload", [b"\xc1 not msgpack", BAD_UTF8_SHARD], ids=["msgpack", "utf-8"])
def test_payload_that_does_not_decode_is_reported_not_raised(payload: bytes) -> None:
    region = MemoryRegion(initial_size(4))
    writer = TableWriter(region, 4)
    writer.publish([(2, payload)])
    writer.publish([(1, encode_shard([]))])
    reader = TableReader(region)
    assert reader.shard(1) == {}
    assert reader.shard(2) == ShardReadError("shard 2: published payload does not decode")
    with pytest.raises(msgspec.DecodeError):
        decode_shard(payload)


def test_counter_table_refuses_a_region_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="not a counters file"):
        CounterTable(MemoryRegion(counters_size(2, 16)))


def test_counter_rows_are_separate_and_in_flight_clears_per_worker() -> None:
    counters = CounterTable.format(MemoryRegion(counters_size(3, 16)), workers=3, slots=16)
    rows = [counters.row(worker) for worker in range(3)]
    for worker, row in enumerate(rows):
        row.add(Stat.requests, worker + 1)
        row.inflight[7] += 10 * (worker + 1)
    assert counters.stat_totals()[Stat.requests] == 6
    assert counters.in_flight(7) == 60
    counters.clear_in_flight(1)
    assert counters.in_flight(7) == 40
    assert counters.stats_of(1)[Stat.requests] == 2
    assert repr(rows[2]) == "CounterRow(worker=2, requests=3)"
    # The supervisor's row (last-seen times) is not counted as in-flight requests.
    counters.supervisor_row[7] = 1_700_000_000_000
    assert counters.in_flight(7) == 40

"""The worker's index of every host: used while current, the shards otherwise, never stale."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.host_index import HostIndex
from registry.lookup import RouteLookup
from registry.records import PoolRecord
from registry.sharding import shard_of
from registry.shm import layout as L
from registry.shm.reader import ShardReadError, TableReader
from tests.registry.tables import SharedTable

A, B = "10.0.0.1:8001", "10.0.0.2:8002"
NEVER = math.inf


def test_a_current_index_answers_without_reading_the_shards() -> None:
    shared = SharedTable()
    shared.register("app.example.com", address=A)
    shared.publish()
    assert shared.addresses("app.example.com") == {A}
    index, reader = shared.lookup.index, shared.reader
    assert index.hosts() is not None
    refreshes, decodes = index.refreshes, reader.decodes
    for _ in range(10):
        assert shared.addresses("app.example.com") == {A}
        assert shared.find("other.example.com") is None
    assert (index.refreshes, reader.decodes) == (refreshes, decodes)


def test_a_publish_is_seen_at_once_even_before_the_index_catches_up() -> None:
    shared = SharedTable()
    lookup = RouteLookup(shared.reader, refresh_interval=NEVER)
    shared.register("app.example.com", address=A)
    shared.publish()
    assert lookup.index.hosts() is None  # not built: every lookup reads the shards
    found = lookup.find("app.example.com", "/")
    assert isinstance(found, PoolRecord) and found.endpoints[0].address == A
    shared.unregister("app.example.com", address=A)
    shared.publish()
    assert lookup.find("app.example.com", "/") is None


def test_an_index_behind_the_table_is_not_used() -> None:
    shared = SharedTable()
    shared.register("app.example.com", address=A)
    shared.publish()
    assert shared.addresses("app.example.com") == {A}
    shared.lookup.index.refresh_interval = NEVER
    shared.register("other.example.com", address=B)
    shared.publish()
    assert shared.addresses("other.example.com") == {B}  # refreshed: the next one after NEVER
    shared.register("app.example.com", address=B)
    shared.unregister("app.example.com", address=A)
    shared.publish()
    assert shared.lookup.index.hosts() is None
    assert shared.addresses("app.example.com") == {B}


def many_hosts_published(shared: SharedTable) -> tuple[list[str], list[int]]:
    """200 hosts registered and published in one batch; the hosts and the shards it changed."""
    hosts = [f"app-{index}.example.com" for index in range(200)]
    for host in hosts:
        shared.register(host, address=A)
    return hosts, shared.publish()


def test_many_changed_shards_are_applied_over_several_refreshes() -> None:
    shared = SharedTable(shard_count=64)
    hosts, changed = many_hosts_published(shared)
    assert len(changed) > 10
    lookup = RouteLookup(shared.reader, refresh_interval=0.0)
    lookup.index.decodes_per_refresh = 4
    assert lookup.index.hosts() is None  # one pass decoded four shards and left the rest
    assert shared.reader.decodes == 4
    results = [lookup.find(host, "/") for host in hosts]  # while the index catches up
    assert all(isinstance(found, PoolRecord) for found in results)
    assert lookup.index.hosts() is not None
    assert lookup.index.shards_applied == len(changed)
    assert shared.reader.decodes == len(changed)  # each shard decoded once, by a pass or a lookup


def test_a_storm_of_publishes_is_read_from_the_shards_until_the_table_stands_still() -> None:
    shared = SharedTable()
    now = [100.0]
    lookup = RouteLookup(shared.reader)
    index = lookup.index = HostIndex(shared.reader, refresh_interval=0.01, clock=lambda: now[0])
    for step in range(5):
        shared.register(f"app-{step}.example.com", address=A)
        shared.publish()
        now[0] += 0.005  # a publish every 5 ms: never still for 10 ms
        assert isinstance(lookup.find(f"app-{step}.example.com", "/"), PoolRecord)
        assert index.hosts() is None
    assert index.refreshes == 0
    now[0] += 0.011
    assert index.hosts() is not None
    assert index.refreshes == 1
    assert isinstance(lookup.find("app-4.example.com", "/"), PoolRecord)


def test_a_shard_that_cannot_be_read_keeps_the_index_behind() -> None:
    shared = SharedTable(shard_count=4)
    shared.register("app.example.com", address=A)
    (shard,) = shared.publish()
    other = next(
        host
        for host in (f"other-{index}.example.com" for index in range(100))
        if shard_of(host, 4) != shard
    )
    shared.register(other, address=B)
    shared.publish()
    # The writer is alive but stuck between its two sequence bumps for the first shard.
    shared.region.buffer.cast("Q")[L.entry_word(shard) + L.E_SEQ] += 1
    reader = TableReader(shared.region, max_retries=100, is_writer_alive=lambda pid: True)
    lookup = RouteLookup(reader, refresh_interval=0.0)
    assert isinstance(lookup.find("app.example.com", "/"), ShardReadError)
    assert lookup.index.hosts() is None
    found = lookup.find(other, "/")
    assert isinstance(found, PoolRecord) and found.endpoints[0].address == B


URIS = [
    "a.example.com",
    "a.example.com/api",
    "a.example.com/api/v2",
    "*.example.com",
    "*.b.example.com",
    "c.b.example.com",
    "d.example.com/x",
]
REQUESTS = [
    ("a.example.com", "/"),
    ("a.example.com", "/api/v2/x"),
    ("a.example.com", "/apix"),
    ("z.example.com", "/"),
    ("c.b.example.com", "/"),
    ("e.b.example.com", "/y"),
    ("d.example.com", "/x/1"),
    ("d.example.com", "/"),
    ("example.com", "/"),
]
steps = st.lists(
    st.tuples(st.booleans(), st.sampled_from(URIS), st.sampled_from([A, B]), st.booleans()),
    max_size=30,
)


def answer(found: PoolRecord | ShardReadError | None) -> tuple[str, str, set[str]] | None:
    assert not isinstance(found, ShardReadError)
    if found is None:
        return None
    return found.host, found.path, {endpoint.address for endpoint in found.endpoints}


@settings(max_examples=60, deadline=None)
@given(steps)
def test_the_index_answers_as_the_shards_do(ops: list[tuple[bool, str, str, bool]]) -> None:
    shared = SharedTable(shard_count=4)
    by_index = RouteLookup(shared.reader, refresh_interval=0.0)
    by_shards = RouteLookup(shared.reader, refresh_interval=NEVER)
    for register, uri, address, publish in ops:
        if register:
            shared.register(uri, address=address)
        else:
            shared.unregister(uri, address=address)
        if publish:
            shared.publish()
            for host, path in REQUESTS:
                expected = answer(by_shards.find(host, path))
                assert answer(by_index.find(host, path)) == expected, (host, path)
            assert by_index.index.hosts() is not None


def test_build_indexes_the_whole_table_at_once() -> None:
    shared = SharedTable(shard_count=64)
    hosts, changed = many_hosts_published(shared)
    lookup = RouteLookup(shared.reader, refresh_interval=NEVER)  # no refresh but the build
    assert lookup.index.build()
    assert lookup.index.shards_applied == len(changed)
    assert all(isinstance(lookup.find(host, "/"), PoolRecord) for host in hosts)
    assert lookup.index.refreshes == 1

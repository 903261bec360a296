"""The supervisor's heartbeat path, without sockets: the same bytes again cost a lookup, but
whatever they would change (a removed endpoint, a changed one, a reloaded config) still lands
in the table, the shared-memory view workers read, and /varz's message count."""

from __future__ import annotations

import msgspec

from registry.lookup import RouteLookup
from registry.records import PoolRecord
from registry.routes import RouteTable
from registry.shm.counters import CounterTable, counters_size
from registry.shm.reader import TableReader
from registry.shm.region import MemoryRegion
from registry.shm.writer import TableWriter, initial_size
from registry.slots import SlotAllocator
from runtime.config_model import Config
from runtime.durations import Duration
from supervisor.routing import Routing
from tests.registry.tables import message
from tests.support.clock import ManualClock as Clock

SHARDS = 8
HOST = "app.example.com"


def new_routing(config: Config | None = None) -> tuple[Routing, RouteLookup, Clock]:
    config = config or Config()
    region = MemoryRegion(initial_size(SHARDS))
    counters = CounterTable.format(MemoryRegion(counters_size(1, 64)), 1, 64)
    clock = Clock()
    table = RouteTable(SHARDS, SlotAllocator(64, 30.0))
    routing = Routing(config, table, TableWriter(region, SHARDS), counters, clock)
    return routing, RouteLookup(TableReader(region)), clock


def routed(routing: Routing, lookup: RouteLookup) -> PoolRecord | None:
    routing.publish()
    pool = lookup.find(HOST, "/")
    assert not isinstance(pool, Exception)
    return pool


def test_identical_heartbeats_refresh_without_republishing() -> None:
    routing, lookup, clock = new_routing()
    data = message(HOST)
    assert routing.handle_register(data)
    assert routed(routing, lookup) is not None
    generation = routing.writer.generation

    for _ in range(3):
        clock.now += 10
        assert routing.handle_register(bytes(data))  # a new bytes object, as NATS delivers

    assert routing.publish() == 0
    assert routing.writer.generation == generation
    assert routing.messages["router.register"] == 4
    assert [age.last_seen for age in routing.table.endpoint_ages()] == [1_030.0]
    slot = routing.table.slots.slot_of("10.0.0.1:8080")
    assert slot is not None and routing.counters.supervisor_row[slot] == 1_030_000


def test_the_same_bytes_after_an_unregister_route_again() -> None:
    routing, lookup, _ = new_routing()
    data = message(HOST)
    routing.handle_register(data)
    routing.handle_unregister(data)
    assert routed(routing, lookup) is None

    assert routing.handle_register(bytes(data))
    pool = routed(routing, lookup)
    assert pool is not None
    assert [endpoint.address for endpoint in pool.endpoints] == ["10.0.0.1:8080"]


def test_the_same_bytes_after_a_changed_registration_restore_the_endpoint() -> None:
    routing, lookup, _ = new_routing()
    first = message(HOST, private_instance_id="first")
    routing.handle_register(first)
    routing.handle_register(message(HOST, private_instance_id="second"))
    pool = routed(routing, lookup)
    assert pool is not None and pool.endpoints[0].instance_id == "second"

    routing.handle_register(bytes(first))

    pool = routed(routing, lookup)
    assert pool is not None and pool.endpoints[0].instance_id == "first"


def test_heartbeats_after_a_config_reload_take_the_new_stale_threshold() -> None:
    routing, _, _ = new_routing(Config())  # droplet_stale_threshold 120 s
    data = message(HOST)
    routing.handle_register(data)
    assert [age.stale_threshold for age in routing.table.endpoint_ages()] == [120]

    routing.config = msgspec.structs.replace(routing.config, droplet_stale_threshold=Duration(45))
    routing.handle_register(bytes(data))

    assert [age.stale_threshold for age in routing.table.endpoint_ages()] == [45]


def test_a_rejected_message_is_counted_every_time() -> None:
    routing, _, _ = new_routing()
    data = message(HOST, route_service_url="http://not-https.example.com")

    assert not routing.handle_register(data)
    assert not routing.handle_register(bytes(data))

    assert routing.rejections["router.register"] == 2
    assert routing.table.pools == {}

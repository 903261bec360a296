"""Building registrations and a whole shared table for registry tests.

`SharedTable` wires the pieces as routerd does: the supervisor's RouteTable publishes its dirty
shards through a TableWriter; a worker's TableReader and RouteLookup read them back.
"""

from __future__ import annotations

from typing import Any

import msgspec

from registry.hostnames import normalize_host
from registry.lookup import RouteLookup
from registry.message import Registration, parse_registration
from registry.records import PoolRecord, encode_shard
from registry.rejection import Rejection
from registry.routes import Change, RouteTable
from registry.shm.reader import ShardReadError, TableReader
from registry.shm.region import MemoryRegion, Region
from registry.shm.writer import TableWriter, initial_size
from registry.slots import SlotAllocator

ROUTER_STALE_THRESHOLD = 120


def message(*uris: str, address: str = "10.0.0.1:8080", **fields: Any) -> bytes:
    """A `router.register` body for `uris` at `address` ("host:port"), plus any other fields."""
    host, _, port = address.rpartition(":")
    body: dict[str, Any] = {"host": host, "port": int(port), "uris": list(uris)}
    body.update(fields)
    return msgspec.json.encode(body)


def registration(
    *uris: str,
    address: str = "10.0.0.1:8080",
    for_unregister: bool = False,
    **fields: Any,
) -> Registration:
    result = parse_registration(
        message(*uris, address=address, **fields), ROUTER_STALE_THRESHOLD, for_unregister
    )
    assert not isinstance(result, Rejection), result
    return result


class SharedTable:
    """The supervisor's table and one worker's view of it, over one region."""

    def __init__(
        self,
        shard_count: int = 8,
        region: Region | None = None,
        reader_region: Region | None = None,
        empty_pool_timeout: float = 0.0,
        slot_capacity: int = 4096,
    ) -> None:
        self.now = 1_000.0
        self.table = RouteTable(shard_count, SlotAllocator(slot_capacity, 30.0), empty_pool_timeout)
        self.region = region or MemoryRegion(initial_size(shard_count))
        self.writer = TableWriter(self.region, shard_count)
        self.reader = TableReader(reader_region or self.region)
        # The index refreshes on every lookup after a publish, so these tests read it; the
        # shard path has tests of its own (test_host_index.py).
        self.lookup = RouteLookup(self.reader, refresh_interval=0.0)

    def __repr__(self) -> str:
        return f"SharedTable({self.table!r}, {self.writer!r}, {self.reader!r})"

    def register(self, *uris: str, address: str = "10.0.0.1:8080", **fields: Any) -> list[Change]:
        changes = self.table.register(registration(*uris, address=address, **fields), self.now)
        assert not isinstance(changes, Rejection), changes
        return changes

    def unregister(self, *uris: str, address: str = "10.0.0.1:8080") -> list[Change]:
        reg = registration(*uris, address=address, for_unregister=True)
        return self.table.unregister(reg, self.now)

    def publish(self) -> list[int]:
        """Publish the dirty shards in one batch, as the supervisor's coalescing loop does."""
        shards = self.table.take_dirty()
        if shards:
            payloads = [(shard, encode_shard(self.table.shard_pools(shard))) for shard in shards]
            self.writer.publish(
                payloads, routes=len(self.table.pools), endpoints=self.table.endpoint_count
            )
        return shards

    def find(self, host: str, path: str = "/") -> PoolRecord | None:
        result = self.lookup.find(normalize_host(host), path)
        assert not isinstance(result, ShardReadError), result
        return result

    def addresses(self, host: str, path: str = "/") -> set[str] | None:
        """The endpoint addresses a request for host+path would be balanced over, or None."""
        pool = self.find(host, path)
        return None if pool is None else {endpoint.address for endpoint in pool.endpoints}

"""The authoritative route table, held by the supervisor.

It applies validated registrations, keeps last-seen times in its own memory, and tracks which
shards changed so the shared-memory writer re-encodes only those. Every method returns the changes
it made as values; the caller logs them and publishes the dirty shards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

import msgspec

from registry.components import ComponentIds
from registry.message import Registration
from registry.prune import EndpointAge
from registry.records import EndpointRecord, PoolRecord, encode_pool, join_shard
from registry.rejection import Rejection
from registry.routekey import RouteKey
from registry.sharding import shard_of
from registry.slots import SlotAllocator

ROUTE_REGISTERED: Final = "route-registered"
ROUTE_UNREGISTERED: Final = "route-unregistered"
ENDPOINT_REGISTERED: Final = "endpoint-registered"
ENDPOINT_UNREGISTERED: Final = "endpoint-unregistered"


class Change(msgspec.Struct, frozen=True):
    """One thing the table did, named as Gorouter logs it."""

    event: str
    uri: str
    endpoint: EndpointRecord | None = None
    route_service_url: str = ""
    # An endpoint already in its pool, registered with something changed: Gorouter logs that
    # `endpoint-registered` at debug, and a new endpoint's at info.
    update: bool = False


class EndpointState:
    __slots__ = ("last_seen", "record", "source")

    def __init__(
        self, record: EndpointRecord, last_seen: float, source: Registration | None = None
    ) -> None:
        self.record = record
        self.last_seen = last_seen
        # The registration `record` was built from: the same one again changes nothing.
        self.source = source

    def __repr__(self) -> str:
        return f"EndpointState({self.record.address}, last_seen={self.last_seen:.3f})"


class PoolState:
    __slots__ = (
        "emptied_at",
        "encoded",
        "endpoints",
        "hash_balance",
        "hash_header",
        "key",
        "load_balancing",
        "route_service_url",
    )

    def __init__(self, key: RouteKey) -> None:
        self.key = key
        self.endpoints: dict[str, EndpointState] = {}
        self.load_balancing = ""
        self.hash_header = ""
        self.hash_balance = 0.0
        self.route_service_url = ""
        self.emptied_at: float | None = None
        self.encoded: bytes | None = None  # this pool's msgpack, until it changes

    def __repr__(self) -> str:
        return f"PoolState({self.key}, endpoints={list(self.endpoints)})"

    def encoding(self) -> bytes:
        if self.encoded is None:
            self.encoded = encode_pool(self.to_record())
        return self.encoded

    def to_record(self) -> PoolRecord:
        return PoolRecord(
            host=self.key.host,
            path=self.key.path,
            endpoints=tuple(state.record for state in self.endpoints.values()),
            load_balancing=self.load_balancing,
            route_service_url=self.route_service_url,
            hash_header=self.hash_header,
            hash_balance=self.hash_balance,
        )

    def is_balanced_as(self, reg: Registration) -> bool:
        """Whether applying `reg` leaves the pool's algorithm and hash properties as they are."""
        return not reg.load_balancing or (
            self.load_balancing == reg.load_balancing
            and self.hash_header == reg.hash_header
            and self.hash_balance == reg.hash_balance
        )

    def balance_as(self, reg: Registration) -> None:
        """Gorouter's setPoolLoadBalancingAlgorithm and prepareHashBasedRouting: a registration
        that names a valid algorithm sets the pool's, and the hash properties with it."""
        self.load_balancing = reg.load_balancing
        self.hash_header = reg.hash_header
        self.hash_balance = reg.hash_balance


class RouteTable:
    """uri → pool of endpoints, plus the bookkeeping the shared table and the pruner need."""

    def __init__(
        self, shard_count: int, slots: SlotAllocator, empty_pool_timeout: float = 0.0
    ) -> None:
        self.shard_count = shard_count
        self.slots = slots
        # Gorouter's empty_pool_timeout: keep an emptied pool (answering 503) for this long.
        self.empty_pool_timeout = empty_pool_timeout
        self.pools: dict[RouteKey, PoolState] = {}
        self._shards: dict[int, set[RouteKey]] = {}
        self._dirty: set[int] = set()
        self.last_update: float | None = None
        self.components = ComponentIds()

    def __repr__(self) -> str:
        return (
            f"RouteTable(routes={len(self.pools)}, endpoints={len(self.slots)}, "
            f"dirty_shards={len(self._dirty)})"
        )

    @property
    def endpoint_count(self) -> int:
        """Distinct backend addresses, as Gorouter's `droplets`."""
        return len(self.slots)

    # -- changes -----------------------------------------------------------------------------

    def register(self, reg: Registration, now: float) -> list[Change] | Rejection:
        address = reg.address
        if not self.slots.can_acquire(address, now):
            return Rejection(
                f"no free endpoint slot (route_table.max_endpoints is {self.slots.capacity})",
                "no_endpoint_slot",
            )
        template: EndpointRecord | None = None
        changes: list[Change] = []
        for key in reg.routes:
            pool = self.pools.get(key)
            if pool is None:
                pool = self._add_pool(key)
                changes.append(Change(ROUTE_REGISTERED, str(key)))
            state = pool.endpoints.get(address)
            if state is None:
                slot = self.slots.acquire(address, now)
                if template is None or template.slot != slot:
                    template = build_record(reg, slot, self.components.id_of(reg.message.tags))
                pool.endpoints[address] = EndpointState(template, now, reg)
                self._touch(pool)
                changes.append(_endpoint_change(ENDPOINT_REGISTERED, pool, template))
            else:
                state.last_seen = max(state.last_seen, now)  # pinned static routes stay pinned
                if state.source is not reg:
                    if template is None or template.slot != state.record.slot:
                        template = build_record(
                            reg, state.record.slot, self.components.id_of(reg.message.tags)
                        )
                    state.source = reg
                    if template != state.record:
                        state.record = template
                        self._touch(pool)
                        changes.append(
                            _endpoint_change(ENDPOINT_REGISTERED, pool, template, update=True)
                        )
            # The last registration decides the pool's route service and algorithm, as in Gorouter.
            route_service_url = reg.message.route_service_url
            if pool.route_service_url != route_service_url:
                pool.route_service_url = route_service_url
                self._touch(pool)
            if not pool.is_balanced_as(reg):
                pool.balance_as(reg)
                self._touch(pool)
            pool.emptied_at = None
        self.last_update = now
        return changes

    def refresh(self, reg: Registration, now: float) -> int | None:
        """A heartbeat: when `reg` is what already holds each of its routes (the very object
        `register` last applied there), only mark it seen and return its slot. Otherwise change
        nothing and return None; `register` then does the whole work."""
        address = reg.address
        route_service_url = reg.message.route_service_url
        states = []
        for key in reg.routes:
            pool = self.pools.get(key)
            if pool is None:
                return None
            state = pool.endpoints.get(address)
            if (
                state is None
                or state.source is not reg
                or pool.route_service_url != route_service_url
                or not pool.is_balanced_as(reg)
            ):
                return None
            states.append(state)
        for state in states:
            state.last_seen = max(state.last_seen, now)  # pinned static routes stay pinned
        self.last_update = now
        return states[0].record.slot if states else None

    def unregister(self, reg: Registration, now: float) -> list[Change]:
        changes: list[Change] = []
        for key in reg.routes:
            changes.extend(self.remove_endpoint(key, reg.address, now))
        return changes

    def remove_endpoint(
        self, key: RouteKey, address: str, now: float, keep_empty: bool = False
    ) -> list[Change]:
        """Take `address` out of the route; an emptied route goes too, unless `keep_empty`
        (or empty_pool_timeout) keeps it, answering as empty, until a pruner cycle drops it."""
        pool = self.pools.get(key)
        if pool is None:
            return []
        state = pool.endpoints.pop(address, None)
        if state is None:
            return []
        self.slots.release(address, now)
        self._touch(pool)
        changes = [_endpoint_change(ENDPOINT_UNREGISTERED, pool, state.record)]
        if not pool.endpoints:
            if keep_empty or self.empty_pool_timeout > 0:
                pool.emptied_at = now
            else:
                self._remove_pool(pool)
                changes.append(Change(ROUTE_UNREGISTERED, str(key)))
        return changes

    def drop_expired_empty_pools(self, now: float) -> list[Change]:
        expired = [
            pool
            for pool in self.pools.values()
            if pool.emptied_at is not None and now - pool.emptied_at > self.empty_pool_timeout
        ]
        for pool in expired:
            self._remove_pool(pool)
        return [Change(ROUTE_UNREGISTERED, str(pool.key)) for pool in expired]

    def pin(self, reg: Registration) -> None:
        """Never let the registration's endpoints go stale (static routes from the config)."""
        for key in reg.routes:
            pool = self.pools.get(key)
            state = pool.endpoints.get(reg.address) if pool is not None else None
            if state is not None:
                state.last_seen = math.inf

    def freshen(self, now: float) -> None:
        """Treat every endpoint as just heard from (after a NATS outage)."""
        for pool in self.pools.values():
            for state in pool.endpoints.values():
                state.last_seen = max(state.last_seen, now)  # pinned ones stay pinned

    # -- views -------------------------------------------------------------------------------

    def endpoint_ages(self) -> Iterator[EndpointAge]:
        for key, pool in self.pools.items():
            for address, state in pool.endpoints.items():
                record = state.record
                yield EndpointAge(key, address, state.last_seen, record.stale_threshold, record.tls)

    def take_dirty(self) -> list[int]:
        dirty = sorted(self._dirty)
        self._dirty.clear()
        return dirty

    @property
    def dirty_count(self) -> int:
        return len(self._dirty)

    def shard_payload(self, shard: int) -> bytes:
        """The shard's encoded pools, re-encoding only pools that changed since last time."""
        keys = self._shards.get(shard, ())
        return join_shard([self.pools[key].encoding() for key in keys])

    def shard_pools(self, shard: int) -> list[PoolRecord]:
        keys = self._shards.get(shard, ())
        return [self.pools[key].to_record() for key in sorted(keys)]

    def all_shards(self) -> range:
        return range(self.shard_count)

    # -- internals ---------------------------------------------------------------------------

    def _add_pool(self, key: RouteKey) -> PoolState:
        pool = PoolState(key)
        self.pools[key] = pool
        shard = shard_of(key.host, self.shard_count)
        self._shards.setdefault(shard, set()).add(key)
        self._dirty.add(shard)
        return pool

    def _remove_pool(self, pool: PoolState) -> None:
        del self.pools[pool.key]
        shard = shard_of(pool.key.host, self.shard_count)
        keys = self._shards.get(shard)
        if keys is not None:
            keys.discard(pool.key)
            if not keys:
                del self._shards[shard]
        self._dirty.add(shard)

    def _touch(self, pool: PoolState) -> None:
        pool.encoded = None
        self._dirty.add(shard_of(pool.key.host, self.shard_count))


def build_record(reg: Registration, slot: int, component: int) -> EndpointRecord:
    message = reg.message
    protocol = message.protocol if message.protocol in ("http1", "http2") else "http1"
    return EndpointRecord(
        slot=slot,
        host=reg.host,
        port=reg.port,
        stale_threshold=reg.stale_threshold,
        app_id=message.app,
        instance_id=message.private_instance_id,
        instance_index=message.private_instance_index,
        tls=reg.tls,
        server_cert_domain_san=message.server_cert_domain_san,
        protocol=protocol,
        availability_zone=message.availability_zone,
        isolation_segment=message.isolation_segment,
        tags=message.tags,
        component=component,
    )


def _endpoint_change(
    event: str, pool: PoolState, record: EndpointRecord, update: bool = False
) -> Change:
    return Change(event, str(pool.key), record, pool.route_service_url, update)

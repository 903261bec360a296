"""A shard of the shared table decoded into what lookups use, as a worker reads it.

Its own module so that it can be compiled: a worker decodes a shard each time one changes, and
in a registration storm that is often (records.py, with msgspec's classes, stays interpreted).
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from registry.records import EndpointRecord, PoolRecord

HostRoutes = PoolRecord | dict[str, PoolRecord]
"""A host's routes in a decoded shard: its pool when it has only the root route (most hosts:
a lookup then reaches one object less), else context path ("" for the root) → pool."""
ShardRoutes = dict[str, HostRoutes]
"""A decoded shard: host → its routes."""

_decoder = msgspec.msgpack.Decoder(list[PoolRecord])


def decode_shard(data: bytes, known: dict[int, EndpointRecord] | None = None) -> ShardRoutes:
    """Decode a shard payload into the lookup structure; raises msgspec.DecodeError if torn.

    `known` (slot → record) lets every route to the same instance share one record: a worker
    then holds one copy of it, not one per route, and a request's lookup touches less memory.
    """
    try:
        pools = _decoder.decode(data)
    except UnicodeDecodeError as exc:  # what msgspec raises for a string that is not UTF-8
        raise msgspec.DecodeError(f"invalid UTF-8: {exc}") from None
    routes: ShardRoutes = {}
    for pool in pools:
        if known is not None:
            pool.endpoints = shared_endpoints(pool.endpoints, known)
        found = routes.get(pool.host)
        if found is None:
            routes[pool.host] = pool if pool.path == "" else {pool.path: pool}
        elif isinstance(found, PoolRecord):
            routes[pool.host] = {found.path: found, pool.path: pool}
        else:
            found[pool.path] = pool
    return routes


def pools_of(routes: ShardRoutes) -> Iterator[PoolRecord]:
    """Every pool of a decoded shard."""
    for found in routes.values():
        if isinstance(found, PoolRecord):
            yield found
        else:
            yield from found.values()


def pool_at(routes: ShardRoutes, host: str, path: str) -> PoolRecord | None:
    """The pool registered for exactly `host` and `path` (no longest-prefix matching)."""
    found = routes.get(host)
    if isinstance(found, PoolRecord):
        return found if path == "" else None
    return None if found is None else found.get(path)


def shared_endpoints(
    endpoints: tuple[EndpointRecord, ...], known: dict[int, EndpointRecord]
) -> tuple[EndpointRecord, ...]:
    """`endpoints`, each replaced by the record `known` holds for its slot when the two are
    equal; a record that differs (a new registration of that address) becomes the known one."""
    shared = []
    for endpoint in endpoints:
        record = known.get(endpoint.slot)
        if record is None or record != endpoint:
            record = known[endpoint.slot] = endpoint
        shared.append(record)
    return tuple(shared)

"""Gorouter's /routes entries, built alike by the status server and by `routerctl --from-shm`.

The status server's document is built in two steps so that a large table (100k routes make
26 MB of JSON) never holds up the supervisor's event loop, which applies NATS messages:
`RoutesSnapshot` lists, a slice of pools at a time on the loop, each pool's endpoints (the
one thing a thread cannot safely iterate while the loop changes it); `routes_document` then
sorts, shapes and encodes those lists in a thread. Endpoint records are immutable; a last-seen
time read there may be a heartbeat newer than the listing, which /routes may well show.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import orjson

from registry.records import EndpointRecord
from registry.routekey import RouteKey
from registry.routes import EndpointState, PoolState

# Pools encoded per orjson call: a millisecond or two each.
ENCODE_SLICE = 1000


def endpoint_json(
    record: EndpointRecord, route_service_url: str, load_balancing: str
) -> dict[str, Any]:
    """One endpoint in Gorouter's /routes shape, for the status server and `routerctl`."""
    entry: dict[str, Any] = {
        "address": record.address,
        "availability_zone": record.availability_zone,
        "protocol": record.protocol,
        "tls": record.tls,
        "ttl": record.stale_threshold,
        "route_service_url": route_service_url,
        "tags": record.tags,
        "isolation_segment": record.isolation_segment,
        "private_instance_id": record.instance_id,
        "private_instance_index": record.instance_index,
        "server_cert_domain_san": record.server_cert_domain_san,
        "app": record.app_id,
    }
    if load_balancing:
        entry["load_balancing_algorithm"] = load_balancing
    return entry


class PoolCopy(NamedTuple):
    """A pool and its endpoints' states as they were listed when copied. The states may still
    change (a heartbeat, a replaced record) while the document is built; reading a slot of
    one is safe from a thread, iterating the pool's live endpoint dict would not be."""

    key: RouteKey
    pool: PoolState
    endpoints: tuple[EndpointState, ...]


class RoutesSnapshot:
    """Copies pools' endpoint lists, a slice at a time (the caller yields between slices)."""

    __slots__ = ("_live", "_pending", "pools")

    def __init__(self, pools: dict[RouteKey, PoolState]) -> None:
        self._live = pools
        self._pending = list(pools)  # the keys as of now, in one C-speed pass
        self.pools: list[PoolCopy] = []

    def __repr__(self) -> str:
        return f"RoutesSnapshot(copied={len(self.pools)}, left={len(self._pending)})"

    @property
    def is_done(self) -> bool:
        return not self._pending

    def copy_slice(self, count: int) -> None:
        """Copy up to `count` more pools; one removed since the snapshot began is left out."""
        keys, self._pending = self._pending[-count:], self._pending[:-count]
        live = self._live
        for key in keys:
            pool = live.get(key)
            if pool is not None:
                self.pools.append(PoolCopy(key, pool, tuple(pool.endpoints.values())))


def routes_document(pools: list[PoolCopy], now: float, with_ttl_left: bool) -> list[bytes]:
    """Gorouter's /routes JSON (uri → endpoints, sorted by uri) from copied pools, in pieces
    to be sent one after another.

    Touches only its arguments, so it may run in a thread. It is encoded a slice of pools at a
    time: one long C call (a sort of RouteKeys, one orjson call for 26 MB) would hold the GIL,
    and with it the event loop, for its whole length; and pieces, not one joined copy, are
    written, so the loop sends a few hundred kilobytes at a time."""
    ordered = sorted(pools, key=_uri)
    pieces = [b"{"]
    for start in range(0, len(ordered), ENCODE_SLICE):
        if start:
            pieces.append(b",")
        pieces.append(_encode_slice(ordered[start : start + ENCODE_SLICE], now, with_ttl_left))
    pieces.append(b"}\n")
    return pieces


def _uri(pool: PoolCopy) -> str:
    return str(pool.key)


def _encode_slice(pools: list[PoolCopy], now: float, with_ttl_left: bool) -> bytes:
    """The slice's `"uri":[...]` members, without the enclosing braces."""
    result: dict[str, list[dict[str, Any]]] = {}
    for key, pool, states in pools:
        entries = []
        route_service_url, load_balancing = pool.route_service_url, pool.load_balancing
        for state in states:
            record, last_seen = state.record, state.last_seen
            entry = endpoint_json(record, route_service_url, load_balancing)
            if with_ttl_left:
                left = record.stale_threshold - (now - last_seen)
                pinned = record.tls or math.isinf(last_seen)
                entry["ttl_left"] = None if pinned else max(0, round(left, 1))
            entries.append(entry)
        result[str(key)] = entries
    return orjson.dumps(result)[1:-1]

"""Endpoints a worker has pruned from a pool, hidden from its requests until the shared table
drops them (Gorouter's EndpointFailed for prunable errors: a TLS endpoint that fails to connect
or to set up TLS leaves its pool).

The table is the supervisor's: the worker reports each pruned endpoint over its control
channel, and the supervisor removes it from that route and republishes the shard, so every
worker stops choosing it. Until the republished shard reaches this worker, the pool object it
holds still lists the endpoint; `visible` filters it out. A new pool object for the route (a
republished shard: the endpoint removed, or registered again since) ends the hiding, and so does
`retry_after`, for an endpoint the supervisor keeps (a static route, which nothing would
register again).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from registry.records import EndpointRecord, PoolRecord


class _Hidden:
    """The records hidden from one route, by slot: the very objects the worker decoded, so a
    re-decoded shard (new objects) is told apart from the one they came from."""

    def __init__(self, since: float) -> None:
        self.records: dict[int, EndpointRecord] = {}
        self.since = since


class PrunedEndpoints:
    def __init__(self, retry_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = retry_after
        self.clock = clock
        self._by_route: dict[str, _Hidden] = {}

    def __repr__(self) -> str:
        hidden = {uri: sorted(entry.records) for uri, entry in self._by_route.items()}
        return f"PrunedEndpoints({hidden})"

    def __bool__(self) -> bool:
        return bool(self._by_route)

    def hide(self, uri: str, endpoint: EndpointRecord) -> bool:
        """Hide `endpoint` from the route `uri`; False when it already was (and reported)."""
        entry = self._live(uri)
        if entry is None:
            entry = self._by_route[uri] = _Hidden(self.clock())
        if entry.records.get(endpoint.slot) is endpoint:
            return False
        entry.records[endpoint.slot] = endpoint
        return True

    def visible(self, pool: PoolRecord) -> PoolRecord:
        """`pool` (as the table holds it) without the endpoints hidden from it; the same object
        when none is. A pool that holds none of the hidden records is a newer table's: the
        supervisor has acted, and the hiding ends."""
        entry = self._live(pool.uri)
        if entry is None:
            return pool
        records = entry.records
        kept = tuple(
            endpoint for endpoint in pool.endpoints if records.get(endpoint.slot) is not endpoint
        )
        if len(kept) == len(pool.endpoints):
            del self._by_route[pool.uri]
            return pool
        return PoolRecord(
            pool.host,
            pool.path,
            kept,
            pool.load_balancing,
            pool.route_service_url,
            pool.hash_header,
            pool.hash_balance,
        )

    def _live(self, uri: str) -> _Hidden | None:
        entry = self._by_route.get(uri)
        if entry is not None and self.clock() - entry.since >= self.retry_after:
            del self._by_route[uri]
            return None
        return entry

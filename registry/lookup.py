"""Route lookup over the shared table, as a worker does it for each request.

Exact host first, then wildcards from the deepest; within a host, the longest context path by
whole segments whose pool has endpoints (an emptied pool still answers when nothing longer does).
Hosts are found in the worker's index of the whole table (host_index.py) while it is current,
else in the table's shards.
"""

from __future__ import annotations

from zlib import crc32

from registry.host_index import REFRESH_INTERVAL, HostIndex
from registry.records import PoolRecord
from registry.routekey import next_wildcard, path_prefixes
from registry.shard_routes import HostRoutes
from registry.shm.reader import ShardReadError, TableReader


class RouteLookup:
    def __init__(self, reader: TableReader, refresh_interval: float = REFRESH_INTERVAL) -> None:
        self._reader = reader
        self._shards = reader.shard_count
        self.index = HostIndex(reader, refresh_interval)

    def __repr__(self) -> str:
        return f"RouteLookup({self._reader!r}, {self.index!r})"

    def find(self, host: str, path: str) -> PoolRecord | ShardReadError | None:
        """`host` is normalised (lower case, no port); `path` is the raw path without query."""
        hosts = self.index.hosts()
        candidate: str | None = host
        while candidate is not None:
            found: HostRoutes | None
            if hosts is not None:
                found = hosts.get(candidate)
            else:
                # shard_of(), inlined: this runs for every request while the index catches up.
                routes = self._reader.shard(crc32(candidate.encode()) % self._shards)
                if isinstance(routes, ShardReadError):
                    return routes
                found = routes.get(candidate)
            if isinstance(found, PoolRecord):
                return found  # the host's only route is its root: it matches every path
            if found is not None:
                pool = match_path(found, path)
                if pool is not None:
                    return pool
            candidate = next_wildcard(candidate)
        return None


def match_path(by_path: dict[str, PoolRecord], path: str) -> PoolRecord | None:
    if len(by_path) == 1:
        root = by_path.get("")
        if root is not None:
            return root  # the common case: one route for the host, no context path
    fallback: PoolRecord | None = None
    for prefix in path_prefixes(path.lower()):
        pool = by_path.get(prefix)
        if pool is not None:
            if pool.endpoints:
                return pool
            if fallback is None:
                fallback = pool
    return fallback

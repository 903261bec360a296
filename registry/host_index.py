"""Every host of the shared table in one dict, as of a table generation.

A lookup through the shards reads a shard's sequence number in the shared directory, the
worker's cached decode of that shard and the shard's own dict before it reaches the host's
routes. When requests spread over a large table each of those is a cache miss, and on a shared
machine a miss costs hundreds of nanoseconds. The index is one dict: one hash probe.

It holds the table as of a generation. While the table's generation has not moved, a lookup
reads the index alone. When it has, the index is brought up to date at most once per
`refresh_interval`: one pass over the directory's sequence numbers finds the shards that changed,
and up to `shards_per_refresh` of them are applied (a worker's first pass, or one after a storm,
is spread over several). Until the index is complete again, `hosts()` says so (None) and
lookups read the shards, which always see the newest published payload. A shard that cannot be
read consistently keeps the index incomplete, so its hosts are looked up through the reader,
which reports the error.

Why a generation is enough: the writer bumps the shards' sequence numbers before the batch's
generation (layout.py), and the pass reads the generation before the sequence numbers, so an
index complete as of generation G holds every batch up to G.
"""

from __future__ import annotations

import time
from typing import Final

from registry.shard_routes import HostRoutes, ShardRoutes
from registry.shm.reader import ShardReadError, TableReader

REFRESH_INTERVAL: Final = 0.01
SHARDS_PER_REFRESH: Final = 64
_SEQ: Final = 8  # bytes per sequence number in `TableReader.sequences()`
_CHUNK: Final = 256 * _SEQ  # compared as one before looking at its shards one by one


class HostIndex:
    def __init__(
        self,
        reader: TableReader,
        refresh_interval: float = REFRESH_INTERVAL,
        shards_per_refresh: int = SHARDS_PER_REFRESH,
    ) -> None:
        self._reader = reader
        self.refresh_interval = refresh_interval
        self.shards_per_refresh = shards_per_refresh
        self._hosts: dict[str, HostRoutes] = {}
        # Each shard's routes as applied, and the sequence number they were applied at. The
        # writer formats every shard empty at sequence 0, so that is where the index starts.
        self._applied: list[ShardRoutes | None] = [None] * reader.shard_count
        self._applied_seqs = bytearray(reader.shard_count * _SEQ)
        self._generation = -1
        # A new worker's first lookups read the shards; the index is built from the next interval.
        self._next_refresh = time.monotonic() + refresh_interval
        self.refreshes = 0
        self.shards_applied = 0

    def __repr__(self) -> str:
        return (
            f"HostIndex(hosts={len(self._hosts)}, generation={self._generation}, "
            f"refreshes={self.refreshes}, shards_applied={self.shards_applied})"
        )

    def hosts(self) -> dict[str, HostRoutes] | None:
        """Host → routes for the whole table, or None while the index is behind the table."""
        if self._reader.generation == self._generation:
            return self._hosts
        now = time.monotonic()
        if now < self._next_refresh:
            return None
        self._next_refresh = now + self.refresh_interval
        return self._hosts if self._refresh() else None

    def _refresh(self) -> bool:
        """Apply changed shards (up to the budget); True when none is left behind."""
        self.refreshes += 1
        reader = self._reader
        generation = reader.generation  # before the sequence numbers: see the module's note
        seqs = reader.sequences()
        applied = self._applied_seqs
        budget = self.shards_per_refresh
        complete = True
        for start in range(0, len(seqs), _CHUNK):
            end = start + _CHUNK
            if seqs[start:end] == applied[start:end]:
                continue
            for offset in range(start, min(end, len(seqs)), _SEQ):
                seq = seqs[offset : offset + _SEQ]
                if seq == applied[offset : offset + _SEQ]:
                    continue
                if budget == 0:
                    return False
                budget -= 1
                routes = reader.shard(offset // _SEQ)
                if isinstance(routes, ShardReadError):
                    complete = False
                    continue
                self._apply(offset // _SEQ, routes)
                applied[offset : offset + _SEQ] = seq
        if complete:
            self._generation = generation
        return complete

    def _apply(self, shard: int, routes: ShardRoutes) -> None:
        old = self._applied[shard]
        if old is routes:
            return
        hosts = self._hosts
        if old:
            # A host hashes to one shard: what left this shard left the table.
            for host in old:
                if host not in routes:
                    hosts.pop(host, None)
        hosts.update(routes)
        self._applied[shard] = routes
        self.shards_applied += 1

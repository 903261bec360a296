"""Every host of the shared table in one dict, as of a table generation.

A lookup through the shards reads a shard's sequence number in the shared directory, the
worker's cached decode of that shard and the shard's own dict before it reaches the host's
routes. When requests spread over a large table each of those is a cache miss, and on a shared
machine a miss costs hundreds of nanoseconds. The index is one dict: one hash probe.

It holds the table as of a generation; a worker builds it whole before it serves. While the
table's generation has not moved, a lookup reads the index alone. When it has, lookups read the
shards, which always see the newest published payload, until the table has stood still for
`refresh_interval`: a storm of publishes then costs a lookup only a clock read. The index is
then brought up to date: one pass over the directory's sequence numbers (about 150 µs at 16k
shards) finds the shards that changed, and they are applied, at most `shards_per_refresh` of
them (and `decodes_per_refresh` the reader had not decoded yet) a pass and one pass per
interval, so catching up after a storm never stalls a request for long. A shard that cannot be
read consistently keeps the index behind, so its hosts are looked up through the reader, which
reports the error.

Why a generation is enough: the writer bumps the shards' sequence numbers before the batch's
generation (layout.py), and the pass reads the generation before the sequence numbers, so an
index complete as of generation G holds every batch up to G.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from registry.shard_routes import HostRoutes, ShardRoutes
from registry.shm.reader import ShardReadError, TableReader

REFRESH_INTERVAL: Final = 0.01
# About half a millisecond a pass at most: applying a decoded shard costs a microsecond or two,
# decoding one about 25 µs at 100k routes.
SHARDS_PER_REFRESH: Final = 256
DECODES_PER_REFRESH: Final = 16
_SEQ: Final = 8  # bytes per sequence number in `TableReader.sequences()`
_CHUNK: Final = 256 * _SEQ  # compared as one before looking at its shards one by one


class HostIndex:
    def __init__(
        self,
        reader: TableReader,
        refresh_interval: float = REFRESH_INTERVAL,
        shards_per_refresh: int = SHARDS_PER_REFRESH,
        decodes_per_refresh: int = DECODES_PER_REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._clock = clock
        self.refresh_interval = refresh_interval
        self.shards_per_refresh = shards_per_refresh
        self.decodes_per_refresh = decodes_per_refresh
        self._hosts: dict[str, HostRoutes] = {}
        # Each shard's routes as applied, and the sequence number they were applied at. The
        # writer formats every shard empty at sequence 0, so that is where the index starts.
        self._applied: list[ShardRoutes | None] = [None] * reader.shard_count
        self._applied_seqs = bytearray(reader.shard_count * _SEQ)
        self._generation = -1  # the index is complete as of this generation
        self._moved_to = -1  # the generation the table was last seen to move to, and when
        self._moved_at = 0.0
        self._next_refresh = 0.0
        self.refreshes = 0
        self.shards_applied = 0

    def __repr__(self) -> str:
        return (
            f"HostIndex(hosts={len(self._hosts)}, generation={self._generation}, "
            f"refreshes={self.refreshes}, shards_applied={self.shards_applied})"
        )

    def hosts(self) -> dict[str, HostRoutes] | None:
        """Host → routes for the whole table, or None while the index is behind the table."""
        generation = self._reader.generation
        if generation == self._generation:
            return self._hosts
        now = self._clock()
        if generation != self._moved_to:
            self._moved_to = generation
            self._moved_at = now
        if now - self._moved_at < self.refresh_interval or now < self._next_refresh:
            return None
        self._next_refresh = now + self.refresh_interval
        if self._refresh(self.shards_per_refresh, self.decodes_per_refresh):
            return self._hosts
        return None

    def build(self) -> bool:
        """Bring the index up to date now, whatever it takes (a worker does this once, before it
        serves: the supervisor publishes every shard as it starts). True when complete."""
        everything = len(self._applied)
        return self._refresh(everything, everything)

    def _refresh(self, applies: int, decodes: int) -> bool:
        """Apply changed shards, at most `applies` of them and `decodes` the reader has not
        decoded yet; True when none is left."""
        self.refreshes += 1
        reader = self._reader
        generation = reader.generation  # before the sequence numbers: see the module's note
        seqs = reader.sequences()
        applied = self._applied_seqs
        applies_left = applies
        decode_limit = reader.decodes + decodes  # the reader counts its own decodes
        complete = True
        for start in range(0, len(seqs), _CHUNK):
            end = start + _CHUNK
            if seqs[start:end] == applied[start:end]:
                continue
            for offset in range(start, min(end, len(seqs)), _SEQ):
                seq = seqs[offset : offset + _SEQ]
                if seq == applied[offset : offset + _SEQ]:
                    continue
                if applies_left == 0 or reader.decodes >= decode_limit:
                    return False
                applies_left -= 1
                shard = offset // _SEQ
                routes = reader.shard(shard)  # decoded only if the reader has not yet
                if isinstance(routes, ShardReadError):
                    complete = False
                    continue
                self._apply(shard, routes)
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

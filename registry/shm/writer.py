"""The single writer of the shared route table (see layout.py for the protocol)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from registry.records import EMPTY_SHARD
from registry.shm import layout as L
from registry.shm.region import Region

MIN_CLASS = 6  # 64-byte regions at least: one cache line


def size_class(length: int) -> int:
    return max(MIN_CLASS, (max(length, 1) - 1).bit_length())


class TableWriter:
    """Initialises a table in `region` and publishes shard payloads into it."""

    def __init__(self, region: Region, shard_count: int) -> None:
        self._region = region
        self.shard_count = shard_count
        self._arena_start = L.arena_offset(shard_count)
        self._free: dict[int, list[int]] = {}
        # Which region each shard's active buffer owns: (offset, size class), or None while it
        # points at the shared empty payload.
        self._owned: list[tuple[int, int] | None] = [None] * shard_count
        self._words = region.buffer.cast("Q")
        self._empty_offset = self._arena_start
        self._top = self._arena_start + L.round_up(len(EMPTY_SHARD), 64)
        self.bytes_in_use = self._top - self._arena_start
        self._format()

    def __repr__(self) -> str:
        return (
            f"TableWriter(shards={self.shard_count}, generation={self.generation}, "
            f"size={self.mapped_size}, arena_top={self._top})"
        )

    @property
    def mapped_size(self) -> int:
        return len(self._region.buffer)

    @property
    def generation(self) -> int:
        return int(self._words[L.H_GENERATION])

    def _format(self) -> None:
        buf = self._region.buffer
        words = self._words
        words[L.H_VERSION] = L.LAYOUT_VERSION
        words[L.H_SHARDS] = self.shard_count
        words[L.H_GENERATION] = 0
        words[L.H_SIZE] = len(buf)
        words[L.H_DIR_OFFSET] = L.DIR_OFFSET
        words[L.H_ARENA_OFFSET] = self._arena_start
        words[L.H_WRITER_PID] = os.getpid()
        words[L.H_CREATED_MS] = int(time.time() * 1000)
        buf[self._empty_offset : self._empty_offset + len(EMPTY_SHARD)] = EMPTY_SHARD
        for shard in range(self.shard_count):
            entry = L.entry_word(shard)
            words[entry + L.E_SEQ] = 0
            words[entry + L.E_ACTIVE] = 0
            words[entry + L.E_OFF0] = self._empty_offset
            words[entry + L.E_LEN0] = len(EMPTY_SHARD)
        # Magic last: a reader that sees it sees a formatted table.
        words[L.H_MAGIC] = L.MAGIC

    def publish(
        self,
        payloads: Iterable[tuple[int, bytes]],
        routes: int = 0,
        endpoints: int = 0,
    ) -> int:
        """Publish a batch of (shard, payload); returns the new global generation."""
        words = self._words
        for shard, payload in payloads:
            offset, cls = self._allocate(len(payload))
            words = self._words  # allocation may have remapped
            buf = self._region.buffer
            buf[offset : offset + len(payload)] = payload
            entry = L.entry_word(shard)
            inactive = 1 - words[entry + L.E_ACTIVE]
            words[entry + L.E_OFF0 + 2 * inactive] = offset
            words[entry + L.E_LEN0 + 2 * inactive] = len(payload)
            words[entry + L.E_SEQ] += 1
            words[entry + L.E_ACTIVE] = inactive
            words[entry + L.E_SEQ] += 1
            previous = self._owned[shard]
            self._owned[shard] = (offset, cls)
            if previous is not None:
                self._release(*previous)
        words[L.H_ROUTES] = routes
        words[L.H_ENDPOINTS] = endpoints
        words[L.H_LAST_UPDATE_MS] = int(time.time() * 1000)
        words[L.H_GENERATION] += 1
        return int(words[L.H_GENERATION])

    def shard_seq(self, shard: int) -> int:
        return int(self._words[L.entry_word(shard) + L.E_SEQ])

    def _allocate(self, length: int) -> tuple[int, int]:
        cls = size_class(length)
        free = self._free.get(cls)
        if free:
            self.bytes_in_use += 1 << cls
            return free.pop(), cls
        size = 1 << cls
        if self._top + size > self.mapped_size:
            self._grow(self._top + size)
        offset = self._top
        self._top += size
        self.bytes_in_use += size
        return offset, cls

    def _release(self, offset: int, cls: int) -> None:
        self._free.setdefault(cls, []).append(offset)
        self.bytes_in_use -= 1 << cls

    def _grow(self, needed: int) -> None:
        new_size = L.round_up(max(needed, self.mapped_size * 2), L.PAGE)
        self._region.remap(new_size)
        self._words = self._region.buffer.cast("Q")
        # Record the size before any descriptor can point beyond the old end.
        self._words[L.H_SIZE] = new_size


def initial_size(shard_count: int) -> int:
    """Header, directory and a first arena of about 256 bytes per shard."""
    return L.round_up(L.arena_offset(shard_count) + 256 * shard_count, L.PAGE)

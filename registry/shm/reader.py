"""Lock-free reader of the shared route table (see layout.py for the protocol)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Final

import msgspec

from registry.records import EndpointRecord
from registry.rejection import Rejection
from registry.shard_routes import ShardRoutes, decode_shard
from registry.shm import layout as L
from registry.shm.region import Region

DEFAULT_MAX_RETRIES: Final = 100_000


class ShardReadError(Rejection, frozen=True):
    """A shard could not be read consistently within the retry budget."""


def is_pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TableReader:
    """Reads shards without locks and caches each decoded shard by its sequence number."""

    def __init__(
        self,
        region: Region,
        max_retries: int = DEFAULT_MAX_RETRIES,
        is_writer_alive: Callable[[int], bool] = is_pid_alive,
    ) -> None:
        self._region = region
        self.max_retries = max_retries
        self._is_writer_alive = is_writer_alive
        self._words = region.buffer.cast("Q")
        self._check_header()
        self.shard_count = int(self._words[L.H_SHARDS])
        self._cache: list[ShardRoutes | None] = [None] * self.shard_count
        self._cached_seq: list[int] = [-1] * self.shard_count
        # One record per backend instance, shared by every route to it (decode_shard).
        self._endpoints: dict[int, EndpointRecord] = {}
        self.decodes = 0
        self.retries = 0
        # Time spent re-reading changed shards (copy and decode), wall and this thread's CPU:
        # what a registration storm costs a worker (benchmarks/table_procs.py reports it).
        self.reload_ns = 0
        self.reload_cpu_ns = 0

    def __repr__(self) -> str:
        return (
            f"TableReader(shards={self.shard_count}, generation={self.generation}, "
            f"decodes={self.decodes}, retries={self.retries})"
        )

    def _check_header(self) -> None:
        words = self._words
        if len(words) <= L.H_CREATED_MS or words[L.H_MAGIC] != L.MAGIC:
            raise ValueError("not a route table (bad magic): is the router running?")
        if words[L.H_VERSION] != L.LAYOUT_VERSION:
            raise ValueError(
                f"route table layout version {words[L.H_VERSION]}, expected {L.LAYOUT_VERSION}"
            )

    @property
    def generation(self) -> int:
        return int(self._words[L.H_GENERATION])

    def header_word(self, index: int) -> int:
        return int(self._words[index])

    def sequences(self) -> bytes:
        """Every shard's sequence number, 8 bytes each in shard order: one copy of that column
        of the directory (registry/host_index.py compares them with those it has applied)."""
        first = L.entry_word(0) + L.E_SEQ
        end = first + self.shard_count * L.ENTRY_WORDS
        return self._words[first : end : L.ENTRY_WORDS].tobytes()

    def shard(self, shard: int) -> ShardRoutes | ShardReadError:
        """The decoded shard; one 8-byte read when it has not changed since the last call."""
        seq = self._words[L.DIR_OFFSET // 8 + shard * 8]
        if self._cached_seq[shard] == seq:
            return self._cache[shard]  # type: ignore[return-value]
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        result = self._load(shard)
        self.reload_ns += time.perf_counter_ns() - wall
        self.reload_cpu_ns += time.thread_time_ns() - cpu
        return result

    def _load(self, shard: int) -> ShardRoutes | ShardReadError:
        entry = L.entry_word(shard)
        stuck_odd = 0
        for _ in range(self.max_retries):
            words = self._words
            s1 = words[entry + L.E_SEQ]
            if s1 & 1:
                stuck_odd += 1
                if stuck_odd > 1000 and not self._is_writer_alive(int(words[L.H_WRITER_PID])):
                    # The writer died mid-flip: both buffers hold complete payloads.
                    result = self._read_active(shard, entry, s1, check=False)
                    if result is not None:
                        return result
                self.retries += 1
                continue
            result = self._read_active(shard, entry, s1, check=True)
            if result is not None:
                return result
            self.retries += 1
        return ShardReadError(f"shard {shard}: no consistent read after {self.max_retries} tries")

    def _read_active(
        self, shard: int, entry: int, s1: int, check: bool
    ) -> ShardRoutes | ShardReadError | None:
        words = self._words
        active = words[entry + L.E_ACTIVE] & 1
        offset = words[entry + L.E_OFF0 + 2 * active]
        length = words[entry + L.E_LEN0 + 2 * active]
        if offset + length > len(self._region.buffer):
            self._remap()
            return None
        data = bytes(self._region.buffer[offset : offset + length])
        if check and words[entry + L.E_SEQ] != s1:
            return None
        try:
            routes = decode_shard(data, self._endpoints)
        except msgspec.DecodeError:
            if check:
                return ShardReadError(f"shard {shard}: published payload does not decode")
            return None
        self.decodes += 1
        self._cache[shard] = routes
        self._cached_seq[shard] = s1
        return routes

    def _remap(self) -> None:
        size = int(self._words[L.H_SIZE])
        self._region.remap(size)
        self._words = self._region.buffer.cast("Q")

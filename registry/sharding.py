"""Which shard a host's routes live in: a hash that every process computes alike."""

from __future__ import annotations

from zlib import crc32


def shard_of(host: str, shard_count: int) -> int:
    # crc32, not hash(): Python's str hash differs between processes.
    return crc32(host.encode()) % shard_count

"""Shard payloads joined from per-pool encodings decode exactly like whole-shard encodings."""

from __future__ import annotations

import pytest

from registry.records import (
    EndpointRecord,
    PoolRecord,
    decode_shard,
    encode_pool,
    encode_shard,
    join_shard,
)


@pytest.mark.parametrize("count", [0, 1, 15, 16, 300, 65535, 65536])
def test_joined_pools_equal_encoded_shard(count: int) -> None:
    pools = [
        PoolRecord(
            f"h{i}.example.com", "/p" if i % 2 else "", (EndpointRecord(i, "10.0.0.1", 80 + i % 7),)
        )
        for i in range(count)
    ]
    joined = join_shard([encode_pool(pool) for pool in pools])
    assert joined == encode_shard(pools)
    decoded = decode_shard(joined)
    assert sum(len(paths) for paths in decoded.values()) == count

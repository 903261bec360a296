"""Shard payloads: joined from per-pool encodings they decode exactly like whole-shard encodings;
decoded with the records already known, routes to one instance share its record."""

from __future__ import annotations

import pytest

from registry.records import EndpointRecord, PoolRecord, encode_pool, encode_shard, join_shard
from registry.shard_routes import ShardRoutes, decode_shard, pool_at, pools_of


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
    assert sum(1 for _ in pools_of(decoded)) == count


def root(routes: ShardRoutes, host: str) -> PoolRecord:
    pool = pool_at(routes, host, "")
    assert pool is not None, host
    return pool


def test_a_host_with_only_its_root_route_decodes_to_the_pool_itself() -> None:
    routes = decode_shard(
        encode_shard(
            [
                PoolRecord("one.example.com", "", (EndpointRecord(1, "10.0.0.1", 80),)),
                PoolRecord("two.example.com", "/api", (EndpointRecord(2, "10.0.0.2", 80),)),
                PoolRecord("two.example.com", "", (EndpointRecord(3, "10.0.0.3", 80),)),
            ]
        )
    )
    assert isinstance(routes["one.example.com"], PoolRecord)
    assert set(routes["two.example.com"]) == {"/api", ""}
    assert root(routes, "two.example.com").endpoints[0].slot == 3
    assert pool_at(routes, "one.example.com", "/api") is None
    assert pool_at(routes, "two.example.com", "/api") is not None
    assert sorted(pool.uri for pool in pools_of(routes)) == [
        "one.example.com",
        "two.example.com",
        "two.example.com/api",
    ]


def test_routes_to_one_instance_share_its_record_across_shards() -> None:
    known: dict[int, EndpointRecord] = {}
    first = decode_shard(
        encode_shard(
            [
                PoolRecord(f"a{i}.example.com", "", (EndpointRecord(7, "10.0.0.7", 80),))
                for i in range(3)
            ]
        ),
        known,
    )
    second = decode_shard(
        encode_shard(
            [
                PoolRecord(
                    "b.example.com",
                    "",
                    (EndpointRecord(7, "10.0.0.7", 80), EndpointRecord(8, "10.0.0.8", 80)),
                ),
                # The same slot registered differently (another app on that address): kept apart.
                PoolRecord(
                    "c.example.com", "", (EndpointRecord(7, "10.0.0.7", 80, app_id="other"),)
                ),
            ]
        ),
        known,
    )
    shared = root(first, "a0.example.com").endpoints[0]
    assert all(root(first, f"a{i}.example.com").endpoints[0] is shared for i in range(3))
    b = root(second, "b.example.com").endpoints
    assert b[0] is shared and b == (
        EndpointRecord(7, "10.0.0.7", 80),
        EndpointRecord(8, "10.0.0.8", 80),
    )
    other = root(second, "c.example.com").endpoints[0]
    assert other.app_id == "other" and other is not shared
    # Without `known`, each route decodes its own record, equal but not shared.
    plain = decode_shard(
        encode_shard(
            [
                PoolRecord(f"a{i}.example.com", "", (EndpointRecord(7, "10.0.0.7", 80),))
                for i in range(2)
            ]
        )
    )
    a0, a1 = (root(plain, f"a{i}.example.com").endpoints[0] for i in range(2))
    assert a0 == a1 and a0 is not a1

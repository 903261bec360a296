"""Hash-based balancing: Maglev's table and the policy over it, as Gorouter builds them."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from registry.policy import HashBased, LeastConnection, RoundRobin, policy_for
from registry.policy.hash_based import lookup_table
from registry.policy.maglev import TABLE_SIZE, build_table, fnv1a64, slot_for
from registry.records import EndpointRecord, PoolRecord
from tests.registry.test_policies import FakeHealth


def hash_pool(size: int, balance: float = 0.0, ids: bool = True) -> PoolRecord:
    endpoints = tuple(
        EndpointRecord(slot, f"10.0.0.{slot}", 8080, instance_id=f"instance-{slot}" if ids else "")
        for slot in range(size)
    )
    return PoolRecord(
        "app.example.com",
        "",
        endpoints,
        load_balancing="hash",
        hash_header="X-Tenant",
        hash_balance=balance,
    )


def chosen(policy: HashBased, pool: PoolRecord, health: FakeHealth, key: str, exclude=()) -> int:
    endpoint = policy.choose(pool, health, frozenset(exclude), key)
    assert endpoint is not None
    return endpoint.slot


# -- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "digest"),
    [(b"", 0xCBF29CE484222325), (b"a", 0xAF63DC4C8601EC8C), (b"foobar", 0x85944171F73967E8)],
)
def test_fnv1a64_matches_go(data: bytes, digest: int) -> None:
    assert fnv1a64(data) == digest


@pytest.mark.parametrize("count", [1, 2, 3, 7, 40])
def test_every_slot_is_owned_and_shares_are_even(count: int) -> None:
    table = build_table([f"instance-{i}" for i in range(count)])
    assert len(table) == TABLE_SIZE
    shares = Counter(table)
    assert set(shares) == set(range(count))
    assert max(shares.values()) - min(shares.values()) <= 1


def test_removing_an_endpoint_moves_little_more_than_its_own_slots() -> None:
    ids = [f"instance-{i}" for i in range(6)]
    before = [ids[entry] for entry in build_table(ids)]
    remaining = [i for i in ids if i != "instance-3"]
    after = [remaining[entry] for entry in build_table(remaining)]
    moved = sum(1 for old, new in zip(before, after, strict=True) if old != new)
    owned = before.count("instance-3")
    assert owned <= moved < owned * 1.5  # a modulo hash would move about 5/6 of every slot


def test_no_ids_no_table() -> None:
    assert build_table([]) == []


# -- the policy -------------------------------------------------------------------------------

HASHED = HashBased(RoundRobin())


def test_the_same_value_always_reaches_the_same_endpoint() -> None:
    target = hash_pool(5)
    for tenant in ("acme", "globex", "initech", "umbrella"):
        picks = {chosen(HASHED, target, FakeHealth(), tenant) for _ in range(20)}
        assert len(picks) == 1, tenant


def test_values_spread_over_every_endpoint() -> None:
    target = hash_pool(4)
    picks = Counter(chosen(HASHED, target, FakeHealth(), f"tenant-{i}") for i in range(400))
    assert set(picks) == {0, 1, 2, 3}
    assert min(picks.values()) > 50


def test_the_endpoint_is_the_table_owner_of_the_value_slot() -> None:
    target = hash_pool(3)
    table = lookup_table(target)
    assert chosen(HASHED, target, FakeHealth(), "acme") == table[slot_for(b"acme")]


def test_without_a_value_the_fallback_balances() -> None:
    target = hash_pool(3)
    picks = [chosen(HASHED, target, FakeHealth(), "") for _ in range(6)]
    assert Counter(picks) == {0: 2, 1: 2, 2: 2}  # round-robin's turns


def walk_order(target: PoolRecord, key: bytes) -> list[int]:
    """Distinct endpoints in table order from the value's slot."""
    table = lookup_table(target)
    start = slot_for(key)
    order: list[int] = []
    for step in range(TABLE_SIZE):
        index = table[(start + step) % TABLE_SIZE]
        if index not in order:
            order.append(index)
    return order


@pytest.mark.parametrize(
    ("excluded", "overloaded", "failed", "expected"),
    [
        # (positions in the value's walk order; expected is a position too, or None)
        ((), (), (), 0),
        ((0,), (), (), 1),  # a retry after a failure in this request: the next in the table
        ((), (0,), (), 1),  # full: the next one
        ((0,), (1,), (), 2),
        ((), (), (0,), 0),  # a failure mark does not move the value (Gorouter's affinity)
        ((0, 1), (2, 3), (), None),  # nothing left
    ],
)
def test_walk_past_excluded_and_overloaded(
    excluded: tuple[int, ...],
    overloaded: tuple[int, ...],
    failed: tuple[int, ...],
    expected: int | None,
) -> None:
    target = hash_pool(4)
    order = walk_order(target, b"acme")
    health = FakeHealth(
        failed=[order[i] for i in failed], overloaded=[order[i] for i in overloaded]
    )
    endpoint = HASHED.choose(target, health, frozenset(order[i] for i in excluded), "acme")
    assert (None if endpoint is None else endpoint.slot) == (
        None if expected is None else order[expected]
    )


@pytest.mark.parametrize(
    ("balance", "in_flight", "expected"),
    [
        # in_flight by walk position; average over the 4 endpoints
        (0.0, (9, 0, 0, 0), 0),  # no factor: never imbalanced
        (2.0, (9, 0, 0, 0), 1),  # 9 / 2.25 = 4 > 2: the next one
        (2.0, (4, 0, 0, 0), 1),  # 4 / 1 = 4 > 2
        (2.0, (4, 2, 2, 2), 0),  # 4 / 2.5 = 1.6 <= 2
        (1.5, (4, 4, 0, 0), 2),  # 4 / 2 = 2 > 1.5, twice
        (2.0, (0, 0, 0, 0), 0),  # nothing in flight: no average to exceed
        (0.5, (3, 3, 3, 3), 0),  # every one imbalanced: the first in table order
    ],
)
def test_hash_balance(balance: float, in_flight: tuple[int, ...], expected: int) -> None:
    target = hash_pool(4, balance)
    order = walk_order(target, b"acme")
    counts = {order[i]: count for i, count in enumerate(in_flight)}
    assert chosen(HASHED, target, FakeHealth(in_flight=counts), "acme") == order[expected]


def test_endpoints_without_instance_ids_are_told_apart_by_address() -> None:
    target = hash_pool(3, ids=False)
    assert Counter(lookup_table(target)).keys() == {0, 1, 2}


def test_the_table_is_built_once_per_decoded_pool() -> None:
    # The writer encodes pools without a table; a worker builds it on its own decoded copy.
    encoded = msgspec.msgpack.encode(hash_pool(3, balance=1.25))
    target = msgspec.msgpack.decode(encoded, type=PoolRecord)
    assert (target.hash_header, target.hash_balance, target.hash_table) == ("X-Tenant", 1.25, ())
    chosen(HASHED, target, FakeHealth(), "acme")
    table = target.hash_table
    assert len(table) == TABLE_SIZE
    chosen(HASHED, target, FakeHealth(), "globex")
    assert target.hash_table is table


@pytest.mark.parametrize(
    ("default", "fallback"), [("round-robin", RoundRobin), ("least-connection", LeastConnection)]
)
def test_hash_pools_fall_back_to_the_router_algorithm(default: str, fallback: type) -> None:
    policy = policy_for("hash", default)
    assert isinstance(policy, HashBased)
    assert isinstance(policy.fallback, fallback)


def test_other_policies_ignore_the_key() -> None:
    target = hash_pool(3)
    health = FakeHealth(in_flight={0: 5, 1: 0, 2: 5})
    endpoint = LeastConnection().choose(target, health, frozenset(), "acme")
    assert endpoint is not None and endpoint.slot == 1

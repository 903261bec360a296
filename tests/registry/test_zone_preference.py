"""Availability-zone preference (locally-optimistic): tables over the policies, no sockets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from registry.policy import HashBased, LeastConnection, RoundRobin
from registry.policy.contract import BalancingPolicy
from registry.records import EndpointRecord, PoolRecord
from tests.registry.test_policies import FakeHealth

# Slots 0..5; even slots in z1, odd ones in z2.
ZONES = ("z1", "z2", "z1", "z2", "z1", "z2")


def zoned_pool(zones: Sequence[str] = ZONES) -> PoolRecord:
    endpoints = tuple(
        EndpointRecord(slot, f"10.0.0.{slot}", 8080, availability_zone=zone)
        for slot, zone in enumerate(zones)
    )
    return PoolRecord("app.example.com", "", endpoints)


def picks(
    policy: BalancingPolicy,
    health: FakeHealth,
    zone: str,
    count: int = 12,
    exclude: Sequence[int] = (),
    zones: Sequence[str] = ZONES,
) -> Counter[int | None]:
    target = zoned_pool(zones)
    chosen = [policy.choose(target, health, frozenset(exclude), zone=zone) for _ in range(count)]
    return Counter(None if endpoint is None else endpoint.slot for endpoint in chosen)


@pytest.mark.parametrize("policy", [RoundRobin(), LeastConnection()], ids=repr)
@pytest.mark.parametrize(
    ("zone", "failed", "overloaded", "exclude", "allowed"),
    [
        ("z1", (), (), (), {0, 2, 4}),  # only the router's zone
        ("z2", (), (), (), {1, 3, 5}),
        ("z1", (0,), (2,), (), {4}),  # failed and full local ones are passed over
        ("z1", (), (), (0, 2), {4}),  # and so are those that failed this request
        ("z1", (0, 2, 4), (), (), {1, 3, 5}),  # no healthy local one: any zone
        ("z1", (), (0, 2, 4), (), {1, 3, 5}),
        ("z3", (), (), (), {0, 1, 2, 3, 4, 5}),  # no endpoint in the zone: as without preference
        ("", (), (), (), {0, 1, 2, 3, 4, 5}),
    ],
)
def test_local_endpoints_first(
    policy: BalancingPolicy,
    zone: str,
    failed: tuple[int, ...],
    overloaded: tuple[int, ...],
    exclude: tuple[int, ...],
    allowed: set[int],
) -> None:
    health = FakeHealth(failed=failed, overloaded=overloaded)
    chosen = picks(policy, health, zone, count=60, exclude=exclude)
    assert set(chosen) <= allowed
    if isinstance(policy, RoundRobin):
        assert set(chosen) == allowed  # round-robin takes turns among them


def test_round_robin_takes_turns_within_the_zone() -> None:
    assert picks(RoundRobin(), FakeHealth(), "z1", count=12) == {0: 4, 2: 4, 4: 4}


def test_least_connection_prefers_a_local_endpoint_even_when_busier() -> None:
    health = FakeHealth(in_flight={0: 9, 1: 0, 2: 5, 3: 0, 4: 7, 5: 0})
    assert picks(LeastConnection(), health, "z1") == {2: 12}


def test_hash_keeps_its_value_whatever_the_zone() -> None:
    policy = HashBased(RoundRobin())
    target = zoned_pool()
    target = PoolRecord(target.host, target.path, target.endpoints, "hash", hash_header="X-T")
    plain = policy.choose(target, FakeHealth(), frozenset(), "acme")
    for zone in ("z1", "z2"):
        assert policy.choose(target, FakeHealth(), frozenset(), "acme", zone) == plain
    # Without a value the fallback honours the zone.
    assert set(picks(policy, FakeHealth(), "z2")) == {1, 3, 5}

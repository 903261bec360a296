"""Balancing policies, failure marks, slots, prune decisions and segments: tables, no sockets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from registry.failures import FailureMarks
from registry.policy import LeastConnection, RoundRobin, policy_for
from registry.policy.contract import BalancingPolicy
from registry.prune import EndpointAge, PrunePlan, plan_prune
from registry.records import EndpointRecord, PoolRecord
from registry.routekey import RouteKey
from registry.segments import ShardingMode, is_served
from registry.slots import SlotAllocator, SlotsExhausted


class FakeHealth:
    """What a worker knows about endpoints, by slot: failure marks and in-flight counts."""

    def __init__(
        self,
        failed: Sequence[int] = (),
        overloaded: Sequence[int] = (),
        in_flight: dict[int, int] | None = None,
    ) -> None:
        self.failed = set(failed)
        self.overloaded = set(overloaded)
        self.counts = in_flight or {}
        self.cleared: list[int] = []

    def __repr__(self) -> str:
        return f"FakeHealth(failed={self.failed}, overloaded={self.overloaded})"

    def is_failed(self, endpoint: EndpointRecord) -> bool:
        return endpoint.slot in self.failed

    def clear_failures(self, endpoints: Sequence[EndpointRecord]) -> None:
        for endpoint in endpoints:
            self.cleared.append(endpoint.slot)
            self.failed.discard(endpoint.slot)

    def is_overloaded(self, endpoint: EndpointRecord) -> bool:
        return endpoint.slot in self.overloaded

    def in_flight(self, endpoint: EndpointRecord) -> int:
        return self.counts.get(endpoint.slot, 0)


def pool(size: int, load_balancing: str = "") -> PoolRecord:
    """Endpoints with slots 0..size-1 (slot numbers double as indexes)."""
    endpoints = tuple(EndpointRecord(slot, f"10.0.0.{slot}", 8080) for slot in range(size))
    return PoolRecord("app.example.com", "", endpoints, load_balancing=load_balancing)


def choices(
    policy: BalancingPolicy,
    target: PoolRecord,
    health: FakeHealth,
    count: int,
    exclude: Sequence[int] = (),
) -> list[int | None]:
    picked = [policy.choose(target, health, frozenset(exclude)) for _ in range(count)]
    return [None if endpoint is None else endpoint.slot for endpoint in picked]


# -- round-robin ------------------------------------------------------------------------------


def test_round_robin_starts_at_a_random_endpoint() -> None:
    firsts = Counter(choices(RoundRobin(), pool(4), FakeHealth(), 1)[0] for _ in range(400))
    assert set(firsts) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("size", "cursor", "failed", "overloaded", "exclude", "expected"),
    [
        # Each request advances by one, around the ring.
        (3, 0, (), (), (), [0, 1, 2, 0, 1, 2]),
        (3, 2, (), (), (), [2, 0, 1, 2]),
        (1, 0, (), (), (), [0, 0, 0]),
        # A failed or full endpoint is skipped, and the others share its load evenly.
        (3, 0, (1,), (), (), [0, 2, 0, 2, 0, 2]),
        (3, 0, (), (1,), (), [0, 2, 0, 2, 0, 2]),
        (4, 1, (1, 2), (), (), [3, 0, 3, 0]),
        (4, 0, (), (0, 3), (), [1, 2, 1, 2]),
        # Endpoints that already failed this request are not tried again.
        (3, 0, (), (), (0,), [1, 2, 1, 2]),
        # Nothing left: None, every time.
        (3, 0, (), (0, 1, 2), (), [None, None, None]),
        (3, 0, (), (), (0, 1, 2), [None, None]),
        (3, 0, (), (0,), (1, 2), [None, None]),
        (0, 0, (), (), (), [None, None]),
    ],
)
def test_round_robin_sequences(
    size: int,
    cursor: int,
    failed: tuple[int, ...],
    overloaded: tuple[int, ...],
    exclude: tuple[int, ...],
    expected: list[int | None],
) -> None:
    target = pool(size)
    target.cursor = cursor
    health = FakeHealth(failed, overloaded)
    assert choices(RoundRobin(), target, health, len(expected), exclude) == expected
    assert health.cleared == []


def test_round_robin_clears_marks_when_every_usable_endpoint_failed() -> None:
    target = pool(3)
    target.cursor = 1
    health = FakeHealth(failed=(0, 1, 2))
    assert choices(RoundRobin(), target, health, 1) == [1]
    assert sorted(health.cleared) == [0, 1, 2]
    assert health.failed == set()
    assert choices(RoundRobin(), target, health, 3) == [2, 0, 1]


def test_round_robin_all_failed_but_one_full_chooses_among_the_rest() -> None:
    target = pool(3)
    target.cursor = 0
    health = FakeHealth(failed=(0, 1, 2), overloaded=(0,))
    assert choices(RoundRobin(), target, health, 1) == [1]
    assert health.failed == set()


def test_round_robin_spreads_evenly_around_a_failed_endpoint() -> None:
    target = pool(5)
    picked = Counter(choices(RoundRobin(), target, FakeHealth(failed=(2,)), 400))
    assert picked == {0: 100, 1: 100, 3: 100, 4: 100}


# -- least-connection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_flight", "failed", "overloaded", "exclude", "expected"),
    [
        ({0: 5, 1: 2, 2: 9}, (), (), (), {1}),
        ({0: 0, 1: 2, 2: 9}, (), (), (), {0}),
        # Skips full, excluded and failed endpoints even when they have fewer requests.
        ({0: 5, 1: 2, 2: 9}, (), (1,), (), {0}),
        ({0: 5, 1: 2, 2: 9}, (), (), (1,), {0}),
        ({0: 5, 1: 2, 2: 9}, (1,), (), (), {0}),
        ({0: 5, 1: 2, 2: 9}, (), (0, 1), (), {2}),
        # Ties are broken at random, so both tied endpoints get requests.
        ({0: 3, 1: 1, 2: 1}, (), (), (), {1, 2}),
        ({}, (), (), (), {0, 1, 2}),
        # Nothing left.
        ({}, (), (0, 1, 2), (), {None}),
        ({}, (), (0,), (1, 2), {None}),
    ],
)
def test_least_connection_table(
    in_flight: dict[int, int],
    failed: tuple[int, ...],
    overloaded: tuple[int, ...],
    exclude: tuple[int, ...],
    expected: set[int | None],
) -> None:
    health = FakeHealth(failed, overloaded, in_flight)
    assert set(choices(LeastConnection(), pool(3), health, 200, exclude)) == expected
    assert health.cleared == []


def test_least_connection_clears_marks_when_every_usable_endpoint_failed() -> None:
    health = FakeHealth(failed=(0, 1, 2), in_flight={0: 4, 1: 1, 2: 3})
    assert choices(LeastConnection(), pool(3), health, 1) == [1]
    assert sorted(health.cleared) == [0, 1, 2]


def test_least_connection_empty_pool() -> None:
    assert choices(LeastConnection(), pool(0), FakeHealth(), 2) == [None, None]


# -- choosing the policy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route_option", "router_default", "chosen"),
    [
        ("", "round-robin", RoundRobin),
        ("", "least-connection", LeastConnection),
        ("least-connection", "round-robin", LeastConnection),
        ("round-robin", "least-connection", RoundRobin),
        ("unknown", "least-connection", LeastConnection),
    ],
)
def test_route_option_wins_over_router_default(
    route_option: str, router_default: str, chosen: type
) -> None:
    policy = policy_for(pool(2, load_balancing=route_option).load_balancing, router_default)
    assert isinstance(policy, chosen)


# -- failure marks ----------------------------------------------------------------------------


def test_failure_mark_expires_after_retry_after() -> None:
    marks = FailureMarks(retry_after=30.0)
    marks.mark(7, now=100.0)
    assert marks.is_failed(7, now=100.0)
    assert marks.is_failed(7, now=129.9)
    assert not marks.is_failed(8, now=100.0)
    assert len(marks) == 1
    assert repr(marks) == "FailureMarks(failed=[7], retry_after=30.0)"
    assert not marks.is_failed(7, now=130.0)
    assert len(marks) == 0


def test_failure_mark_again_restarts_the_window() -> None:
    marks = FailureMarks(retry_after=30.0)
    marks.mark(1, now=0.0)
    marks.mark(1, now=20.0)
    assert marks.is_failed(1, now=45.0)
    assert not marks.is_failed(1, now=50.0)


def test_failure_marks_clear() -> None:
    marks = FailureMarks(retry_after=30.0)
    for slot in (1, 2, 3):
        marks.mark(slot, now=0.0)
    marks.clear([1, 3, 99])
    assert [marks.is_failed(slot, now=1.0) for slot in (1, 2, 3)] == [False, True, False]


# -- slots ------------------------------------------------------------------------------------


def test_slots_are_distinct_and_shared_by_references() -> None:
    slots = SlotAllocator(capacity=8, grace_seconds=10.0)
    a = slots.acquire("a:1", now=0.0)
    b = slots.acquire("b:1", now=0.0)
    assert a != b
    assert slots.acquire("a:1", now=0.0) == a  # a second route for the same address
    assert len(slots) == 2
    slots.release("a:1", now=1.0)
    assert slots.slot_of("a:1") == a  # one route still uses it
    slots.release("a:1", now=1.0)
    assert slots.slot_of("a:1") is None
    assert len(slots) == 1


def test_freed_slot_cools_down_before_reuse() -> None:
    slots = SlotAllocator(capacity=2, grace_seconds=10.0)
    a = slots.acquire("a:1", now=0.0)
    b = slots.acquire("b:1", now=0.0)
    slots.release("a:1", now=5.0)
    # During the grace period another address may not take the slot.
    assert not slots.can_acquire("c:1", now=14.9)
    with pytest.raises(SlotsExhausted):
        slots.acquire("c:1", now=14.9)
    # The address that left may come back to its own slot.
    assert slots.can_acquire("a:1", now=14.9)
    assert slots.acquire("a:1", now=14.9) == a
    slots.release("a:1", now=20.0)
    assert not slots.can_acquire("c:1", now=29.9)
    assert slots.can_acquire("c:1", now=30.0)
    assert slots.acquire("c:1", now=30.0) == a
    assert slots.slot_of("b:1") == b


def test_address_back_after_its_grace_period_may_get_its_slot_again() -> None:
    slots = SlotAllocator(capacity=4, grace_seconds=10.0)
    a = slots.acquire("a:1", now=0.0)
    slots.release("a:1", now=0.0)
    assert slots.acquire("a:1", now=100.0) == a
    # The stale cooling entry must not free the slot under its new owner.
    assert slots.acquire("b:1", now=200.0) != a


def test_lowest_free_slot_is_reused_first() -> None:
    slots = SlotAllocator(capacity=4, grace_seconds=0.0)
    for name in "abcd":
        slots.acquire(name, now=0.0)
    slots.release("c", now=1.0)
    slots.release("b", now=1.0)
    assert slots.acquire("x", now=2.0) == 1
    assert slots.acquire("y", now=2.0) == 2
    assert repr(slots) == "SlotAllocator(used=4, cooling=0, free=0, capacity=4)"


def test_release_of_unknown_address_is_harmless() -> None:
    slots = SlotAllocator(capacity=1, grace_seconds=1.0)
    slots.release("nobody", now=0.0)
    assert slots.acquire("a", now=0.0) == 0


# -- prune decisions --------------------------------------------------------------------------

KEY = RouteKey("app.example.com")


def age(address: str, last_seen: float, threshold: int = 120, tls: bool = False) -> EndpointAge:
    return EndpointAge(KEY, address, last_seen, threshold, tls)


@pytest.mark.parametrize(
    ("ages", "stale"),
    [
        ([age("fresh:1", 1000.0)], []),
        ([age("edge:1", 880.0)], []),  # exactly at the threshold: not yet stale
        ([age("old:1", 879.0)], ["old:1"]),
        ([age("old:1", 0.0, tls=True)], []),  # TLS endpoints are never pruned by age
        ([age("short:1", 969.0, threshold=30)], ["short:1"]),
        ([age("a:1", 0.0), age("b:1", 999.0), age("c:1", 0.0, tls=True), age("d:1", 1.0)],
         ["a:1", "d:1"]),
    ],
)  # fmt: skip
def test_plan_prune_while_connected(ages: list[EndpointAge], stale: list[str]) -> None:
    plan = plan_prune(
        1000.0, ages, nats_connected=True, suspend_when_disconnected=True, was_suspended=False
    )
    assert plan == PrunePlan(stale=tuple((KEY, address) for address in stale))


def test_plan_prune_suspends_while_nats_is_unavailable() -> None:
    plan = plan_prune(
        1000.0,
        [age("old:1", 0.0)],
        nats_connected=False,
        suspend_when_disconnected=True,
        was_suspended=False,
    )
    assert plan == PrunePlan(suspended=True)


def test_plan_prune_freshens_everything_on_the_first_cycle_after_suspension() -> None:
    plan = plan_prune(
        1000.0,
        [age("old:1", 0.0)],
        nats_connected=True,
        suspend_when_disconnected=True,
        was_suspended=True,
    )
    assert plan == PrunePlan(freshen_all=True)


def test_plan_prune_without_suspension_prunes_even_when_disconnected() -> None:
    plan = plan_prune(
        1000.0,
        [age("old:1", 0.0)],
        nats_connected=False,
        suspend_when_disconnected=False,
        was_suspended=False,
    )
    assert plan == PrunePlan(stale=((KEY, "old:1"),))


# -- isolation segments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "mode", "configured", "served"),
    [
        ("", "all", (), True),
        ("seg-a", "all", (), True),
        ("seg-a", "all", ("seg-b",), True),
        ("", "segments", ("seg-a",), False),
        ("seg-a", "segments", ("seg-a",), True),
        ("seg-b", "segments", ("seg-a",), False),
        ("", "shared-and-segments", ("seg-a",), True),
        ("seg-a", "shared-and-segments", ("seg-a",), True),
        ("seg-b", "shared-and-segments", ("seg-a",), False),
        ("", "shared-and-segments", (), True),
    ],
)
def test_is_served(
    segment: str, mode: ShardingMode, configured: tuple[str, ...], served: bool
) -> None:
    assert is_served(segment, mode, frozenset(configured)) is served

"""The HTTP/2 frame budgets, without sockets: a burst, then a steady rate."""

from __future__ import annotations

from router.http2.limits import Budget


def test_a_burst_is_allowed_then_refused() -> None:
    budget = Budget(burst=3, rate=1.0, now=0.0)
    assert [budget.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_the_budget_refills_at_its_rate_up_to_the_burst() -> None:
    budget = Budget(burst=3, rate=10.0, now=0.0)
    for _ in range(3):
        assert budget.take(0.0)
    assert not budget.take(0.05)  # half a token back
    assert budget.take(0.1)  # one token back
    assert not budget.take(0.1)
    # A long quiet spell refills to the burst, not beyond.
    assert [budget.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_a_steady_client_within_the_rate_is_never_refused() -> None:
    budget = Budget(burst=5, rate=100.0, now=0.0)
    assert all(budget.take(n / 50) for n in range(1000))  # 50 a second for 20 s


def test_a_clock_that_goes_back_refills_nothing() -> None:
    budget = Budget(burst=1, rate=1.0, now=10.0)
    assert budget.take(10.0)
    assert not budget.take(5.0)
    assert repr(budget) == "Budget(0/1, 1.0/s)"

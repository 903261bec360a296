"""How often repeating failures may log: sampled events and reported losses, as tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.log_rates import LogSampler, LossReport, LossTally, Suppressed

LOG, HELD = (True, None), (False, None)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # limit 2 per 10 s: the first two of a window are logged, the rest counted.
        ([0.0, 1.0, 2.0, 3.0], [LOG, LOG, HELD, HELD]),
        # The first event after the window reports what the window held back.
        ([0.0, 1.0, 2.0, 10.0], [LOG, LOG, HELD, (True, Suppressed(1, 0.0))]),
        # Nothing held back: no summary when the window ends.
        ([0.0, 10.0, 25.0], [LOG, LOG, LOG]),
        # A window starts at its first event, not on a fixed grid.
        ([5.0, 6.0, 7.0, 14.0, 15.0], [LOG, LOG, HELD, HELD, (True, Suppressed(2, 5.0))]),
    ],
)  # fmt: skip
def test_sampler_admits_the_first_of_each_window(
    times: list[float], expected: list[tuple[bool, Suppressed | None]]
) -> None:
    sampler = LogSampler(limit=2, interval=10.0)
    assert [sampler.admit(now) for now in times] == expected


def test_sampler_window_closes_without_a_new_event() -> None:
    sampler = LogSampler(limit=1, interval=10.0)
    for now in (0.0, 0.1, 0.2):
        sampler.admit(now)
    assert sampler.suppressed == 2
    assert sampler.close_window(9.9) is None
    assert sampler.close_window(sampler.window_ends_at) == Suppressed(2, 0.0)
    assert sampler.close_window(20.0) is None  # reported once
    assert repr(sampler) == "LogSampler(limit=1, interval=10.0, admitted=0, suppressed=0)"


@given(st.lists(st.floats(min_value=0, max_value=1000), max_size=300), st.integers(0, 5))
def test_sampler_counts_every_event_once(times: list[float], limit: int) -> None:
    """Logged + summarised = all events, and at most `limit` logged per window."""
    sampler = LogSampler(limit=limit, interval=10.0)
    logged = summarised = 0
    for now in sorted(times):
        admitted, due = sampler.admit(now)
        logged += admitted
        summarised += due.count if due else 0
    final = sampler.close_window(2000.0)
    summarised += final.count if final else 0
    assert logged + summarised == len(times)
    assert logged <= limit * (len(times) + 1)


def test_sampler_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="interval"):
        LogSampler(limit=1, interval=0)


def test_loss_tally_reports_once_per_interval_then_on_resume() -> None:
    tally = LossTally(interval=10.0)
    assert tally.written(0.0) is None  # nothing failed: nothing to say
    assert tally.lose(3, "ENOSPC", 1.0) == LossReport(3, 3, "ENOSPC", resumed=False)
    assert tally.lose(5, "ENOSPC", 2.0) is None
    assert tally.lose(1, "EIO", 5.0) is None
    assert tally.due(10.9) is None
    assert tally.due(11.0) == LossReport(6, 9, "EIO", resumed=False)
    assert tally.due(30.0) is None  # nothing lost since
    assert tally.lose(2, "ENOSPC", 31.0) == LossReport(2, 11, "ENOSPC", resumed=False)
    assert tally.lose(4, "ENOSPC", 32.0) is None
    assert tally.is_failing
    assert tally.written(33.0) == LossReport(4, 15, "ENOSPC", resumed=True)
    assert not tally.is_failing
    assert tally.written(34.0) is None
    assert repr(tally) == "LossTally(lost=0, total=15, failing=False)"

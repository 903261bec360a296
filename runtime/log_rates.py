"""How often a repeating failure may write to the component log: decisions only, no I/O.

A flood of bad input or a full disk must cost a bounded number of log lines, yet nothing may go
unseen: every event is counted, and what is not logged one by one is reported as a count.

- `LogSampler`: the first `limit` events of each `interval` are logged whole; the rest are
  counted and reported once, as a summary, when the interval is over.
- `LossTally`: lines lost to failed writes, reported at most once per `interval`, and once more
  when writing works again.

Callers pass the time in (`now`, seconds); nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Suppressed:
    """Events counted but not logged during the window that started at `since`."""

    count: int
    since: float


class LogSampler:
    """Admits the first `limit` events of each `interval`; counts the rest."""

    __slots__ = ("_admitted", "_suppressed", "_window_start", "interval", "limit")

    def __init__(self, limit: int, interval: float) -> None:
        if limit < 0 or interval <= 0:
            raise ValueError(f"limit must be >= 0 and interval > 0, not {limit}, {interval}")
        self.limit = limit
        self.interval = interval
        self._window_start = -math.inf
        self._admitted = 0
        self._suppressed = 0

    def __repr__(self) -> str:
        return (
            f"LogSampler(limit={self.limit}, interval={self.interval}, "
            f"admitted={self._admitted}, suppressed={self._suppressed})"
        )

    @property
    def window_started_at(self) -> float:
        return self._window_start

    @property
    def window_ends_at(self) -> float:
        return self._window_start + self.interval

    @property
    def suppressed(self) -> int:
        """Events held back in the current window, not yet reported."""
        return self._suppressed

    def admit(self, now: float) -> tuple[bool, Suppressed | None]:
        """Whether to log this event, and the summary of a finished window that is now due."""
        due = self.close_window(now)
        if self._admitted < self.limit:
            self._admitted += 1
            return True, due
        self._suppressed += 1
        return False, due

    def close_window(self, now: float) -> Suppressed | None:
        """End the window if its time is up; the summary to log when events were held back."""
        if now < self.window_ends_at:
            return None
        due = Suppressed(self._suppressed, self._window_start) if self._suppressed else None
        self._window_start = now
        self._admitted = 0
        self._suppressed = 0
        return due


@dataclass(frozen=True)
class LossReport:
    """What to log about lost lines: `lost` since the previous report, `total` ever."""

    lost: int
    total: int
    error: str
    resumed: bool


class LossTally:
    """Counts lines lost to write failures; says when a report is due."""

    __slots__ = ("_failing", "_reported_at", "error", "interval", "lost", "total")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lost = 0  # since the last report
        self.total = 0
        self.error = ""
        self._failing = False
        self._reported_at = -math.inf

    def __repr__(self) -> str:
        return f"LossTally(lost={self.lost}, total={self.total}, failing={self._failing})"

    @property
    def is_failing(self) -> bool:
        return self._failing

    def lose(self, lines: int, error: str, now: float) -> LossReport | None:
        """Lines that will never be written; a report when one is due."""
        self.lost += lines
        self.total += lines
        self.error = error
        self._failing = True
        return self.due(now)

    def due(self, now: float) -> LossReport | None:
        """A failure report if lines were lost and the last report is `interval` old."""
        if not self.lost or now - self._reported_at < self.interval:
            return None
        return self._report(now, resumed=False)

    def written(self, now: float) -> LossReport | None:
        """A write succeeded: after failures, the report that says writing resumed."""
        if not self._failing:
            return None
        self._failing = False
        return self._report(now, resumed=True)

    def _report(self, now: float, resumed: bool) -> LossReport:
        report = LossReport(self.lost, self.total, self.error, resumed)
        self.lost = 0
        self._reported_at = now
        return report

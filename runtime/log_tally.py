"""A failure that can repeat thousands of times a second, logged once per interval with a count.

The first failure of a spell is logged at once, so the operator sees it start. Its owner then
calls `tick()` every `interval`: a tick that finds new failures logs how many (one line per
interval however many there were); the first tick that finds none logs the end of the spell.
Failures that stop and resume within an interval are one spell, so flapping at a limit writes
no more lines than a steady failure does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from runtime.logs import ERROR, INFO, EventLog


class LogTally:
    """Counts one kind of failure and writes the lines about it."""

    __slots__ = (
        "_clock",
        "_log",
        "_started",
        "end_event",
        "event",
        "interval",
        "total",
        "unreported",
    )

    def __init__(
        self,
        log: EventLog,
        event: str,
        end_event: str,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self.event = event
        self.end_event = end_event
        self.interval = interval
        self._clock = clock
        self.total = 0
        self.unreported = 0
        self._started: float | None = None

    def __repr__(self) -> str:
        return (
            f"LogTally({self.event!r}, total={self.total}, unreported={self.unreported}, "
            f"in_spell={self.in_spell})"
        )

    @property
    def in_spell(self) -> bool:
        return self._started is not None

    def add(self, **fields: Any) -> bool:
        """One more failure. True when it starts a spell: it is logged, and ticks are due."""
        self.total += 1
        self.unreported += 1
        if self._started is not None:
            return False
        self._started = self._clock()
        self._line(ERROR, self.event, fields)
        return True

    def tick(self, **fields: Any) -> bool:
        """Once per interval during a spell: log the new failures, or the end. True: tick again."""
        if self._started is None:
            return False
        if self.unreported:
            self._line(ERROR, self.event, fields)
            return True
        self._line(INFO, self.end_event, fields)
        self._started = None
        return False

    def _line(self, level: int, event: str, fields: dict[str, Any]) -> None:
        assert self._started is not None
        data = {
            "count": self.unreported,
            "total": self.total,
            "seconds": round(self._clock() - self._started, 3),
            **fields,
        }
        self._log.emit(level, event, data)
        self.unreported = 0

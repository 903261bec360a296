"""Request rates as Gorouter's /varz shows them, worked out from counters that only grow.

Gorouter marks a go-metrics Meter on every routed request (`rate`: exponentially weighted rates
over 1, 5 and 15 minutes, `requests_per_sec` the first) and keeps per-app request marks for a
minute (`top10_app_requests`). routerd's workers only count; the supervisor turns the counts into
the same figures whenever /varz or /metrics is read. Reads come at any interval, so the moving
averages decay by the time that really passed (a continuous-time EWMA), not per fixed tick.

Nothing here does I/O: callers pass the clock and the counts.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, Final

# go-metrics' Meter windows: Rate1, Rate5, Rate15.
RATE_WINDOWS: Final = (60.0, 300.0, 900.0)
# Gorouter's TopAppsEntryLifetime: top10_app_requests counts the last minute.
TOP_APPS_WINDOW: Final = 60.0
TOP_APPS_COUNT: Final = 10
# Samples of the per-endpoint counts kept for that minute are at least this far apart (go-metrics
# ticks every 5 s), so frequent scrapes cost no more memory than a scrape every 5 s.
SAMPLE_SPACING: Final = 5.0


class Meter:
    """Exponentially weighted rates (per second) of a count that only grows."""

    __slots__ = ("_count", "_time", "rates", "started")

    def __init__(self, now: float, count: int = 0) -> None:
        self._time = now
        self._count = count
        self.started = False
        self.rates = [0.0] * len(RATE_WINDOWS)

    def __repr__(self) -> str:
        shown = ", ".join(f"{rate:.3f}" for rate in self.rates)
        return f"Meter(count={self._count}, rates=[{shown}])"

    def update(self, now: float, count: int) -> list[float]:
        """The rates once `count` is reached at `now`."""
        elapsed = now - self._time
        if elapsed <= 0:
            return list(self.rates)
        instant = max(0, count - self._count) / elapsed
        for index, window in enumerate(RATE_WINDOWS):
            if self.started:
                alpha = 1.0 - math.exp(-elapsed / window)
                self.rates[index] += alpha * (instant - self.rates[index])
            else:
                # As go-metrics does on its first tick: the first interval's rate, undamped.
                self.rates[index] = instant
        self.started = True
        self._time, self._count = now, count
        return list(self.rates)


class TopApps:
    """The apps that got the most requests in the last minute, from per-endpoint-slot counts."""

    __slots__ = ("_samples",)

    def __init__(self, now: float) -> None:
        self._samples: deque[tuple[float, array[int]]] = deque([(now, array("Q"))])

    def __repr__(self) -> str:
        return f"TopApps(samples={len(self._samples)})"

    def update(
        self,
        now: float,
        routed: array[int],
        apps_of: Callable[[Iterable[int]], dict[int, str]],
    ) -> list[dict[str, Any]]:
        """`routed[slot]`: requests ever routed to the endpoint in `slot`. `apps_of(slots)`: the
        app id of each of those slots (slots of no app left out)."""
        samples = self._samples
        # The base is the newest sample at least a minute old (or the oldest there is).
        while len(samples) > 1 and samples[1][0] <= now - TOP_APPS_WINDOW:
            samples.popleft()
        base_time, base = samples[0]
        deltas: dict[int, int] = {}
        known = len(base)
        for slot, total in enumerate(routed):
            before = base[slot] if slot < known else 0
            if total > before:
                deltas[slot] = total - before
        per_app: Counter[str] = Counter()
        for slot, app in apps_of(deltas).items():
            if app:
                per_app[app] += deltas[slot]
        # Scraped less often than once a minute, the last minute is estimated from the interval.
        elapsed = now - base_time
        scale = 1.0 if elapsed <= TOP_APPS_WINDOW else TOP_APPS_WINDOW / elapsed
        top = sorted(per_app.items(), key=lambda item: (-item[1], item[0]))[:TOP_APPS_COUNT]
        if now - samples[-1][0] >= SAMPLE_SPACING:
            samples.append((now, routed))
        result = []
        for app, count in top:
            rpm = int(count * scale)
            result.append({"application_id": app, "rps": rpm // int(TOP_APPS_WINDOW), "rpm": rpm})
        return result

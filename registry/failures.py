"""Failed-endpoint marks, kept by each worker (Gorouter marks endpoints per router, too).

A failed endpoint is skipped for `droplet_stale_threshold / 4`; the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable


class FailureMarks:
    __slots__ = ("_failed_at", "retry_after")

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        self._failed_at: dict[int, float] = {}

    def __repr__(self) -> str:
        return f"FailureMarks(failed={sorted(self._failed_at)}, retry_after={self.retry_after})"

    def __len__(self) -> int:
        return len(self._failed_at)

    def mark(self, slot: int, now: float) -> None:
        self._failed_at[slot] = now

    def __bool__(self) -> bool:
        return bool(self._failed_at)

    def is_failed(self, slot: int, now: float) -> bool:
        failed_at = self._failed_at.get(slot)
        if failed_at is None:
            return False
        if now - failed_at >= self.retry_after:
            del self._failed_at[slot]
            return False
        return True

    def clear(self, slots: Iterable[int]) -> None:
        for slot in slots:
            self._failed_at.pop(slot, None)

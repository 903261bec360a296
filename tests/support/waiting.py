"""Waiting on conditions with deadlines; never on fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tests.support.launcher import ProcessExited

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    pass


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy; return it, or fail after `timeout`.

    An exception from `predicate` counts as "not yet" (and is named if time runs out), except
    ProcessExited: a process it waits on has died, and waiting longer cannot help."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except ProcessExited:
            raise
        except Exception as exc:  # the condition may raise until it holds (e.g. connection refused)
            last_error = exc
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise ConditionTimeout(
                f"timed out after {timeout}s waiting for {what or predicate}{detail}"
            )
        time.sleep(interval)

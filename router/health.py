"""This worker's answers to the balancing policies: failure marks plus shared in-flight counts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from registry.failures import FailureMarks
from registry.records import EndpointRecord
from registry.shm.counters import CounterTable


class WorkerHealth:
    """Implements registry.policy.EndpointHealth for one worker."""

    def __init__(
        self,
        counters: CounterTable,
        max_conns: int,
        retry_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counters = counters
        self.max_conns = max_conns
        self.marks = FailureMarks(retry_after)
        self.clock = clock

    def __repr__(self) -> str:
        return f"WorkerHealth(max_conns={self.max_conns}, {self.marks!r})"

    def is_failed(self, endpoint: EndpointRecord) -> bool:
        marks = self.marks
        # Usually nothing is marked: skip reading the clock.
        return bool(marks) and marks.is_failed(endpoint.slot, self.clock())

    def clear_failures(self, endpoints: Sequence[EndpointRecord]) -> None:
        self.marks.clear(endpoint.slot for endpoint in endpoints)

    def mark_failed(self, endpoint: EndpointRecord) -> None:
        self.marks.mark(endpoint.slot, self.clock())

    def is_overloaded(self, endpoint: EndpointRecord) -> bool:
        return self.max_conns > 0 and self.counters.in_flight(endpoint.slot) >= self.max_conns

    def in_flight(self, endpoint: EndpointRecord) -> int:
        return self.counters.in_flight(endpoint.slot)

"""The soak's bar and its accounting: what counts as a failure, and which fault was active.

Plain values, no I/O. The bar is zero failures: no response outside 2xx (traffic, probes,
keep-alive rounds), no request left without a response, and no due route missing, during the
run or at the end. One exception is counted but excused: a request that got no response
within EXCUSED_AFTER_KILL seconds of a worker kill -9 was on the killed worker's connection,
and no proxy can answer from a process that is gone. A status answered in that window, or a
connection error later, is not excused.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

EXCUSED_AFTER_KILL = 2.0
# routerd's own answers that mean "I have no such route (or no endpoint for it)".
LOST_ROUTE_ANSWERS = {(404, "unknown_route"), (503, "no_endpoints")}


class Outcome(enum.Enum):
    NON_2XX = "non-2xx"
    ERROR = "no response"
    ROUTE_LOST = "route lost"


@dataclass(frozen=True)
class Failure:
    at: float  # monotonic seconds
    source: str  # traffic, probe, keepalive or final
    outcome: Outcome
    host: str
    detail: str


def classify(status: int | None, router_error: str, error: str) -> tuple[Outcome, str] | None:
    """None for a success; else the outcome and a short detail."""
    if status is None:
        return Outcome.ERROR, error
    if 200 <= status < 300:
        return None
    detail = f"{status} {router_error}".strip()
    if (status, router_error) in LOST_ROUTE_ANSWERS:
        return Outcome.ROUTE_LOST, detail
    return Outcome.NON_2XX, detail


@dataclass
class Window:
    """One fault's turn: from its injection until the next fault's."""

    name: str
    number: int  # the how-many-th time this fault runs
    start: float
    end: float | None = None

    @property
    def title(self) -> str:
        return f"{self.name} #{self.number}"


@dataclass
class Timeline:
    started: float
    windows: list[Window] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)  # when a worker got SIGKILL
    finished: float | None = None

    def begin(self, name: str, now: float) -> Window:
        if self.windows and self.windows[-1].end is None:
            self.windows[-1].end = now
        number = 1 + sum(window.name == name for window in self.windows)
        window = Window(name, number, now)
        self.windows.append(window)
        return window

    def finish(self, now: float) -> None:
        """The last fault's turn is over; what follows is the final check."""
        if self.windows and self.windows[-1].end is None:
            self.windows[-1].end = now
        self.finished = now

    def window_at(self, moment: float) -> Window | None:
        for window in reversed(self.windows):
            if window.start <= moment and (window.end is None or moment < window.end):
                return window
        return None

    def phase_at(self, moment: float) -> str:
        """The fault active at `moment`, or the quiet phase before or after them."""
        window = self.window_at(moment)
        if window is not None:
            return window.title
        if self.finished is not None and moment >= self.finished:
            return "final check"
        return "warm-up"

    def is_excused(self, failure: Failure) -> bool:
        return failure.outcome is Outcome.ERROR and any(
            0 <= failure.at - kill <= EXCUSED_AFTER_KILL for kill in self.kills
        )


@dataclass
class Group:
    """Failures of one outcome and source during one fault's turn."""

    phase: str
    outcome: Outcome
    source: str
    count: int = 0
    first: Failure | None = None
    hosts: set[str] = field(default_factory=set)


@dataclass
class Verdict:
    failures: int
    excused: int
    groups: list[Group]
    lost_at_end: list[str]

    @property
    def passed(self) -> bool:
        return self.failures == 0 and not self.lost_at_end


def judge(failures: Iterable[Failure], timeline: Timeline, lost_at_end: Sequence[str]) -> Verdict:
    groups: dict[tuple[str, Outcome, str], Group] = {}
    counted = excused = 0
    for failure in sorted(failures, key=lambda failure: failure.at):
        if timeline.is_excused(failure):
            excused += 1
            continue
        counted += 1
        phase = timeline.phase_at(failure.at)
        key = (phase, failure.outcome, failure.source)
        group = groups.setdefault(key, Group(phase, failure.outcome, failure.source))
        group.count += 1
        group.first = group.first or failure
        group.hosts.add(failure.host)
    return Verdict(counted, excused, list(groups.values()), sorted(lost_at_end))


def verdict_lines(verdict: Verdict, timeline: Timeline, limit: int = 40) -> list[str]:
    """Each group of failures with the fault active when its first one happened."""
    lines = []
    for group in verdict.groups[:limit]:
        first = group.first
        assert first is not None
        window = timeline.window_at(first.at)
        into = f" ({first.at - window.start:.1f} s into it)" if window else ""
        lines.append(
            f"  during {group.phase}{into}: {group.count:,} {group.outcome.value} "
            f"from {group.source} on {len(group.hosts):,} host(s); first at "
            f"{first.at - timeline.started:.1f} s: {first.host} {first.detail}"
        )
    if len(verdict.groups) > limit:
        lines.append(f"  ... and {len(verdict.groups) - limit} more groups (see the JSON)")
    if verdict.lost_at_end:
        shown = ", ".join(verdict.lost_at_end[:10])
        more = f" and {len(verdict.lost_at_end) - 10} more" if len(verdict.lost_at_end) > 10 else ""
        lines.append(
            f"  at the end: {len(verdict.lost_at_end):,} due route(s) not routable: {shown}{more}"
        )
    return lines

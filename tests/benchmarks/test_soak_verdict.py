"""The soak's bar, without processes: what counts, what is excused, which fault is charged."""

from __future__ import annotations

import pytest

from benchmarks.soak_routes import Kind, RouteBook
from benchmarks.soak_verdict import (
    EXCUSED_AFTER_KILL,
    Failure,
    Outcome,
    Timeline,
    classify,
    judge,
    verdict_lines,
)


@pytest.mark.parametrize(
    ("status", "router_error", "error", "expected"),
    [
        (200, "", "", None),
        (204, "", "", None),
        (404, "unknown_route", "", (Outcome.ROUTE_LOST, "404 unknown_route")),
        (503, "no_endpoints", "", (Outcome.ROUTE_LOST, "503 no_endpoints")),
        (404, "", "", (Outcome.NON_2XX, "404")),  # the backend's own 404
        (502, "endpoint_failure (x)", "", (Outcome.NON_2XX, "502 endpoint_failure (x)")),
        (301, "", "", (Outcome.NON_2XX, "301")),
        (None, "", "ConnectionResetError", (Outcome.ERROR, "ConnectionResetError")),
    ],
)
def test_classify(
    status: int | None, router_error: str, error: str, expected: tuple[Outcome, str] | None
) -> None:
    assert classify(status, router_error, error) == expected


def failure(at: float, outcome: Outcome = Outcome.ERROR, host: str = "a") -> Failure:
    return Failure(at, "traffic", outcome, host, "detail")


def test_failures_are_charged_to_the_fault_whose_turn_it_was() -> None:
    timeline = Timeline(started=100.0)
    timeline.begin("worker-kill", 105.0)
    timeline.begin("nats-freeze", 125.0)
    timeline.finish(145.0)

    verdict = judge(
        [
            failure(101.0, Outcome.NON_2XX),
            failure(130.0, Outcome.ROUTE_LOST, "x"),
            failure(131.0, Outcome.ROUTE_LOST, "y"),
            failure(146.0, Outcome.ROUTE_LOST, "x"),
        ],
        timeline,
        ["x"],
    )

    assert not verdict.passed
    assert verdict.failures == 4
    summary = [(g.phase, g.outcome, g.count, len(g.hosts)) for g in verdict.groups]
    assert summary == [
        ("warm-up", Outcome.NON_2XX, 1, 1),
        ("nats-freeze #1", Outcome.ROUTE_LOST, 2, 2),
        ("final check", Outcome.ROUTE_LOST, 1, 1),
    ]
    lines = verdict_lines(verdict, timeline)
    assert lines[1].startswith("  during nats-freeze #1 (5.0 s into it): 2 route lost")
    assert lines[-1] == "  at the end: 1 due route(s) not routable: x"


def test_only_a_missing_response_right_after_a_worker_kill_is_excused() -> None:
    timeline = Timeline(started=0.0)
    timeline.begin("worker-kill", 10.0)
    timeline.kills.append(10.0)

    verdict = judge(
        [
            failure(10.5),  # on the killed worker's connection: excused
            failure(10.0 + EXCUSED_AFTER_KILL + 0.5),  # later: counted
            failure(10.5, Outcome.NON_2XX),  # a status is never excused
            failure(9.9),  # before the kill: counted
        ],
        timeline,
        [],
    )

    assert verdict.excused == 1
    assert verdict.failures == 3


def test_a_clean_run_passes() -> None:
    timeline = Timeline(started=0.0)
    timeline.begin("churn", 1.0)
    timeline.finish(2.0)
    assert judge([], timeline, []).passed


def test_the_book_expects_routes_after_settling_and_not_while_they_churn() -> None:
    book = RouteBook(settle=5.0)
    [watched] = book.add(Kind.WATCHED, 1, 8080)
    churned = book.add(Kind.CHURN, 2, 8080)
    book.registered([watched, *churned], now=10.0)
    assert book.due(14.9) == []
    assert book.due(15.0) == [watched, *churned]

    book.churning(churned)
    assert book.due(20.0) == [watched]
    assert book.expected_count() == 1
    assert len(book.heartbeats()) == 1

    book.lost_on_purpose(watched)
    assert book.due(20.0) == [watched]  # still expected to serve ...
    assert book.heartbeats() == []  # ... while nobody keeps it alive
    assert watched.message() == (
        b'{"host":"127.0.0.1","port":8080,"uris":["watched-0.soak.example.com"]}'
    )

"""Gorouter's access log line, character for character, and its timestamps across seconds."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from registry.records import EndpointRecord
from router.accesslog import Timestamps, access_line, line_values, seconds
from router.exchange import Exchange, ProxyRequest
from router.headers import RequestFacts
from tests.support.clock import ManualClock

RECEIVED_AT = 1_700_000_000.25  # 2023-11-14T22:13:20.25Z


def exchange(
    target: str = "/items/7?q=1", user_agent: bytes = b"curl/8.0", routed: bool = True
) -> Exchange:
    request = ProxyRequest(
        method="GET",
        target=target,
        host_header="app.example.com",
        version="HTTP/1.1",
        raw_headers=[],
        client_ip="127.0.0.1",
        client_port=50000,
        local_ip="127.0.0.1",
        received_at=RECEIVED_AT,
    )
    ex = Exchange(request, t0=100.0)
    facts = RequestFacts()
    facts.user_agent = user_agent
    facts.forwarded_for = b"10.1.2.3, 127.0.0.1"
    facts.forwarded_proto = b"http"
    ex.facts = facts
    ex.request_id = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
    if routed:
        ex.endpoint = EndpointRecord(
            slot=3,
            host="10.0.0.5",
            port=8080,
            app_id="app-guid-1",
            instance_id="inst-1",
            instance_index="2",
        )
        ex.backend = "10.0.0.5:8080"
        ex.backend_started = 100.0004
        ex.status = 200
    else:
        ex.status = 404
        ex.router_error = "unknown_route"
    return ex


def format_line(ex: Exchange, received: int, sent: int, elapsed: float) -> str:
    return access_line(line_values(ex, received, sent, elapsed), Timestamps())


def test_a_proxied_request_is_gorouters_line() -> None:
    line = format_line(exchange(), 5, 42, 0.003121)
    assert line == (
        'app.example.com - [2023-11-14T22:13:20.250000000Z] "GET /items/7?q=1 HTTP/1.1" '
        '200 5 42 "-" "curl/8.0" "127.0.0.1:50000" "10.0.0.5:8080" '
        'x_forwarded_for:"10.1.2.3, 127.0.0.1" x_forwarded_proto:"http" '
        'vcap_request_id:"1b4e28ba-2fa1-41d2-883f-0016d3cca427" response_time:0.003121 '
        'gorouter_time:0.000400 app_id:"app-guid-1" app_index:"2" instance_id:"inst-1" '
        'x_cf_routererror:"-"\n'
    )


def test_a_request_the_router_answered_has_dashes_for_the_backend() -> None:
    ex = exchange(routed=False)
    ex.facts = None  # refused before its headers were read
    line = format_line(ex, 0, 60, 0.0002)
    assert line == (
        'app.example.com - [2023-11-14T22:13:20.250000000Z] "GET /items/7?q=1 HTTP/1.1" '
        '404 0 60 "-" "-" "127.0.0.1:50000" "-" x_forwarded_for:"-" x_forwarded_proto:"-" '
        'vcap_request_id:"1b4e28ba-2fa1-41d2-883f-0016d3cca427" response_time:0.000200 '
        'gorouter_time:0.000200 app_id:"-" app_index:"-" instance_id:"-" '
        'x_cf_routererror:"unknown_route"\n'
    )


def test_no_status_and_no_times_are_quoted_dashes() -> None:
    ex = exchange(routed=False)
    ex.status = 0
    line = format_line(ex, 0, 0, -1.0)
    assert ' "GET /items/7?q=1 HTTP/1.1" "-" 0 0 ' in line
    assert 'response_time:"-" gorouter_time:"-" ' in line


def test_quotes_and_control_bytes_are_escaped_as_go_quotes_them() -> None:
    agent = b'agent "x" \\ \n\t\r\x01\x7f \xe9'
    line = format_line(exchange(user_agent=agent), 0, 0, 0.001)
    # One line whatever the client sent; other fields are untouched by the escaping.
    assert line.count("\n") == 1
    assert ' "-" "agent \\"x\\" \\\\ \\n\\t\\r\\x01\\x7f \xe9" "127.0.0.1:50000" ' in line
    assert ' "GET /items/7?q=1 HTTP/1.1" 200 ' in line
    assert ' app_id:"app-guid-1" app_index:"2" instance_id:"inst-1" ' in line


def test_an_escape_in_the_target_leaves_other_fields_plain() -> None:
    line = format_line(exchange(target='/a"b'), 0, 0, 0.001)
    assert ' "GET /a\\"b HTTP/1.1" 200 0 0 "-" "curl/8.0" ' in line


def test_timestamps_follow_the_clock_across_seconds() -> None:
    clock = ManualClock(1_700_000_000.75)
    stamps = Timestamps()
    assert stamps.format(clock()) == "2023-11-14T22:13:20.750000000Z"
    clock.now = 1_700_000_001.5  # the next second: the cached part is made again
    assert stamps.format(clock()) == "2023-11-14T22:13:21.500000000Z"
    clock.now = 1_700_000_001.25
    assert stamps.format(clock()) == "2023-11-14T22:13:21.250000000Z"
    clock.now = 1_700_000_000.5  # the wall clock stepped back a second
    assert stamps.format(clock()) == "2023-11-14T22:13:20.500000000Z"


def test_timestamps_keep_the_nanoseconds_leading_zeros() -> None:
    stamps = Timestamps()
    assert stamps.format(1_700_000_000.0625) == "2023-11-14T22:13:20.062500000Z"
    assert stamps.format(1_700_000_000.0) == "2023-11-14T22:13:20.000000000Z"


def test_seconds_are_written_with_six_decimals_as_go_writes_them() -> None:
    assert seconds(0.003121) == "0.003121"
    assert seconds(0.0) == "0.000000"
    assert seconds(12.5) == "12.500000"
    assert seconds(0.9999996) == "1.000000"  # rounded up into the next second
    assert seconds(-1.0) == '"-"'  # not measured
    # Never a request's time, but no reason to lose a batch of lines over it.
    assert seconds(float("nan")) == "nan"
    assert seconds(float("inf")) == "inf"
    assert seconds(2e9) == "2000000000.000000"


@given(st.floats(min_value=0, max_value=1e4, allow_nan=False))
def test_seconds_match_a_correctly_rounded_format_away_from_ties(value: float) -> None:
    fraction = value * 1e6 - math.floor(value * 1e6)
    if abs(fraction - 0.5) > 1e-5:  # a tie's last digit may round either way
        assert seconds(value) == f"{value:.6f}"

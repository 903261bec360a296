"""Request header rules from the config (router/headers.py): what `hop_by_hop_headers_to_filter`
protects from a client's Connection header, and trace headers the router replaces."""

from __future__ import annotations

from router.forwarded import Forwarding
from router.headers import build_common_headers, header_rules
from router.tracing import tracing_for

FORWARDING = Forwarding(keep_client_xfcc=True, xfcc=b"", fixed_proto=b"", default_proto=b"http")


def sent(raw, rules) -> tuple[dict[bytes, list[bytes]], str]:
    lines, _, request_id = build_common_headers(raw, "192.0.2.1", FORWARDING, rules, False)
    got: dict[bytes, list[bytes]] = {}
    for line in b"".join(lines).split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            got.setdefault(name.lower(), []).append(value)
    return got, request_id


OFF = tracing_for(False, False, "")


def test_listed_headers_cannot_be_stripped_through_connection():
    raw = [
        (b"Connection", b"x-keep, X-Drop, x-forwarded-host"),
        (b"X-Keep", b"1"),
        (b"X-Drop", b"2"),
        (b"X-Forwarded-Host", b"a.example.com"),
    ]
    got, _ = sent(raw, header_rules(OFF, [" X-Keep ", "X-FORWARDED-HOST"]))
    assert got[b"x-keep"] == [b"1"]
    assert got[b"x-forwarded-host"] == [b"a.example.com"]
    assert b"x-drop" not in got
    unlisted, _ = sent(raw, header_rules(OFF, []))
    assert b"x-keep" not in unlisted and b"x-forwarded-host" not in unlisted


def test_router_trace_headers_replace_the_clients():
    raw = [(b"X-B3-TraceId", b"80f198ee56343ba864fe8b2a57d3eff7"), (b"traceparent", b"junk")]
    got, request_id = sent(raw, header_rules(tracing_for(True, True, ""), []))
    (trace,) = got[b"x-b3-traceid"]  # the client's alone names no span: a new trace
    assert trace != b"80f198ee56343ba864fe8b2a57d3eff7"
    assert got[b"traceparent"] == [b"00-%s-%s-01" % (trace, trace[16:])]
    assert request_id.replace("-", "").encode() == trace


def test_trace_headers_pass_untouched_when_tracing_is_off():
    raw = [(b"b3", b"whatever"), (b"traceparent", b"junk")]
    got, _ = sent(raw, header_rules(OFF, []))
    assert got[b"b3"] == [b"whatever"]
    assert got[b"traceparent"] == [b"junk"]
    assert b"x-b3-traceid" not in got and b"tracestate" not in got

"""Tracing header rules (router/tracing.py), each case what Gorouter v0.317 sends for the same
request."""

from __future__ import annotations

import pytest

from router.tracing import (
    next_tracestate,
    parse_b3_headers,
    parse_b3_single,
    parse_traceparent,
    request_id_for,
    trace_headers,
    tracing_for,
)

NEW_ID = "2d192d6b-cd1d-40ae-7120-9b786518412c"  # the request id the router would use
NEW_TRACE = NEW_ID.replace("-", "")
TRACE = "80f198ee56343ba864fe8b2a57d3eff7"
SPAN = "e457b5a2e4d86bd1"
PARENT = "05e3ac9a4f6e3b90"


def sent_headers(tracing, **sent: str) -> dict[str, str]:
    raw = {name.replace("_", "-").encode(): value.encode() for name, value in sent.items()}
    result = trace_headers(tracing, raw, NEW_ID)
    lines = result.lines.decode().split("\r\n")[:-1]
    headers = dict(line.split(": ", 1) for line in lines)
    headers["request-id"] = result.request_id
    return headers


ZIPKIN = tracing_for(enable_zipkin=True, enable_w3c=False, tenant_id="")
BOTH = tracing_for(enable_zipkin=True, enable_w3c=True, tenant_id="t1")
W3C = tracing_for(enable_zipkin=False, enable_w3c=True, tenant_id="")


def test_new_zipkin_trace_is_the_request_id():
    assert sent_headers(ZIPKIN) == {
        "X-B3-TraceId": NEW_TRACE,
        "X-B3-SpanId": NEW_TRACE[16:],
        "b3": f"{NEW_TRACE}-{NEW_TRACE[16:]}",
        "request-id": NEW_ID,
    }


@pytest.mark.parametrize(
    ("sent", "b3"),
    [
        ({"x_b3_sampled": "1", "x_b3_parentspanid": PARENT}, f"{TRACE}-{SPAN}-1-{PARENT}"),
        ({"x_b3_parentspanid": PARENT}, f"{TRACE}-{SPAN}-{PARENT}"),
        ({"x_b3_sampled": "false"}, f"{TRACE}-{SPAN}-0"),
        ({"x_b3_flags": "1", "x_b3_sampled": "1"}, f"{TRACE}-{SPAN}-d"),
        ({}, f"{TRACE}-{SPAN}"),
    ],
)
def test_b3_is_built_from_x_b3_headers(sent, b3):
    headers = sent_headers(ZIPKIN, x_b3_traceid=TRACE, x_b3_spanid=SPAN, **sent)
    assert headers == {"b3": b3, "request-id": "80f198ee-5634-3ba8-64fe-8b2a57d3eff7"}


def test_short_upper_case_trace_ids_are_printed_as_zipkin_does():
    headers = sent_headers(BOTH, x_b3_traceid="64FE8B2A57D3EFF7", x_b3_spanid=SPAN.upper())
    assert headers["b3"] == f"64fe8b2a57d3eff7-{SPAN}"
    assert headers["traceparent"] == f"00-000000000000000064fe8b2a57d3eff7-{SPAN}-01"
    assert headers["tracestate"] == f"t1@gorouter={SPAN}"
    assert headers["request-id"] == NEW_ID  # 16 hex digits make no UUID


@pytest.mark.parametrize(
    "sent",
    [
        {"x_b3_sampled": "yes"},
        {"x_b3_flags": "2"},
        {"x_b3_parentspanid": "xyz"},
        {"x_b3_spanid": "0"},
        {"x_b3_traceid": "0" * 32},
        {"x_b3_traceid": "f" * 33},
    ],
)
def test_malformed_x_b3_headers_start_no_trace(sent):
    given = {"x_b3_traceid": TRACE, "x_b3_spanid": SPAN, **sent}
    assert sent_headers(ZIPKIN, **given) == {"request-id": NEW_ID}


def test_valid_single_b3_is_kept_and_is_the_trace():
    headers = sent_headers(BOTH, b3=f"{TRACE}-{SPAN}-1-{PARENT}", x_b3_traceid="ignored")
    assert "b3" not in headers and "X-B3-TraceId" not in headers
    assert headers["traceparent"] == f"00-{TRACE}-{SPAN}-01"
    assert headers["request-id"] == "80f198ee-5634-3ba8-64fe-8b2a57d3eff7"


def test_invalid_single_b3_gives_way_to_x_b3_headers():
    headers = sent_headers(ZIPKIN, b3="zzz", x_b3_traceid=TRACE, x_b3_spanid=SPAN)
    assert headers["b3"] == f"{TRACE}-{SPAN}"


def test_trace_id_without_a_uuid_version_digit_gets_a_new_request_id():
    trace = "80f198ee56349ba864fe8b2a57d3eff7"  # Gorouter's UUID parser wants 1-5 there
    headers = sent_headers(ZIPKIN, x_b3_traceid=trace, x_b3_spanid=SPAN)
    assert headers["request-id"] == NEW_ID
    assert request_id_for(trace) == ""


def test_w3c_update_keeps_trace_and_flags_with_a_new_parent():
    headers = sent_headers(
        W3C,
        traceparent="00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-00 ",
        tracestate="congo=t61rcWkgMzE,gorouter=old, rojo=00f067aa0ba902b7,junk",
    )
    version, trace, parent, flags = headers["traceparent"].split("-")
    assert (version, trace, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "00")
    assert parent != "b7ad6b7169203331" and len(parent) == 16
    assert headers["tracestate"] == f"gorouter={parent},congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    assert headers["request-id"] == "0af76519-16cd-43dd-8448-eb211c80319c"


def test_w3c_new_trace_without_zipkin():
    headers = sent_headers(W3C, traceparent="00-abc-def-01")
    assert headers == {
        "traceparent": f"00-{NEW_TRACE}-{NEW_TRACE[16:]}-01",
        "tracestate": f"gorouter={NEW_TRACE[16:]}",
        "request-id": NEW_ID,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ("0af7651916cd43dd8448eb211c80319c", "01"),
        ),
        (
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03",
            ("0af7651916cd43dd8448eb211c80319c", "03"),
        ),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0", None),
        ("00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01", None),
        ("", None),
    ],
)
def test_traceparent_as_gorouter_reads_it(value, expected):
    assert parse_traceparent(value) == expected


def test_oversized_tracestate_is_replaced():
    assert next_tracestate("a=" + "x" * 2047, "gorouter", "00") == "gorouter=00"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (f"{TRACE}-{SPAN}", True),
        (f"{TRACE[16:]}-{SPAN}-d", True),
        (f"{TRACE}-{SPAN}-0-{PARENT}", True),
        (f"{TRACE}-{SPAN}-x", False),
        (f"{TRACE}-{SPAN}-1-{PARENT}-1", False),
        (f"{TRACE}-{SPAN[:8]}", False),
        (TRACE, False),
        ("1", False),
    ],
)
def test_single_b3_as_zipkin_reads_it(value, valid):
    assert (parse_b3_single(value) is not None) == valid


def test_b3_headers_parse_to_zipkins_printed_ids():
    context = parse_b3_headers("0" * 16 + "abc", "ABC", "", "true", "")
    assert context is not None
    assert (context.trace_id, context.span_id, context.sampling) == (
        "0000000000000abc",
        "0000000000000abc",
        "1",
    )

"""Tracing headers to backends, as Gorouter sets them: Zipkin's B3 (`tracing.enable_zipkin`) and
W3C trace context (`tracing.enable_w3c`), on plain values.

Zipkin first, as in Gorouter's handler chain. A valid single `b3` header is the trace and is left
as sent. Else valid `X-B3-TraceId` and `X-B3-SpanId` (with `-ParentSpanId`, `-Sampled`, `-Flags`)
are the trace, and `b3` is rebuilt from them. Neither: a new trace (its id is the request id's
hex, the span its second half) goes out as `X-B3-TraceId`, `X-B3-SpanId` and `b3`. Malformed
X-B3 headers are passed on untouched and start no trace, as in Gorouter.

W3C second. A valid `traceparent` keeps its trace id and flags and gets a new parent id; else one
is made from the Zipkin trace (or a new one) with the sampled flag. `tracestate` gets the router's
entry, `gorouter=<parent id>` (`<tenant>@gorouter=` with a tenant id), first, in place of an older
one of that key; the client's other entries follow in their order.

X-Vcap-Request-Id is the trace id as a UUID when the trace id reads as one (32 hex digits, a
version digit 1-5), as Gorouter's uuid parser requires; otherwise a new random one.
"""

from __future__ import annotations

import os
from typing import Final, NamedTuple

TRACE_HEADERS: Final = frozenset(
    {
        b"b3",
        b"x-b3-traceid",
        b"x-b3-spanid",
        b"x-b3-parentspanid",
        b"x-b3-sampled",
        b"x-b3-flags",
        b"traceparent",
        b"tracestate",
    }
)
# The headers Gorouter adds to the access log's extra headers when tracing is on, in its order.
ZIPKIN_LOGGED: Final = ("X-B3-TraceId", "X-B3-SpanId", "X-B3-ParentSpanId", "b3")
W3C_LOGGED: Final = ("traceparent", "tracestate")
VENDOR: Final = "gorouter"
# Gorouter ignores a longer tracestate (and starts a new one) rather than parse it.
MAX_TRACESTATE: Final = 2048
_MAX_ID: Final = (1 << 64) - 1


class Tracing(NamedTuple):
    """What the config asks for; `key` is the router's tracestate key."""

    zipkin: bool
    w3c: bool
    key: str

    @property
    def is_on(self) -> bool:
        return self.zipkin or self.w3c


def tracing_for(enable_zipkin: bool, enable_w3c: bool, tenant_id: str) -> Tracing:
    key = f"{tenant_id}@{VENDOR}" if tenant_id else VENDOR
    return Tracing(enable_zipkin, enable_w3c, key)


class TraceHeaders(NamedTuple):
    """The headers the router sets (each replaces a client's header of that name), and the
    request id."""

    lines: bytes
    names: frozenset[bytes]  # lower case: the client's headers of these names are dropped
    request_id: str
    values: dict[bytes, bytes]  # lower-case name -> value, for the access log


def trace_headers(tracing: Tracing, sent: dict[bytes, bytes], new_request_id: str) -> TraceHeaders:
    """`sent`: the first value of each of TRACE_HEADERS the client sent (lower-case names)."""
    out: list[tuple[str, str]] = []
    trace = span = ""
    if tracing.zipkin:
        trace, span = _zipkin(sent, new_request_id, out)
    if tracing.w3c:
        trace, span = _w3c(tracing.key, sent, trace, span, new_request_id, out)
    request_id = request_id_for(trace) or new_request_id
    lines = "".join(f"{name}: {value}\r\n" for name, value in out).encode("latin-1")
    values = {name.lower().encode(): value.encode("latin-1") for name, value in out}
    return TraceHeaders(lines, frozenset(values), request_id, values)


def logged_headers(extra_headers_to_log: tuple[str, ...], tracing: Tracing) -> tuple[str, ...]:
    """The access log's extra headers: the configured ones, then tracing's, each name once
    (compared without case), as Gorouter collects them."""
    names = list(extra_headers_to_log)
    if tracing.zipkin:
        names.extend(ZIPKIN_LOGGED)
    if tracing.w3c:
        names.extend(W3C_LOGGED)
    seen: set[str] = set()
    kept = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            kept.append(name)
    return tuple(kept)


def _zipkin(
    sent: dict[bytes, bytes], new_request_id: str, out: list[tuple[str, str]]
) -> tuple[str, str]:
    single = sent.get(b"b3", b"").decode("latin-1")
    if single:
        parsed = parse_b3_single(single)
        if parsed is not None:
            return parsed.trace_id, parsed.span_id
    trace = sent.get(b"x-b3-traceid", b"").decode("latin-1")
    span = sent.get(b"x-b3-spanid", b"").decode("latin-1")
    if trace and span:
        context = parse_b3_headers(
            trace,
            span,
            sent.get(b"x-b3-parentspanid", b"").decode("latin-1"),
            sent.get(b"x-b3-sampled", b"").decode("latin-1"),
            sent.get(b"x-b3-flags", b"").decode("latin-1"),
        )
        if context is None:
            return "", ""  # malformed: passed on as sent, no trace (Gorouter's rule)
        out.append(("b3", context.single_header()))
        return context.trace_id, context.span_id
    trace, span = generated_trace(new_request_id)
    out.append(("X-B3-TraceId", trace))
    out.append(("X-B3-SpanId", span))
    out.append(("b3", f"{trace}-{span}"))
    return trace, span


def _w3c(
    key: str,
    sent: dict[bytes, bytes],
    trace: str,
    span: str,
    new_request_id: str,
    out: list[tuple[str, str]],
) -> tuple[str, str]:
    previous = parse_traceparent(sent.get(b"traceparent", b"").decode("latin-1"))
    if previous is None:
        if not trace:
            trace, span = generated_trace(new_request_id)
        parent = span.rjust(16, "0")
        out.append(("traceparent", f"00-{trace.rjust(32, '0')}-{parent}-01"))
        out.append(("tracestate", f"{key}={parent}"))
        return trace, span
    previous_trace, flags = previous
    parent = os.urandom(8).hex()
    if not trace:
        trace, span = previous_trace, parent
    out.append(("traceparent", f"00-{previous_trace}-{parent}-{flags}"))
    state = next_tracestate(sent.get(b"tracestate", b"").decode("latin-1"), key, parent)
    out.append(("tracestate", state))
    return trace, span


def generated_trace(request_id: str) -> tuple[str, str]:
    """A new trace from a new request id, as Gorouter makes one: the UUID's hex is the trace id,
    its second half the span id."""
    trace = request_id.replace("-", "")
    return trace, trace[16:]


def request_id_for(trace: str) -> str:
    """The UUID a trace id makes, or "" when Gorouter's parser would refuse it."""
    if len(trace) != 32 or trace[12] not in "12345":
        return ""
    return f"{trace[0:8]}-{trace[8:12]}-{trace[12:16]}-{trace[16:20]}-{trace[20:]}"


class B3Context(NamedTuple):
    trace_id: str  # as Zipkin prints it: 16 hex digits, or 32 when the high half is not 0
    span_id: str
    parent_id: str  # "" when none
    sampling: str  # "1", "0", "d" (debug) or ""

    def single_header(self) -> str:
        parts = [self.trace_id, self.span_id]
        if self.sampling:
            parts.append(self.sampling)
        if self.parent_id:
            parts.append(self.parent_id)
        return "-".join(parts)


def parse_b3_headers(
    trace: str, span: str, parent: str, sampled: str, flags: str
) -> B3Context | None:
    """Zipkin's reading of the X-B3-* headers; None when any is malformed."""
    trace_id = _trace_id(trace)
    span_id = _span_id(span)
    if trace_id is None or span_id is None:
        return None
    parent_id = ""
    if parent:
        checked = _span_id(parent)
        if checked is None:
            return None
        parent_id = checked
    if sampled in ("1", "true"):
        sampling = "1"
    elif sampled in ("0", "false"):
        sampling = "0"
    elif not sampled:
        sampling = ""
    else:
        return None
    if flags == "1":
        sampling = "d"
    elif flags not in ("", "0"):
        return None
    return B3Context(trace_id, span_id, parent_id, sampling)


def parse_b3_single(value: str) -> B3Context | None:
    """Zipkin's reading of a single `b3` header (`TRACE-SPAN[-SAMPLING[-PARENT]]`); None when it
    names no trace."""
    parts = value.split("-")
    if len(parts) < 2 or len(parts) > 4 or len(parts[0]) not in (16, 32) or len(parts[1]) != 16:
        return None
    trace_id = _trace_id(parts[0])
    span_id = _span_id(parts[1])
    if trace_id is None or span_id is None:
        return None
    sampling = parts[2] if len(parts) > 2 else ""
    if sampling not in ("", "0", "1", "d") or (len(parts) > 2 and not sampling):
        return None
    parent_id = ""
    if len(parts) == 4:
        checked = _span_id(parts[3]) if len(parts[3]) == 16 else None
        if checked is None:
            return None
        parent_id = checked
    return B3Context(trace_id, span_id, parent_id, sampling)


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """(trace id, flags) of a traceparent Gorouter accepts: 55 characters with hex where the
    version, trace id, parent id and flags are; None otherwise."""
    text = value.strip().lower()
    if len(text) != 55:
        return None
    for start, end in ((0, 2), (3, 35), (36, 52), (53, 55)):
        if not _is_hex(text[start:end]):
            return None
    return text[3:35], text[53:55]


def next_tracestate(value: str, key: str, parent: str) -> str:
    """The client's tracestate with the router's entry first, in place of an older one."""
    entries = [f"{key}={parent}"]
    if len(value) <= MAX_TRACESTATE:
        for member in value.split(","):
            name, sep, member_value = member.strip().partition("=")
            if sep and name != key:
                entries.append(f"{name}={member_value}")
    return ",".join(entries)


def _trace_id(text: str) -> str | None:
    if not 0 < len(text) <= 32 or not _is_hex(text):
        return None
    number = int(text, 16)
    if number == 0:
        return None
    high, low = number >> 64, number & _MAX_ID
    return f"{low:016x}" if high == 0 else f"{high:016x}{low:016x}"


def _span_id(text: str) -> str | None:
    if not 0 < len(text) <= 16 or not _is_hex(text):
        return None
    number = int(text, 16)
    return f"{number:016x}" if number else None


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


__all__ = [
    "TRACE_HEADERS",
    "B3Context",
    "TraceHeaders",
    "Tracing",
    "logged_headers",
    "next_tracestate",
    "parse_b3_headers",
    "parse_b3_single",
    "parse_traceparent",
    "request_id_for",
    "trace_headers",
    "tracing_for",
]

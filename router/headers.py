"""Header rules, on plain values: what the backend receives, and what the client gets back.

Requests: hop-by-hop headers are dropped, including those a client names in `Connection`, but a
client can never use `Connection` to strip the router's own headers (Gorouter's
`hop_by_hop_headers_to_filter`). The router appends the client to `X-Forwarded-For`, sets
`X-Forwarded-Proto` and `X-Forwarded-Client-Cert` by the connection's rules (forwarded.py),
always sets a fresh `X-Vcap-Request-Id`, sets
`X-Request-Start` when absent, B3 headers when tracing is on, and per attempt the
`X-CF-ApplicationID` / `X-CF-InstanceID` / `X-CF-InstanceIndex` of the chosen endpoint.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Final

from registry.records import EndpointRecord
from router.forwarded import Forwarding

RawHeaders = Sequence[tuple[bytes, bytes]]

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Headers the router sets itself: dropped from what the client sent, and never strippable
# through `Connection`.
ROUTER_SET: Final = frozenset(
    {
        b"x-vcap-request-id",
        b"x-cf-applicationid",
        b"x-cf-instanceid",
        b"x-cf-instanceindex",
        b"x-cf-app-instance",
        b"content-length",
        b"expect",
        b"host",
        # Route-service headers: only ever set by the router itself.
        b"x-cf-proxy-signature",
        b"x-cf-proxy-metadata",
        b"x-cf-forwarded-url",
    }
)
PROTECTED: Final = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-request-start",
        b"x-b3-traceid",
        b"x-b3-spanid",
        b"x-b3-parentspanid",
        b"x-b3-sampled",
        b"x-b3-flags",
        b"b3",
        b"host",
    }
    | ROUTER_SET
)
RESPONSE_DROP: Final = HOP_BY_HOP | {b"content-length", b"x-cf-proxy-signature"}
# Request headers that need more than passing through; everything else is copied as is.
_INSPECTED: Final = (
    HOP_BY_HOP
    | ROUTER_SET
    | {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-client-cert",
        b"x-request-start",
        b"referer",
        b"user-agent",
        b"cookie",
        b"idempotency-key",
        b"x-idempotency-key",
        b"b3",
        b"x-b3-traceid",
        b"x-b3-spanid",
    }
)


class RequestFacts:
    """What the access log and the proxy need from the client's headers, gathered in one pass.
    Header values stay bytes until the access log needs them."""

    __slots__ = (
        "app_instance",
        "b3",
        "cookie",
        "forwarded_for",
        "forwarded_proto",
        "has_idempotency_key",
        "referer",
        "trace_id",
        "user_agent",
    )

    def __init__(self) -> None:
        self.forwarded_for = b""
        self.forwarded_proto = b""
        self.referer = b""
        self.user_agent = b""
        self.cookie = ""
        self.app_instance: str | None = None  # X-CF-App-Instance, if sent
        self.has_idempotency_key = False
        self.b3 = False
        self.trace_id = ""

    def __repr__(self) -> str:
        return f"RequestFacts(xff={self.forwarded_for!r}, proto={self.forwarded_proto!r})"


class _HexEntropy:
    """os.urandom read 4 KiB at a time and hex-encoded at once: one getrandom() call and one
    encoding per 256 request ids."""

    __slots__ = ("hex", "offset")

    def __init__(self) -> None:
        self.hex = ""
        self.offset = 0

    def take32(self) -> str:
        offset = self.offset
        if offset + 32 > len(self.hex):
            self.hex = os.urandom(4096).hex()
            offset = 0
        self.offset = offset + 32
        return self.hex[offset : offset + 32]


_entropy = _HexEntropy()
_VARIANT: Final = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_request_id() -> str:
    """A random (version 4) UUID, as X-Vcap-Request-Id carries it."""
    h = _entropy.take32()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def request_id_from_trace(trace_id: str) -> str:
    """Gorouter builds X-Vcap-Request-Id from an incoming trace id of at least 32 hex chars."""
    t = trace_id.lower()
    return f"{t[0:8]}-{t[8:12]}-{t[12:16]}-{t[16:20]}-{t[20:32]}"


def build_common_headers(
    raw_headers: RawHeaders,
    client_ip: str,
    forwarding: Forwarding,
    zipkin: bool,
    upgrade: bool,
) -> tuple[list[bytes], RequestFacts, str]:
    """Header lines for every attempt, the facts gathered, and the request id.

    Returns lines ("Name: value\\r\\n") in the client's order, then the router's.
    """
    facts = RequestFacts()
    strip: set[bytes] = set()
    xff_parts: list[bytes] = []
    proto = b""
    has_request_start = False
    b3_trace = b""
    b3_span = b""
    lines: list[bytes] = []
    append = lines.append
    for name, value in raw_headers:
        lower = name.lower()
        if lower not in _INSPECTED:
            append(b"%s: %s\r\n" % (name, value))
            continue
        if lower in HOP_BY_HOP:
            if lower == b"connection":
                # Headers named here are dropped too, except the router's own.
                for raw_token in value.split(b","):
                    token = raw_token.strip().lower()
                    if token and token not in PROTECTED and not (upgrade and token == b"upgrade"):
                        strip.add(token)
            elif upgrade and lower == b"upgrade":
                append(b"%s: %s\r\n" % (name, value))
            elif lower == b"te" and b"trailers" in value.lower():
                # As Go's ReverseProxy: a client that accepts trailers (gRPC's) says so onward.
                append(b"Te: trailers\r\n")
            continue
        if lower in ROUTER_SET:
            if lower == b"x-cf-app-instance":
                facts.app_instance = value.decode("latin-1")
            continue
        if lower == b"x-forwarded-for":
            xff_parts.append(value)
            continue
        if lower == b"x-forwarded-proto":
            if not proto:
                proto = value
            continue
        if lower == b"x-forwarded-client-cert":
            if forwarding.keep_client_xfcc:
                append(b"%s: %s\r\n" % (name, value))
            continue
        if lower == b"x-request-start":
            has_request_start = True
        elif lower == b"referer":
            facts.referer = value
        elif lower == b"user-agent":
            facts.user_agent = value
        elif lower == b"cookie":
            facts.cookie = (facts.cookie + "; " if facts.cookie else "") + value.decode("latin-1")
        elif lower in (b"idempotency-key", b"x-idempotency-key"):
            facts.has_idempotency_key = facts.has_idempotency_key or bool(value.strip())
        elif lower == b"b3":
            facts.b3 = True
            b3_trace = value.split(b"-", 1)[0]
        elif lower == b"x-b3-traceid":
            b3_trace = value
        elif lower == b"x-b3-spanid":
            b3_span = value
        append(b"%s: %s\r\n" % (name, value))
    if strip:
        # Rare: the client named extra headers in Connection (they may come before it).
        lines = [line for line in lines if line.split(b":", 1)[0].lower() not in strip]
        append = lines.append

    if upgrade:
        append(b"Connection: Upgrade\r\n")
    client = client_ip.encode()
    xff = b", ".join([*xff_parts, client]) if xff_parts else client
    facts.forwarded_for = xff
    if forwarding.fixed_proto:
        proto = forwarding.fixed_proto
    elif not proto:
        proto = forwarding.default_proto
    facts.forwarded_proto = proto
    if forwarding.xfcc:
        append(b"X-Forwarded-Client-Cert: %s\r\n" % forwarding.xfcc)

    request_id = new_request_id()
    if zipkin:
        trace = b3_trace.decode("latin-1") if b3_trace else ""
        if trace and len(trace) >= 32 and _is_hex(trace):
            request_id = request_id_from_trace(trace)
            facts.trace_id = trace
        elif not facts.b3 and not (b3_trace and b3_span):
            generated = request_id.replace("-", "")
            span = os.urandom(8).hex()
            facts.trace_id = generated
            append(f"X-B3-TraceId: {generated}\r\nX-B3-SpanId: {span}\r\n".encode())
            append(f"b3: {generated}-{span}\r\n".encode())
        elif b3_trace and b3_span and not facts.b3:
            append(b"b3: %s-%s\r\n" % (b3_trace, b3_span))
    # The router's own headers in one formatting step.
    if has_request_start:
        append(_ROUTER_LINES % (xff, proto, request_id.encode()))
    else:
        ms = int(time.time() * 1000)
        append(_ROUTER_LINES_START % (xff, proto, ms, request_id.encode()))
    return lines, facts, request_id


_ROUTER_LINES: Final = b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nX-Vcap-Request-Id: %s\r\n"
_ROUTER_LINES_START: Final = (
    b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nX-Request-Start: %d\r\n"
    b"X-Vcap-Request-Id: %s\r\n"
)


def header_value(raw: RawHeaders, name: bytes) -> str | None:
    """The first value of a header (`name` in lower case), or None."""
    for key, value in raw:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def endpoint_headers(endpoint: EndpointRecord) -> bytes:
    """Per attempt: the chosen instance, as Gorouter sets it."""
    instance_id = endpoint.instance_id or endpoint.address
    parts = []
    if endpoint.app_id:
        parts.append(f"X-CF-ApplicationID: {endpoint.app_id}\r\n")
    parts.append(f"X-CF-InstanceID: {instance_id}\r\n")
    if endpoint.instance_index:
        parts.append(f"X-CF-InstanceIndex: {endpoint.instance_index}\r\n")
    return "".join(parts).encode("latin-1", "replace")


def build_head(
    method: str,
    target: str,
    host: str,
    common: Iterable[bytes],
    instance_lines: bytes,
    framing: bytes,
) -> bytes:
    """The request head for one attempt. `framing` is the Content-Length/chunked line (or b"")."""
    return b"".join(
        (
            # aiohttp decoded these as UTF-8 with surrogateescape: encoding back gives the bytes.
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n".encode("utf-8", "surrogateescape"),
            *common,
            instance_lines,
            framing,
            b"\r\n",
        )
    )


def final_head(raw: bytes) -> bytes:
    """The last response head in `raw` (interim 1xx heads skipped), without its blank line."""
    start = 0
    while True:
        end = raw.find(b"\r\n\r\n", start)
        if end == -1:
            return raw[start:]
        if raw[start + 9 : start + 10] == b"1" and raw[start + 9 : start + 12] != b"101":
            start = end + 4  # "HTTP/1.1 1xx": an interim response
            continue
        return raw[start : end + 2]


def header_pairs(head: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            pairs.append((name, value.strip(b" \t")))
    return pairs

"""Header rules, on plain values: what the backend receives, and what the client gets back.

Requests: hop-by-hop headers are dropped, including those a client names in `Connection`, but a
client can never use `Connection` to strip the router's own headers, nor those the operator lists
in `hop_by_hop_headers_to_filter` (Gorouter's key: the names it takes out of `Connection`). The
router appends the client to `X-Forwarded-For`, sets `X-Forwarded-Proto` and
`X-Forwarded-Client-Cert` by the connection's rules (forwarded.py), always sets a fresh
`X-Vcap-Request-Id`, sets `X-Request-Start` when absent, B3 and W3C trace headers when tracing is
on (tracing.py), and per attempt the `X-CF-ApplicationID` / `X-CF-InstanceID` /
`X-CF-InstanceIndex` of the chosen endpoint.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from registry.records import EndpointRecord
from router.forwarded import Forwarding
from router.tracing import TRACE_HEADERS, Tracing, trace_headers

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
    | TRACE_HEADERS
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
        b"authorization",
        b"x-cf-process-instance",
        b"x-vcap-trace",
    }
)


class HeaderRules(NamedTuple):
    """The config's request header rules, built once per config (Proxy.apply_config)."""

    tracing: Tracing
    is_tracing: bool  # tracing.is_on, read once per request
    # Names a client's Connection header cannot strip: the router's own and the operator's.
    protected: frozenset[bytes]


def header_rules(tracing: Tracing, hop_by_hop_headers_to_filter: Iterable[str]) -> HeaderRules:
    names = {name.strip().lower().encode("latin-1") for name in hop_by_hop_headers_to_filter}
    return HeaderRules(tracing, tracing.is_on, PROTECTED | names)


class RequestFacts:
    """What the access log and the proxy need from the client's headers, gathered in one pass.
    Header values stay bytes until the access log needs them."""

    def __init__(self) -> None:
        self.forwarded_for = b""
        self.forwarded_proto = b""
        self.referer = b""
        self.user_agent = b""
        self.cookie = ""
        self.app_instance: str | None = None  # X-CF-App-Instance, if sent
        self.process_instance: str | None = None  # X-CF-Process-Instance, if sent
        self.vcap_trace: bytes | None = None  # X-Vcap-Trace, if sent
        self.has_idempotency_key = False
        self.is_negotiate = False  # Authorization: Negotiate ... (SPNEGO)
        # The trace headers the router set (lower-case name -> value), when tracing is on.
        self.traced: dict[bytes, bytes] | None = None

    def __repr__(self) -> str:
        return f"RequestFacts(xff={self.forwarded_for!r}, proto={self.forwarded_proto!r})"


class _HexEntropy:
    """os.urandom read 4 KiB at a time and hex-encoded at once: one getrandom() call and one
    encoding per 256 request ids."""

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


def build_common_headers(
    raw_headers: RawHeaders,
    client_ip: str,
    forwarding: Forwarding,
    rules: HeaderRules,
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
    traced: dict[bytes, bytes] | None = None  # the client's trace headers, when it sent any
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
                    if (
                        token
                        and token not in rules.protected
                        and not (upgrade and token == b"upgrade")
                    ):
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
        elif lower in TRACE_HEADERS:
            if traced is None:
                traced = {}
            traced.setdefault(lower, value)  # the first, as Go's Header.Get reads it
        elif lower == b"authorization":
            facts.is_negotiate = value[:9].lower() == b"negotiate"
        elif lower == b"x-cf-process-instance" and facts.process_instance is None:
            facts.process_instance = value.decode("latin-1")
        elif lower == b"x-vcap-trace" and facts.vcap_trace is None:
            facts.vcap_trace = value
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
    if rules.is_tracing:
        traces = trace_headers(rules.tracing, traced or {}, request_id)
        request_id = traces.request_id
        facts.traced = traces.values
        if traced and traced.keys() & traces.names:  # the router's replace the client's
            lines = [line for line in lines if line.split(b":", 1)[0].lower() not in traces.names]
            append = lines.append
        append(traces.lines)
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


def reason_phrase(head: bytes) -> bytes:
    """The status line's reason phrase of a response head (b"" when it has none)."""
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    return parts[2] if len(parts) == 3 else b""

"""Header fields between HTTP/1.1 and HTTP/2 for backends registered with `protocol: http2`.

Pure translation, no I/O. The proxy core builds every request head as HTTP/1.1 bytes (headers.py
`build_head`); `request_fields` turns one into HTTP/2 fields: the request line and Host become
`:method`, `:scheme`, `:authority`, `:path`, and the connection-specific fields RFC 9113 §8.2.2
forbids are dropped (`te` survives only as `te: trailers`). A response's fields become an
HTTP/1.1 head again (`response_head`), header names in Go's canonical form, as Gorouter's HTTP/1
writer sends what Go's HTTP/2 transport parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Final, NamedTuple

H2Fields = list[tuple[bytes, bytes]]

# RFC 9113 §8.2.2: connection-specific fields, never sent in HTTP/2.
CONNECTION_SPECIFIC: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"http2-settings",
        b"host",
        b"te",
    }
)
# gRPC's timeout units (PROTOCOL-HTTP2.md: "Timeout → TimeoutValue TimeoutUnit"), in seconds.
_GRPC_UNITS: Final = {
    ord("H"): 3600.0,
    ord("M"): 60.0,
    ord("S"): 1.0,
    ord("m"): 1e-3,
    ord("u"): 1e-6,
    ord("n"): 1e-9,
}
_CANONICAL_CACHE: Final = 1024
_canonical: dict[bytes, bytes] = {}


class RequestFields(NamedTuple):
    """A request head as HTTP/2 sends it, and what follows it."""

    fields: H2Fields
    body: bytes  # body bytes that came with the head (a buffered body)
    content_length: int | None
    chunked: bool  # more body follows, of unknown length
    grpc_timeout: float | None  # seconds, when the request carries a valid `grpc-timeout`

    @property
    def has_more_body(self) -> bool:
        """More body bytes follow the head (streamed by the client)."""
        if self.chunked:
            return True
        return self.content_length is not None and self.content_length > len(self.body)


def request_fields(head: bytes, scheme: bytes, te_trailers: bool) -> RequestFields:
    """HTTP/2 fields for an HTTP/1.1 request head (with any body bytes after its blank line).

    `te_trailers`: the client said `TE: trailers`, which is passed on (the HTTP/1 rules drop TE
    as hop-by-hop; gRPC servers want it)."""
    end = head.find(b"\r\n\r\n")
    if end == -1:
        end = len(head)
    body = head[end + 4 :]
    lines = head[:end].split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    target = rest.rpartition(b" ")[0] or rest
    authority = b""
    content_length: int | None = None
    chunked = False
    grpc_timeout: float | None = None
    regular: H2Fields = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        lower = name.strip().lower()
        value = value.strip(b" \t")
        if lower in CONNECTION_SPECIFIC:
            if lower == b"host":
                authority = value
            elif lower == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            continue
        if lower == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                continue
        elif lower == b"grpc-timeout":
            grpc_timeout = parse_grpc_timeout(value)
        regular.append((lower, value))
    if chunked:
        # The body's length is unknown: HTTP/2 frames end it (END_STREAM), not a length.
        regular = [pair for pair in regular if pair[0] != b"content-length"]
        content_length = None
    if te_trailers:
        regular.append((b"te", b"trailers"))
    fields: H2Fields = [
        (b":method", method),
        (b":scheme", scheme),
        (b":authority", authority),
        (b":path", target or b"/"),
    ]
    fields.extend(regular)
    return RequestFields(fields, body, content_length, chunked, grpc_timeout)


def has_te_trailers(raw: Sequence[tuple[bytes, bytes]]) -> bool:
    """The client's TE header lists `trailers`."""
    for name, value in raw:
        if name.lower() == b"te" and any(
            token.split(b";")[0].strip().lower() == b"trailers" for token in value.split(b",")
        ):
            return True
    return False


def parse_grpc_timeout(value: bytes) -> float | None:
    """`grpc-timeout` (at most 8 digits and a unit) in seconds; None when malformed."""
    digits, unit = value[:-1], value[-1:]
    if not unit or not digits.isdigit() or len(digits) > 8:
        return None
    scale = _GRPC_UNITS.get(unit[0])
    return None if scale is None else int(digits) * scale


def canonical_name(name: bytes) -> bytes:
    """Go's CanonicalMIMEHeaderKey: `grpc-status` → `Grpc-Status`; names with characters
    outside a token are left as they are, as Go leaves them."""
    known = _canonical.get(name)
    if known is not None:
        return known
    if any(not (c == 45 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122) for c in name):
        result = name
    else:
        result = b"-".join(part[:1].upper() + part[1:].lower() for part in name.split(b"-"))
    if len(_canonical) >= _CANONICAL_CACHE:
        _canonical.clear()
    _canonical[name] = result
    return result


def response_head(status: int, fields: H2Fields, drop_length: bool = False) -> bytes:
    """An HTTP/1.1 status line and header lines (each ending in CRLF, no blank line) for an
    HTTP/2 response's fields. `drop_length`: leave out Content-Length (a response whose
    trailers must reach the client goes chunked)."""
    try:
        reason = HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    for name, value in fields:
        if name[:1] == b":" or (drop_length and name == b"content-length"):
            continue
        parts.append(b"%s: %s\r\n" % (canonical_name(name), value))
    return b"".join(parts)


def trailer_pairs(fields: H2Fields) -> list[tuple[bytes, bytes]]:
    """An HTTP/2 trailer block as the HTTP/1 writer's trailer fields."""
    return [(canonical_name(name), value) for name, value in fields if name[:1] != b":"]


def status_of(fields: H2Fields) -> int | None:
    """The `:status` of a response head; None when missing or not a number."""
    for name, value in fields:
        if name == b":status":
            return int(value) if value.isdigit() and len(value) == 3 else None
    return None


__all__ = [
    "CONNECTION_SPECIFIC",
    "H2Fields",
    "RequestFields",
    "canonical_name",
    "has_te_trailers",
    "parse_grpc_timeout",
    "request_fields",
    "response_head",
    "status_of",
    "trailer_pairs",
]

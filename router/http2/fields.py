"""Header fields between HTTP/2 and the proxy core, both ways (RFC 9113 §8.2-8.3).

Inbound, h2 has already refused what RFC 9113 forbids (upper-case names, connection-specific
fields, pseudo-header misuse) before a request reaches here; this turns the pseudo-headers into
the request line's parts, takes the host from `:authority` (else `Host`), and joins the
`cookie` fields HTTP/2 splits back into one (§8.2.3), as an HTTP/1.1 backend expects.
Outbound, the connection-specific fields a backend may send (Connection and what it names,
Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade) never reach an HTTP/2 client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from router.answers import Answer
from router.headers import HOP_BY_HOP

Fields = list[tuple[bytes, bytes]]

# Response fields RFC 9113 §8.2.2 forbids, and the length the router states itself.
_NOT_RELAYED: Final = (HOP_BY_HOP - {b"trailer"}) | {b"content-length"}
# Trailer fields that describe the message rather than end it (RFC 9110 §6.5.1).
_NOT_TRAILERS: Final = HOP_BY_HOP | {b"content-length", b"host", b"content-type"}


class RequestHead(NamedTuple):
    """An HTTP/2 request's head as the proxy core takes it."""

    method: str
    target: str
    authority: str
    raw_headers: Fields
    content_length: int | None


def request_head(fields: Sequence[tuple[bytes, bytes]]) -> RequestHead:
    """The request's head from h2's (already validated) header block."""
    method = path = authority = b""
    host = b""
    raw: Fields = []
    cookies: list[bytes] = []
    cookie_at = -1
    length: int | None = None
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            continue  # :scheme: the connection's scheme is what counts (forwarded.py)
        if name == b"cookie":
            if cookie_at < 0:
                cookie_at = len(raw)
                raw.append((name, b""))
            cookies.append(value)
            continue
        if name == b"host":
            host = value
        elif name == b"content-length":
            length = int(value)  # h2 has refused a length that is not a number
        raw.append((name, value))
    if cookies:
        raw[cookie_at] = (b"cookie", b"; ".join(cookies))
    return RequestHead(
        method.decode("latin-1"),
        path.decode("utf-8", "surrogateescape"),
        (authority or host).decode("utf-8", "surrogateescape"),
        raw,
        length,
    )


def response_fields(
    status: int, lines: Iterable[bytes], content_length: int | None, date: bytes | None
) -> Fields:
    """A response head for h2 from the relay's header lines (`Name: value\\r\\n`)."""
    fields: Fields = [(b":status", b"%d" % status)]
    named: set[bytes] = set()
    pairs = []
    for line in lines:
        name, _, value = line.partition(b":")
        lower = name.strip().lower()
        pairs.append((lower, value.strip()))
        if lower == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    for lower, value in pairs:
        if lower in _NOT_RELAYED or lower in named:
            continue
        fields.append((lower, value))
    if content_length is not None:
        fields.append((b"content-length", b"%d" % content_length))
    if date is not None:
        fields.append((b"date", date))
    return fields


def answer_fields(answer: Answer, date: bytes) -> Fields:
    """One of the router's own answers (answers.py), as its HTTP/1 writer states it."""
    fields: Fields = [(b":status", b"%d" % answer.status)]
    fields.extend((name.lower().encode(), value.encode()) for name, value in answer.headers)
    fields.append((b"content-length", b"%d" % len(answer.body)))
    fields.append((b"date", date))
    return fields


def trailer_fields(trailers: Iterable[tuple[bytes, bytes]]) -> Fields:
    """A backend's chunked trailer fields, as an HTTP/2 trailers block."""
    return [
        (name.lower(), value.strip())
        for name, value in trailers
        if name.lower() not in _NOT_TRAILERS and name[:1] != b":"
    ]


__all__ = [
    "Fields",
    "RequestHead",
    "answer_fields",
    "request_head",
    "response_fields",
    "trailer_fields",
]

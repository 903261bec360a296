"""What a worker accepts from a client beyond what aiohttp's C parser already refuses, as pure
rules on a parsed request head.

aiohttp parses requests with llhttp in strict mode, which already refuses (a 400, the connection
closed): Content-Length together with Transfer-Encoding; duplicate, comma-listed or malformed
Content-Length; a Transfer-Encoding that does not end in `chunked`; duplicate Host (and other
singleton headers); obs-fold; bare CR or LF in the head; control characters in header names and
values; bad chunk sizes and extensions; versions it cannot read; a request target `*` except with
OPTIONS. Trailers are parsed and dropped. tests/router/test_desync_corpus.py holds each to it.

What llhttp lets through and these rules refuse:
  - HTTP versions other than 1.0 and 1.1 (llhttp takes 2.0, and 0.9 — also a request line
    without any version); 2.0 is answered 505, as Go's server does, 0.9 a 400, as Go answers a
    line without a version;
  - CONNECT (the router tunnels nothing but WebSockets);
  - Transfer-Encoding on an HTTP/1.0 request (RFC 9112 6.1: its framing is faulty), and any
    Transfer-Encoding but plain `chunked` (llhttp takes codings before a final chunked);
  - a head larger than `max_request_header_bytes` in total (the parser limits each line only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple, Protocol

# The parser buffers the request target up to this; longer request lines are answered 414.
# Gorouter accepts targets up to its whole 1 MiB head limit; 64 KiB is far beyond what browsers
# and common proxies send, and bounds what one connection can make a worker buffer.
MAX_REQUEST_LINE: Final = 64 * 1024
# Raw bytes of a head count a little more than Gorouter's formula (optional whitespace, the
# blank line): a head still arriving is refused only past the limit and this (Go allows 4 KiB).
HEAD_SLACK: Final = 4096


class RequestHead(Protocol):
    """What the rules read of a parsed request (aiohttp's RawRequestMessage has these)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def version(self) -> tuple[int, int]: ...
    @property
    def chunked(self) -> bool: ...
    @property
    def raw_headers(self) -> Sequence[tuple[bytes, bytes]]: ...


class Refusal(NamedTuple):
    """A request the router answers itself and then closes the connection."""

    status: int
    reason: str


class Limits(NamedTuple):
    """One worker's limits on request heads."""

    max_head_bytes: int
    max_headers: int

    @property
    def max_line(self) -> int:
        return min(MAX_REQUEST_LINE, self.max_head_bytes)

    @property
    def header_count(self) -> int:
        """The parser's limit on header lines. 0 is Gorouter's "no count limit": a header line
        takes at least three bytes, so max_head_bytes lines leave the byte limit to bind."""
        return self.max_headers or self.max_head_bytes


def head_size(msg: RequestHead) -> int:
    """The head's size as Gorouter counts it: request line and every header line with CRLF."""
    size = len(msg.method) + len(msg.path) + 8 + 4  # "HTTP/1.1" and two spaces plus CRLF
    for name, value in msg.raw_headers:
        size += len(name) + len(value) + 4
    return size


def refusal(msg: RequestHead, limits: Limits, measure: bool) -> Refusal | None:
    """Why a parsed request must not be forwarded, or None. `measure`: whether its head must be
    counted (a head that came in one read smaller than the limit cannot be over it)."""
    version = msg.version
    if version not in ((1, 1), (1, 0)):
        text = f"unsupported protocol version HTTP/{version[0]}.{version[1]}"
        # 0.9 stays a 400: llhttp reports a request line without a version as 0.9 too, and
        # that is Go's 400 (malformed request).
        return Refusal(505 if version[0] >= 2 else 400, text)
    if msg.method == "CONNECT":
        return Refusal(400, "CONNECT is not supported")
    if msg.chunked:
        if version == (1, 0):
            return Refusal(400, "Transfer-Encoding in an HTTP/1.0 request")
        for name, value in msg.raw_headers:
            if name.lower() == b"transfer-encoding" and value.strip().lower() != b"chunked":
                # llhttp takes any codings before a final chunked; a backend may not (Go's
                # server, Gorouter's, refuses them too), so it must not see them.
                return Refusal(400, "Transfer-Encoding other than chunked")
    if measure and head_size(msg) >= limits.max_head_bytes:
        return head_too_large()
    return None


def head_too_large() -> Refusal:
    return Refusal(431, "request head over max_request_header_bytes")


def parser_refusal(reason: str, line_limit: int | None, limits: Limits) -> Refusal:
    """The answer to a request the parser refused: `reason` is its message; `line_limit` the
    limit a too-long line broke (None when no line was too long)."""
    if line_limit is not None:
        # Only the limit tells which line was too long: the request line, or a header line.
        if line_limit == limits.max_line and limits.max_line != limits.max_head_bytes:
            return Refusal(414, reason)
        return Refusal(431, reason)
    if reason == "Too many headers received":
        return Refusal(431, reason)
    if reason.startswith("Pause on PRI/Upgrade"):
        # HTTP/2's prior-knowledge preface on an HTTP/1.1 port: Go's server hands
        # `PRI * HTTP/2.0` to Gorouter's handlers, which refuse it for its empty Host.
        return Refusal(400, "Missing 'Host': an HTTP/2 preface on the HTTP/1.1 port")
    return Refusal(400, reason)


__all__ = [
    "HEAD_SLACK",
    "MAX_REQUEST_LINE",
    "Limits",
    "Refusal",
    "RequestHead",
    "head_size",
    "head_too_large",
    "parser_refusal",
    "refusal",
]

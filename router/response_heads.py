"""What a backend's response head may hold (Gorouter's max_response_header_bytes and
max_response_headers), and what a client is sent of a 1xx interim head.

Gorouter's limits are Go's transport's: a head over the byte limit (1xx heads before it
included) or with more header lines than the count limit fails the attempt, a 502
endpoint_failure with these words. Pure values and text; upstream.py does the counting.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from router.headers import RESPONSE_DROP, header_pairs
from router.rewrite import ResponseRewrite
from runtime.config import MAX_RESPONSE_HEADER_BYTES


class ResponseLimits(NamedTuple):
    """Bytes a response head may take, and header lines it may have (0 or less: any)."""

    head_bytes: int = MAX_RESPONSE_HEADER_BYTES
    headers: int = 0


DEFAULT_LIMITS: Final = ResponseLimits()


class HeadTooLarge(Exception):
    """A response head over ResponseLimits; its text is the error Gorouter reports."""


def too_large(limit: int) -> str:
    """Go's transport error, as Gorouter's X-Cf-RouterError shows it."""
    return (
        "net/http: HTTP/1.x transport connection broken: net/http: server response "
        f"headers exceeded {limit} bytes; aborted"
    )


def too_many(count: int, limit: int) -> str:
    return f"too many response headers: {count} > {limit}"


def interim_lines(head: bytes, rewrite: ResponseRewrite | None) -> bytes:
    """A 1xx head's header lines for the client (Link, for 103): hop-by-hop ones dropped,
    http_rewrite applied."""
    lines = [
        b"%s: %s\r\n" % (name, value)
        for name, value in header_pairs(head)
        if name.lower() not in RESPONSE_DROP
    ]
    if rewrite is not None:
        lines = rewrite.lines(lines)
    return b"".join(lines)


__all__ = [
    "DEFAULT_LIMITS",
    "HeadTooLarge",
    "ResponseLimits",
    "interim_lines",
    "too_large",
    "too_many",
]

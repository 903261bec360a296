"""What a backend's response head may hold (Gorouter's max_response_header_bytes and
max_response_headers), and what a client is sent of a 1xx interim head.

Gorouter's limits are Go's transport's: a head over the byte limit (1xx heads before it
included) or with more header lines than the count limit fails the attempt, a 502
endpoint_failure with these words. upstream.py counts the bytes of reads; the checks of a
complete head are here.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from router.headers import RESPONSE_DROP, final_head, header_pairs
from router.rewrite import ResponseRewrite
from runtime.config_model import MAX_RESPONSE_HEADER_BYTES


class ResponseLimits(NamedTuple):
    """Bytes a response head may take, and header lines it may have (0 or less: any)."""

    head_bytes: int = MAX_RESPONSE_HEADER_BYTES
    headers: int = 0


DEFAULT_LIMITS: Final = ResponseLimits()


class HeadTooLarge(Exception):
    """A response head over ResponseLimits; its text is the error Gorouter reports."""


class MalformedResponse(Exception):
    """A response head llhttp accepted and the router does not relay."""


def checked_final_head(
    chunks: list[bytes], interim_bytes: int, max_head: int, max_headers: int
) -> bytes:
    """The final head's status and header lines (each ending in CRLF, without the blank line)
    from the reads that brought it, 1xx heads before it skipped; raises when it breaks a limit.
    `max_head` excludes the blank line; `max_headers` of 0 or less means any count."""
    if len(chunks) == 1:
        # The usual case: the whole head came in one read.
        raw = chunks[0]
        end = raw.find(b"\r\n\r\n")
        head = raw[: end + 2] if end != -1 and raw[9:10] != b"1" else final_head(raw)
    else:
        head = final_head(b"".join(chunks))
    if 0 in head:  # (an int: memchr; a bytes needle costs several times more)
        # llhttp refuses NUL in header lines but not in the reason phrase.
        raise MalformedResponse("NUL in the response head")
    if interim_bytes + len(head) > max_head:
        raise HeadTooLarge(too_large(max_head + 2))
    if max_headers > 0:
        count = head.count(b"\r\n") - 1  # the lines after the status line
        if count > max_headers:
            raise HeadTooLarge(too_many(count, max_headers))
    return head


def delimited(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a response's header lines delimit its body (Content-Length, Transfer-Encoding);
    without either, the body ends when the connection does."""
    framing = (b"content-length", b"transfer-encoding")
    return any(name.lower() in framing for name, _ in headers)


def split_interim(chunks: list[bytes]) -> tuple[bytes, bytes]:
    """A complete 1xx head's lines (without the blank line), and the bytes after it."""
    raw = b"".join(chunks)
    end = raw.find(b"\r\n\r\n")
    return raw[: end + 2], raw[end + 4 :]


def interim_total(so_far: int, head: bytes, limit: int) -> int:
    """The bytes of a response's 1xx heads with this one; raises past the head limit."""
    total = so_far + len(head) + 2
    if total > limit:
        raise HeadTooLarge(too_large(limit))
    return total


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
    "MalformedResponse",
    "ResponseLimits",
    "checked_final_head",
    "delimited",
    "interim_lines",
    "interim_total",
    "split_interim",
    "too_large",
    "too_many",
]

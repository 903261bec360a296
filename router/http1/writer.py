"""Bytes for the client: the router's own answers, relayed response heads, chunked bodies,
100 Continue. Every response head the worker writes is built here."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

from router.answers import STATUS_TEXT, Answer

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK: Final = b"0\r\n\r\n"
_CLOSE: Final = b"Connection: close\r\n"
_KEEP_ALIVE: Final = b"Connection: keep-alive\r\n"


class DateLine:
    """`Date: <IMF-fixdate>` for responses without one (RFC 9110 6.6.1: a proxy adds it), made
    once a second rather than per response."""

    def __init__(self) -> None:
        self.second = -1
        self.line = b""

    def __repr__(self) -> str:
        return f"DateLine({self.line!r})"

    def now(self) -> bytes:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self.line = b"Date: %s\r\n" % formatdate(second, usegmt=True).encode()
        return self.line


date_line = DateLine()


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return STATUS_TEXT.get(status, "")


def status_line(http10: bool, status: int, reason: str | None = None) -> bytes:
    """As Go's server writes it: the client's own minor version, then the status and reason."""
    text = reason_phrase(status) if reason is None else reason
    return b"HTTP/1.%d %d %s\r\n" % (0 if http10 else 1, status, text.encode("latin-1", "replace"))


def connection_line(http10: bool, keep_alive: bool) -> bytes:
    """What the router says of its own connection: close, or keep-alive to an HTTP/1.0 client
    that asked for it (1.1 keeps alive unless told)."""
    if not keep_alive:
        return _CLOSE
    return _KEEP_ALIVE if http10 else b""


def answer_bytes(answer: Answer, http10: bool, keep_alive: bool, head_only: bool) -> bytes:
    """One of the router's own answers, whole. `head_only`: a HEAD request (no body, but the
    length a GET would have had)."""
    parts = [status_line(http10, answer.status)]
    parts.extend(b"%s: %s\r\n" % (name.encode(), value.encode()) for name, value in answer.headers)
    parts.append(b"Content-Length: %d\r\n" % len(answer.body))
    parts.append(date_line.now())
    parts.append(connection_line(http10, keep_alive))
    parts.append(b"\r\n")
    if not head_only:
        parts.append(answer.body)
    return b"".join(parts)


def body_framing(
    http10: bool, bodiless: bool, length: int | None, chunked: bool, keep_alive: bool
) -> tuple[bytes, bool, bool]:
    """How a streamed response's body is framed for the client, from the backend's
    Content-Length and chunking: the framing header line (or b""), whether the router
    chunks the body, and whether the connection stays open."""
    if bodiless or (length is not None and not chunked):
        return (b"" if length is None else b"Content-Length: %d\r\n" % length), False, keep_alive
    if not http10:
        return b"Transfer-Encoding: chunked\r\n", True, keep_alive
    return b"", False, False  # an HTTP/1.0 client: the body ends when the connection does


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk(trailers: list[tuple[bytes, bytes]]) -> bytes:
    """The end of a chunked body, with the backend's trailer fields (RFC 9112 7.1.2)."""
    if not trailers:
        return LAST_CHUNK
    lines = b"".join(b"%s: %s\r\n" % (name, value) for name, value in trailers)
    return b"0\r\n" + lines + b"\r\n"


__all__ = [
    "CONTINUE",
    "LAST_CHUNK",
    "DateLine",
    "answer_bytes",
    "body_framing",
    "chunk",
    "connection_line",
    "date_line",
    "last_chunk",
    "reason_phrase",
    "status_line",
]

"""What a worker accepts from a client, beyond what aiohttp's C parser already refuses.

Theory of operation
===================

aiohttp parses requests with llhttp in strict mode, which already refuses (with a 400 and a
closed connection, before anything reaches the front end): Content-Length together with
Transfer-Encoding; duplicate, comma-listed or malformed Content-Length; a Transfer-Encoding that
does not end in `chunked`; duplicate Host (and other singleton headers); obs-fold; bare CR or LF
in the head; control characters in header names and values; bad chunk sizes and extensions;
versions it cannot read; a request target `*` except with OPTIONS. Trailers are parsed and
dropped. tests/router/test_desync_corpus.py holds each of these to it.

What llhttp lets through, and this module refuses before the message is queued for the front end:
  - HTTP versions other than 1.0 and 1.1 (llhttp takes 2.0, and 0.9 — also a request line
    without any version); 2.0 is answered 505, as Go's server does, 0.9 a 400, as Go answers a
    line without a version. The versions llhttp refuses itself (1.2, 3.0) get its 400; Go
    would serve 1.2 and answer 3.0 505, but llhttp's error does not say which version it saw
    when the line arrived in pieces. An HTTP/2.0 request followed by more bytes in the same read
    also gets llhttp's 400 (it ends the connection after a 2.0 request);
  - CONNECT (llhttp treats it as an upgrade; the router tunnels nothing but WebSockets);
  - Transfer-Encoding on an HTTP/1.0 request (RFC 9112 6.1: its framing is faulty), and any
    Transfer-Encoding but plain `chunked` (llhttp takes codings before a final chunked);
  - a head larger than `max_request_header_bytes` in total (aiohttp limits each line only).
The checks run in `GuardedRequestHandler.data_received`, right after the parser, and only when a
cheap precondition holds. A keep-alive GET whose head arrives in one read smaller than the limit
costs a few identity tests: it has aiohttp's shared empty payload (no body, so neither chunked
nor CONNECT) and shared 1.1 version object, no upgrade, and the read ends where the head does.
Everything else (heads split over reads, bodies, HTTP/1.0, upgrades) is checked and measured.

A rejected message is replaced in aiohttp's queue by an error entry, so it is answered in order
after any earlier pipelined requests; later ones are dropped and the connection closes.

Deadlines (one per connection at most, scanned by one per-worker timer, client_deadlines.py):
  - header: armed by a read that leaves a request head incomplete (also one that completes a
    body-less request and goes on into the next), disarmed when it completes;
    `read_header_timeout` after that read the connection is closed (as Go's ReadHeaderTimeout;
    0 means never, as in Go, and the header deadline is then not armed).
    A partial head in the same read as the end of a body is not noticed until the next read.
  - body: armed when a head completes with its body still to come, pushed back by every read
    (and while the router itself has paused reading); `request_body_timeout` without a byte and
    the connection is closed, which abandons the request (a 499 in the access log).
Idle keep-alive connections are closed by aiohttp after `frontend_idle_timeout`.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import HttpVersion10, HttpVersion11
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from router.client_deadlines import BODY, HEADER, NONE, ClientDeadlines
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.router")

# aiohttp buffers the request target up to this; longer request lines are answered 414.
# Gorouter accepts targets up to its whole 1 MiB head limit; 64 KiB is far beyond what browsers
# and common proxies send, and bounds what one connection can make a worker buffer.
MAX_REQUEST_LINE: Final = 64 * 1024
HEAD_SLACK: Final = 4096
_HEAD_END: Final = b"\r\n\r\n"


class RequestHeadTooLarge(BadHttpMessage):
    """The head is over max_request_header_bytes (or has too many header lines)."""


class RequestRefused(BadHttpMessage):
    """A request llhttp accepts and the router does not (see the module docstring)."""


class VersionNotSupported(RequestRefused):
    """An HTTP version whose major is 2 or more: Go's server, Gorouter's, answers these 505."""


class IntakeLimits:
    """One worker's limits and deadline scanner, shared by its client connections."""

    def __init__(
        self,
        max_head_bytes: int,
        max_headers: int,
        header_timeout: float,
        body_timeout: float,
        stats: Any,
    ) -> None:
        self.max_head_bytes = max_head_bytes
        self.max_headers = max_headers
        self.deadlines = ClientDeadlines(header_timeout, body_timeout, stats)

    def __repr__(self) -> str:
        return (
            f"IntakeLimits(head={self.max_head_bytes}, headers={self.max_headers}, "
            f"{self.deadlines!r})"
        )

    @property
    def parser_limits(self) -> dict[str, int]:
        """aiohttp's own per-line limits, set so that any line over them is over ours too."""
        return {
            "max_line_size": min(MAX_REQUEST_LINE, self.max_head_bytes),
            "max_field_size": self.max_head_bytes,
            # 0 is Gorouter's "no count limit": a header line takes at least three bytes, so
            # a count of max_head_bytes leaves the byte limit the only one that can bind.
            "max_headers": self.max_headers or self.max_head_bytes,
        }


def head_size(msg: Any) -> int:
    """The head's size as Gorouter counts it: request line and every header line with CRLF."""
    size = len(msg.method) + len(msg.path) + 8 + 4  # "HTTP/1.1" and two spaces plus CRLF
    for name, value in msg.raw_headers:
        size += len(name) + len(value) + 4
    return size


def refusal(msg: Any, max_head_bytes: int) -> BadHttpMessage | None:
    """Why a parsed request must not be forwarded, or None (the slow path: see the docstring)."""
    version = msg.version
    if version is not HttpVersion11 and version is not HttpVersion10:
        text = f"unsupported protocol version HTTP/{version[0]}.{version[1]}"
        # 0.9 stays a 400: llhttp reports a request line without a version as 0.9 too, and
        # that is Go's 400 (malformed request).
        return VersionNotSupported(text) if version[0] >= 2 else RequestRefused(text)
    if msg.method == "CONNECT":
        return RequestRefused("CONNECT is not supported")
    if msg.chunked:
        if version is HttpVersion10:
            return RequestRefused("Transfer-Encoding in an HTTP/1.0 request")
        for name, value in msg.raw_headers:
            if name.lower() == b"transfer-encoding" and value.strip().lower() != b"chunked":
                # llhttp takes any codings before a final chunked; a backend may not (Go's
                # server, Gorouter's, refuses them too), so it must not see them.
                return RequestRefused("Transfer-Encoding other than chunked")
    if head_size(msg) >= max_head_bytes:
        return RequestHeadTooLarge("request head over max_request_header_bytes")
    return None


_parse = RequestHandler.data_received  # called directly: cheaper than super() per read


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler with the checks and deadlines described above."""

    # Per connection: the worker's limits; the deadline and what it is for; bytes of an
    # unfinished head, and its last three; whether the next head must be measured exactly (it
    # came in several reads, or an earlier read may have left part of it uncounted); the body
    # still arriving.
    __slots__ = (
        "_body",
        "_head_bytes",
        "_measure",
        "_tail",
        "deadline",
        "deadline_kind",
        "intake",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intake: IntakeLimits | None = None
        self.deadline = 0.0
        self.deadline_kind = NONE
        self._head_bytes = 0
        self._measure = False
        self._tail = b""  # the last bytes of the last partial read
        self._body: Any = None

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        _parse(self, data)
        intake = self.intake
        if intake is None:
            return
        added = self._request_count - before
        if not added:
            self._partial_read(intake, data)
            return
        msg: Any
        msg, payload = self._messages[-1]
        try:
            usual = (
                added == 1
                and payload is EMPTY_PAYLOAD  # no body: neither chunked nor CONNECT
                and not self._measure
                and not self._upgraded
                and len(data) < intake.max_head_bytes
                and msg.version is HttpVersion11
            )
        except AttributeError:  # aiohttp's own error entry, after which it parses nothing more
            usual = False
        if usual:
            # Nothing to measure; attributes are written only when they change.
            if not data.endswith(_HEAD_END):
                self._next_head_started(intake, data)
            elif self.deadline_kind:
                self._body = None
                intake.deadlines.disarm(self)
            return
        if not self._check_new(intake, added):
            return
        self._head_bytes = 0
        self._measure = False
        if payload is not EMPTY_PAYLOAD:
            # Whatever follows a body in this read is uncounted: measure the next head.
            self._measure = True
            if not payload.is_eof():
                self._body = payload
                intake.deadlines.arm(self, BODY)
                return
        elif not self._ends_a_head(data):
            self._next_head_started(intake, data)
            return
        if self.deadline_kind:
            self._body = None
            intake.deadlines.disarm(self)

    def _next_head_started(self, intake: IntakeLimits, data: bytes) -> None:
        """The read went on past a body-less request: the next head has begun. As in Go's
        server, read_header_timeout runs from its first bytes; its size is measured exactly."""
        self._body = None
        self._measure = True
        self._tail = data[-3:]
        intake.deadlines.arm(self, HEADER)

    def _ends_a_head(self, data: bytes) -> bool:
        """Whether this read ends exactly where a head does (its blank line may have begun in
        the read before)."""
        if len(data) >= len(_HEAD_END):
            return data.endswith(_HEAD_END)
        return (self._tail + data).endswith(_HEAD_END)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.deadline_kind and self.intake is not None:
            self.intake.deadlines.disarm(self)
        self._body = None
        super().connection_lost(exc)

    def is_reading_paused(self) -> bool:
        """True while the router itself stopped reading (a full body buffer, not the client)."""
        return bool(self._reading_paused)

    def _partial_read(self, intake: IntakeLimits, data: bytes) -> None:
        """A read that completed no request head: part of a head, or of a body."""
        if self._close or self._force_close:
            return  # refused or closing: aiohttp parsed nothing
        body = self._body
        if body is not None:
            if not body.is_eof():
                intake.deadlines.arm(self, BODY)  # pushed back by every body read
                return
            # The body ended in this read; what followed it, if anything, is uncounted.
            self._body = None
            self._measure = True
            intake.deadlines.disarm(self)
            return
        if self._upgraded or not data:
            return  # a tunnel's bytes, or aiohttp re-parsing its own buffer
        self._head_bytes += len(data)
        self._measure = True
        self._tail = (self._tail + data)[-3:]
        if self.deadline_kind != HEADER:
            intake.deadlines.arm(self, HEADER)
        if self._head_bytes > intake.max_head_bytes + HEAD_SLACK:
            # Refuse before the parser finishes, so a head sent byte by byte never grows past
            # the limit in memory. Raw bytes count a little more than Gorouter's formula
            # (optional whitespace, the blank line), hence the slack (Go's server allows 4 KiB).
            self._refuse(RequestHeadTooLarge("request head over max_request_header_bytes"), 0)

    def _check_new(self, intake: IntakeLimits, added: int) -> bool:
        """Check each request this read completed; False when one was refused."""
        messages = self._messages
        first = len(messages) - added
        for index in range(first, len(messages)):
            msg = messages[index][0]
            if msg.__class__ is _ErrInfo:
                # aiohttp answers it and closes; its parser would queue one more error per read.
                self._close = True
                return False
            problem = refusal(msg, intake.max_head_bytes)
            if problem is not None:
                self._refuse(problem, len(messages) - index)
                return False
        return True

    def _refuse(self, problem: BadHttpMessage, from_end: int) -> None:
        """Answer `problem` in place of the request `from_end` from the queue's end (0: a new
        entry); drop what follows it and read nothing more from this client."""
        messages = self._messages
        for _ in range(from_end):
            messages.pop()
        status = 431 if isinstance(problem, RequestHeadTooLarge) else 400
        error = _ErrInfo(status=status, exc=problem, message=problem.message)
        messages.append((error, EMPTY_PAYLOAD))
        if not from_end:
            self._request_count += 1
        self._close = True  # aiohttp stops parsing; the connection closes after the answer
        self._body = None
        if self.deadline_kind and self.intake is not None:
            self.intake.deadlines.disarm(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def expire(self) -> None:
        """Called by the deadline scanner: the client was too slow; close without answering."""
        self._body = None
        self.force_close()

    def answer_status(self, status: int, exc: BaseException | None) -> int:
        """The status for a request aiohttp (or this module) refused: 431 for a head over the
        limits, 414 for an overlong request line, else aiohttp's own."""
        if isinstance(exc, RequestHeadTooLarge):
            return 431
        if isinstance(exc, LineTooLong):
            # Only the limit in the exception tells which line was too long.
            limit = exc.args[1] if len(exc.args) > 1 else None
            line_limit = self.max_line_size
            return 414 if limit == line_limit and line_limit != self.max_field_size else 431
        if isinstance(exc, BadHttpMessage) and exc.message == "Too many headers received":
            return 431
        if isinstance(exc, VersionNotSupported):
            return 505
        return status


def log_refusal(status: int, message: str | None, peer: tuple[str, int] | None) -> None:
    """One line per refused request (the connection closes, so one per connection at most)."""
    reason = (message or "").strip().split("\n", 1)[0][:200]
    log.info("request-refused", status=status, reason=reason, remote=peer[0] if peer else "")


__all__ = [
    "log_refusal",
    "MAX_REQUEST_LINE",
    "GuardedRequestHandler",
    "IntakeLimits",
    "RequestHeadTooLarge",
    "RequestRefused",
    "VersionNotSupported",
    "head_size",
    "refusal",
]

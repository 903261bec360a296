"""A connection to a backend: an asyncio protocol parsing responses with llhttp (httptools).

One exchange at a time per connection; no pipelining. Every failure is converted here, at the
boundary, into a `BackendError` whose kind says what happened and when (see errors.py): a
connection lost before any response byte on a reused connection is the keep-alive race the proxy
retries on a fresh connection. The body held until read, and the write side's pause, are its
base class's (upstream_flow.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final, cast

import httptools

from router import upstream_body
from router.errors import BackendError, Kind
from router.exchange import ProxyRequest, Sending
from router.failures import lost_error
from router.headers import header_pairs, reason_phrase
from router.response_heads import (
    DEFAULT_LIMITS,
    HeadTooLarge,
    ResponseLimits,
    checked_final_head,
    delimited,
    interim_total,
    split_interim,
    too_large,
)
from router.upstream_flow import UpstreamFlow, wake
from router.upstream_trailers import TrailerFields
from router.write_batch import WriteBatch

_NO_BODY_STATUS: Final = frozenset({204, 304})


class ExtraResponseBytes(Exception):
    """A backend sent bytes after a complete response."""


class UpstreamConnection(UpstreamFlow):
    """A keep-alive connection to one endpoint, parsing responses with llhttp."""

    reads_have_deadline = True  # each body read is bounded by endpoint_timeout
    # The current exchange's state, as `_fresh` sets it before each.
    is_head: bool
    closing: bool  # `Connection: close` sent: never reused after it
    on_interim: Callable[[int, bytes], None] | None  # where 1xx heads go; None: dropped
    _on_head: Callable[[], object] | None  # the front end's callback (`call_at_head`)
    _on_end: Callable[[], object] | None  # and `call_at_end`'s
    got_bytes: bool
    status: int
    head: bytes  # status and header lines as received (CRLF each; no blank line), relayed so
    _headers: list[tuple[bytes, bytes]] | None
    keep_alive: bool
    upgraded: bool
    headers_done: bool
    trailers: list[tuple[bytes, bytes]]  # a chunked response's, once its body is complete

    def __init__(
        self,
        key: str,
        on_lost: Callable[[UpstreamConnection], None],
        batch: WriteBatch | None = None,
        limits: ResponseLimits | None = None,
    ) -> None:
        super().__init__()
        self.key = key
        self._on_lost = on_lost
        self._batch = batch  # None: request heads are written at once
        self.limits = limits = limits or DEFAULT_LIMITS
        # As plain ints: on_headers_complete reads them per response.
        self._max_head = limits.head_bytes - 2  # a head's length here excludes its blank line
        self._max_headers = limits.headers
        # For the response in progress: the bytes of reads that ended with its final head still
        # incomplete (all of them head bytes), and its 1xx heads' size. Zeroed again once its
        # final head is in; a response over the limit closes the connection.
        self._head_bytes = 0
        self._interim_bytes = 0
        self._held = b""  # a request head waiting for the batch
        self._parser = httptools.HttpResponseParser(self)
        self._trailers: TrailerFields | None = None  # a chunked response's, as they come
        # The response's reads from its head on, kept from the head's end until it is known
        # whether the body is chunked (see TrailerFields).
        self._pre_body: list[bytes] | None = None
        self.uses = 0
        self.idle_since = 0.0
        self.deadline = 0.0  # time.monotonic() by which the response head must arrive; 0: none
        # The current exchange (and what `_fresh` sets).
        self.active = False
        self._head_chunks: list[bytes] = []
        self._head_waiter: asyncio.Future[None] | None = None
        self.tail = b""
        self._end_timeout = 0.0  # while `_on_end` waits: how long each read may take
        self._fresh(Sending(False, False, (), None))

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("active" if self.active else "idle")
        return f"UpstreamConnection({self.key}, {state}, uses={self.uses})"

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:
            # Bytes on an idle connection (a late 408, garbage): it cannot be reused.
            self.close()
            return
        if self.upgraded:
            self._push_body(data)
            return
        self.got_bytes = True
        if not self.headers_done:
            self._head_chunks.append(data)
        elif self._pre_body is not None:
            self._pre_body.append(data)
        elif self._trailers is not None:
            self._trailers.feed(data)  # first: it must have the trailers when this completes
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            offset = upgrade.args[0] if upgrade.args else len(data)
            self.tail = data[offset:]
            self.upgraded = True
            if self.tail:
                self._push_body(self.tail)
                self.tail = b""
        except httptools.HttpParserError as exc:
            # After a complete response (ExtraResponseBytes) this only closes the connection.
            cause = exc.__context__
            if isinstance(cause, HeadTooLarge):
                self._fail(BackendError(Kind.BAD_RESPONSE, str(cause)))
            else:
                self._fail(BackendError(Kind.BAD_RESPONSE, f"malformed HTTP response: {exc}"))
            self.close()
            return
        if not self.headers_done:
            # Still no end of the head: past the limit, stop reading it (and holding it).
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.head_bytes:
                self._fail(BackendError(Kind.BAD_RESPONSE, too_large(self.limits.head_bytes)))
                self.close()
        elif self._on_head is not None:
            # Last, once this read is parsed whole: a body that came with the head is here too.
            on_head = self._on_head
            self._on_head = None
            on_head()
        elif self._on_end is not None:
            if self.complete:
                on_end = self._on_end
                self._on_end = None
                self.deadline = 0.0
                on_end()
            else:  # each read restarts the wait, as each read of a streamed body is bounded
                self.deadline = time.monotonic() + self._end_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active:
            until_close = not (self.status == 101 or self.complete or delimited(self.headers))
            if self.headers_done and (until_close or self.upgraded) and exc is None:
                self._finish_message()
            elif not self.complete:
                self._fail(self._lost_error(exc))
        self._wake_drain(exc)
        self._on_lost(self)

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # Bytes after the end of the response (more than its Content-Length, or a second
            # response): stop parsing them, so they can never answer the next request sent on
            # this connection; data_received closes it instead of pooling it.
            raise ExtraResponseBytes

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim(status)  # an interim response (100 Continue, 103): the real one follows
            return
        chunks = self._head_chunks
        head = checked_final_head(chunks, self._interim_bytes, self._max_head, self._max_headers)
        if self._head_bytes or self._interim_bytes:
            self._head_bytes = self._interim_bytes = 0
        self.head = head
        self._headers = None
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.headers_done = True
        if self.is_head or status in _NO_BODY_STATUS:
            # llhttp cannot be told a response answers HEAD; the message ends with its head.
            self._parser = httptools.HttpResponseParser(self)
            self._finish_message()
            chunks.clear()
        else:
            # The reads so far (1xx heads already cut off): the head and what came with it.
            self._pre_body = chunks
            self._head_chunks = []
        wake(self._head_waiter)

    def on_chunk_header(self) -> None:
        pre_body = self._pre_body
        if pre_body is not None:  # the first: this response is chunked
            self._pre_body = None
            self._trailers = TrailerFields(b"".join(pre_body))

    def on_body(self, body: bytes) -> None:
        self._pre_body = None  # not chunked, or its first chunk header came first
        if self._body_waiter is None and not self._body:
            # The usual case: the whole body arrives with its head; nobody is waiting yet.
            self._body.append(body)
            self._buffered = len(body)
        else:
            self._push_body(body)

    def on_message_complete(self) -> None:
        # After a 101 the connection carries the tunnel; it ends when either side closes.
        if self.headers_done and not self.complete and self.status != 101:
            self._pre_body = None
            if self._trailers is not None:
                self.trailers = self._trailers.fields
                self._trailers = None
            self.complete = True
            if self._body_waiter is not None:
                wake(self._body_waiter)

    # -- exchange API (used by the proxy) ----------------------------------------------------------

    @property
    def reason(self) -> bytes:
        """The status line's reason phrase (read from the relayed head, only when needed)."""
        return reason_phrase(self.head)

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The response's header lines as (name, value) pairs."""
        if self._headers is None:
            self._headers = header_pairs(self.head)
        return self._headers

    def begin(self, head: bytes, sending: Sending) -> None:
        """Start an exchange by writing the request head."""
        self.active = True
        self._head_chunks.clear()
        self._body.clear()
        self._fresh(sending)
        self.uses += 1
        if self._batch is None:
            self.write(head)
            return
        if self.transport is None or self.closed:
            raise self._lost_error(None)
        self._held = head
        self._batch.hold(self)

    async def send_body(self, req: ProxyRequest) -> None:
        await upstream_body.send_body(req, self)

    def done(self) -> None:
        # The front end's callbacks: no cycle outlives the exchange.
        self.on_interim = None
        self._on_head = self._on_end = None

    def write(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            raise self._lost_error(None)
        if self._held:
            self.write_held()  # the head goes before anything that follows it
        self.transport.write(data)

    def write_held(self) -> None:
        """The held request head, written (see write_batch.py); dropped if the connection
        closed meanwhile, whose loss then fails the exchange as any other would."""
        held = self._held
        if held:
            self._held = b""
            if self.transport is not None and not self.closed:
                self.transport.write(held)

    def head_waiter(self) -> asyncio.Future[None] | None:
        """A future for the response head, or None if it is here (or failed: see check_head)."""
        if self._error is not None or self.headers_done:
            return None
        waiter = self._loop.create_future()
        self._head_waiter = waiter
        return waiter

    def call_at_head(self, callback: Callable[[], object]) -> bool:
        """Call `callback` once the response head is here (after the read that brought it is
        parsed) or the exchange failed; False, and no call, if either is so already.

        The callback path's cheaper `head_waiter`: no future, and no loop turn between the read
        and the response it completes."""
        if self._error is not None or self.headers_done:
            return False
        self._on_head = callback
        return True

    def call_at_end(self, callback: Callable[[], object], timeout: float) -> bool:
        """Call `callback` once the response is complete or the exchange failed; False, and
        no call, if either is so already. A read must come every `timeout` seconds, or the
        pool's deadline check fails the exchange (as a streamed body's reads are bounded).

        For a small body still arriving after its head: held, the response is written whole."""
        if self._error is not None or self.complete or self.closed:
            return False
        self._on_end = callback
        self._end_timeout = timeout
        self.deadline = time.monotonic() + timeout
        return True

    def check_head(self) -> None:
        """Raise the exchange's error if no response head arrived."""
        self._head_waiter = None
        if self._error is not None and not self.headers_done:
            raise self._error

    def time_out(self) -> None:  # called by the pool's deadline check
        """endpoint_timeout passed without a response head (Go's context deadline)."""
        self.fail(BackendError(Kind.TIMEOUT, "context deadline exceeded"))

    def fail(self, error: BackendError) -> None:
        """Abort the exchange from outside (endpoint timeout, client gone)."""
        self._fail(error)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()

    @property
    def is_reusable(self) -> bool:
        return (
            not self.closed
            and self.complete
            and self.keep_alive
            and not self.closing
            and not self.upgraded
            and self._error is None
        )

    # -- internals ---------------------------------------------------------------------------

    def _fresh(self, sending: Sending) -> None:
        """The state of an exchange that has not begun."""
        self.is_head = sending.is_head
        self.closing = sending.closing
        self.on_interim = sending.on_interim
        self._on_head = self._on_end = None
        self.got_bytes = self.keep_alive = self.upgraded = False
        self.headers_done = self.complete = False
        self.status = self._buffered = 0
        self.head = b""
        self._headers = self._error = None
        self.trailers = []
        self._trailers = self._pre_body = None

    def _interim(self, status: int) -> None:
        """A 1xx head is complete: hand it on, and keep only what follows it for the next."""
        head, rest = split_interim(self._head_chunks)
        self._interim_bytes = interim_total(self._interim_bytes, head, self.limits.head_bytes)
        self._head_chunks[:] = [rest] if rest else []
        if self.on_interim is not None and 0 not in head:
            self.on_interim(status, head)

    def _finish_message(self) -> None:
        self.complete = True
        wake(self._body_waiter)

    def _fail(self, error: BackendError) -> None:
        if self._error is None and not self.complete:
            self._error = error
        wake(self._head_waiter)
        on_head = self._on_head
        if on_head is not None:
            # Later, as a woken future's callback would be: a failure can come from deep
            # inside a read or a close.
            self._on_head = None
            self._loop.call_soon(on_head)
        on_end = self._on_end
        if on_end is not None:
            self._on_end = None
            self.deadline = 0.0
            self._loop.call_soon(on_end)
        wake(self._body_waiter)

    def _lost_error(self, exc: Exception | None) -> BackendError:
        return lost_error(exc, self.headers_done, self.got_bytes, self.uses > 1)

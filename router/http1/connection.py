"""One client connection: an asyncio protocol with its state named, over aiohttp's C parser.

Theory of operation
===================

Bytes go to aiohttp's exported llhttp parser (`aiohttp.http.HttpRequestParser`, strict, with
aiohttp's hardening), which yields request heads with their bodies as aiohttp `StreamReader`s.
Each head is held to the wire rules (rules.py); a refused one is answered in its place after the
requests before it, and nothing after it is read. Accepted requests wait in a bounded queue and
are served one at a time, in order (HTTP/1.1 pipelining); while the queue is full the socket is
not read.

The connection's state:
  IDLE      no request in flight, nothing of the next one here; `frontend_idle_timeout` runs
  READING   part of a request head has arrived; `read_header_timeout` runs from its first read
  EXCHANGE  a request is being served (exchange.py); its body may still be arriving, under
            `request_body_timeout`, pushed back by every read (and stopped while the router
            itself has paused reading because the body buffer is full)
  TUNNEL    after a backend's 101: bytes pass both ways untouched until either side closes
  CLOSING   the last response is written: what the client still sends is read and dropped
            for a moment (so that closing does not reset the response away), then it closes
  CLOSED    the transport is gone
An exchange that ends hands the connection back (`exchange_done`): to the next queued request,
to READING or IDLE, or to CLOSING when either side said close or the worker is draining.
Deadlines are scanned by one per-worker timer (client_deadlines.py), never a timer per request.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import HttpRequestParser
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from registry.shm.counters import Stat
from router.answers import refusal_answer
from router.client_deadlines import BODY, HEADER, NONE
from router.forwarded import Forwarding, forwarding_for
from router.http1.exchange import Http1Exchange
from router.http1.rules import HEAD_SLACK, Refusal, head_too_large, parser_refusal, refusal
from router.http1.writer import answer_bytes
from runtime.logs import EventLog

if TYPE_CHECKING:
    from router.http1.server import Http1Server

log = EventLog("vcap.gorouter.router")

# Requests parsed ahead of the one being served; more and the socket is not read until the
# queue drains (a pipelining client waits; memory stays bounded).
PIPELINE_DEPTH: Final = 16
# aiohttp's body buffer per request before it pauses reading (its own default read size).
BODY_BUFFER: Final = 64 * 1024
# How long a closing connection reads and drops what the client still sends (aiohttp's own
# lingering time): closing with unread bytes would reset the response away.
LINGER: Final = 1.0
_HEAD_END: Final = b"\r\n\r\n"


class State(enum.Enum):
    IDLE = "idle"
    READING = "reading"
    EXCHANGE = "exchange"
    TUNNEL = "tunnel"
    CLOSING = "closing"
    CLOSED = "closed"


TRANSITIONS: Final = {
    State.IDLE: frozenset({State.READING, State.EXCHANGE, State.CLOSING, State.CLOSED}),
    State.READING: frozenset({State.IDLE, State.EXCHANGE, State.CLOSING, State.CLOSED}),
    State.EXCHANGE: frozenset(
        {State.IDLE, State.READING, State.EXCHANGE, State.TUNNEL, State.CLOSING, State.CLOSED}
    ),
    State.TUNNEL: frozenset({State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class IllegalTransition(Exception):
    """A bug: the connection was asked to move where its state table does not allow."""


class ClientConnection(BaseProtocol):
    """A client's HTTP/1 connection to a worker (see the module docstring)."""

    # `deadline`/`deadline_kind`: for the per-worker deadline scanner. `measure`: the next head
    # must be measured exactly (it came in several reads, or after a body in the same read).
    __slots__ = (
        "body",
        "deadline",
        "deadline_kind",
        "dispatching",
        "exchange",
        "forwarding",
        "head_bytes",
        "idle_handle",
        "idle_since",
        "local",
        "measure",
        "parser",
        "peer",
        "queue",
        "refused",
        "router_paused",
        "server",
        "state",
        "tail",
        "tls",
        "tunnel_sink",
        "upgrade_tail",
        "upgraded",
        "write_waiter",
    )

    def __init__(
        self, server: Http1Server, tls: bool = False, peer: tuple[str, int] | None = None
    ) -> None:
        limits = server.limits
        parser = HttpRequestParser(
            self,
            server.loop,
            BODY_BUFFER,
            max_line_size=limits.max_line,
            max_field_size=limits.max_head_bytes,
            max_headers=limits.max_headers,
            auto_decompress=False,
        )
        super().__init__(server.loop, parser)
        self.parser = parser
        self.server = server
        self.tls = tls
        self.peer = peer  # from a PROXY header, else the socket's
        self.local: tuple[str, int] = ("", 0)
        self.forwarding: Forwarding | None = None  # None: the proxy's plain-HTTP rules
        self.state = State.IDLE
        self.queue: deque[tuple[Any, Any] | Refusal] = deque()
        self.exchange: Http1Exchange | None = None
        self.dispatching = False
        self.refused = False  # a refusal is queued: nothing more is parsed
        self.upgraded = False  # the parser handed over after an Upgrade request
        self.upgrade_tail = b""  # client bytes after it, for the backend once it says 101
        self.tunnel_sink: Any = None  # the backend connection, in TUNNEL
        self.body: Any = None  # the request body still arriving
        self.deadline = 0.0
        self.deadline_kind = NONE
        self.head_bytes = 0
        self.measure = False
        self.tail = b""
        self.router_paused = False
        self.idle_handle: asyncio.TimerHandle | None = None
        self.idle_since = 0.0
        self.write_waiter: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        peer = f"{self.peer[0]}:{self.peer[1]}" if self.peer else "?"
        return f"ClientConnection({peer}, {self.state.value}, queued={len(self.queue)})"

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        extra = transport.get_extra_info
        if self.peer is None:
            self.peer = extra("peername") or ("", 0)
        self.local = extra("sockname") or ("", 0)
        if self.tls:
            self.forwarding = self._tls_forwarding(extra("ssl_object"))
        self.server.connections.add(self)
        self._idle()

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is State.TUNNEL:
            self.tunnel_sink.write(data)
            return
        if state is State.CLOSING or state is State.CLOSED or self.refused:
            return  # lingering (or refused): dropped
        if self.upgraded:
            # Sent before the backend's 101: kept for the tunnel, and nothing more read.
            self.upgrade_tail += data
            self._pause_transport()
            return
        try:
            messages, upgraded, tail = self.parser.feed_data(data)
        except HttpProcessingError as exc:
            self._refuse(self._parser_refusal(exc))
            return
        except Exception as exc:  # the parser's own failure: a 500, not a crash
            log.error("request-parser-failed", error=repr(exc))
            self._refuse(Refusal(500, "request parser failed"))
            return
        if upgraded:
            self.upgraded = True
            self.upgrade_tail = tail
        if messages:
            self._took(data, messages)
        elif data:
            self._partial(data)

    def eof_received(self) -> bool | None:
        return None  # the client is gone: close (an exchange in flight becomes a 499)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.state = State.CLOSED
        self.server.forget(self)
        if self.deadline_kind:
            self.server.deadlines.disarm(self)
        if self.idle_handle is not None:
            self.idle_handle.cancel()
            self.idle_handle = None
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.client_gone()
        body = self.body
        if body is not None:
            self.body = None
            body.set_exception(ConnectionResetError("client connection lost"))
        sink = self.tunnel_sink
        if sink is not None:
            self.tunnel_sink = None
            sink.close()
        self.queue.clear()
        waiter = self.write_waiter
        if waiter is not None:
            self.write_waiter = None
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("client connection lost"))
        super().connection_lost(exc)

    def resume_writing(self) -> None:
        super().resume_writing()
        waiter = self.write_waiter
        if waiter is not None:
            self.write_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def pause_reading(self) -> None:
        """The body buffer is full (aiohttp's StreamReader asks): the router stops reading."""
        self.router_paused = True
        super().pause_reading()

    def resume_reading(self, resume_parser: bool = True) -> None:
        self.router_paused = False
        super().resume_reading(resume_parser)

    # -- for the exchange ---------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None:
            transport.write(data)

    async def drain(self) -> None:
        """Wait while the client is slower than the router writes."""
        if self.transport is None:
            raise ConnectionResetError("client connection lost")
        if not self.writing_paused:
            return
        waiter = self.write_waiter
        if waiter is None:
            waiter = self.write_waiter = self.server.loop.create_future()
        await waiter

    def exchange_done(self, keep_alive: bool) -> None:
        """The exchange in flight has written its last byte."""
        self.exchange = None
        if self.state is not State.EXCHANGE:
            return  # closed meanwhile, or become a tunnel
        if not keep_alive or self.server.draining:
            self.close_after_write()
            return
        if self.deadline_kind == HEADER:
            self._to(State.READING)
        else:
            self._to(State.IDLE)
            self._idle()
        if not self.dispatching:
            self._dispatch()

    def start_tunnel(self, sink: Any) -> int:
        """The backend said 101: from now on client bytes go to `sink` as they come. Returns
        the bytes sent ahead of the 101."""
        self._to(State.TUNNEL)
        self.exchange = None
        self.tunnel_sink = sink
        early = self.upgrade_tail
        self.upgrade_tail = b""
        if early:
            sink.write(early)
        self._resume_transport()
        return len(early)

    def close_after_write(self) -> None:
        """Close once what is written has gone out; a client still sending is read for a
        moment first (see LINGER)."""
        transport = self.transport
        if self.state is State.CLOSED or transport is None:
            return
        if self.state is not State.CLOSING:
            self._to(State.CLOSING)
        if self.deadline_kind:
            self.server.deadlines.disarm(self)
        body = self.body
        if (body is not None and not body.is_eof()) or self.upgraded or self.refused:
            self._resume_transport()
            self.server.loop.call_later(LINGER, transport.close)
        else:
            transport.close()

    def is_keep_alive(self, msg: Any) -> bool:
        """Whether the connection can carry another request after this one's response."""
        if msg.should_close or msg.upgrade or self.server.draining:
            return False
        body = self.body
        # A body still arriving that nobody will read would stall the next request.
        return body is None or body.is_eof()

    # -- for the deadline scanner --------------------------------------------------------------

    def expire(self) -> None:
        """Too slow a client: closed without an answer (an exchange in flight is a 499)."""
        transport = self.transport
        if transport is not None:
            transport.close()

    def is_reading_paused(self) -> bool:
        return self.router_paused

    # -- for the server ------------------------------------------------------------------------

    def close_if_idle(self) -> bool:
        if self.state is State.IDLE or self.state is State.READING:
            self.close_after_write()
            return True
        return False

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- reading -------------------------------------------------------------------------------

    def _took(self, data: bytes, messages: list[tuple[Any, Any]]) -> None:
        """A read completed `messages`: check each, queue it, and see what the read left."""
        server = self.server
        limits = server.limits
        big_read = len(data) >= limits.max_head_bytes
        measure = self.measure or big_read
        if self.body is not None and self.body.is_eof():
            self.body = None  # the last body ended in this read
        payload: Any = None
        for msg, payload in messages:
            problem = refusal(msg, limits, measure)
            if problem is not None:
                self._refuse(problem)
                return
            self.queue.append((msg, payload))
            measure = big_read
        self.head_bytes = 0
        self.measure = False
        deadlines = server.deadlines
        if not payload.at_eof():
            # Whatever follows a body in this read is uncounted: measure the next head.
            self.measure = True
            if not payload.is_eof():
                self.body = payload
                deadlines.arm(self, BODY)
            elif self.deadline_kind:
                deadlines.disarm(self)
        elif not self._ends_a_head(data):
            # The read went on past a body-less request: the next head has begun. As in Go's
            # server, read_header_timeout runs from its first bytes.
            self.measure = True
            self.tail = data[-3:]
            deadlines.arm(self, HEADER)
        elif self.deadline_kind:
            deadlines.disarm(self)
        if len(self.queue) >= PIPELINE_DEPTH:
            self._pause_transport()
        if not self.dispatching and (self.state is State.IDLE or self.state is State.READING):
            self._dispatch()

    def _partial(self, data: bytes) -> None:
        """A read that completed no request head: part of a head, or of a body."""
        deadlines = self.server.deadlines
        body = self.body
        if body is not None:
            if not body.is_eof():
                deadlines.arm(self, BODY)  # pushed back by every body read
                return
            # The body ended in this read; what followed it, if anything, is uncounted.
            self.body = None
            self.measure = True
            deadlines.disarm(self)
            return
        self.head_bytes += len(data)
        self.measure = True
        self.tail = (self.tail + data)[-3:]
        if self.deadline_kind != HEADER:
            deadlines.arm(self, HEADER)
        if self.state is State.IDLE:
            self._to(State.READING)
        if self.head_bytes > self.server.limits.max_head_bytes + HEAD_SLACK:
            # Refused before the parser finishes, so a head sent byte by byte never grows
            # past the limit in memory.
            self._refuse(head_too_large())

    def _ends_a_head(self, data: bytes) -> bool:
        """Whether this read ends exactly where a head does (its blank line may have begun in
        the read before)."""
        if len(data) >= len(_HEAD_END):
            return data.endswith(_HEAD_END)
        return (self.tail + data).endswith(_HEAD_END)

    def _parser_refusal(self, exc: HttpProcessingError) -> Refusal:
        line_limit = None
        if isinstance(exc, LineTooLong) and len(exc.args) > 1 and isinstance(exc.args[1], int):
            line_limit = exc.args[1]
        return parser_refusal(exc.message, line_limit, self.server.limits)

    def _refuse(self, problem: Refusal) -> None:
        """Answer `problem` after the requests queued before it; read nothing more."""
        self.refused = True
        self.body = None
        if self.deadline_kind:
            self.server.deadlines.disarm(self)
        self.queue.append(problem)
        self._pause_transport()
        if not self.dispatching and (self.state is State.IDLE or self.state is State.READING):
            self._dispatch()

    # -- serving -------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Serve queued requests in order until one has to wait (or the connection closes)."""
        self.dispatching = True
        try:
            queue = self.queue
            while queue and (self.state is State.IDLE or self.state is State.READING):
                item = queue.popleft()
                if len(queue) == PIPELINE_DEPTH // 2 and not self.refused:
                    self._resume_transport()
                if isinstance(item, Refusal):
                    self._answer_refusal(item)
                    return
                msg, payload = item
                if self.idle_handle is not None:
                    self.idle_handle.cancel()
                    self.idle_handle = None
                self._to(State.EXCHANGE)
                self.exchange = Http1Exchange(self, msg, payload)
                self.exchange.start()
        finally:
            self.dispatching = False

    def _answer_refusal(self, problem: Refusal) -> None:
        answer = refusal_answer(problem.status, problem.reason)
        stats = self.server.stats
        stats[Stat.requests] += 1
        stats[answer.stat] += 1
        stats[Stat.responses_4xx if answer.status < 500 else Stat.responses_5xx] += 1
        reason = problem.reason.strip().split("\n", 1)[0][:200]
        log.info(
            "request-refused",
            status=answer.status,
            reason=reason,
            remote=self.peer[0] if self.peer else "",
        )
        self.write(answer_bytes(answer, False, False, False))
        self.close_after_write()

    def _idle(self) -> None:
        """Start (or push back) the keep-alive timer: one handle, rescheduled lazily."""
        loop = self.server.loop
        self.idle_since = loop.time()
        if self.idle_handle is None:
            self.idle_handle = loop.call_later(self.server.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        self.idle_handle = None
        if self.state is not State.IDLE:
            return
        loop = self.server.loop
        due = self.idle_since + self.server.idle_timeout
        if loop.time() >= due:
            self.close_after_write()
        else:
            self.idle_handle = loop.call_at(due, self._idle_check)

    def _to(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state.value} -> {state.value}")
        self.state = state

    def _pause_transport(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.pause_reading()

    def _resume_transport(self) -> None:
        transport = self.transport
        if transport is not None and not self.router_paused:
            transport.resume_reading()

    def _tls_forwarding(self, ssl_object: ssl.SSLObject | None) -> Forwarding:
        """A TLS connection's forwarding rules, from its client certificate, once."""
        proxy = self.server.proxy
        cert = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if cert:
            return forwarding_for(proxy.config, tls=True, client_cert_der=cert)
        return proxy.tls_forwarding


__all__ = ["ClientConnection", "IllegalTransition", "State", "TRANSITIONS"]

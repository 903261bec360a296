"""One client connection: an asyncio protocol with its state named, over aiohttp's C parser.

Theory of operation
===================

Bytes go to aiohttp's exported llhttp parser (`aiohttp.http.HttpRequestParser`, strict, with
aiohttp's hardening), which yields request heads with their bodies as aiohttp `StreamReader`s.
Each head is held to the wire rules (rules.py); a refused one is answered in its place after the
requests before it, and nothing after it is read. Accepted requests wait in a bounded queue and
are served one at a time, in order (HTTP/1.1 pipelining); while the queue is full the socket is
not read.

Its state (states.py) moves as the table there allows.
An exchange that ends hands the connection back (`exchange_done`): to the next queued request,
to READING or IDLE, or to CLOSING when either side said close or the worker is draining.
Deadlines are scanned by one per-worker timer (client_deadlines.py), never a timer per request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from registry.shm.counters import Stat
from router.answers import as_configured, count_answer, refusal_answer
from router.client_deadlines import HEADER, NONE
from router.forwarded import Forwarding, tls_forwarding
from router.http1.flow import FlowControlled
from router.http1.intake import DISARM, HOLD_HEADER, Intake
from router.http1.rules import Refusal, parser_refusal
from router.http1.server import Http1Server, InFlight
from router.http1.states import TRANSITIONS, IllegalTransition, State
from router.http1.streams import TunnelSink
from router.http1.writer import answer_bytes
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.router")

# Requests parsed ahead of the one being served; more and the socket is not read until the
# queue drains (a pipelining client waits; memory stays bounded).
PIPELINE_DEPTH: Final = 16
# How long a closing connection reads and drops what the client still sends (aiohttp's own
# lingering time): closing with unread bytes would reset the response away.
LINGER: Final = 1.0
_SERVING: Final = (State.IDLE, State.READING)  # where queued requests are served from


class ClientConnection(FlowControlled):
    """A client's HTTP/1 connection to a worker (see the module docstring)."""

    def __init__(
        self, server: Http1Server, tls: bool = False, peer: tuple[str, int] | None = None
    ) -> None:
        limits = server.limits
        super().__init__(server.loop, limits, server.batch)
        self.server = server
        self.tls = tls
        self.peer = peer  # from a PROXY header, else the socket's
        self.local: tuple[str, int] = ("", 0)
        self.forwarding: Forwarding | None = None  # None: the proxy's plain-HTTP rules
        self.state = State.IDLE
        self.queue: deque[tuple[Any, Any] | Refusal] = deque()
        self.exchange: InFlight | None = None
        self.dispatching = False
        self.refused = False  # a refusal is queued: nothing more is parsed
        self.upgraded = False  # the parser handed over after an Upgrade request
        self.upgrade_tail = b""  # client bytes after it, for the backend once it says 101
        self.tunnel_sink: TunnelSink | None = None  # the backend connection, in TUNNEL
        self.intake = Intake(limits)
        self.deadline = 0.0  # these two: for the per-worker deadline scanner
        self.deadline_kind = NONE
        self.idle_handle: asyncio.TimerHandle | None = None
        self.idle_since = 0.0

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
            proxy = self.server.proxy
            self.forwarding = tls_forwarding(
                proxy.config, extra("ssl_object"), proxy.tls_forwarding
            )
        self.server.connections.add(self)
        self._idle()

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is State.TUNNEL:
            if self.tunnel_sink is not None:
                self.tunnel_sink.write(data)
            return
        if state is State.CLOSING or state is State.CLOSED or self.refused:
            return  # lingering (or refused): dropped
        if self.upgraded:
            # Sent before the backend's 101: kept for the tunnel, and nothing more read.
            self.upgrade_tail += data
            self.pause_transport()
            return
        try:
            # Called as Any: the C parser returns () for "no request" where its stub says a
            # list, and compiled code checks a typed call's result against its declared type.
            parser: Any = self.parser
            messages, upgraded, tail = parser.feed_data(data)
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
        body = self.intake.body
        if body is not None:
            self.intake.body = None
            body.set_exception(ConnectionResetError("client connection lost"))
        sink = self.tunnel_sink
        if sink is not None:
            self.tunnel_sink = None
            sink.close()
        self.queue.clear()
        super().connection_lost(exc)

    # -- for the exchange ---------------------------------------------------------------------

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
        self._serve_queued()

    def start_tunnel(self, sink: TunnelSink) -> int:
        """The backend said 101: from now on client bytes go to `sink` as they come. Returns
        the bytes sent ahead of the 101."""
        self._to(State.TUNNEL)
        self.exchange = None
        self.tunnel_sink = sink
        early = self.upgrade_tail
        self.upgrade_tail = b""
        if early:
            sink.write(early)
        self.resume_transport()
        return len(early)

    def close_after_write(self) -> None:
        """Close once what is written has gone out; a client still sending is read for a
        moment first (see LINGER)."""
        transport = self.transport
        if self.state is State.CLOSED or transport is None:
            return
        self.write_held()
        if self.state is not State.CLOSING:
            self._to(State.CLOSING)
        if self.deadline_kind:
            self.server.deadlines.disarm(self)
        body = self.intake.body
        if (body is not None and not body.is_eof()) or self.upgraded or self.refused:
            self.resume_transport()
            self.server.loop.call_later(LINGER, transport.close)
        else:
            transport.close()

    def is_keep_alive(self, msg: Any) -> bool:
        """Whether the connection can carry another request after this one's response."""
        if msg.should_close or msg.upgrade or self.server.draining:
            return False
        body = self.intake.body
        # A body still arriving that nobody will read would stall the next request.
        return body is None or body.is_eof()

    # -- for the deadline scanner --------------------------------------------------------------

    def expire(self) -> None:
        """Too slow a client: closed without an answer (an exchange in flight is a 499)."""
        transport = self.transport
        if transport is not None:
            self.write_held()
            transport.close()

    # -- for the server ------------------------------------------------------------------------

    def close_if_idle(self) -> bool:
        if self.state in _SERVING:
            self.close_after_write()
            return True
        return False

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- reading -------------------------------------------------------------------------------

    def _took(self, data: bytes, messages: Sequence[tuple[Any, Any]]) -> None:
        """A read completed `messages`: queue those that pass, answer one that does not."""
        verdict = self.intake.took(data, messages)
        self.queue.extend(verdict.accepted)
        if verdict.refused is not None:
            self._refuse(verdict.refused)
            return
        self._set_deadline(verdict.deadline)
        if len(self.queue) >= PIPELINE_DEPTH:
            self.pause_transport()
        self._serve_queued()

    def _partial(self, data: bytes) -> None:
        """A read that completed no request head: part of a head, or of a body."""
        verdict = self.intake.partial(data)
        if verdict.refused is not None:
            # Refused before the parser finishes, so a head sent byte by byte never grows
            # past the limit in memory.
            self._refuse(verdict.refused)
            return
        self._set_deadline(verdict.deadline)
        if verdict.deadline == HOLD_HEADER and self.state is State.IDLE:
            self._to(State.READING)

    def _set_deadline(self, action: int) -> None:
        deadlines = self.server.deadlines
        if action == DISARM:
            if self.deadline_kind:
                deadlines.disarm(self)
        elif action == HOLD_HEADER:
            if self.deadline_kind != HEADER:
                deadlines.arm(self, HEADER)
        else:  # START_HEADER or PUSH_BODY
            deadlines.arm(self, action)

    def _parser_refusal(self, exc: HttpProcessingError) -> Refusal:
        line_limit = None
        if isinstance(exc, LineTooLong) and len(exc.args) > 1 and isinstance(exc.args[1], int):
            line_limit = exc.args[1]
        return parser_refusal(exc.message, line_limit, self.server.limits)

    def _refuse(self, problem: Refusal) -> None:
        """Answer `problem` after the requests queued before it; read nothing more."""
        self.refused = True
        self.intake.body = None
        if self.deadline_kind:
            self.server.deadlines.disarm(self)
        self.queue.append(problem)
        self.pause_transport()
        self._serve_queued()

    # -- serving -------------------------------------------------------------------------------

    def _serve_queued(self) -> None:
        """Serve what is queued, unless that is already under way or a request is in flight."""
        if self.queue and not self.dispatching and self.state in _SERVING:
            self._dispatch()

    def _dispatch(self) -> None:
        """Serve queued requests in order until one has to wait (or the connection closes)."""
        self.dispatching = True
        try:
            queue = self.queue
            while queue and self.state in _SERVING:
                item = queue.popleft()
                if len(queue) == PIPELINE_DEPTH // 2 and not self.refused:
                    self.resume_transport()
                if isinstance(item, Refusal):
                    self._answer_refusal(item)
                    return
                msg, payload = item
                self._to(State.EXCHANGE)
                self.exchange = exchange = self.server.exchange(self, msg, payload)
                exchange.start()
        finally:
            self.dispatching = False

    def _answer_refusal(self, problem: Refusal) -> None:
        answer = refusal_answer(problem.status, problem.reason)
        stats = self.server.stats
        stats[Stat.requests] += 1
        count_answer(stats, answer)
        stats[Stat.responses_4xx if answer.status < 500 else Stat.responses_5xx] += 1
        reason = problem.reason.strip().split("\n", 1)[0][:200]
        log.info(
            "request-refused",
            status=answer.status,
            reason=reason,
            remote=self.peer[0] if self.peer else "",
        )
        # Those with an X-Cf-RouterError are Gorouter's handlers' (after its http_rewrite
        # one); Go's server makes the others, before any handler.
        proxy = self.server.proxy
        rewrite = proxy.rewrite if answer.router_error else None
        answer = as_configured(answer, proxy.error_template, rewrite)
        self.write(answer_bytes(answer, False, False, False))
        self.close_after_write()

    def _idle(self) -> None:
        """Start (or push back) the keep-alive timer: one handle, rescheduled lazily.
        `frontend_idle_timeout` 0 is Go's "never close an idle connection"."""
        loop = self.server.loop
        self.idle_since = loop.time()
        if self.idle_handle is None and self.server.idle_timeout > 0:
            self.idle_handle = loop.call_later(self.server.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        self.idle_handle = None
        if self.state is not State.IDLE:
            return
        loop = self.server.loop
        timeout = self.server.idle_timeout
        if timeout <= 0:
            return  # turned off by a reload meanwhile
        due = self.idle_since + timeout
        if loop.time() >= due:
            self.close_after_write()
        else:
            self.idle_handle = loop.call_at(due, self._idle_check)

    def _to(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state.value} -> {state.value}")
        self.state = state


__all__ = ["ClientConnection"]

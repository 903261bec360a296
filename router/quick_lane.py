"""The quick lane: the usual request served from the connection's callbacks, without a task.

Theory of operation
===================

aiohttp serves each request with a task running the handler coroutine, a request object and a
response writer, which is most of what a small request costs a worker. Most requests are a
bodiless HTTP/1.1 request on a keep-alive connection, to an endpoint with an idle pooled
connection, whose whole response arrives at once. For those the quick lane does in two callbacks
what the front end does in its coroutine:
  1. `data_received`: a read completed exactly one such request while the connection was idle.
     The request is taken from aiohttp's queue before aiohttp's per-connection task is woken;
     the proxy routes it (on plain values, as for any request) and writes it to a pooled
     connection (`Proxy.first_attempt`).
  2. The response head's future is done (a callback run after the loop has handled every read
     it polled, so the client writes of an iteration go out together, as the backend writes
     do: write_batch.py): the whole response goes to the client in one buffer and the
     exchange is settled (`Proxy.finish`).
Whenever anything else is needed (the router answers itself, a route service, a dial, a failed
attempt and its retries, a response that must be streamed) the exchange is handed over: the
request goes back to the front of aiohttp's queue with the exchange attached (`handover`), and
the front end's coroutine carries on from where the quick lane stopped. Nothing is decided
twice or differently; only the frames differ.

While a quick exchange is in flight aiohttp's task stays asleep (its waiter is kept aside), so
pipelined requests queue behind it and are served in order afterwards. The keep-alive timer,
graceful shutdown (`_request_in_progress`) and a client that goes away (499, upstream
cancelled) are kept as aiohttp's own loop keeps them.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import HttpVersion11
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD

from router.exchange import Exchange, ProxyRequest
from router.forwarded import Forwarding
from router.intake import GuardedRequestHandler
from router.relay import whole_response
from runtime.logs import EventLog

if TYPE_CHECKING:
    from registry.records import EndpointRecord
    from router.proxy import Proxy

log = EventLog("vcap.gorouter.proxy")
_guarded = GuardedRequestHandler.data_received  # called directly: cheaper than super()


class Handover:
    """A request the quick lane began: where the front end's coroutine carries on from."""

    __slots__ = ("ex", "first", "message", "plan", "responded")

    def __init__(self, message: RawRequestMessage, ex: Exchange) -> None:
        self.message = message
        self.ex = ex
        self.plan: tuple[list[bytes], Any, bool] | None = None  # Proxy.plan's; None: answered
        self.first: EndpointRecord | None = None  # the endpoint attempt 1 chose
        self.responded = False  # the response head has arrived; only the relay is left

    def __repr__(self) -> str:
        return f"Handover({self.ex!r}, responded={self.responded})"


class QuickLaneHandler(GuardedRequestHandler):
    """aiohttp's connection handler with the quick lane in front of its request loop."""

    __slots__ = ("_parked", "_quick", "handover", "proxy")

    peer: tuple[str, int] | None = None  # set before connection_made from a PROXY header
    local: tuple[str, int] | None = None
    forwarding: Forwarding | None = None  # None: the proxy's plain-HTTP rules

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.proxy: Proxy | None = None  # None: every request goes through aiohttp's loop
        self.handover: Handover | None = None  # for the front end to take up
        self._quick: Handover | None = None  # the exchange in flight here
        self._parked: asyncio.Future[None] | None = None  # aiohttp's waiter, kept aside

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or self._messages or self.proxy is None or waiter.done():
            _guarded(self, data)  # a request is in flight (here or in aiohttp's loop)
            return
        self._waiter = None  # parse without waking aiohttp's loop
        try:
            _guarded(self, data)
        except BaseException:
            self._wake(waiter)
            raise
        messages = self._messages
        if len(messages) == 1 and not self._close:
            msg, payload = messages[0]
            if (
                payload is EMPTY_PAYLOAD
                and msg.__class__ is RawRequestMessage
                and msg.version is HttpVersion11
                and not msg.should_close
                and not msg.upgrade
                and msg.method != "HEAD"
                and self.local is not None
                and self.peer is not None
            ):
                messages.popleft()
                self._parked = waiter
                try:
                    self._begin(msg)
                except Exception as exc:
                    self._abandon(exc)
                return
        self._wake(waiter)

    def connection_lost(self, exc: BaseException | None) -> None:
        quick = self._quick
        if quick is not None and self.proxy is not None:
            # The client left with the exchange in flight: 499, and the upstream cancelled
            # (which calls back into _head_arrived: it finds nothing in flight).
            self._quick = None
            self.proxy.client_gone(quick.ex)
            self._settle(quick.ex, 0, 0)
        parked = self._parked
        if parked is not None:
            self._parked = None
            self._waiter = parked  # aiohttp cancels it, which ends its loop
        super().connection_lost(exc)

    # -- the lane ----------------------------------------------------------------------------

    def _begin(self, msg: RawRequestMessage) -> None:
        proxy = self.proxy
        peer = self.peer
        assert proxy is not None and peer is not None and self.local is not None
        request = ProxyRequest(
            msg.method,
            msg.path,
            msg.headers.get("Host", ""),
            "HTTP/1.1",
            msg.raw_headers,
            peer[0],
            peer[1],
            self.local[0],
            time.time(),
            None,
            None,
            None,
            False,
            False,
            False,
            self.forwarding,
        )
        ex = proxy.begin(request)
        self._request_in_progress = True
        quick = self._quick = Handover(msg, ex)
        plan = quick.plan = proxy.plan(ex)
        if plan is None or plan[2]:
            self._hand_over(quick)  # the router's own answer, or a route service
            return
        quick.first = proxy.first_attempt(ex, plan[0], plan[1])
        conn = ex.conn
        if conn is None:
            self._hand_over(quick)  # nothing idle to send it on (or it failed at once)
        else:
            waiter = conn.head_waiter()
            if waiter is None:
                self._head_arrived()
            else:
                waiter.add_done_callback(self._head_arrived)

    def _head_arrived(self, _: object = None) -> None:
        try:
            self._relay()
        except Exception as exc:
            self._abandon(exc)

    def _relay(self) -> None:
        quick = self._quick
        proxy = self.proxy
        if quick is None or proxy is None:
            return  # settled meanwhile: the client went away
        ex = quick.ex
        if not proxy.first_head(ex):
            self._hand_over(quick)  # attempt 1 failed: the retries go on in the coroutine
            return
        transport = self.transport
        whole = whole_response(ex, proxy, ex.request.method, True, True)
        if whole is None or transport is None:
            quick.responded = True
            self._hand_over(quick)  # a response to stream (or a client that is going)
            return
        transport.write(whole[0])
        self._settle(ex, ex.status, whole[1])
        self._keep_alive()
        self._resume()

    def _abandon(self, exc: Exception) -> None:
        """An error the lane did not expect (a bug): logged, the exchange settled as a 500 and the
        connection closed, so that nothing is left waiting or counted as in flight."""
        log.error("quick-lane-failed", error=repr(exc))
        quick = self._quick
        if quick is not None and self.proxy is not None:
            self._settle(quick.ex, 500, 0)
        self.force_close()

    def _settle(self, ex: Exchange, status: int, sent: int) -> None:
        self._quick = None
        assert self.proxy is not None
        self.proxy.finish(ex, status, sent)
        self._request_in_progress = False
        waiter = self._handler_waiter  # a graceful shutdown waiting for this request
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        parser = self._parser
        if parser is not None:
            parser.message_consumed()

    def _keep_alive(self) -> None:
        """Start (or push back) aiohttp's keep-alive timer, as its loop does after a response."""
        self._keepalive = True
        loop = self._loop
        close_time = loop.time() + self._keepalive_timeout
        self._next_keepalive_close_time = close_time
        if self._keepalive_handle is None:
            self._keepalive_handle = loop.call_at(close_time, self._process_keepalive)

    def _hand_over(self, quick: Handover) -> None:
        """The front end's coroutine takes the exchange from here (see the module docstring)."""
        self._quick = None
        self.handover = quick
        self._messages.appendleft((quick.message, EMPTY_PAYLOAD))
        self._resume()

    def _resume(self) -> None:
        """Give aiohttp's loop its waiter back, and wake it if requests are queued."""
        waiter = self._parked
        if waiter is None:
            return
        self._parked = None
        self._wake(waiter)

    def _wake(self, waiter: asyncio.Future[None]) -> None:
        self._waiter = waiter
        if waiter.done():
            return
        if self._messages:
            waiter.set_result(None)
        elif self._close or self._force_close:
            # Closed while the quick lane held the connection: end aiohttp's loop, as its
            # close() would have, and the connection with it.
            waiter.cancel()
            if self.transport is not None:
                self.transport.close()


__all__ = ["Handover", "QuickLaneHandler"]

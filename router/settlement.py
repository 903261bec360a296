"""Settling exchanges: the router's own answers, a client that went away, and `finish`, which
ends every exchange exactly once (the in-flight cells, the pooled connection, the counters and
the access log line)."""

from __future__ import annotations

import bisect
import time
from typing import TYPE_CHECKING, Final

from registry.shm.counters import LATENCY_BOUNDS_US, Stat
from router.answers import Answer, as_configured, count_answer
from router.errors import BackendError, Kind
from router.exchange import Exchange

if TYPE_CHECKING:
    from router.proxy import Proxy


def answer(proxy: Proxy, ex: Exchange, answer: Answer) -> None:
    """The router answers this exchange itself: with the operator's error page when one is
    configured and the answer is the error writer's, and with http_rewrite applied."""
    answer = as_configured(answer, proxy.error_template, proxy.rewrite)
    ex.answer = answer
    ex.router_error = answer.router_error
    count_answer(proxy.row.stats, answer)


def client_gone(proxy: Proxy, ex: Exchange) -> None:
    """The client left before the response was complete: 499, upstream cancelled."""
    if ex.conn is not None:
        ex.conn.fail(BackendError(Kind.CLIENT_GONE, "context canceled"))
    if not ex.status:
        ex.status = 499
        ex.router_error = ex.router_error or "endpoint_failure (context canceled)"
    proxy.row.stats[Stat.client_closed] += 1


def finish(proxy: Proxy, ex: Exchange, status: int, bytes_sent: int) -> None:
    """Settle the exchange once: counters, the upstream connection, the access log."""
    row = proxy.row
    stats = row.stats
    stats[Stat.in_flight] -= 1
    if not ex.status:
        ex.status = status
    status = ex.status
    stats[_STATUS_CLASS.get(status // 100, Stat.responses_xxx)] += 1
    if ex.endpoint is not None:
        row.inflight[ex.endpoint.slot] -= 1
    conn = ex.conn
    if conn is not None:
        conn.done()
        proxy.upstream.release(conn)
    # The front end's 1xx callback refers back to it: dropped, so that no reference cycle
    # outlives the exchange (and waits for the cyclic garbage collector).
    ex.on_interim = None
    elapsed = time.monotonic() - ex.t0
    req = ex.request
    if req.body is not None:
        received = req.body.bytes_read
    else:
        received = len(req.buffered_body) if req.buffered_body else 0
    stats[Stat.bytes_sent] += bytes_sent
    stats[Stat.bytes_received] += received
    micros = int(elapsed * 1e6)
    stats[Stat.response_time_us_total] += micros
    stats[Stat.latency_le_1ms + bisect.bisect_left(LATENCY_BOUNDS_US, micros)] += 1
    row.count_routed(ex.endpoint, ex.pool if ex.failed_attempts else None, status, micros)
    if proxy.access_log is not None:
        proxy.access_log.write(ex, received, bytes_sent, elapsed)  # may read ex.conn's address
    ex.conn = None


_STATUS_CLASS: Final = {
    1: Stat.responses_1xx,
    2: Stat.responses_2xx,
    3: Stat.responses_3xx,
    4: Stat.responses_4xx,
    5: Stat.responses_5xx,
}


__all__ = ["answer", "client_gone", "finish"]

"""Attempts against a pool's endpoints: choice, limits, one attempt, retries.

Theory of operation
===================

Attempts (at most `backends.max_attempts`):
  1. Choose an endpoint: sticky `__VCAP_ID__` first if present, else the pool's policy; endpoints
     that failed this request are excluded, overloaded ones are skipped. Increment the in-flight
     cell for its slot in this worker's row *before* any await, so the global check-then-increment
     can overshoot `max_conns` by at most one request per worker.
  2. Take a pooled keep-alive connection (or dial one), write the head and the body, wait for the
     response head within `endpoint_timeout`.
  3. On failure, classify (errors.py) and decide:
     - dial and TLS-setup errors: nothing reached the backend; retry for any method;
     - the connection closed or reset before any response byte: retry only if the request is
       idempotent (GET, HEAD, OPTIONS, TRACE, or an Idempotency-Key) and its body is replayable.
       On a reused pooled connection this is the keep-alive race, not the endpoint's fault: it is
       not marked failed and the retry dials a fresh connection;
     - a timeout, a malformed response, or a failure after the request body was consumed: no retry.
     Failable kinds mark the endpoint failed for `droplet_stale_threshold / 4`; a TLS endpoint
     that fails a prunable check (dial, TLS setup) leaves the route's pool instead, for every
     worker: this one hides it at once and tells the supervisor, which removes it from the
     shared table until it registers again (registry/pruned.py).
A body is replayable while none of it has been read (streamed bodies), or always when small enough
to be buffered before the first attempt. A request whose body was consumed is never retried.

Routes bound to a route service send the request there first (route_services.py); the same
attempt loop runs against the service's URL, without per-endpoint accounting.

Attempt 1 can start from a callback (`first_attempt`, then `first_head` once the response head
is in) when an idle pooled connection lets it go without awaiting; if it fails, `attempts()`
carries on from that failure as if it had made the attempt itself. Every attempt, whatever
started it, is `attempt()`: dial when no pooled connection is given, write the head
(`send_head`) and the body, wait for the response head.
"""

from __future__ import annotations

import ssl
import time
from typing import TYPE_CHECKING, Final

from registry.records import EndpointRecord, PoolRecord
from registry.shm.counters import Stat
from router import choice, errors, settlement
from router.answers import backend_answer, router_answer
from router.errors import BackendError, Kind
from router.exchange import BackendExchange, Exchange, Plan, ProxyRequest, Sending
from router.headers import build_head, header_value
from runtime import control
from runtime.logs import EventLog

if TYPE_CHECKING:
    from router.proxy import Proxy

log = EventLog("vcap.gorouter.proxy")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Bodiless requests of these methods go without a Content-Length (Go's shouldSendContentLength).
_NO_LENGTH_METHODS: Final = frozenset({"GET", "HEAD"})
NO_ENDPOINTS_DETAIL: Final = "No endpoints available"
_NONE_EXCLUDED: Final[set[int]] = set()  # shared, never mutated: no endpoint failed yet


def first_attempt(proxy: Proxy, ex: Exchange, plan: Plan) -> EndpointRecord | None:
    """Start attempt 1 without awaiting, when an idle pooled connection to the chosen
    endpoint lets it: ex.conn is then set, and `first_head` follows once the response head
    has arrived (`UpstreamConnection.when_head`) or at once if the attempt already failed
    (ex.first_error). When no connection is idle ex.conn stays unset and
    `attempts(..., first=endpoint)` dials. Returns the endpoint; None when every endpoint
    is full, which `attempts()` answers."""
    pool = plan.pool
    endpoint = choice.choose(proxy, ex, pool, _NONE_EXCLUDED, 1)
    if endpoint is None:
        return None
    # Counted at once, as in attempts(): between the check and the count nothing else runs.
    proxy.row.inflight[endpoint.slot] += 1
    ex.endpoint = endpoint  # from here on, finish() settles the in-flight cell
    if ex.request.body is not None:
        return endpoint
    cached = choice.instance_strings(proxy, endpoint)
    conn = proxy.upstream.take_idle(cached[2])
    if conn is None:
        return endpoint
    try:
        send_head(proxy, ex, conn, True, plan.common, cached[1])
    except BackendError as error:
        ex.conn = None
        ex.first_error = error
    return endpoint


def first_head(proxy: Proxy, ex: Exchange) -> bool:
    """After `first_attempt`'s wait: True when the response head arrived; False when the
    attempt failed (its error is kept for `attempts()` to carry on from)."""
    if ex.first_error is None:
        conn = ex.conn
        assert conn is not None and ex.endpoint is not None
        try:
            _take_head(conn, True)
        except BackendError as error:
            ex.first_error = error
            return False
        ex.backend = choice.instance_strings(proxy, ex.endpoint)[3]  # cached, unlike .address
        return True
    return False


async def attempts(
    proxy: Proxy, ex: Exchange, plan: Plan, first: EndpointRecord | None = None
) -> None:
    """Try the pool's endpoints until one answers or the attempts run out. `first`: the
    endpoint `first_attempt` chose; if it also failed there (ex.first_error), this goes on
    from that failure."""
    req = ex.request
    common, pool = plan.common, plan.pool
    inflight = proxy.row.inflight
    idempotent = req.method in IDEMPOTENT_METHODS or (
        ex.facts is not None and ex.facts.has_idempotency_key
    )
    excluded: set[int] = _NONE_EXCLUDED  # replaced by a real set on the first failure
    last_error: BackendError | None = None
    fresh = False
    for number in range(1, proxy.max_attempts + 1):
        error = ex.first_error if number == 1 else None
        if error is not None:
            endpoint = first
            assert endpoint is not None
        else:
            if number == 1 and first is not None:
                endpoint = first  # counted in flight by first_attempt
            else:
                endpoint = choice.choose(proxy, ex, pool, excluded, number)
                if endpoint is None:
                    if number == 1 and (
                        not ex.must_be_sticky or choice.all_overloaded(proxy, pool)
                    ):
                        # Nothing excluded yet, so every endpoint is at max_conns (Gorouter's
                        # pool.IsOverloaded): the route has reached its connection limit.
                        limit = errors.connection_limit(req.host_header)
                        settlement.answer(proxy, ex, router_answer(limit))
                        return
                    break
                inflight[endpoint.slot] += 1
                ex.endpoint = endpoint  # from here on, finish() settles the in-flight cell
            cached = choice.instance_strings(proxy, endpoint)
            conn = None if fresh else proxy.upstream.take_idle(cached[2])
            try:
                await attempt(proxy, ex, endpoint, common, conn, cached[1], cached[2])
            except BackendError as failure:
                error = failure
            else:
                ex.backend = cached[3]
                return
        inflight[endpoint.slot] -= 1
        ex.endpoint = None
        ex.conn = None
        last_error = error
        race = _classify_failure(proxy, ex, error, idempotent)
        retriable = errors.is_retriable(error.kind) and req.is_replayable
        _log_failure(proxy, ex, endpoint.address, error, number, retriable)
        if race:
            fresh = True  # the keep-alive race: not the endpoint's fault; new socket
        else:
            if excluded is _NONE_EXCLUDED:
                excluded = set()
            _blame(proxy, pool, endpoint, error, excluded)
        if not retriable:
            break
        proxy.row.stats[Stat.retries] += 1
    settlement.answer(
        proxy, ex, backend_answer(last_error or BackendError(Kind.NO_ENDPOINT, NO_ENDPOINTS_DETAIL))
    )


def _classify_failure(proxy: Proxy, ex: Exchange, error: BackendError, idempotent: bool) -> bool:
    """Refine the error's kind for this request; True when it was the keep-alive race."""
    ex.failed_attempts += 1
    proxy.row.stats[Stat.failed_attempts] += 1
    lost = error.kind in (Kind.CLOSED, Kind.RESET)
    race = lost and error.reused
    if lost and idempotent and ex.request.is_replayable:
        # Nothing of the response arrived and the request can be replayed safely.
        error.blamed = error.kind
        error.kind = Kind.IDEMPOTENT_EOF
    return race


def _blame(
    proxy: Proxy,
    pool: PoolRecord,
    endpoint: EndpointRecord,
    error: BackendError,
    excluded: set[int],
) -> None:
    """Gorouter's EndpointFailed: a TLS endpoint that failed to connect or to set up TLS leaves
    the route's pool, for every worker, until it registers again; another failable endpoint
    is skipped by this worker for a while."""
    excluded.add(endpoint.slot)
    original = error.blamed or error.kind
    if endpoint.tls and errors.is_prunable(original):
        _prune(proxy, pool, endpoint, error)
    elif errors.is_failable(original):
        proxy.health.mark_failed(endpoint)


def _prune(proxy: Proxy, pool: PoolRecord, endpoint: EndpointRecord, error: BackendError) -> None:
    if not proxy.pruned.hide(pool.uri, endpoint):
        return  # already pruned here and reported, by a concurrent request
    proxy.row.stats[Stat.pruned_endpoints] += 1
    log.info("prune-failed-endpoint", backend=endpoint.address, route=pool.uri, error=error.detail)
    proxy.tell_supervisor(
        control.encode(
            control.PRUNE,
            host=pool.host,
            path=pool.path,
            address=endpoint.address,
            error=error.detail,
        )
    )


async def attempt(
    proxy: Proxy,
    ex: Exchange,
    endpoint: EndpointRecord,
    common: list[bytes],
    conn: BackendExchange | None,
    instance_lines: bytes,
    key: str,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """One attempt on `conn`, or on a new connection when it is None (over TLS with
    `tls_context`, the backends' one when None)."""
    reused = conn is not None
    if conn is None:
        timeout = proxy.websocket_dial_timeout if is_websocket(ex.request) else None
        conn = await proxy.upstream.dial(
            key,
            endpoint.host,
            endpoint.port,
            endpoint.tls,
            endpoint.server_cert_domain_san,
            tls_context,
            timeout=timeout,
        )
    send_head(proxy, ex, conn, reused, common, instance_lines)
    req = ex.request
    if req.body is not None and not conn.headers_done:
        try:
            await conn.send_body(req)
        except BackendError as error:
            conn.close()
            conn.deadline = 0.0
            error.reused = reused
            raise
    waiter = conn.head_waiter()
    if waiter is not None:
        await waiter
    _take_head(conn, reused)


def is_websocket(req: ProxyRequest) -> bool:
    """A WebSocket upgrade (Gorouter's test: `Upgrade` names websocket), which dials within
    websocket_dial_timeout."""
    if not req.upgrade:
        return False
    value = header_value(req.raw_headers, b"upgrade") or ""
    return "websocket" in value.lower()


def send_head(
    proxy: Proxy,
    ex: Exchange,
    conn: BackendExchange,
    reused: bool,
    common: list[bytes],
    instance_lines: bytes,
) -> None:
    """Write the request head (and a buffered body); the response head is due by
    `endpoint_timeout`, which the pool's timer enforces through `conn.deadline`."""
    req = ex.request
    ex.conn = conn
    proxy.row.stats[Stat.upstream_reuses if reused else Stat.upstream_connects] += 1
    ex.backend_started = started = time.monotonic()
    body = req.buffered_body
    if body is not None:
        framing = b"Content-Length: %d\r\n" % len(body)
    elif req.chunked:
        framing = b"Transfer-Encoding: chunked\r\n"
    elif req.content_length:
        framing = b"Content-Length: %d\r\n" % req.content_length
    elif req.method in _NO_LENGTH_METHODS:
        framing = b""
    else:
        # As Go's client (so Gorouter) writes a bodiless request: many servers answer a
        # POST or PUT without a length 411, so every method but GET and HEAD says 0.
        framing = b"Content-Length: 0\r\n"
    # Gorouter's disable_keep_alives (as Go's transport, not for an upgrade, whose
    # `Connection: Upgrade` it keeps) and keep_alive_100_continue_requests (false by default):
    # the request's backend connection is not kept, and the backend is told so.
    closing = (proxy.disable_keep_alives and not req.upgrade) or (
        req.expect_continue and not proxy.keep_alive_100_continue
    )
    if closing:
        framing += b"Connection: close\r\n"
    head = build_head(
        req.method, ex.upstream_target, ex.upstream_host, common, instance_lines, framing
    )
    conn.deadline = started + proxy.endpoint_timeout
    sending = Sending(req.method == "HEAD", closing, req.raw_headers, ex.on_interim)
    try:
        conn.begin(head + body if body else head, sending)
    except BackendError as error:
        conn.close()
        conn.deadline = 0.0
        error.reused = reused
        raise


def _take_head(conn: BackendExchange, reused: bool) -> None:
    """After the wait: the response head, or the attempt's failure (as a BackendError)."""
    conn.deadline = 0.0
    try:
        conn.check_head()
    except BackendError as error:
        conn.close()
        # An HTTP/2 stream on a fresh connection can still meet GOAWAY, the same race.
        error.reused = reused or error.reused
        raise


def _log_failure(
    proxy: Proxy, ex: Exchange, backend: str, error: BackendError, attempt: int, retriable: bool
) -> None:
    log.error(
        "backend-endpoint-failed",
        error=error.detail,
        kind=error.kind.value,
        retriable=retriable,
        attempt=attempt,
        vcap_request_id=ex.request_id,
        backend=backend,
        conn_reused=error.reused,
        route=ex.pool.uri if ex.pool else "",
    )


__all__ = ["attempt", "attempts", "first_attempt", "first_head", "send_head"]

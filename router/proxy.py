"""Routing, endpoint choice, limits and retries for one request, on plain values.

Theory of operation
===================

`begin()` opens an `Exchange` for a `ProxyRequest` (plain values; no aiohttp objects).
`plan()` routes it without awaiting, answering it itself when it must (Gorouter's 4xx/5xx);
`attempts()` (or the route-service hop) then leaves a backend response whose head has arrived and
whose body the front end streams. `finish()` settles every exchange exactly once:
the in-flight cell, the pooled connection, metrics and the access log line.
The quick lane makes attempt 1 itself when a pooled connection lets it start without awaiting
(`first_attempt`, then `first_head`); if it fails, `attempts()` carries on from that failure as
if it had made the attempt itself.

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
     Failable kinds mark the endpoint failed for `droplet_stale_threshold / 4`; TLS endpoints that
     fail a prunable check are skipped for the rest of this request and marked failed.
A body is replayable while none of it has been read (streamed bodies), or always when small enough
to be buffered before the first attempt. A request whose body was consumed is never retried.

Routes bound to a route service send the request there first (route_services.py); the same
attempt loop runs against the service's URL, without per-endpoint accounting.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from typing import Final, NamedTuple

from registry.instances import AppInstance, find_app_instance, find_sticky, parse_app_instance
from registry.lookup import RouteLookup
from registry.policy import BalancingPolicy, policy_for
from registry.records import EndpointRecord, PoolRecord
from registry.rejection import Rejection
from registry.shm.counters import LATENCY_BOUNDS_US, CounterRow, Stat
from registry.shm.reader import ShardReadError
from router import errors
from router.accesslog import AccessLog, AccessRecord
from router.answers import Answer, backend_answer, malformed_host_answer, router_answer
from router.errors import BackendError, Kind, RouterError
from router.exchange import Exchange, ProxyRequest
from router.forwarded import forwarding_for
from router.headers import build_common_headers, build_head, endpoint_headers
from router.health import WorkerHealth
from router.hosts import authority_of, lookup_host_and_path, origin_form
from router.route_service_hop import arrived_from_route_service, send_to_route_service
from router.route_services import RouteServiceKeys
from router.sticky import sticky_instance_from_cookies
from router.upstream import UpstreamConnection
from router.upstream_pool import UpstreamPool
from runtime.config import Config
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.proxy")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Bodiless requests of these methods go without a Content-Length (Go's shouldSendContentLength).
_NO_LENGTH_METHODS: Final = frozenset({"GET", "HEAD"})
NO_ENDPOINTS_DETAIL: Final = "No endpoints available"
_NONE_EXCLUDED: Final[set[int]] = set()  # shared, never mutated: no endpoint failed yet


class Plan(NamedTuple):
    """What routing decided for a request the router does not answer itself."""

    common: list[bytes]  # the header lines every attempt sends
    pool: PoolRecord
    via_route_service: bool  # the request goes to the pool's route service first


class Proxy:
    def __init__(
        self,
        config: Config,
        lookup: RouteLookup,
        row: CounterRow,
        health: WorkerHealth,
        upstream: UpstreamPool,
        access_log: AccessLog | None,
    ) -> None:
        self.lookup = lookup
        self.row = row
        self.health = health
        self.upstream = upstream
        self.access_log = access_log
        self._instance_cache: dict[int, tuple[EndpointRecord, bytes, str, str]] = {}
        self.route_services: RouteServiceKeys | None = None
        self.apply_config(config)

    def __repr__(self) -> str:
        return f"Proxy({self.upstream!r}, {self.health!r})"

    def apply_config(self, config: Config) -> None:
        """Everything here may change on SIGHUP."""
        self.config = config
        self.max_attempts = max(1, config.backends.max_attempts)
        self.endpoint_timeout = float(config.endpoint_timeout)
        self.default_algorithm = config.balancing_algorithm
        self.empty_pool_503 = config.empty_pool_response_code_503
        # Plain-HTTP connections share one set of rules; TLS ones without a client cert another.
        self.plain_forwarding = forwarding_for(config, tls=False)
        self.tls_forwarding = forwarding_for(config, tls=True)
        self.zipkin = config.tracing.enable_zipkin
        self.sticky_names = frozenset(config.sticky_session_cookie_names)
        self.health.max_conns = config.backends.max_conns
        self.route_service_scheme = "https" if config.route_services_recommend_https else "http"
        if config.route_services_secret:
            self.route_services = RouteServiceKeys(
                config.route_services_secret,
                config.route_services_secret_decrypt_only,
                float(config.route_services_timeout),
            )
        else:
            self.route_services = None

    # -- the request path ----------------------------------------------------------------------

    def begin(self, req: ProxyRequest) -> Exchange:
        """Count the request and open its exchange; `finish()` must follow, always."""
        stats = self.row.stats
        stats[Stat.requests] += 1
        stats[Stat.in_flight] += 1
        return Exchange(req, time.monotonic())

    def plan(self, ex: Exchange) -> Plan | None:
        """Everything before the first attempt, without awaiting; None when the router has
        answered the request itself."""
        req = ex.request
        routed_by = lookup_host_and_path(req.host_header, req.target)
        if routed_by is None:
            self.answer(ex, malformed_host_answer())
            return None
        host, path = routed_by
        if not host or host == req.local_ip:
            self.answer(ex, router_answer(errors.empty_host()))
            return None
        forwarding = req.forwarding or self.plain_forwarding
        lines, facts, request_id = build_common_headers(
            req.raw_headers, req.client_ip, forwarding, self.zipkin, req.upgrade
        )
        ex.facts = facts
        ex.request_id = request_id

        pool = self._route(ex, host, path)
        if pool is None:
            return None
        ex.pool = pool
        if req.target[:1] != "/":  # absolute form: the backend gets the origin form and Host
            ex.upstream_target = origin_form(req.target)
            ex.upstream_host = authority_of(req.target) or req.host_header
        if pool.route_service_url:
            if not arrived_from_route_service(self, ex, pool):
                return None if ex.is_answered else Plan(lines, pool, via_route_service=True)
            if forwarding.from_route_service is not forwarding:  # the service's headers stand
                lines, facts, request_id = build_common_headers(
                    req.raw_headers,
                    req.client_ip,
                    forwarding.from_route_service,
                    self.zipkin,
                    req.upgrade,
                )
                ex.facts = facts
                ex.request_id = request_id
        if facts.cookie and self.sticky_names:
            ex.sticky_requested = sticky_instance_from_cookies(facts.cookie, self.sticky_names)
        return Plan(lines, pool, via_route_service=False)

    async def via_route_service(self, ex: Exchange, plan: Plan) -> None:
        await send_to_route_service(self, ex, plan.common, plan.pool.route_service_url)

    def _route(self, ex: Exchange, host: str, path: str) -> PoolRecord | None:
        """The pool to use, or None after answering (unknown route, no endpoints, limits)."""
        req = ex.request
        wanted: AppInstance | None = None
        app_instance = ex.facts.app_instance if ex.facts is not None else None
        if app_instance is not None:
            parsed = parse_app_instance(app_instance)
            if isinstance(parsed, Rejection):
                self.answer(ex, router_answer(errors.invalid_app_instance()))
                return None
            wanted = parsed
        pool = self.lookup.find(host, path)
        if isinstance(pool, ShardReadError):
            log.error("route-table-read-failed", error=pool.reason)
            self.answer(ex, backend_answer(BackendError(Kind.BAD_RESPONSE, pool.reason)))
            return None
        if wanted is not None:
            target = find_app_instance(pool, wanted) if pool is not None else None
            if pool is None or target is None:
                error = errors.unknown_instance(wanted.index, wanted.app_id, req.host_header)
                self.answer(ex, router_answer(error))
                return None
            pool = PoolRecord(
                pool.host, pool.path, (target,), pool.load_balancing, pool.route_service_url
            )
        if pool is None:
            self.answer(ex, router_answer(errors.unknown_route(req.host_header)))
            return None
        if not pool.endpoints:
            error = (
                errors.no_endpoints(req.host_header)
                if self.empty_pool_503
                else errors.unknown_route(req.host_header)
            )
            self.answer(ex, router_answer(error))
            return None
        return pool

    # -- attempts against the pool's endpoints ---------------------------------------------------

    def first_attempt(self, ex: Exchange, plan: Plan) -> EndpointRecord | None:
        """Start attempt 1 without awaiting, when an idle pooled connection to the chosen
        endpoint lets it: ex.conn is then set, and `first_head` follows once the response head
        has arrived (`UpstreamConnection.when_head`) or at once if the attempt already failed
        (ex.first_error). When no connection is idle ex.conn stays unset and
        `attempts(..., first=endpoint)` dials. Returns the endpoint; None when every endpoint
        is full, which `attempts()` answers."""
        pool = plan.pool
        endpoint = self._choose(
            ex, pool, policy_for(pool.load_balancing, self.default_algorithm), _NONE_EXCLUDED, 1
        )
        if endpoint is None or ex.request.body is not None:
            return endpoint
        cached = self._instance_cache.get(endpoint.slot)
        if cached is None or cached[0] is not endpoint:
            cached = self._cache_instance(endpoint)
        conn = self.upstream.take_idle(cached[2])
        if conn is None:
            return endpoint
        self.row.inflight[endpoint.slot] += 1
        ex.endpoint = endpoint  # from here on, finish() settles the in-flight cell
        try:
            self._send_head(ex, conn, True, plan.common, cached[1])
        except BackendError as error:
            ex.conn = None
            ex.first_error = error
        return endpoint

    def first_head(self, ex: Exchange) -> bool:
        """After `first_attempt`'s wait: True when the response head arrived; False when the
        attempt failed (its error is kept for `attempts()` to carry on from)."""
        if ex.first_error is None:
            conn = ex.conn
            assert conn is not None and ex.endpoint is not None
            try:
                self._take_head(conn, True)
            except BackendError as error:
                ex.first_error = error
                return False
            ex.backend = ex.endpoint.address
            return True
        return False

    async def attempts(self, ex: Exchange, plan: Plan, first: EndpointRecord | None = None) -> None:
        """Try the pool's endpoints until one answers or the attempts run out. `first`: the
        endpoint `first_attempt` chose; if it also failed there (ex.first_error), this goes on
        from that failure."""
        req = ex.request
        common, pool = plan.common, plan.pool
        inflight = self.row.inflight
        policy = policy_for(pool.load_balancing, self.default_algorithm)
        idempotent = req.method in IDEMPOTENT_METHODS or (
            ex.facts is not None and ex.facts.has_idempotency_key
        )
        excluded: set[int] = _NONE_EXCLUDED  # replaced by a real set on the first failure
        last_error: BackendError | None = None
        fresh = False
        for attempt in range(1, self.max_attempts + 1):
            error = ex.first_error if attempt == 1 else None
            if error is not None:
                endpoint = first
                assert endpoint is not None
            else:
                if attempt == 1 and first is not None:
                    endpoint = first
                else:
                    endpoint = self._choose(ex, pool, policy, excluded, attempt)
                if endpoint is None:
                    if attempt == 1:
                        # Nothing excluded yet, so every endpoint is at max_conns (Gorouter's
                        # pool.IsOverloaded): the route has reached its connection limit.
                        self.answer(ex, router_answer(errors.connection_limit(req.host_header)))
                        return
                    break
                slot = endpoint.slot
                inflight[slot] += 1
                ex.endpoint = endpoint  # from here on, finish() settles the in-flight cell
                cached = self._instance_cache.get(slot)
                if cached is None or cached[0] is not endpoint:
                    cached = self._cache_instance(endpoint)
                conn = None if fresh else self.upstream.take_idle(cached[2])
                try:
                    if conn is not None and req.body is None:
                        # The common case, without another coroutine frame: a pooled
                        # connection and nothing to stream; only the response head is awaited.
                        self._send_head(ex, conn, True, common, cached[1])
                        waiter = conn.head_waiter()
                        if waiter is not None:
                            await waiter
                        self._take_head(conn, True)
                    else:
                        await self.attempt_once(ex, endpoint, common, conn, cached[1], cached[2])
                except BackendError as failure:
                    error = failure
                else:
                    ex.backend = cached[3]
                    return
            inflight[endpoint.slot] -= 1
            ex.endpoint = None
            ex.conn = None
            last_error = error
            race = self._classify_failure(ex, error, idempotent)
            retriable = errors.is_retriable(error.kind) and req.is_replayable
            self._log_failure(ex, endpoint.address, error, attempt, retriable)
            if race:
                fresh = True  # the keep-alive race: not the endpoint's fault; new socket
            else:
                if excluded is _NONE_EXCLUDED:
                    excluded = set()
                self._blame(endpoint, error, excluded)
            if not retriable:
                break
            self.row.stats[Stat.retries] += 1
        self.answer(
            ex, backend_answer(last_error or BackendError(Kind.NO_ENDPOINT, NO_ENDPOINTS_DETAIL))
        )

    def _classify_failure(self, ex: Exchange, error: BackendError, idempotent: bool) -> bool:
        """Refine the error's kind for this request; True when it was the keep-alive race."""
        ex.failed_attempts += 1
        self.row.stats[Stat.failed_attempts] += 1
        lost = error.kind in (Kind.CLOSED, Kind.RESET)
        race = lost and error.reused
        if lost and idempotent and ex.request.is_replayable:
            # Nothing of the response arrived and the request can be replayed safely.
            error.blamed = error.kind
            error.kind = Kind.IDEMPOTENT_EOF
        return race

    def _blame(self, endpoint: EndpointRecord, error: BackendError, excluded: set[int]) -> None:
        excluded.add(endpoint.slot)
        original = error.blamed or error.kind
        if errors.is_failable(original):
            self.health.mark_failed(endpoint)
        if endpoint.tls and errors.is_prunable(original):
            self.row.stats[Stat.pruned_endpoints] += 1
            log.info("prune-failed-endpoint", backend=endpoint.address, error=error.detail)

    def _choose(
        self,
        ex: Exchange,
        pool: PoolRecord,
        policy: BalancingPolicy,
        excluded: set[int],
        attempt: int,
    ) -> EndpointRecord | None:
        endpoints = pool.endpoints
        if len(endpoints) == 1 and not excluded:
            # Any policy's only choice (the contract's): the endpoint, unless it is full.
            only = endpoints[0]
            return None if self.health.is_overloaded(only) else only
        if attempt == 1 and ex.sticky_requested:
            sticky = find_sticky(pool, ex.sticky_requested)
            if (
                sticky is not None
                and not self.health.is_overloaded(sticky)
                and not self.health.is_failed(sticky)
            ):
                return sticky
        return policy.choose(pool, self.health, excluded)

    def _cache_instance(self, endpoint: EndpointRecord) -> tuple[EndpointRecord, bytes, str, str]:
        """Per-endpoint strings every request needs: X-CF-* lines, pool key and address. Kept
        until the endpoint's record changes (a new shard decode makes a new record)."""
        if len(self._instance_cache) > 65536:
            self._instance_cache.clear()
        address = endpoint.address
        key = f"{address}/tls" if endpoint.tls else address
        cached = (endpoint, endpoint_headers(endpoint), key, address)
        self._instance_cache[endpoint.slot] = cached
        return cached

    # -- one attempt ---------------------------------------------------------------------------

    async def attempt_once(
        self,
        ex: Exchange,
        endpoint: EndpointRecord,
        common: list[bytes],
        conn: UpstreamConnection | None,
        instance_lines: bytes,
        key: str,
    ) -> None:
        """One attempt on `conn`, or on a new connection when it is None."""
        reused = conn is not None
        if conn is None:
            conn = await self.upstream.dial(
                key, endpoint.host, endpoint.port, endpoint.tls, endpoint.server_cert_domain_san
            )
        self._send_head(ex, conn, reused, common, instance_lines)
        req = ex.request
        if req.body is not None and not conn.headers_done:
            try:
                await self._send_body(req, conn)
            except BackendError as error:
                conn.close()
                conn.deadline = 0.0
                error.reused = reused
                raise
        waiter = conn.head_waiter()
        if waiter is not None:
            await waiter
        self._take_head(conn, reused)

    def _send_head(
        self,
        ex: Exchange,
        conn: UpstreamConnection,
        reused: bool,
        common: list[bytes],
        instance_lines: bytes,
    ) -> None:
        """Write the request head (and a buffered body); the response head is due by
        `endpoint_timeout`, which the pool's timer enforces through `conn.deadline`."""
        req = ex.request
        ex.conn = conn
        self.row.stats[Stat.upstream_reuses if reused else Stat.upstream_connects] += 1
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
        head = build_head(
            req.method, ex.upstream_target, ex.upstream_host, common, instance_lines, framing
        )
        conn.deadline = started + self.endpoint_timeout
        try:
            conn.begin(head + body if body else head, req.method == "HEAD")
        except BackendError as error:
            conn.close()
            conn.deadline = 0.0
            error.reused = reused
            raise

    def _take_head(self, conn: UpstreamConnection, reused: bool) -> None:
        """After the wait: the response head, or the attempt's failure (as a BackendError)."""
        conn.deadline = 0.0
        try:
            conn.check_head()
        except BackendError as error:
            conn.close()
            error.reused = reused
            raise

    async def _send_body(self, req: ProxyRequest, conn: UpstreamConnection) -> None:
        source = req.body
        assert source is not None
        if req.expect_continue and req.send_continue is not None:
            req.send_continue()
        chunked = req.chunked
        while not conn.headers_done:
            try:
                chunk = await source.read()
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                raise BackendError(Kind.CLIENT_GONE, f"client request body: {exc}") from None
            if not chunk:
                if chunked:
                    conn.write(b"0\r\n\r\n")
                return
            conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.drain()

    # -- settling ------------------------------------------------------------------------------

    def answer(self, ex: Exchange, answer: Answer) -> None:
        """The router answers this exchange itself."""
        ex.answer = answer
        ex.router_error = answer.router_error
        stats = self.row.stats
        stats[answer.stat] += 1
        if answer.status == 400:
            stats[Stat.bad_requests] += 1
        elif answer.status == 502:
            stats[Stat.bad_gateways] += 1

    def client_gone(self, ex: Exchange) -> None:
        """The client left before the response was complete: 499, upstream cancelled."""
        if ex.conn is not None:
            ex.conn.fail(BackendError(Kind.CLIENT_GONE, "context canceled"))
        if not ex.status:
            ex.status = 499
            ex.router_error = ex.router_error or "endpoint_failure (context canceled)"
        self.row.stats[Stat.client_closed] += 1

    def finish(self, ex: Exchange, status: int, bytes_sent: int) -> None:
        """Settle the exchange once: counters, the upstream connection, the access log."""
        row = self.row
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
            self.upstream.release(conn)
            ex.conn = None
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
        if self.access_log is not None:
            gorouter_time = (ex.backend_started - ex.t0) if ex.backend_started else elapsed
            self.access_log.write(access_record(ex, received, bytes_sent, elapsed, gorouter_time))

    def _log_failure(
        self, ex: Exchange, backend: str, error: BackendError, attempt: int, retriable: bool
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


_STATUS_CLASS: Final = {
    1: Stat.responses_1xx,
    2: Stat.responses_2xx,
    3: Stat.responses_3xx,
    4: Stat.responses_4xx,
    5: Stat.responses_5xx,
}

__all__ = ["Exchange", "Proxy", "ProxyRequest", "RouterError"]


def access_record(
    ex: Exchange, received: int, sent: int, elapsed: float, gorouter_time: float
) -> AccessRecord:
    req = ex.request
    record = AccessRecord(
        req.received_at,
        req.host_header,
        req.method,
        req.target,
        req.version,
        f"{req.client_ip}:{req.client_port}",
    )
    record.status = ex.status
    record.bytes_received = received
    record.bytes_sent = sent
    record.backend = ex.backend
    record.request_id = ex.request_id
    record.response_time = elapsed
    record.gorouter_time = gorouter_time
    endpoint = ex.endpoint
    if endpoint is not None:
        record.app_id = endpoint.app_id
        record.app_index = endpoint.instance_index
        record.instance_id = endpoint.instance_id
    record.failed_attempts = ex.failed_attempts
    record.router_error = ex.router_error
    record.facts = ex.facts
    return record

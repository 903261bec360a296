"""Routing, endpoint choice, limits and retries for one request, on plain values.

Theory of operation
===================

`forward()` takes a `ProxyRequest` (plain values; no aiohttp objects) and returns an `Exchange`:
either an answer the router makes itself (Gorouter's 4xx/5xx) or a backend response whose head
has arrived and whose body the front end streams. `finish()` settles every exchange exactly once:
in-flight counters, the pooled connection, metrics and the access log line.

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
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Sequence
from typing import Final, Protocol

from registry.instances import AppInstance, find_app_instance, find_sticky, parse_app_instance
from registry.lookup import RouteLookup
from registry.policy import policy_for
from registry.records import EndpointRecord, PoolRecord
from registry.rejection import Rejection
from registry.shm.counters import LATENCY_BOUNDS_US, CounterRow, Stat
from registry.shm.reader import ShardReadError
from router import errors
from router.accesslog import AccessLog, AccessRecord
from router.errors import BackendError, Kind, RouterError
from router.headers import RawHeaders, RequestFacts, build_common_headers, build_head
from router.health import WorkerHealth
from router.hosts import authority_of, lookup_host_and_path, origin_form
from router.sticky import sticky_instance_from_cookies
from router.upstream import UpstreamConnection, UpstreamPool
from supervisor.config import Config
from supervisor.logs import EventLog

log = EventLog("vcap.gorouter.proxy")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
NO_ENDPOINTS_DETAIL: Final = "No endpoints available"


class BodySource(Protocol):
    """The client's request body, read once, in order."""

    consumed: bool
    bytes_read: int

    async def read(self) -> bytes:
        """The next chunk; b"" at the end."""


class ProxyRequest:
    __slots__ = (
        "body",
        "buffered_body",
        "chunked",
        "client_ip",
        "client_port",
        "content_length",
        "expect_continue",
        "host_header",
        "local_ip",
        "method",
        "raw_headers",
        "received_at",
        "send_continue",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        host_header: str,
        version: str,
        raw_headers: RawHeaders,
        client_ip: str,
        client_port: int,
        local_ip: str,
        received_at: float,
        body: BodySource | None = None,
        buffered_body: bytes | None = None,
        content_length: int | None = None,
        chunked: bool = False,
        upgrade: bool = False,
        expect_continue: bool = False,
    ) -> None:
        self.method = method
        self.target = target
        self.host_header = host_header
        self.version = version
        self.raw_headers = raw_headers
        self.client_ip = client_ip
        self.client_port = client_port
        self.local_ip = local_ip
        self.received_at = received_at
        self.body = body
        self.buffered_body = buffered_body
        self.content_length = content_length
        self.chunked = chunked
        self.upgrade = upgrade
        self.expect_continue = expect_continue
        self.send_continue: object = None  # a callable the front end provides

    def __repr__(self) -> str:
        return f"ProxyRequest({self.method} {self.host_header}{self.target})"

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length) or bool(self.buffered_body)

    @property
    def is_replayable(self) -> bool:
        return self.body is None or not self.body.consumed


class Exchange:
    """One request's state from lookup to the last response byte."""

    __slots__ = (
        "answer_body",
        "answer_headers",
        "answer_status",
        "backend_started",
        "conn",
        "endpoint",
        "facts",
        "pool",
        "record",
        "request",
        "request_id",
        "sticky_requested",
        "t0",
        "upstream_host",
        "upstream_target",
    )

    def __init__(self, request: ProxyRequest, record: AccessRecord, t0: float) -> None:
        self.request = request
        self.record = record
        self.t0 = t0
        self.conn: UpstreamConnection | None = None
        self.endpoint: EndpointRecord | None = None
        self.pool: PoolRecord | None = None
        self.answer_status = 0
        self.answer_body = b""
        self.answer_headers: list[tuple[str, str]] = []
        self.facts: RequestFacts | None = None
        self.request_id = ""
        self.backend_started = 0.0
        self.sticky_requested = ""
        self.upstream_target = request.target
        self.upstream_host = request.host_header

    def __repr__(self) -> str:
        target = self.endpoint.address if self.endpoint else "router"
        return f"Exchange({self.request!r} -> {target}, status={self.record.status})"

    @property
    def is_answer(self) -> bool:
        return self.conn is None


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
        self.force_https = config.force_forwarded_proto_https
        self.zipkin = config.tracing.enable_zipkin
        self.sticky_names = frozenset(config.sticky_session_cookie_names)
        self.health.max_conns = config.backends.max_conns

    # -- the request path ----------------------------------------------------------------------

    def begin(self, req: ProxyRequest) -> Exchange:
        """Count the request and open its exchange; `finish()` must follow, always."""
        stats = self.row.stats
        stats[Stat.requests] += 1
        stats[Stat.in_flight] += 1
        record = AccessRecord(
            req.received_at,
            req.host_header,
            req.method,
            req.target,
            req.version,
            f"{req.client_ip}:{req.client_port}",
        )
        return Exchange(req, record, time.monotonic())

    async def forward(self, ex: Exchange) -> None:
        """Route and try backends until one answers or the attempts run out."""
        req = ex.request
        record = ex.record
        host, path = lookup_host_and_path(req.host_header, req.target)
        if not host or host == req.local_ip:
            self._answer(ex, errors.empty_host())
            return
        lines, facts, request_id = build_common_headers(
            req.raw_headers, req.client_ip, self.force_https, self.zipkin, req.upgrade
        )
        ex.facts = facts
        ex.request_id = request_id
        record.request_id = request_id
        record.referer = facts.referer
        record.user_agent = facts.user_agent
        record.forwarded_for = facts.forwarded_for
        record.forwarded_proto = facts.forwarded_proto

        app_instance_header = _header(req.raw_headers, b"x-cf-app-instance")
        wanted: AppInstance | None = None
        if app_instance_header is not None:
            parsed = parse_app_instance(app_instance_header)
            if isinstance(parsed, Rejection):
                self._answer(ex, errors.invalid_app_instance())
                return
            wanted = parsed

        pool = self.lookup.find(host, path)
        if isinstance(pool, ShardReadError):
            log.error("route-table-read-failed", error=pool.reason)
            self._backend_answer(ex, BackendError(Kind.BAD_RESPONSE, pool.reason))
            return
        if wanted is not None:
            target = find_app_instance(pool, wanted) if pool is not None else None
            if target is None:
                self._answer(
                    ex, errors.unknown_instance(wanted.index, wanted.app_id, req.host_header)
                )
                return
            pool = PoolRecord(pool.host, pool.path, (target,), pool.load_balancing)  # type: ignore[union-attr]
        if pool is None:
            self._answer(ex, errors.unknown_route(req.host_header))
            return
        if not pool.endpoints:
            if self.empty_pool_503:
                self._answer(ex, errors.no_endpoints(req.host_header))
            else:
                self._answer(ex, errors.unknown_route(req.host_header))
            return
        if self.health.is_pool_overloaded(pool.endpoints):
            self._answer(ex, errors.connection_limit(req.host_header))
            return
        ex.pool = pool
        if facts.cookie and self.sticky_names:
            ex.sticky_requested = sticky_instance_from_cookies(facts.cookie, self.sticky_names)
        ex.upstream_target = origin_form(req.target)
        ex.upstream_host = authority_of(req.target) or req.host_header
        await self._attempts(ex, lines)

    async def _attempts(self, ex: Exchange, common: list[bytes]) -> None:
        req = ex.request
        pool = ex.pool
        assert pool is not None
        inflight = self.row.inflight
        policy = policy_for(pool.load_balancing, self.default_algorithm)
        idempotent = req.method in IDEMPOTENT_METHODS or (
            ex.facts is not None and ex.facts.has_idempotency_key
        )
        excluded: set[int] = set()
        last_error: BackendError | None = None
        fresh = False
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            endpoint = self._choose(ex, pool, policy, excluded, attempt)
            if endpoint is None:
                break
            slot = endpoint.slot
            inflight[slot] += 1
            ex.endpoint = endpoint  # from here on, finish() settles the in-flight cell
            try:
                await self._try(ex, endpoint, common, fresh)
            except BackendError as error:
                inflight[slot] -= 1
                ex.endpoint = None
                ex.conn = None
                original = error.kind
                race = original in (Kind.CLOSED, Kind.RESET) and error.reused
                kind = original
                if original in (Kind.CLOSED, Kind.RESET) and idempotent and req.is_replayable:
                    # Nothing of the response arrived and the request can be replayed safely.
                    kind = error.kind = Kind.IDEMPOTENT_EOF
                ex.record.failed_attempts += 1
                self.row.stats[Stat.failed_attempts] += 1
                last_error = error
                retriable = errors.is_retriable(kind) and req.is_replayable
                self._log_failure(ex, endpoint, error, attempt, retriable)
                if race:
                    fresh = True  # the keep-alive race: not the endpoint's fault; new socket
                else:
                    excluded.add(slot)
                    if errors.is_failable(original):
                        self.health.mark_failed(endpoint)
                    if endpoint.tls and errors.is_prunable(original):
                        self.row.stats[Stat.pruned_endpoints] += 1
                        log.info(
                            "prune-failed-endpoint", backend=endpoint.address, error=error.detail
                        )
                if not retriable:
                    break
                self.row.stats[Stat.retries] += 1
                continue
            record = ex.record
            record.backend = endpoint.address
            record.app_id = endpoint.app_id
            record.app_index = endpoint.instance_index
            record.instance_id = endpoint.instance_id
            return
        if last_error is None:
            last_error = BackendError(Kind.NO_ENDPOINT, NO_ENDPOINTS_DETAIL)
        self._backend_answer(ex, last_error)

    def _choose(
        self,
        ex: Exchange,
        pool: PoolRecord,
        policy: object,
        excluded: set[int],
        attempt: int,
    ) -> EndpointRecord | None:
        if attempt == 1 and ex.sticky_requested:
            sticky = find_sticky(pool, ex.sticky_requested)
            if (
                sticky is not None
                and not self.health.is_overloaded(sticky)
                and not self.health.is_failed(sticky)
            ):
                return sticky
        return policy.choose(pool, self.health, excluded)  # type: ignore[attr-defined, no-any-return]

    async def _try(
        self, ex: Exchange, endpoint: EndpointRecord, common: list[bytes], fresh: bool
    ) -> None:
        req = ex.request
        upstream = self.upstream
        key = endpoint.address if not endpoint.tls else f"{endpoint.address}/tls"
        conn = None if fresh else upstream.take_idle(key)
        reused = conn is not None
        if conn is None:
            conn = await upstream.dial(
                key, endpoint.host, endpoint.port, endpoint.tls, endpoint.server_cert_domain_san
            )
        ex.conn = conn
        if reused:
            self.row.stats[Stat.upstream_reuses] += 1
        else:
            self.row.stats[Stat.upstream_connects] += 1
        ex.backend_started = time.monotonic()
        body = req.buffered_body
        if body is not None:
            framing = b"Content-Length: %d\r\n" % len(body)
        elif req.chunked:
            framing = b"Transfer-Encoding: chunked\r\n"
        elif req.content_length:
            framing = b"Content-Length: %d\r\n" % req.content_length
        else:
            framing = b""
        head = build_head(
            req.method, ex.upstream_target, ex.upstream_host, common, endpoint, framing
        )
        timer = asyncio.get_running_loop().call_later(
            self.endpoint_timeout,
            conn.fail,
            BackendError(Kind.TIMEOUT, "context deadline exceeded"),
        )
        try:
            conn.begin(head + body if body else head, req.method == "HEAD")
            if req.body is not None and not conn.headers_done:
                await self._send_body(req, conn)
            await conn.response_head()
        except BackendError as error:
            conn.close()
            error.reused = reused
            raise
        finally:
            timer.cancel()

    async def _send_body(self, req: ProxyRequest, conn: UpstreamConnection) -> None:
        source = req.body
        assert source is not None
        if req.expect_continue and callable(req.send_continue):
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

    # -- answers ---------------------------------------------------------------------------------

    def _answer(self, ex: Exchange, error: RouterError) -> Exchange:
        """A response the router makes itself (Gorouter's error writer)."""
        status_text = _STATUS_TEXT.get(error.status, "")
        ex.answer_status = error.status
        ex.answer_body = f"{error.status} {status_text}: {error.message}\n".encode()
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Cf-RouterError", error.router_error),
        ]
        if error.cache_control:
            headers.append(("Cache-Control", error.cache_control))
        ex.answer_headers = headers
        ex.record.router_error = error.router_error
        self.row.stats[error.stat] += 1
        if error.status == 400:
            self.row.stats[Stat.bad_requests] += 1
        return ex

    def _backend_answer(self, ex: Exchange, error: BackendError) -> Exchange:
        """The answer after attempts failed (Gorouter's round-tripper error handler)."""
        response = errors.response_for(error.kind)
        router_error = f"endpoint_failure ({error.detail})"
        ex.answer_status = response.status
        ex.answer_body = (response.body + "\n").encode()
        ex.answer_headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Cf-RouterError", router_error),
        ]
        ex.record.router_error = router_error
        self.row.stats[response.stat] += 1
        if response.status == 502:
            self.row.stats[Stat.bad_gateways] += 1
        return ex

    def client_gone(self, ex: Exchange) -> None:
        """The client left before the response was complete: 499, upstream cancelled."""
        if ex.conn is not None:
            ex.conn.fail(BackendError(Kind.CLIENT_GONE, "context canceled"))
        if not ex.record.status:
            ex.record.status = 499
            ex.record.router_error = ex.record.router_error or "endpoint_failure (context canceled)"
        self.row.stats[Stat.client_closed] += 1

    def finish(self, ex: Exchange, status: int, bytes_sent: int) -> None:
        """Settle the exchange once: counters, the upstream connection, the access log."""
        row = self.row
        stats = row.stats
        stats[Stat.in_flight] -= 1
        record = ex.record
        if not record.status:
            record.status = status
        status = record.status
        stats[_STATUS_CLASS.get(status // 100, Stat.responses_xxx)] += 1
        if ex.endpoint is not None:
            row.inflight[ex.endpoint.slot] -= 1
        conn = ex.conn
        if conn is not None:
            self.upstream.release(conn)
            ex.conn = None
        now = time.monotonic()
        elapsed = now - ex.t0
        record.bytes_sent = bytes_sent
        body = ex.request.body
        record.bytes_received = (
            body.bytes_read if body is not None else len(ex.request.buffered_body or b"")
        )
        record.response_time = elapsed
        record.gorouter_time = (ex.backend_started - ex.t0) if ex.backend_started else elapsed
        stats[Stat.bytes_sent] += bytes_sent
        stats[Stat.bytes_received] += record.bytes_received
        micros = int(elapsed * 1e6)
        stats[Stat.response_time_us_total] += micros
        stats[_latency_bucket(micros)] += 1
        if self.access_log is not None:
            self.access_log.write(record)

    def _log_failure(
        self,
        ex: Exchange,
        endpoint: EndpointRecord,
        error: BackendError,
        attempt: int,
        retriable: bool,
    ) -> None:
        log.error(
            "backend-endpoint-failed",
            error=error.detail,
            kind=error.kind.value,
            retriable=retriable,
            attempt=attempt,
            vcap_request_id=ex.request_id,
            backend=endpoint.address,
            conn_reused=error.reused,
            route=ex.pool.uri if ex.pool else "",
        )


def _header(raw: RawHeaders, name: bytes) -> str | None:
    for key, value in raw:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _latency_bucket(micros: int) -> int:
    # Buckets are contiguous counters; past the last bound lands on latency_inf.
    return Stat.latency_le_1ms + bisect.bisect_left(LATENCY_BOUNDS_US, micros)


_STATUS_CLASS: Final = {
    1: Stat.responses_1xx,
    2: Stat.responses_2xx,
    3: Stat.responses_3xx,
    4: Stat.responses_4xx,
    5: Stat.responses_5xx,
}
_STATUS_TEXT: Final = {
    400: "Bad Request",
    404: "Not Found",
    496: "SSL Certificate Required",
    499: "Request Cancelled",
    502: "Bad Gateway",
    503: "Service Unavailable",
    525: "SSL Handshake Failed",
    526: "Invalid SSL Certificate",
}


def endpoint_summary(endpoints: Sequence[EndpointRecord]) -> list[str]:
    return [endpoint.address for endpoint in endpoints]

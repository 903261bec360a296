"""Routing one request, without awaiting: `begin` opens its exchange, `plan` finds its pool
(exact host, then wildcards; longest context path), honours `X-Cf-App-Instance`, and builds the
header lines every attempt sends; or answers the request itself with Gorouter's 4xx/5xx. What
follows is attempts.py (or the route-service hop); settlement.py ends every exchange once.
A load balancer's health check (`healthcheck_user_agent`) is answered here too, by any front end.
The core works on plain values (`ProxyRequest`, `Exchange`) and knows nothing of HTTP/1 framing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from registry.instances import AppInstance, find_app_instance, parse_app_instance
from registry.records import PoolRecord
from registry.rejection import Rejection
from registry.shm.counters import Stat
from registry.shm.reader import ShardReadError
from router import errors, settlement
from router.answers import backend_answer, health_answer, malformed_host_answer, router_answer
from router.errors import BackendError, Kind
from router.exchange import Exchange, Plan, ProxyRequest
from router.headers import build_common_headers
from router.hosts import authority_of, lookup_host_and_path, origin_form
from router.route_service_hop import arrived_from_route_service, check_stray_signature
from router.sticky import sticky_instance_from_cookies
from runtime.logs import EventLog

if TYPE_CHECKING:
    from router.proxy import Proxy

log = EventLog("vcap.gorouter.proxy")


def begin(proxy: Proxy, req: ProxyRequest) -> Exchange:
    """Count the request and open its exchange; `finish()` must follow, always."""
    stats = proxy.row.stats
    stats[Stat.requests] += 1
    stats[Stat.in_flight] += 1
    return Exchange(req, time.monotonic())


def plan(proxy: Proxy, ex: Exchange) -> Plan | None:
    """Everything before the first attempt, without awaiting; None when the router has
    answered the request itself."""
    req = ex.request
    routed_by = lookup_host_and_path(req.host_header, req.target)
    if routed_by is None:
        settlement.answer(proxy, ex, malformed_host_answer())
        return None
    forwarding = req.forwarding or proxy.plain_forwarding
    lines, facts, request_id = build_common_headers(
        req.raw_headers, req.client_ip, forwarding, proxy.zipkin, req.upgrade
    )
    ex.facts = facts
    ex.request_id = request_id
    if facts.user_agent == proxy.healthcheck_user_agent:
        # A load balancer's health check, answered before any Host rule: it names the router
        # itself (its IP, or nothing), and reaches no app.
        settlement.answer(proxy, ex, health_answer(proxy.healthy))
        return None
    host, path = routed_by
    if not host or host == req.local_ip:
        settlement.answer(proxy, ex, router_answer(errors.empty_host()))
        return None

    pool = _route(proxy, ex, host, path)
    if pool is None:
        return None
    ex.pool = pool
    if req.target[:1] != "/":  # absolute form: the backend gets the origin form and Host
        ex.upstream_target = origin_form(req.target)
        ex.upstream_host = authority_of(req.target) or req.host_header
    if not pool.route_service_url:
        if proxy.strict_signatures and not check_stray_signature(proxy, ex, pool):
            return None
    else:
        if not arrived_from_route_service(proxy, ex, pool):
            return None if ex.is_answered else Plan(lines, pool, via_route_service=True)
        if forwarding.from_route_service is not forwarding:  # the service's headers stand
            lines, facts, request_id = build_common_headers(
                req.raw_headers,
                req.client_ip,
                forwarding.from_route_service,
                proxy.zipkin,
                req.upgrade,
            )
            ex.facts = facts
            ex.request_id = request_id
    if facts.cookie and proxy.sticky_names:
        ex.sticky_requested = sticky_instance_from_cookies(facts.cookie, proxy.sticky_names)
    return Plan(lines, pool, via_route_service=False)


def _route(proxy: Proxy, ex: Exchange, host: str, path: str) -> PoolRecord | None:
    """The pool to use, or None after answering (unknown route, no endpoints, limits)."""
    req = ex.request
    wanted: AppInstance | None = None
    app_instance = ex.facts.app_instance if ex.facts is not None else None
    if app_instance is not None:
        parsed = parse_app_instance(app_instance)
        if isinstance(parsed, Rejection):
            settlement.answer(proxy, ex, router_answer(errors.invalid_app_instance()))
            return None
        wanted = parsed
    pool = proxy.lookup.find(host, path)
    if isinstance(pool, ShardReadError):
        log.error("route-table-read-failed", error=pool.reason)
        settlement.answer(proxy, ex, backend_answer(BackendError(Kind.BAD_RESPONSE, pool.reason)))
        return None
    if pool is not None and proxy.pruned:
        pool = proxy.pruned.visible(pool)
    if wanted is not None:
        target = find_app_instance(pool, wanted) if pool is not None else None
        if pool is None or target is None:
            error = errors.unknown_instance(wanted.index, wanted.app_id, req.host_header)
            settlement.answer(proxy, ex, router_answer(error))
            return None
        pool = PoolRecord(
            pool.host, pool.path, (target,), pool.load_balancing, pool.route_service_url
        )
    if pool is None:
        settlement.answer(proxy, ex, router_answer(errors.unknown_route(req.host_header)))
        return None
    if not pool.endpoints:
        error = (
            errors.no_endpoints(req.host_header)
            if proxy.empty_pool_503
            else errors.unknown_route(req.host_header)
        )
        settlement.answer(proxy, ex, router_answer(error))
        return None
    return pool


__all__ = ["begin", "plan"]

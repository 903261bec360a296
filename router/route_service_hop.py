"""The route-service hop: requests for routes bound to a route service go there first.

`arrived_from_route_service` recognises a request coming back from the service (a valid signature
naming this route); `send_to_route_service` signs a request and sends it to the service instead of
the app: through the service's own route when it is one of this router's (hairpinning), else
over the network, `route_services.max_attempts` times at most, presenting the route-service
client certificate. `check_stray_signature` is Gorouter's strict signature validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

from registry.hostnames import strip_port
from registry.records import EndpointRecord, PoolRecord
from registry.rejection import Rejection
from registry.shm.counters import Stat
from router import attempts, errors, settlement
from router.answers import backend_answer, router_answer
from router.errors import BackendError
from router.exchange import Exchange, Plan
from router.headers import header_value
from router.hosts import lookup_host_and_path
from router.route_services import (
    FORWARDED_URL,
    METADATA,
    SIGNATURE,
    Expired,
    SignatureContents,
)
from runtime.logs import EventLog

if TYPE_CHECKING:
    from router.proxy import Proxy

log = EventLog("vcap.gorouter.proxy")

NO_SLOT: Final = -1  # route services are not table endpoints: no counters, no marks
_SIGNATURE_NAME: Final = SIGNATURE.lower().encode()
_METADATA_NAME: Final = METADATA.lower().encode()


def arrived_from_route_service(proxy: Proxy, ex: Exchange, pool: PoolRecord) -> bool:
    """True for a request coming back from the pool's route service with a valid signature.

    Answers the exchange (and returns False) when route services cannot be used or the
    signature is bad; returns False without answering when the request must go to the service.
    """
    req = ex.request
    keys = proxy.route_services
    if keys is None:
        log.info("route-service-unsupported", route=pool.uri)
        settlement.answer(proxy, ex, router_answer(errors.route_service_unsupported()))
        return False
    if req.upgrade:
        settlement.answer(proxy, ex, router_answer(errors.route_service_websocket()))
        return False
    signature = header_value(req.raw_headers, _SIGNATURE_NAME)
    if not signature:
        return False
    contents = keys.verify(signature, header_value(req.raw_headers, _METADATA_NAME) or "")
    if isinstance(contents, Rejection):
        log.error("signature-validation-failed", error=contents.reason, route=pool.uri)
        expired = isinstance(contents, Expired)
        settlement.answer(
            proxy, ex, router_answer(errors.route_service_signature(contents.reason, expired))
        )
        return False
    forwarded = urlsplit(contents.forwarded_url)
    host, path = lookup_host_and_path(forwarded.netloc, forwarded.path or "/") or (
        forwarded.netloc,
        forwarded.path,
    )
    signed_pool = proxy.lookup.find(host, path)
    if not isinstance(signed_pool, PoolRecord) or signed_pool.uri != pool.uri:
        reason = (
            f"route service forwarded URL {pool.uri} does not match the original request URL "
            f"{host}{path}"
        )
        log.error("signature-validation-failed", error=reason, route=pool.uri)
        settlement.answer(proxy, ex, router_answer(errors.route_service_signature(reason, False)))
        return False
    return True


def check_stray_signature(proxy: Proxy, ex: Exchange, pool: PoolRecord) -> bool:
    """Under `route_services.strict_signature_validation`, for a route without a route service:
    a request carrying X-CF-Proxy-Signature goes on only if the signature is genuine and has
    not expired (someone may be impersonating a route service). Answers the exchange and
    returns False otherwise. Gorouter checks no more here: the signed URL is not compared."""
    raw = ex.request.raw_headers
    signature = header_value(raw, _SIGNATURE_NAME)
    if signature is None:
        return True
    keys = proxy.route_services
    verdict: SignatureContents | Rejection = (
        keys.verify(signature, header_value(raw, _METADATA_NAME) or "")
        if keys is not None
        else Rejection("route services are disabled: no route_services_secret to check it with")
    )
    if not isinstance(verdict, Rejection):
        return True
    log.error("signature-validation-failed", error=verdict.reason, route=pool.uri)
    refusal = errors.stray_signature(verdict.reason, isinstance(verdict, Expired))
    settlement.answer(proxy, ex, router_answer(refusal))
    return False


async def send_to_route_service(
    proxy: Proxy, ex: Exchange, common: list[bytes], service_url: str
) -> None:
    """Sign the request and send it to the route service: through the service's own route
    when hairpinning allows it, over the network otherwise."""
    req = ex.request
    keys = proxy.route_services
    assert keys is not None
    forwarded = f"{proxy.route_service_scheme}://{strip_port(req.host_header)}{ex.upstream_target}"
    signature, metadata = keys.sign(unquote(forwarded))
    url = urlsplit(service_url)
    ex.upstream_target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    ex.upstream_host = url.netloc.rpartition("@")[2]
    lines = [
        *common,
        f"{FORWARDED_URL}: {forwarded}\r\n{SIGNATURE}: {signature}\r\n".encode(),
        f"{METADATA}: {metadata}\r\n".encode(),
    ]
    service_pool = hairpin_pool(proxy, ex.upstream_host, url.path)
    if service_pool is not None:
        await _hairpin(proxy, ex, lines, service_pool)
        return
    await _send_over_network(proxy, ex, lines, service_url)


def hairpin_pool(proxy: Proxy, authority: str, path: str) -> PoolRecord | None:
    """The route a route service's URL names in this router's table, when the request may go
    to it directly (Gorouter's route_services_hairpinning and its allowlist); else None.

    Gorouter sends such a request to an internal listener of its own
    (route_services_internal_server_port), which routes it like any request. A worker here
    routes it itself, to the same endpoints, without the extra connection and TLS handshake.
    A service whose own route is bound to a route service goes over the network, so a chain of
    services is never followed within one request.
    """
    if not proxy.hairpinning:
        return None
    routed = lookup_host_and_path(authority, path or "/")
    if routed is None:
        return None
    pool = proxy.lookup.find(*routed)
    if not isinstance(pool, PoolRecord) or pool.route_service_url:
        return None
    if not proxy.hairpin_allowlist.allows(pool.host):
        return None
    return proxy.pruned.visible(pool) if proxy.pruned else pool


async def _hairpin(proxy: Proxy, ex: Exchange, lines: list[bytes], pool: PoolRecord) -> None:
    """The route service's request, routed to its own route's endpoints, as Gorouter's internal
    listener would: an empty route answers as one, failures are retried as for any route."""
    log.debug("route-service-hairpinned", route=pool.uri, route_service_host=ex.upstream_host)
    if not pool.endpoints:
        host = ex.upstream_host
        refusal = errors.no_endpoints(host) if proxy.empty_pool_503 else errors.unknown_route(host)
        settlement.answer(proxy, ex, router_answer(refusal))
        return
    await attempts.attempts(proxy, ex, Plan(lines, pool, via_route_service=False))


async def _send_over_network(
    proxy: Proxy, ex: Exchange, lines: list[bytes], service_url: str
) -> None:
    req = ex.request
    url = urlsplit(service_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    service = EndpointRecord(
        slot=NO_SLOT,
        host=url.hostname or "",
        port=port,
        tls=url.scheme == "https",
        server_cert_domain_san=url.hostname or "",
    )
    # Route services get their own idle connections: over TLS they see the route-service
    # client certificate (route_services.cert_chain), never an app's.
    key = f"{service.address}/route-service-tls" if service.tls else service.address
    last_error: BackendError | None = None
    for attempt in range(1, proxy.route_service_attempts + 1):
        try:
            pooled = proxy.upstream.take_idle(key) if attempt == 1 else None
            await attempts.attempt(
                proxy, ex, service, lines, pooled, b"", key, proxy.route_service_tls
            )
        except BackendError as error:
            ex.conn = None
            last_error = error
            ex.failed_attempts += 1
            retriable = errors.is_retriable(error.kind) and req.is_replayable
            log.error(
                "route-service-connection-failed",
                error=error.detail,
                route_service_url=service_url,
                attempt=attempt,
                retriable=retriable,
            )
            if not retriable:
                break
            continue
        ex.backend = service.address
        return
    assert last_error is not None
    proxy.row.stats[Stat.route_service_failures] += 1
    settlement.answer(proxy, ex, backend_answer(last_error))

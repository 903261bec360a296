"""The route-service hop: requests for routes bound to a route service go there first.

`arrived_from_route_service` recognises a request coming back from the service (a valid signature
naming this route); `send_to_route_service` signs a request and sends it to the service instead of
the app, with the proxy's usual attempt loop and error answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import unquote, urlsplit

from registry.records import EndpointRecord, PoolRecord
from registry.rejection import Rejection
from registry.routekey import strip_port
from registry.shm.counters import Stat
from router import attempts, errors, settlement
from router.answers import backend_answer, router_answer
from router.errors import BackendError
from router.exchange import Exchange
from router.headers import header_value
from router.hosts import lookup_host_and_path
from router.route_services import FORWARDED_URL, METADATA, SIGNATURE, Expired
from runtime.logs import EventLog

if TYPE_CHECKING:
    from router.proxy import Proxy

log = EventLog("vcap.gorouter.proxy")

NO_SLOT: Final = -1  # route services are not table endpoints: no counters, no marks


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
    signature = header_value(req.raw_headers, SIGNATURE.lower().encode())
    if not signature:
        return False
    contents = keys.verify(
        signature, header_value(req.raw_headers, METADATA.lower().encode()) or ""
    )
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


async def send_to_route_service(
    proxy: Proxy, ex: Exchange, common: list[bytes], service_url: str
) -> None:
    req = ex.request
    keys = proxy.route_services
    assert keys is not None
    forwarded = f"{proxy.route_service_scheme}://{strip_port(req.host_header)}{ex.upstream_target}"
    signature, metadata = keys.sign(unquote(forwarded))
    url = urlsplit(service_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    service = EndpointRecord(
        slot=NO_SLOT,
        host=url.hostname or "",
        port=port,
        tls=url.scheme == "https",
        server_cert_domain_san=url.hostname or "",
    )
    ex.upstream_target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    ex.upstream_host = url.netloc
    lines = [
        *common,
        f"{FORWARDED_URL}: {forwarded}\r\n{SIGNATURE}: {signature}\r\n".encode(),
        f"{METADATA}: {metadata}\r\n".encode(),
    ]
    last_error: BackendError | None = None
    for attempt in range(1, proxy.max_attempts + 1):
        try:
            key = f"{service.address}/tls" if service.tls else service.address
            pooled = proxy.upstream.take_idle(key) if attempt == 1 else None
            await attempts.attempt(proxy, ex, service, lines, pooled, b"", key)
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

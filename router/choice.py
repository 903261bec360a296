"""Which endpoint of a pool an attempt goes to, and the per-endpoint strings every request to it
needs.

The order of preference: a Negotiate request pinned by `__VCAP_ID__` goes to that instance or
nowhere; a pool's only endpoint is chosen unless full; on attempt 1, the sticky instance the
client asked for, if usable; then the pool's policy (hash-based pools by their header's value),
preferring the router's own zone on attempt 1 under `locally-optimistic`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry.instances import find_sticky
from registry.policy import policy_for
from registry.records import EndpointRecord, PoolRecord
from router.exchange import Exchange
from router.headers import endpoint_headers, header_value
from router.upstream_pool import H2_KEY_SUFFIX
from runtime.config_model import LOCALLY_OPTIMISTIC

if TYPE_CHECKING:
    from router.proxy import Proxy


def choose(
    proxy: Proxy, ex: Exchange, pool: PoolRecord, excluded: set[int], attempt: int
) -> EndpointRecord | None:
    if ex.must_be_sticky:
        # Gorouter: a Negotiate request pinned by __VCAP_ID__ goes to that instance on every
        # attempt, failed or not, or nowhere (502) when it is gone or full.
        pinned = find_sticky(pool, ex.sticky_requested)
        return None if pinned is None or proxy.health.is_overloaded(pinned) else pinned
    endpoints = pool.endpoints
    if len(endpoints) == 1 and not excluded:
        # Any policy's only choice (the contract's): the endpoint, unless it is full.
        only = endpoints[0]
        return None if proxy.health.is_overloaded(only) else only
    if attempt == 1 and ex.sticky_requested:
        sticky = find_sticky(pool, ex.sticky_requested)
        if (
            sticky is not None
            and not proxy.health.is_overloaded(sticky)
            and not proxy.health.is_failed(sticky)
        ):
            return sticky
    zone = ""
    if attempt == 1:  # Gorouter's zone preference applies to the first attempt only
        config = proxy.config
        if config.balancing_algorithm_az_preference == LOCALLY_OPTIMISTIC:
            zone = config.zone
    # The pool's policy only now: a pool's only endpoint (the common case) needs none.
    policy = policy_for(pool.load_balancing, proxy.default_algorithm)
    if pool.hash_header:  # set only on hash-based pools: the others never pay for the lookup
        name = pool.hash_header.lower().encode("utf-8", "replace")
        key = header_value(ex.request.raw_headers, name) or ""
        return policy.choose(pool, proxy.health, excluded, key, zone)
    if zone:
        return policy.choose(pool, proxy.health, excluded, zone=zone)
    return policy.choose(pool, proxy.health, excluded)


def all_overloaded(proxy: Proxy, pool: PoolRecord) -> bool:
    """Every endpoint is at max_conns (Gorouter's pool.IsOverloaded): the route's connection
    limit, which Gorouter answers before a pinned Negotiate request finds its instance gone."""
    return all(proxy.health.is_overloaded(endpoint) for endpoint in pool.endpoints)


def instance_strings(
    proxy: Proxy, endpoint: EndpointRecord
) -> tuple[EndpointRecord, bytes, str, str]:
    """Per-endpoint strings every request needs: X-CF-* lines, pool key and address. Kept
    per slot (backend address) until the endpoint's record differs."""
    cached = proxy.instance_cache.get(endpoint.slot)
    # Routes to one instance mostly share its record (decode_shard), but not always: one
    # decoded before another route re-registered the address is an equal, other object.
    if cached is not None and (cached[0] is endpoint or cached[0] == endpoint):
        return cached
    if len(proxy.instance_cache) > 65536:
        proxy.instance_cache.clear()
    address = endpoint.address
    key = f"{address}/tls" if endpoint.tls else address
    if endpoint.protocol == "http2":
        key += H2_KEY_SUFFIX  # the pool speaks HTTP/2 to it
    cached = (endpoint, endpoint_headers(endpoint), key, address)
    proxy.instance_cache[endpoint.slot] = cached
    return cached

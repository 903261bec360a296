"""Round-robin: each request starts one past the endpoint the previous one chose, from a random
first index."""

from __future__ import annotations

import random
from collections.abc import Container

from registry.policy.contract import EndpointHealth
from registry.records import EndpointRecord, PoolRecord


class RoundRobin:
    name = "round-robin"

    def __repr__(self) -> str:
        return "RoundRobin()"

    def choose(
        self,
        pool: PoolRecord,
        health: EndpointHealth,
        exclude: Container[int],
        key: str = "",
        zone: str = "",
    ) -> EndpointRecord | None:
        endpoints = pool.endpoints
        count = len(endpoints)
        if count == 1:
            # One endpoint: it is the choice unless excluded or full; a failure mark would be
            # cleared anyway, since every endpoint of the pool would be marked.
            only = endpoints[0]
            if only.slot in exclude or health.is_overloaded(only):
                return None
            if health.is_failed(only):
                health.clear_failures(endpoints)
            return only
        if count == 0:
            return None
        if pool.cursor < 0:
            # A random start spreads load when many routers (or workers) see the pool at once.
            pool.cursor = random.randrange(count)
        start = pool.cursor % count
        pool.cursor = start + 1
        if zone:
            # Gorouter's first pass under locally-optimistic: the next endpoint in the zone.
            for step in range(count):
                endpoint = endpoints[(start + step) % count]
                if (
                    endpoint.availability_zone == zone
                    and endpoint.slot not in exclude
                    and not health.is_overloaded(endpoint)
                    and not health.is_failed(endpoint)
                ):
                    pool.cursor = start + step + 1
                    return endpoint
        fallback: EndpointRecord | None = None
        fallback_step = 0
        for step in range(count):
            endpoint = endpoints[(start + step) % count]
            if endpoint.slot in exclude or health.is_overloaded(endpoint):
                continue
            if not health.is_failed(endpoint):
                # The next request starts after the chosen endpoint, not after `start`: otherwise
                # the endpoint after a failed or full one would get its share too (Gorouter).
                pool.cursor = start + step + 1
                return endpoint
            if fallback is None:
                fallback, fallback_step = endpoint, step
        if fallback is not None:
            # Every usable endpoint is marked failed: forget the marks and try again (Gorouter).
            health.clear_failures(endpoints)
            pool.cursor = start + fallback_step + 1
        return fallback

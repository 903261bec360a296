"""Least-connection: the endpoint with the fewest in-flight requests across all workers."""

from __future__ import annotations

import random
from collections.abc import Container

from registry.policy.contract import EndpointHealth, candidates
from registry.records import EndpointRecord, PoolRecord


class LeastConnection:
    name = "least-connection"

    def __repr__(self) -> str:
        return "LeastConnection()"

    def choose(
        self,
        pool: PoolRecord,
        health: EndpointHealth,
        exclude: Container[int],
        key: str = "",
        zone: str = "",
    ) -> EndpointRecord | None:
        endpoints = pool.endpoints
        if not endpoints:
            return None
        # A random starting point breaks ties differently per request, as Gorouter's shuffle does.
        usable = candidates(endpoints, random.randrange(len(endpoints)), health, exclude)
        if not usable:
            return None
        if zone:
            local = [
                endpoint
                for endpoint in usable
                if endpoint.availability_zone == zone and not health.is_failed(endpoint)
            ]
            if local:
                return min(local, key=health.in_flight)
        healthy = [endpoint for endpoint in usable if not health.is_failed(endpoint)]
        if not healthy:
            health.clear_failures(endpoints)
            healthy = usable
        return min(healthy, key=health.in_flight)

"""Hash-based balancing (Gorouter's route/hash_based.go): a request header's value picks the
endpoint, so requests carrying the same value (a tenant, a user) reach the same instance.

The pool's `hash_header` names the header; the worker passes its value as `key`. A request
without it is balanced by the router's own `balancing_algorithm` (`fallback`), as Gorouter does.
The endpoint comes from the Maglev table (maglev.py), walked onwards from the value's slot past
endpoints that are excluded, overloaded, or, with a `hash_balance` factor, imbalanced: carrying
more than `hash_balance` times the pool's average in-flight requests.

As in Gorouter, failure marks do not move a value to another endpoint (only a failure within the
request does, through `exclude`): affinity is the point of the policy. Where Gorouter gives up
when every remaining endpoint is imbalanced (possible only with a factor below 1), this returns
the first of them in table order, as the contract asks.
"""

from __future__ import annotations

from collections.abc import Container

from registry.policy.contract import BalancingPolicy, EndpointHealth
from registry.policy.maglev import TABLE_SIZE, build_table, slot_for
from registry.records import EndpointRecord, PoolRecord


class HashBased:
    name = "hash"

    def __init__(self, fallback: BalancingPolicy) -> None:
        self.fallback = fallback

    def __repr__(self) -> str:
        return f"HashBased(fallback={self.fallback!r})"

    def choose(
        self,
        pool: PoolRecord,
        health: EndpointHealth,
        exclude: Container[int],
        key: str = "",
        zone: str = "",
    ) -> EndpointRecord | None:
        if not key:
            return self.fallback.choose(pool, health, exclude, zone=zone)
        # A value keeps to its endpoint whatever its zone (Gorouter ignores the preference here).
        endpoints = pool.endpoints
        if not endpoints:
            return None
        table = pool.hash_table or lookup_table(pool)
        factor = pool.hash_balance
        average = -1.0  # worked out on the first endpoint that needs it
        visited: set[int] = set()
        spare: EndpointRecord | None = None
        slot = slot_for(key.encode("latin-1"))  # the header's bytes, as Go hashes them
        for _ in range(TABLE_SIZE):
            index = table[slot]
            slot = slot + 1 if slot + 1 < TABLE_SIZE else 0
            if index in visited:
                continue
            visited.add(index)
            endpoint = endpoints[index]
            if endpoint.slot not in exclude and not health.is_overloaded(endpoint):
                if factor <= 0:
                    return endpoint
                if average < 0:
                    average = sum(health.in_flight(e) for e in endpoints) / len(endpoints)
                if average == 0 or health.in_flight(endpoint) / average <= factor:
                    return endpoint
                if spare is None:
                    spare = endpoint
            if len(visited) == len(endpoints):
                break
        return spare


def endpoint_id(endpoint: EndpointRecord) -> str:
    """What the table hashes: Gorouter's private_instance_id. An endpoint registered without
    one is known by its address, so that several such endpoints are not one."""
    return endpoint.instance_id or endpoint.address


def lookup_table(pool: PoolRecord) -> tuple[int, ...]:
    """The pool's Maglev table as indexes into `pool.endpoints`, built once and kept with the
    pool (a pool that changes arrives as a new record, without it)."""
    owner = {endpoint_id(endpoint): index for index, endpoint in enumerate(pool.endpoints)}
    ids = sorted(owner)
    table = tuple(owner[ids[entry]] for entry in build_table(ids))
    pool.hash_table = table
    return table

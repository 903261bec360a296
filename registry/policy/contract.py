"""The contract every balancing policy keeps (after Gorouter's `route/pool.go`)."""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Protocol

from registry.records import EndpointRecord, PoolRecord


class EndpointHealth(Protocol):
    """What a policy may ask about endpoints; the worker answers from its failure marks and the
    shared in-flight counters."""

    def is_failed(self, endpoint: EndpointRecord) -> bool:
        """Marked failed recently (and the mark has not expired)."""

    def clear_failures(self, endpoints: Sequence[EndpointRecord]) -> None:
        """Forget the failure marks of these endpoints."""

    def is_overloaded(self, endpoint: EndpointRecord) -> bool:
        """At `backends.max_conns` in-flight requests, summed over every worker."""

    def in_flight(self, endpoint: EndpointRecord) -> int:
        """In-flight requests, summed over every worker."""


class BalancingPolicy(Protocol):
    """Chooses the endpoint for one attempt of one request.

    `choose` MUST either return an endpoint of `pool` or None, and MUST NOT do I/O or block.
    It MUST NOT return an endpoint that is overloaded or whose slot is in `exclude` (endpoints that
    already failed this request). It MUST prefer endpoints that are not marked failed; when every
    remaining endpoint is marked failed it MUST clear those marks and choose among them, so a pool
    whose endpoints all failed once is retried rather than abandoned (Gorouter's rule). It MUST
    return None only when no endpoint is left after overload and `exclude`.

    `key` is the value of the request header the pool hashes on (`pool.hash_header`), "" when
    the pool names none or the request lacks it; policies that do not hash MUST ignore it. A
    hashing policy MAY keep choosing an endpoint marked failed (affinity; Gorouter's rule).

    `zone`, when not "", is the router's availability zone under the locally-optimistic
    preference: a policy that does not hash MUST choose an endpoint whose `availability_zone`
    is `zone` if one is usable and not marked failed, and otherwise choose as if `zone` were "".
    """

    name: str

    def choose(
        self,
        pool: PoolRecord,
        health: EndpointHealth,
        exclude: Container[int],
        key: str = "",
        zone: str = "",
    ) -> EndpointRecord | None: ...


def candidates(
    endpoints: Sequence[EndpointRecord],
    start: int,
    health: EndpointHealth,
    exclude: Container[int],
) -> list[EndpointRecord]:
    """Endpoints from `start` around the ring that are neither excluded nor overloaded."""
    count = len(endpoints)
    result = []
    for step in range(count):
        endpoint = endpoints[(start + step) % count]
        if endpoint.slot in exclude or health.is_overloaded(endpoint):
            continue
        result.append(endpoint)
    return result

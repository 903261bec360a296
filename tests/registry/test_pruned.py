"""A worker hides the endpoints it pruned until the shared table drops them."""

from __future__ import annotations

from registry.pruned import PrunedEndpoints
from registry.records import EndpointRecord, PoolRecord
from tests.support.clock import ManualClock


def pool_of(*ports: int, host: str = "app.example.com") -> PoolRecord:
    endpoints = tuple(EndpointRecord(slot=port, host="10.0.0.1", port=port) for port in ports)
    return PoolRecord(host, "", endpoints, route_service_url="")


def ports(pool: PoolRecord) -> list[int]:
    return [endpoint.port for endpoint in pool.endpoints]


def test_a_pruned_endpoint_is_hidden_from_its_route_only_until_the_table_changes():
    clock = ManualClock()
    pruned = PrunedEndpoints(retry_after=30, clock=clock)
    table = pool_of(1, 2, 3)
    other = pool_of(1, 2, host="other.example.com")
    assert pruned.hide(table.uri, table.endpoints[0])
    assert not pruned.hide(table.uri, table.endpoints[0])  # reported once
    assert ports(pruned.visible(table)) == [2, 3]
    assert pruned.visible(other) is other  # Gorouter prunes from the failing route's pool
    assert repr(pruned) == "PrunedEndpoints({'app.example.com': [1]})"
    # The supervisor republished the route (a new decode, new objects): the hiding ends.
    republished = pool_of(2, 3)
    assert pruned.visible(republished) is republished
    assert not pruned
    registered_again = pool_of(1, 2, 3)
    assert ports(pruned.visible(registered_again)) == [1, 2, 3]


def test_hiding_ends_after_retry_after_when_the_table_keeps_the_endpoint():
    clock = ManualClock()
    pruned = PrunedEndpoints(retry_after=30, clock=clock)
    static = pool_of(1)
    pruned.hide(static.uri, static.endpoints[0])
    assert ports(pruned.visible(static)) == []
    clock.now += 30
    assert pruned.visible(static) is static
    assert pruned.hide(static.uri, static.endpoints[0])  # may be reported again

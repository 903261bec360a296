"""Heartbeats: `RouteTable.refresh` only marks seen what the very same registration made, and
leaves every other case to `register`, so the cheap path can never hide a change."""

from __future__ import annotations

import math

from registry.rejection import Rejection
from registry.routekey import RouteKey
from registry.routes import RouteTable
from registry.slots import SlotAllocator
from tests.registry.tables import registration

KEY = RouteKey("app.example.com")


def new_table() -> RouteTable:
    return RouteTable(8, SlotAllocator(64, 30.0))


def test_refresh_marks_seen_what_the_same_registration_made() -> None:
    table = new_table()
    reg = registration("app.example.com", "other.example.com", address="10.0.0.1:8080")
    assert not isinstance(table.register(reg, 100.0), Rejection)
    table.take_dirty()

    slot = table.refresh(reg, 150.0)

    assert slot == table.slots.slot_of("10.0.0.1:8080")
    assert [age.last_seen for age in table.endpoint_ages()] == [150.0, 150.0]
    assert table.dirty_count == 0
    assert table.last_update == 150.0


def test_refresh_declines_an_equal_but_new_registration_that_register_then_applies() -> None:
    # Two parses of the same bytes are equal but not the same object: refresh wants the one
    # whose record is in the table, so a re-parsed message always goes through register.
    table = new_table()
    assert not isinstance(table.register(registration("app.example.com"), 100.0), Rejection)
    again = registration("app.example.com")

    assert table.refresh(again, 150.0) is None
    assert [age.last_seen for age in table.endpoint_ages()] == [100.0]
    assert table.register(again, 150.0) == []
    assert table.refresh(again, 160.0) is not None


def test_refresh_declines_after_the_endpoint_was_removed_or_replaced() -> None:
    table = new_table()
    first = registration("app.example.com", app="first")
    table.register(first, 100.0)
    table.unregister(registration("app.example.com", for_unregister=True), 110.0)
    assert table.refresh(first, 120.0) is None
    assert table.pools == {}

    table.register(first, 130.0)
    second = registration("app.example.com", app="second")
    table.register(second, 140.0)
    assert table.refresh(first, 150.0) is None  # the table holds what `second` made
    changes = table.register(first, 150.0)
    assert not isinstance(changes, Rejection)
    assert [change.endpoint.app_id for change in changes if change.endpoint] == ["first"]


def test_refresh_declines_when_another_endpoint_changed_the_pool_settings() -> None:
    # The last registration decides a pool's route service, as in Gorouter; a heartbeat of the
    # first endpoint must still take it back, so it goes through register.
    table = new_table()
    first = registration("app.example.com", address="10.0.0.1:8080")
    table.register(first, 100.0)
    table.register(
        registration(
            "app.example.com", address="10.0.0.2:8080", route_service_url="https://rs.example.com"
        ),
        110.0,
    )

    assert table.refresh(first, 120.0) is None
    table.register(first, 120.0)
    assert table.pools[KEY].route_service_url == ""


def test_refresh_keeps_a_pinned_endpoint_pinned() -> None:
    table = new_table()
    reg = registration("app.example.com")
    table.register(reg, 100.0)
    table.pin(reg)

    assert table.refresh(reg, 150.0) is not None
    assert [math.isinf(age.last_seen) for age in table.endpoint_ages()] == [True]

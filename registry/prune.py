"""Which endpoints are stale: a decision, not an action.

Gorouter's rules: a non-TLS endpoint not heard from within its stale threshold is pruned; TLS
endpoints are never pruned by age (the router checks them per request instead). While NATS is
unavailable and pruning is suspended, nothing is pruned; on the first cycle after NATS returns,
every endpoint is freshened instead, so nothing is pruned at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import msgspec

from registry.routekey import RouteKey


class EndpointAge(NamedTuple):
    key: RouteKey
    address: str
    last_seen: float
    stale_threshold: int
    tls: bool


class PrunePlan(msgspec.Struct, frozen=True):
    suspended: bool = False
    freshen_all: bool = False
    stale: tuple[tuple[RouteKey, str], ...] = ()


def plan_prune(
    now: float,
    endpoints: Iterable[EndpointAge],
    *,
    nats_connected: bool,
    suspend_when_disconnected: bool,
    was_suspended: bool,
) -> PrunePlan:
    if suspend_when_disconnected and not nats_connected:
        return PrunePlan(suspended=True)
    if was_suspended:
        return PrunePlan(freshen_all=True)
    stale = tuple(
        (age.key, age.address)
        for age in endpoints
        if not age.tls and now - age.last_seen > age.stale_threshold
    )
    return PrunePlan(stale=stale)

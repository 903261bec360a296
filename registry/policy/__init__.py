"""Balancing policies: one per module, each honouring the contract in `contract.py`."""

from __future__ import annotations

from registry.policy.contract import BalancingPolicy, EndpointHealth
from registry.policy.least_connection import LeastConnection
from registry.policy.round_robin import RoundRobin

POLICIES: dict[str, BalancingPolicy] = {
    "round-robin": RoundRobin(),
    "least-connection": LeastConnection(),
}


def policy_for(pool_algorithm: str, default: str) -> BalancingPolicy:
    """The route's own `options.loadbalancing` wins over the router's `balancing_algorithm`."""
    return POLICIES.get(pool_algorithm) or POLICIES[default]


__all__ = [
    "POLICIES",
    "BalancingPolicy",
    "EndpointHealth",
    "LeastConnection",
    "RoundRobin",
    "policy_for",
]

"""Balancing policies: one per module, each honouring the contract in `contract.py`."""

from __future__ import annotations

from registry.message import HASH_BASED
from registry.policy.contract import BalancingPolicy, EndpointHealth
from registry.policy.hash_based import HashBased
from registry.policy.least_connection import LeastConnection
from registry.policy.round_robin import RoundRobin

POLICIES: dict[str, BalancingPolicy] = {
    "round-robin": RoundRobin(),
    "least-connection": LeastConnection(),
}
# Hash-based balancing for each router algorithm it falls back to (requests without the header).
HASHED: dict[str, BalancingPolicy] = {name: HashBased(policy) for name, policy in POLICIES.items()}


def policy_for(pool_algorithm: str, default: str) -> BalancingPolicy:
    """The route's own `options.loadbalancing` wins over the router's `balancing_algorithm`."""
    if pool_algorithm == HASH_BASED:
        return HASHED[default]
    return POLICIES.get(pool_algorithm) or POLICIES[default]


__all__ = [
    "POLICIES",
    "BalancingPolicy",
    "EndpointHealth",
    "HashBased",
    "LeastConnection",
    "RoundRobin",
    "policy_for",
]

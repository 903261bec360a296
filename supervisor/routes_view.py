"""Gorouter's /routes entries, built alike by the status server and by `routerctl --from-shm`."""

from __future__ import annotations

from typing import Any

from registry.records import EndpointRecord


def endpoint_json(
    record: EndpointRecord, route_service_url: str, load_balancing: str
) -> dict[str, Any]:
    """One endpoint in Gorouter's /routes shape, for the status server and `routerctl`."""
    entry: dict[str, Any] = {
        "address": record.address,
        "availability_zone": record.availability_zone,
        "protocol": record.protocol,
        "tls": record.tls,
        "ttl": record.stale_threshold,
        "route_service_url": route_service_url,
        "tags": record.tags,
        "isolation_segment": record.isolation_segment,
        "private_instance_id": record.instance_id,
        "private_instance_index": record.instance_index,
        "server_cert_domain_san": record.server_cert_domain_san,
        "app": record.app_id,
    }
    if load_balancing:
        entry["load_balancing_algorithm"] = load_balancing
    return entry

"""Hash-based balancing (`options.loadbalancing: hash`) through a real routerd."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.routes import register
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
HOST = "tenants.example.com"


def test_one_header_value_reaches_one_instance(routerd_factory, nats_client, backend_factory):
    backends = [backend_factory(name=f"hb-{i}") for i in range(3)]
    # One worker: the round-robin fallback below then takes exact turns.
    router = routerd_factory({"workers": 1})
    options = {"loadbalancing": "hash", "hash_header": "X-Tenant", "hash_balance": 0}
    for index, backend in enumerate(backends):
        register(
            nats_client,
            backend.port,
            [HOST],
            private_instance_id=f"instance-{index}",
            options=options,
        )
    wait_until(
        lambda: len(router.status_json("/routes").get(HOST, [])) == 3,
        what="three endpoints routed",
    )

    def backend_for(tenant: str | None) -> str:
        headers = {} if tenant is None else {"x-tenant": tenant}
        response = router.get("/", host=HOST, headers=headers)
        assert response.status == 200
        return response.header("X-Backend")

    by_tenant = {tenant: {backend_for(tenant) for _ in range(5)} for tenant in map(str, range(30))}
    assert all(len(seen) == 1 for seen in by_tenant.values()), by_tenant
    assert len(set().union(*by_tenant.values())) == 3  # thirty values spread over all three
    # Without the header the router's balancing_algorithm (round-robin) applies.
    assert Counter(backend_for(None) for _ in range(6)) == {"hb-0": 2, "hb-1": 2, "hb-2": 2}

"""balancing_algorithm_az_preference: locally-optimistic through a real routerd."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.routes import register
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
HOST = "zoned.example.com"


@pytest.mark.parametrize(
    ("preference", "expected"),
    [("locally-optimistic", {"in-z1"}), ("none", {"in-z1", "in-z2"})],
)
def test_first_attempts_stay_in_the_router_zone(
    routerd_factory, nats_client, backend_factory, preference, expected
):
    router = routerd_factory(
        {"workers": 1, "zone": "z1", "balancing_algorithm_az_preference": preference}
    )
    for zone in ("z1", "z2"):
        backend = backend_factory(name=f"in-{zone}")
        register(nats_client, backend.port, [HOST], availability_zone=zone)
    wait_until(
        lambda: len(router.status_json("/routes").get(HOST, [])) == 2,
        what="both endpoints routed",
    )
    seen = Counter(router.get("/", host=HOST).header("X-Backend") for _ in range(8))
    assert set(seen) == expected

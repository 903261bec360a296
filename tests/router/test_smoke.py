"""The README demo, end to end: register, route, unregister, 404."""

from __future__ import annotations

import pytest

from tests.support.routes import register, unregister, wait_routed, wait_unrouted

pytestmark = pytest.mark.integration


def test_register_route_unregister(routerd_factory, nats_client, backend_factory):
    backend = backend_factory(name="demo")
    router = routerd_factory()
    register(nats_client, backend.port, ["demo.example.com"])
    wait_routed(router, "demo.example.com")
    response = router.get("/hello?x=1", host="demo.example.com")
    assert response.status == 200
    assert response.json()["path"] == "/hello?x=1"
    assert response.header("X-Backend") == "demo"
    unregister(nats_client, backend.port, ["demo.example.com"])
    wait_unrouted(router, "demo.example.com")
    response = router.get("/", host="demo.example.com")
    assert response.status == 404
    assert response.text == "404 Not Found: Requested route ('demo.example.com') does not exist.\n"

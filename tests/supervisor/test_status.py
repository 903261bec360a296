"""The status server: /health open, everything else behind constant-time basic auth."""

from __future__ import annotations

import base64

import pytest

from tests.support.routerd import STATUS_PASS, STATUS_USER
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def router(routerd_factory):
    return routerd_factory()


def test_health_needs_no_auth(router):
    response = router.health()
    assert response.status == 200
    assert response.text == "ok\n"
    assert response.header("Cache-Control") == "private, max-age=0"
    assert response.header("Server") is None


@pytest.mark.parametrize("path", ["/routes", "/varz", "/metrics"])
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(f"{STATUS_USER}:wrong".encode()).decode(),
        "Basic " + base64.b64encode(f"wrong:{STATUS_PASS}".encode()).decode(),
        "Basic " + base64.b64encode(f"{STATUS_USER}{STATUS_PASS}".encode()).decode(),
        "Basic !!!not-base64!!!",
        "Bearer " + base64.b64encode(f"{STATUS_USER}:{STATUS_PASS}".encode()).decode(),
        "Basic",
    ],
    ids=["none", "wrong-pass", "wrong-user", "no-colon", "bad-base64", "wrong-scheme", "empty"],
)
def test_protected_endpoints_reject_bad_credentials(router, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = router.status_request("GET", path, auth=None, headers=headers)
    assert response.status == 401
    assert response.header("WWW-Authenticate") == 'Basic realm="routerd"'
    assert response.header("Server") is None


def test_no_configured_credentials_lets_nobody_in(routerd_factory):
    router = routerd_factory({"status": {"user": "", "pass": ""}})
    assert router.status_request("GET", "/varz", auth=("", "")).status == 401


def test_varz_and_metrics_report_traffic(router, nats_client, backend_factory):
    backend = backend_factory()
    register(nats_client, backend.port, ["counted.example.com"])
    wait_routed(router, "counted.example.com")
    for _ in range(3):
        assert router.get("/", host="counted.example.com").status == 200
    router.get("/", host="missing.example.com")
    varz = router.status_json("/varz")
    assert varz["type"] == "Router"
    assert varz["urls"] == 1 and varz["droplets"] == 1
    assert varz["responses_2xx"] >= 3
    assert varz["router_errors"]["unknown_route"] >= 1
    assert varz["ms_since_last_registry_update"] >= 0
    assert [w["state"] for w in varz["workers"]] == ["ready", "ready"]
    metrics = router.status_request("GET", "/metrics")
    assert metrics.header("Content-Type").startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'routerd_responses_total{class="2xx"}' in text
    assert 'routerd_router_errors_total{error="unknown_route"}' in text
    assert "routerd_routes 1" in text
    assert "routerd_request_duration_seconds_count" in text


def test_routes_of_many_routes_keep_gorouters_shape(router, nats_client):
    # More routes than /routes lists per turn of the loop and encodes per piece.
    count = 4_500
    for index in range(count):
        nats_client.publish(
            "router.register",
            {
                "host": f"10.3.{index // 250}.{index % 250}",
                "port": 8080,
                "uris": [f"many-{index:05d}.example.com"],
                "app": f"app-{index}",
                "private_instance_id": f"instance-{index}",
            },
        )
    register(
        nats_client,
        8443,
        ["many-00007.example.com/api"],
        host="10.4.0.1",
        tags={"component": "api"},
        route_service_url="https://rs.example.com",
        options={"loadbalancing": "least-connection"},
        stale_threshold_in_seconds=60,
    )
    wait_until(
        lambda: router.status_json("/varz")["urls"] == count + 1, what="every route registered"
    )

    response = router.status_request("GET", "/routes?ttl_left=1")

    assert response.status == 200
    assert response.header("Content-Type") == "application/json"
    assert int(response.header("Content-Length") or 0) == len(response.body)
    assert response.body.endswith(b"}\n")
    routes = response.json()
    uris = [f"many-{index:05d}.example.com" for index in range(count)]
    assert list(routes) == sorted([*uris, "many-00007.example.com/api"])
    [entry] = routes["many-04321.example.com"]
    ttl_left = entry.pop("ttl_left")
    assert 100 <= ttl_left <= 120
    assert entry == {
        "address": "10.3.17.71:8080",
        "availability_zone": "",
        "protocol": "http1",
        "tls": False,
        "ttl": 120,
        "route_service_url": "",
        "tags": {},
        "isolation_segment": "",
        "private_instance_id": "instance-4321",
        "private_instance_index": "",
        "server_cert_domain_san": "",
        "app": "app-4321",
    }
    [api] = routes["many-00007.example.com/api"]
    assert api["address"] == "10.4.0.1:8443"
    assert api["ttl"] == 60 and api["ttl_left"] <= 60
    assert api["tags"] == {"component": "api"}
    assert api["route_service_url"] == "https://rs.example.com"
    assert api["load_balancing_algorithm"] == "least-connection"
    assert "ttl_left" not in router.status_json("/routes")["many-00000.example.com"][0]

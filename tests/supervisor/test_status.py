"""The status server: /health open, everything else behind constant-time basic auth."""

from __future__ import annotations

import base64

import pytest

from tests.support.routerd import STATUS_PASS, STATUS_USER
from tests.support.routes import register, wait_routed

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

"""Gorouter's metric names on /metrics and its /varz fields, moved by real traffic."""

from __future__ import annotations

import re
import time

import pytest

from tests.support.ports import free_port
from tests.support.routes import register, unregister, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
LATENCY_BOUNDS = ["1", "2", "4", "6", "8", "10", "20", "40", "50", "100", "500", "1000", "+Inf"]


def scrape(router) -> tuple[dict[str, float], dict[str, str]]:
    """Samples by name-with-labels, and each family's TYPE, once no request is in flight (a
    worker counts a request when it settles it, which can be after the client has the reply)."""
    scraped: list[tuple[dict[str, float], dict[str, str]]] = []

    def settled() -> bool:
        scraped.append(scrape_once(router))
        return scraped[-1][0]["routerd_in_flight_requests"] == 0

    wait_until(settled, timeout=10, what="no request in flight")
    return scraped[-1]


def scrape_once(router) -> tuple[dict[str, float], dict[str, str]]:
    response = router.status_request("GET", "/metrics")
    assert response.status == 200
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, line
        samples[match[1] + (match[2] or "")] = float(match[3])
    return samples, types


@pytest.fixture
def router(routerd_factory):
    return routerd_factory()


def test_gorouter_series_count_routed_traffic_by_component(router, nats_client, backend_factory):
    backend = backend_factory()
    register(
        nats_client,
        backend.port,
        ["cc.example.com", "api.example.com"],
        tags={"component": "CloudController"},
        app="app-guid-cc",
        endpoint_updated_at_ns=time.time_ns(),
    )
    wait_routed(router, "cc.example.com")
    before, types = scrape(router)
    assert types["total_requests"] == "counter"
    assert types["responses"] == "counter"
    assert types["latency"] == "histogram"
    assert types["total_routes"] == "gauge"
    assert types["ms_since_last_registry_update"] == "gauge"
    assert types["route_registration_latency"] == "histogram"
    assert types["registry_message"] == "counter"

    for _ in range(3):
        assert router.get("/", host="cc.example.com").status == 200
    assert router.get("/", host="nowhere.example.com").status == 404
    after, _ = scrape(router)

    def moved(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    cc = '{component="CloudController",is_routed_app="no"}'
    assert moved(f"total_requests{cc}") == 3
    # The router's own 404 reached no backend: Gorouter does not count it as a response.
    assert moved('responses{status_group="2xx"}') == 3
    assert moved('responses{status_group="4xx"}') == 0
    # ... but as a rejected request, as Gorouter does.
    assert moved("rejected_requests") == 1
    assert moved('latency_count{component="CloudController"}') == 3
    assert moved('latency_bucket{component="CloudController",le="+Inf"}') == 3
    buckets = [
        key.split('le="')[1].rstrip('"}')
        for key in after
        if key.startswith('latency_bucket{component="CloudController"')
    ]
    assert buckets == LATENCY_BOUNDS
    assert after["total_routes"] == 2
    assert 0 <= after["ms_since_last_registry_update"] < 60_000
    # One message naming two routes: two routes gained the endpoint, each observed its latency.
    assert after['registry_message{action="added",component="CloudController"}'] == 2
    assert after["route_registration_latency_count"] == 2


def test_gorouter_series_for_failures_rejections_and_registry(router, nats_client, backend_factory):
    backend = backend_factory()
    register(nats_client, backend.port, ["dea.example.com"], tags={"component": "dea-7"})
    dead_port = free_port()
    register(nats_client, dead_port, ["dead.example.com"])
    wait_routed(router, "dea.example.com")
    wait_routed(router, "dead.example.com")
    before, _ = scrape(router)

    assert router.get("/", host="dea.example.com").status == 200
    assert router.get("/", host="dead.example.com").status == 502
    invalid = {"X-Cf-App-Instance": "not-an-instance"}
    assert router.get("/", host="dea.example.com", headers=invalid).status == 400
    # A heartbeat: the endpoint is already on its route.
    register(nats_client, backend.port, ["dea.example.com"], tags={"component": "dea-7"})
    unregister(nats_client, dead_port, ["dead.example.com"])
    wait_until(
        lambda: scrape(router)[0].get('unregistry_message{component=""}') == 1,
        timeout=10,
        what="the unregister to be counted",
    )
    after, _ = scrape(router)

    def moved(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    # Gorouter folds every dea-N component into one routed-app series.
    assert moved('total_requests{component="dea-*",is_routed_app="yes"}') == 1
    assert moved('total_requests{component="",is_routed_app="no"}') == 1
    assert moved('responses{status_group="5xx"}') == 1
    assert moved("bad_gateways") == 1
    assert moved("rejected_requests") == 1
    assert after['registry_message{action="updated",component="dea-7"}'] == 1
    assert after['registry_message{action="added",component=""}'] == 1
    assert after["total_routes"] == 1


def test_component_names_from_messages_are_escaped(router, nats_client, backend_factory):
    backend = backend_factory()
    register(nats_client, backend.port, ["odd.example.com"], tags={"component": 'a"b\\c'})
    wait_routed(router, "odd.example.com")
    text = router.status_request("GET", "/metrics").text
    assert 'total_requests{component="a\\"b\\\\c",is_routed_app="no"} ' in text


def test_varz_has_the_fields_gorouter_scrapers_read(router, nats_client, backend_factory):
    backend = backend_factory()
    register(
        nats_client,
        backend.port,
        ["uaa.example.com"],
        tags={"component": "uaa"},
        app="app-guid-uaa",
    )
    wait_routed(router, "uaa.example.com")
    first = router.status_json("/varz")
    assert re.fullmatch(
        r"0-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", first["uuid"]
    )
    for _ in range(5):
        assert router.get("/", host="uaa.example.com").status == 200
    varz = router.status_json("/varz")
    assert varz["uuid"] == first["uuid"]
    assert len(varz["rate"]) == 3 and all(rate > 0 for rate in varz["rate"])
    assert varz["requests_per_sec"] == varz["rate"][0]
    uaa = varz["tags"]["component"]["uaa"]
    assert uaa["requests"] >= 5 and uaa["responses_2xx"] == uaa["requests"]
    assert len(uaa["rate"]) == 3
    assert set(uaa["latency"]) == {"50", "75", "90", "95", "99", "value", "samples"}
    assert varz["latency"]["value"] == 5e-07
    top = varz["top10_app_requests"]
    assert top[0]["application_id"] == "app-guid-uaa"
    assert top[0]["rpm"] >= 5 and top[0]["rps"] == top[0]["rpm"] // 60
    assert varz["log_counts"]["info"] > 0


def test_status_documents_never_show_credentials(routerd_factory, nats_client, backend_factory):
    secrets = ["nats-secret-pass", "status-secret-pass", "rs-secret-key", "rs-old-key"]
    router = routerd_factory(
        {
            "nats": {"user": "nats-user", "pass": secrets[0]},
            "status": {"pass": secrets[1]},
            "route_services_secret": secrets[2],
            "route_services_secret_decrypt_only": secrets[3],
        }
    )
    auth = ("status-user", secrets[1])
    backend = backend_factory()
    register(nats_client, backend.port, ["secret.example.com"], tags={"component": "x"})
    wait_until(
        lambda: router.status_request("GET", "/varz", auth=auth).json()["urls"] == 1,
        timeout=10,
        what="the route to be registered",
    )
    for path in ("/varz", "/metrics"):
        body = router.status_request("GET", path, auth=auth).text
        assert "nats-user" not in body
        for secret in secrets:
            assert secret not in body, (path, secret)

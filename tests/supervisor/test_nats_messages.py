"""Gorouter's NATS protocol: register, unregister, greet, router.start, and hostile payloads."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.certs import CertificateAuthority
from tests.support.nats import NatsClient, NatsServer
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register, route_addresses, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# Gorouter's README example, byte for byte.
README_REGISTER = (
    '{"host":"127.0.0.1","port":4567,"uris":["my_first_url.localhost.routing.cf-app.com",'
    '"my_second_url.localhost.routing.cf-app.com"],"tags":{"another_key":"another_value",'
    '"some_key":"some_value"},"app":"some_app_guid","stale_threshold_in_seconds":120,'
    '"private_instance_id":"some_app_instance_id","private_instance_index":"0",'
    '"server_cert_domain_san":"some_subject_alternative_name"}'
)


def test_register_and_unregister_gorouter_example(routerd_factory, nats_client):
    router = routerd_factory()
    nats_client.publish("router.register", README_REGISTER.encode())
    nats_client.flush()
    uri = "my_first_url.localhost.routing.cf-app.com"
    wait_until(lambda: route_addresses(router, uri) == ["127.0.0.1:4567"], what="registration")
    routes = router.status_json("/routes")
    entry = routes[uri][0]
    assert entry["tls"] is False
    assert entry["ttl"] == 120
    assert entry["tags"] == {"another_key": "another_value", "some_key": "some_value"}
    assert entry["private_instance_id"] == "some_app_instance_id"
    assert entry["server_cert_domain_san"] == "some_subject_alternative_name"
    assert entry["protocol"] == "http1"
    assert "my_second_url.localhost.routing.cf-app.com" in routes
    registered = router.events_named("endpoint-registered")
    assert {e["data"]["uri"] for e in registered} >= {uri}
    assert registered[0]["source"] == "vcap.gorouter.registry"
    assert registered[0]["data"]["backend"] == "127.0.0.1:4567"
    nats_client.publish("router.unregister", README_REGISTER.encode())
    nats_client.flush()
    wait_until(lambda: uri not in router.status_json("/routes"), what="unregistration")
    assert router.events_named("endpoint-unregistered")
    assert router.events_named("route-unregistered")


def test_registration_log_levels_are_gorouters(routerd_factory, nats_client):
    """A new route and endpoint are logged at info; the same endpoint registered again with
    something changed is logged at debug, as Gorouter v0.317 logs it (log_level 0 is debug)."""
    router = routerd_factory({"logging": {"level": "debug"}})
    uri = "levels.example.com"
    message = {"host": "127.0.0.1", "port": 4567, "uris": [uri], "private_instance_index": "0"}

    def lines(event: str) -> list[dict]:
        return [e for e in router.events_named(event) if e["data"].get("uri") == uri]

    nats_client.publish("router.register", json.dumps(message).encode())
    message["private_instance_index"] = "1"
    nats_client.publish("router.register", json.dumps(message).encode())
    nats_client.flush()
    registered = wait_until(
        lambda: len(found := lines("endpoint-registered")) == 2 and found,
        what="both endpoint-registered lines",
    )
    assert [e["log_level"] for e in registered] == [1, 0]
    assert [e["log_level"] for e in lines("route-registered")] == [1]
    assert [e["log_level"] for e in lines("uri-added")] == [0]


def test_greet_is_answered_with_router_start_shape(routerd_factory, nats_client):
    router = routerd_factory()
    reply = nats_client.request("router.greet", b"")
    message = reply.json()
    assert set(message) == {
        "id",
        "hosts",
        "minimumRegisterIntervalInSeconds",
        "pruneThresholdInSeconds",
    }
    assert message["pruneThresholdInSeconds"] == router.config["droplet_stale_threshold"]
    assert (
        message["minimumRegisterIntervalInSeconds"]
        == router.config["start_response_delay_interval"]
    )
    assert message["hosts"] == ["127.0.0.1"]


def test_router_start_on_connect_and_after_nats_restart(routerd_factory, nats_server, nats_client):
    starts = nats_client.subscribe("router.start")
    router = routerd_factory()
    first = starts.get(timeout=10).json()
    assert first["pruneThresholdInSeconds"] == 120
    nats_client.close()
    nats_server.restart()
    with NatsClient(nats_server.port) as again:
        restarted = again.subscribe("router.start")
        message = restarted.get(timeout=20).json()
        assert message["id"] == first["id"]
        assert router.status_json("/varz")["nats"]["connected"] is True


def test_index_leads_the_router_id_and_the_varz_uuid(routerd_factory, nats_client):
    starts = nats_client.subscribe("router.start")
    router = routerd_factory({"index": 3})
    assert starts.get(timeout=10).json()["id"].startswith("3-")
    assert nats_client.request("router.greet", b"").json()["id"].startswith("3-")
    varz = router.status_json("/varz")
    assert varz["index"] == 3
    assert varz["uuid"].startswith("3-")


BAD_PAYLOADS = [
    b"",
    b"not json",
    b"{",
    b"[]",
    b"null",
    b'"a string"',
    b'{"host":"127.0.0.1","port":"8080","uris":["bad.example.com"]}',
    b'{"host":"127.0.0.1","port":-1,"uris":["bad.example.com"]}',
    b'{"host":"127.0.0.1","port":70000,"uris":["bad.example.com"]}',
    b'{"host":"127.0.0.1","uris":["bad.example.com"]}',
    b'{"host":"127.0.0.1","port":8080,"uris":[]}',
    b'{"host":"127.0.0.1","port":8080}',
    b'{"host":"127.0.0.1","port":8080,"uris":"bad.example.com"}',
    b'{"host":"127.0.0.1","port":8080,"uris":[42]}',
    b'{"host":"127.0.0.1","port":8080,"uris":["bad.example.com"],'
    b'"route_service_url":"http://insecure.example.com"}',
    b'{"host":"127.0.0.1","port":8080,"uris":["bad.example.com"],"tags":["x"]}',
    b'{"host":"127.0.0.1","port":8080,"uris":["bad.example.com"],"options":{"loadbalancing":5}}',
    b'{"port":8080,"uris":["bad.example.com"]}',
    b'{"host":"127.0.0.1","port":8080,"uris":["http://bad.example.com"]}',
    b'{"host":"127.0.0.1","port":8080,"uris":["bad example.com"]}',
    json.dumps(
        {"host": "127.0.0.1", "port": 8080, "uris": [f"u{i}.example.com" for i in range(5000)]}
    ).encode(),
    b"\xff\xfe\x00garbage",
]


def logged_rejections(router: Routerd) -> int:
    """Rejections in the log: each sampled line, plus the counts of the summary lines."""
    summarised = router.events_named("validation-errors-suppressed")
    return len(router.events_named("validation-error")) + sum(
        event["data"]["count"] for event in summarised
    )


def test_hostile_payloads_are_counted_logged_and_skipped(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory({"logging": {"error_sample_interval": 1}})
    good = []
    for index, payload in enumerate(BAD_PAYLOADS):
        nats_client.publish("router.register", payload)
        host = f"good{index}.example.com"
        register(nats_client, backend.port, [host])
        good.append(host)
    nats_client.publish("router.unregister", b"{garbage")
    nats_client.flush()
    for host in good:
        wait_routed(router, host)
    varz = wait_until(
        lambda: (
            (v := router.status_json("/varz"))["nats"]["rejected"].get("router.register")
            == len(BAD_PAYLOADS)
            and v
        ),
        what="every bad payload to be counted",
    )
    assert varz["nats"]["rejected"]["router.unregister"] == 1
    # Each one is logged whole or counted in a summary line that follows its interval.
    wait_until(
        lambda: logged_rejections(router) == len(BAD_PAYLOADS) + 1,
        what="every rejection logged or summarised",
    )
    errors = router.events_named("validation-error")
    assert all(e["data"]["error"] and e["data"]["reason"] for e in errors)
    by_reason = varz["nats"]["rejected_by_reason"]
    assert sum(by_reason["router.register"].values()) == len(BAD_PAYLOADS)
    assert by_reason["router.unregister"] == {"invalid_json": 1}
    assert "bad.example.com" not in router.status_json("/routes")
    metrics = router.status_request("GET", "/metrics").text
    assert (
        f'routerd_nats_messages_rejected_total{{subject="router.register"}} {len(BAD_PAYLOADS)}'
        in metrics
    )
    assert router.get("/", host="good0.example.com").status == 200


def test_isolation_segments_filter_registrations(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory(
        {"routing_table_sharding_mode": "segments", "isolation_segments": ["blue"]}
    )
    register(nats_client, backend.port, ["blue.example.com"], isolation_segment="blue")
    register(nats_client, backend.port, ["red.example.com"], isolation_segment="red")
    register(nats_client, backend.port, ["shared.example.com"])
    wait_routed(router, "blue.example.com")
    routes = router.status_json("/routes")
    assert "red.example.com" not in routes
    assert "shared.example.com" not in routes


def test_per_route_load_balancing_option(routerd_factory, nats_client, backend_factory):
    backend = backend_factory()
    router = routerd_factory()
    register(
        nats_client, backend.port, ["lc.example.com"], options={"loadbalancing": "least-connection"}
    )
    wait_routed(router, "lc.example.com")
    entry = router.status_json("/routes")["lc.example.com"][0]
    assert entry["load_balancing_algorithm"] == "least-connection"


def test_gorouter_v0317_lb_algo_option_sets_the_routes_algorithm(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory()  # balancing_algorithm: round-robin
    register(
        nats_client, backend.port, ["old.example.com"], options={"lb_algo": "least-connection"}
    )
    register(
        nats_client,
        backend.port,
        ["both.example.com"],
        options={"lb_algo": "least-connection", "loadbalancing": "round-robin"},
    )
    wait_routed(router, "old.example.com")
    wait_routed(router, "both.example.com")
    routes = router.status_json("/routes")
    assert routes["old.example.com"][0]["load_balancing_algorithm"] == "least-connection"
    assert routes["both.example.com"][0]["load_balancing_algorithm"] == "round-robin"
    assert router.get("/", host="old.example.com").status == 200
    assert not router.events_named("registration-options-unknown")


def test_unknown_load_balancing_is_served_with_a_warning(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory({"balancing_algorithm": "least-connection"})
    register(nats_client, backend.port, ["magic.example.com"], options={"loadbalancing": "magic"})
    wait_routed(router, "magic.example.com")

    assert router.get("/", host="magic.example.com").status == 200
    (entry,) = router.status_json("/routes")["magic.example.com"]
    assert "load_balancing_algorithm" not in entry  # the router's own algorithm applies
    (warning,) = router.events_named(
        "invalid-endpoint-load-balancing-algorithm-provided-keeping-pool-lb-algo"
    )
    assert warning["log_level"] == 2  # warn
    assert "'magic'" in warning["data"]["reason"]
    assert router.status_json("/varz")["nats"]["rejected"].get("router.register", 0) == 0


def test_connects_to_nats_with_user_and_password(backend_factory):
    server = NatsServer(user="router", password="s3cret")
    server.start()
    router = new_routerd(server.port, {"nats": {"user": "router", "pass": "s3cret"}})
    try:
        router.start()
        backend = backend_factory()
        with NatsClient(server.port, user="router", password="s3cret") as client:
            register(client, backend.port, ["authed.example.com"])
            wait_routed(router, "authed.example.com")
        assert router.status_json("/varz")["nats"]["connected"] is True
    finally:
        router.stop()
        server.cleanup()


def test_wrong_nats_password_keeps_router_unready_and_logs_why():
    server = NatsServer(user="router", password="s3cret")
    server.start()
    router = new_routerd(server.port, {"nats": {"user": "router", "pass": "wrong"}})
    try:
        router.start(wait_healthy=False)
        wait_until(
            lambda: any(
                "Authorization Violation" in event["data"].get("error", "")
                for event in router.log_events()
                if event["log_level"] >= 3
            ),
            timeout=15,
            what="the authorization failure to be logged",
        )
        assert router.health().status == 503
    finally:
        router.stop()
        server.cleanup()


def test_connects_to_nats_over_tls(tmp_path, backend_factory):
    ca = CertificateAuthority()
    cert, key = ca.issue("127.0.0.1").write(tmp_path, "nats")
    server = NatsServer(tls=(str(cert), str(key)))
    server.start()
    router = new_routerd(server.port, {"nats": {"tls_enabled": True, "ca_certs": ca.cert_pem}})
    try:
        router.start()
        # Healthy means the TLS connection (verified against ca_certs) is up and subscribed.
        assert router.status_json("/varz")["nats"]["connected"] is True
        assert router.events_named("nats-connection-established")
    finally:
        router.stop()
        server.cleanup()


FLOOD = 20_000
FLOOD_PAYLOADS = [
    (b'{"host":"not a host!","port":8080,"uris":["flood.example.com"]}', "host_invalid"),
    (b'{"host":"127.0.0.1:9002","port":8080,"uris":["flood.example.com"]}', "host_invalid"),
    (
        json.dumps(
            {"host": "127.0.0.1", "port": 8080, "uris": ["flood.example.com"], "app": "a" * 4096}
        ).encode(),
        "field_too_long",
    ),
    (b"{garbage", "invalid_json"),
]


def test_a_flood_of_invalid_messages_costs_a_bounded_log(
    routerd_factory, nats_client, backend_factory
):
    backend = backend_factory()
    router = routerd_factory({"logging": {"error_sample_interval": 1}})
    log_before = router.log_path.stat().st_size
    started = time.monotonic()
    for index in range(FLOOD):
        nats_client.publish("router.register", FLOOD_PAYLOADS[index % len(FLOOD_PAYLOADS)][0])
    nats_client.flush()
    varz = wait_until(
        lambda: (
            (v := router.status_json("/varz"))["nats"]["rejected"].get("router.register") == FLOOD
            and v
        ),
        timeout=30,
        what="every invalid message to be counted",
    )
    expected: dict[str, int] = {}
    for _, reason in FLOOD_PAYLOADS:
        expected[reason] = expected.get(reason, 0) + FLOOD // len(FLOOD_PAYLOADS)
    assert varz["nats"]["rejected_by_reason"]["router.register"] == expected
    metrics = router.status_request("GET", "/metrics").text
    assert (
        'routerd_nats_messages_rejected_by_reason_total{subject="router.register",'
        f'reason="host_invalid"}} {expected["host_invalid"]}'
    ) in metrics

    register(nats_client, backend.port, ["after-flood.example.com"])
    wait_routed(router, "after-flood.example.com")
    assert router.get("/", host="after-flood.example.com").status == 200
    wait_until(
        lambda: logged_rejections(router) == FLOOD, what="the held-back rejections summarised"
    )
    elapsed = time.monotonic() - started
    # At most error_samples_per_interval lines and one summary per 1 s window, and a few
    # lines for the route registered afterwards; without sampling it was one line per message.
    windows = int(elapsed) + 2
    grown = router.log_text().encode()[log_before:]
    assert grown.count(b"\n") <= windows * (5 + 1) + 10, grown.count(b"\n")
    assert len(grown) <= windows * (5 + 1) * 2048 + 10_000, len(grown)
    assert router.events_named("validation-errors-suppressed")

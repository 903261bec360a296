"""Gorouter's route-service options: hairpinning and its allowlist, the client certificate
presented to route services, their own max_attempts, and strict signature validation."""

from __future__ import annotations

import datetime

import pytest

from router.route_services import RouteServiceKeys
from tests.support.backends import start_route_service
from tests.support.certs import CertificateAuthority
from tests.support.ports import free_port
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
SECRET = "route-service-secret"


@pytest.fixture
def pki(tmp_path):
    ca = CertificateAuthority()
    server = ca.issue("localhost").write(tmp_path, "rs")
    by_ip = ca.issue("127.0.0.1").write(tmp_path, "rs-ip")
    client_ca = tmp_path / "client-ca.crt"
    client_ca.write_text(ca.cert_pem)
    return {
        "ca": ca,
        "server": server,
        "server_by_ip": by_ip,
        "client_ca": client_ca,
        "route_service_client": ca.issue("router.rs-client", client=True),
        # Signed by a CA the route service does not trust: what an app would be shown.
        "app_client": CertificateAuthority("apps' CA").issue("router.app-client", client=True),
    }


def rs_config(pki, **overrides):
    return {
        "ca_certs": [pki["ca"].cert_pem],
        "route_services_secret": SECRET,
        "backends": {
            "cert_chain": pki["app_client"].cert_pem,
            "private_key": pki["app_client"].key_pem,
        },
        **overrides,
    }


def hairpin_setup(nats_client, backend_factory, router, pki, app_host):
    """An app bound to a route service whose URL's host is also a route in the table: the
    service at that URL (`external`, over TLS) and the one the route leads to (`internal`,
    a plain HTTP endpoint) differ, so the answer tells which way the request went."""
    app = backend_factory(name="app")
    cert, key = pki["server_by_ip"]
    external = start_route_service(backend_factory, router.port, cert, key)
    internal = backend_factory("--route-service-to", str(router.port), name="internal-rs")
    register(nats_client, internal.port, ["127.0.0.1"])
    register(
        nats_client,
        app.port,
        [app_host],
        route_service_url=f"https://127.0.0.1:{external.port}/rs",
    )
    wait_routed(router, app_host)
    return app, external, internal


def served_through(router, host: str) -> str | None:
    response = router.get("/through", host=host)
    assert response.status == 200, response.text
    assert response.json()["backend"] == "app"
    return response.header("X-Route-Service")


def test_a_route_service_that_is_a_route_is_reached_through_the_router_itself(
    routerd_factory, nats_client, backend_factory, pki
):
    router = routerd_factory(rs_config(pki))
    app, external, internal = hairpin_setup(
        nats_client, backend_factory, router, pki, "hairpin.example.com"
    )
    assert served_through(router, "hairpin.example.com") == "internal-rs"
    seen = internal.requests_seen()[-1]
    assert seen["path"] == "/rs"
    assert seen["forwarded_url"] == "https://hairpin.example.com/through"
    assert RouteServiceKeys(SECRET).verify(seen["signature"], seen["metadata"])
    assert external.requests_seen() == []
    assert [seen["path"] for seen in app.requests_seen()][-1] == "/through"


def test_without_hairpinning_the_route_service_is_called_over_the_network(
    routerd_factory, nats_client, backend_factory, pki
):
    router = routerd_factory(rs_config(pki, route_services_hairpinning=False))
    _, external, internal = hairpin_setup(
        nats_client, backend_factory, router, pki, "nohairpin.example.com"
    )
    assert served_through(router, "nohairpin.example.com") == "route-service"
    assert external.requests_seen()[-1]["path"] == "/rs"
    assert internal.requests_seen() == []


def test_the_allowlist_limits_hairpinning_to_the_hosts_it_names(
    routerd_factory, nats_client, backend_factory, pki
):
    router = routerd_factory(
        rs_config(pki, route_services_hairpinning_allowlist=["*.services.example.com"])
    )
    # 127.0.0.1 is a route but not on the list: over the network.
    _, external, internal = hairpin_setup(
        nats_client, backend_factory, router, pki, "listed.example.com"
    )
    assert served_through(router, "listed.example.com") == "route-service"
    assert external.requests_seen()
    assert internal.requests_seen() == []
    # A route one label under the wildcard: through the router.
    register(nats_client, internal.port, ["auth.services.example.com/rs"])
    app = backend_factory(name="app")
    register(
        nats_client,
        app.port,
        ["wildcard.example.com"],
        route_service_url="https://auth.services.example.com/rs",
    )
    wait_routed(router, "wildcard.example.com")
    assert served_through(router, "wildcard.example.com") == "internal-rs"


def test_route_services_see_their_own_client_certificate(
    routerd_factory, nats_client, backend_factory, pki
):
    client = pki["route_service_client"]
    router = routerd_factory(
        rs_config(
            pki,
            route_services={"cert_chain": client.cert_pem, "private_key": client.key_pem},
        )
    )
    cert, key = pki["server"]
    service = start_route_service(
        backend_factory, router.port, cert, key, "--client-ca", str(pki["client_ca"])
    )
    app = backend_factory(name="app")
    register(
        nats_client,
        app.port,
        ["mtls-rs.example.com"],
        route_service_url=f"https://localhost:{service.port}/",
    )
    wait_routed(router, "mtls-rs.example.com")
    response = router.get("/", host="mtls-rs.example.com")
    assert response.status == 200, response.text
    assert response.header("X-Route-Service") == "route-service"
    assert response.json()["backend"] == "app"


def test_route_services_are_not_shown_the_apps_client_certificate(
    routerd_factory, nats_client, backend_factory, pki
):
    router = routerd_factory(rs_config(pki, route_services={"max_attempts": 1}))
    cert, key = pki["server"]
    service = start_route_service(
        backend_factory, router.port, cert, key, "--client-ca", str(pki["client_ca"])
    )
    app = backend_factory(name="app")
    register(
        nats_client,
        app.port,
        ["no-cert-rs.example.com"],
        route_service_url=f"https://localhost:{service.port}/",
    )
    wait_routed(router, "no-cert-rs.example.com")
    response = router.get("/", host="no-cert-rs.example.com")
    assert response.status in (496, 502, 525), response.text
    assert service.requests_seen() == []
    assert app.requests_seen() == []


def test_route_service_requests_have_their_own_max_attempts(
    routerd_factory, nats_client, backend_factory, pki
):
    router = routerd_factory(
        rs_config(pki, backends={"max_attempts": 5}, route_services={"max_attempts": 2})
    )
    app = backend_factory(name="app")
    closed = free_port()
    url = f"https://localhost:{closed}/"
    register(nats_client, app.port, ["down-rs.example.com"], route_service_url=url)
    wait_routed(router, "down-rs.example.com")
    response = router.get("/", host="down-rs.example.com")  # wait_routed's made one too
    assert response.status == 502
    assert response.header("X-Cf-RouterError").startswith("endpoint_failure (dial tcp")

    def attempts() -> list[int]:
        return [
            event["data"]["attempt"]
            for event in router.events_named("route-service-connection-failed")
            if event["data"]["route_service_url"] == url
        ]

    wait_until(lambda: len(attempts()) >= 4, what="both requests' failures in the log")
    assert attempts() == [1, 2, 1, 2]
    assert app.requests_seen() == []


def signed(url: str, secret: str = SECRET, age: float = 0.0) -> dict[str, str]:
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=age)
    signature, metadata = RouteServiceKeys(secret).sign(url, now=moment)
    return {"X-CF-Proxy-Signature": signature, "X-CF-Proxy-Metadata": metadata}


def test_strict_signature_validation_refuses_forged_and_expired_signatures(
    routerd_factory, nats_client, backend_factory, pki
):
    router = routerd_factory(rs_config(pki, route_services={"strict_signature_validation": True}))
    app = backend_factory(name="app")
    register(nats_client, app.port, ["plain.example.com"])
    wait_routed(router, "plain.example.com")

    forged = router.get(
        "/forged", host="plain.example.com", headers=signed("https://x/", "not-the-secret")
    )
    assert forged.status == 400
    assert forged.text == "400 Bad Request: invalid route service signature detected\n"
    assert forged.header("X-Cf-RouterError") == "invalid_route_service_signature"
    garbage = router.get(
        "/garbage", host="plain.example.com", headers={"X-CF-Proxy-Signature": "%%%"}
    )
    assert garbage.status == 400
    expired = router.get(
        "/expired", host="plain.example.com", headers=signed("https://x/", age=3600)
    )
    assert expired.status == 504
    assert expired.text == (
        "504 Gateway Timeout: Failed to validate Route Service Signature: "
        "route service request expired\n"
    )
    assert expired.header("X-Cf-RouterError") == "expired_route_service_signature"
    assert [seen["path"] for seen in app.requests_seen()] == ["/"]  # wait_routed's

    # A genuine signature passes, whatever URL it names (Gorouter does not compare it here);
    # so does a request without one.
    genuine = router.get(
        "/genuine", host="plain.example.com", headers=signed("https://elsewhere.example.com/")
    )
    assert genuine.status == 200
    assert router.get("/unsigned", host="plain.example.com").status == 200
    assert [seen["path"] for seen in app.requests_seen()] == ["/", "/genuine", "/unsigned"]
    failed = router.events_named("signature-validation-failed")
    assert len(failed) == 3


def test_without_strict_validation_a_stray_signature_is_passed_on(
    routerd_factory, nats_client, backend_factory, pki
):
    router = routerd_factory(rs_config(pki))
    app = backend_factory(name="app")
    register(nats_client, app.port, ["lenient.example.com"])
    wait_routed(router, "lenient.example.com")
    headers = signed("https://x/", "not-the-secret")
    response = router.get("/forged", host="lenient.example.com", headers=headers)
    assert response.status == 200
    # Not refused; and, unlike Gorouter, routerd never passes a client's route-service
    # headers on to an app.
    received = {name.lower() for name, _ in response.json()["headers"]}
    assert "x-cf-proxy-signature" not in received
    assert not router.events_named("signature-validation-failed")

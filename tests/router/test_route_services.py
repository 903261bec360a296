"""Route services: signed requests go to the service first and come back to the app."""

from __future__ import annotations

import base64
import datetime

import pytest

from router.route_services import Expired, RouteServiceKeys
from tests.support.backends import start_route_service
from tests.support.certs import CertificateAuthority
from tests.support.routes import register, wait_routed

pytestmark = pytest.mark.integration
SECRET = "route-service-secret"


@pytest.fixture(scope="module")
def service_cert(tmp_path_factory):
    ca = CertificateAuthority()
    cert, key = ca.issue("localhost").write(tmp_path_factory.mktemp("rs"), "rs")
    return ca, cert, key


def start_service(backend_factory, router, service_cert, *extra):
    _, cert, key = service_cert
    return start_route_service(backend_factory, router.port, cert, key, *extra)


def rs_router(routerd_factory, service_cert, **overrides):
    ca, _, _ = service_cert
    config = {"ca_certs": [ca.cert_pem], "route_services_secret": SECRET, **overrides}
    return routerd_factory(config)


def test_request_goes_through_the_route_service_to_the_app(
    routerd_factory, nats_client, backend_factory, service_cert
):
    app = backend_factory(name="app")
    router = rs_router(routerd_factory, service_cert)
    service = start_service(backend_factory, router, service_cert)
    register(
        nats_client,
        app.port,
        ["bound.example.com"],
        route_service_url=f"https://localhost:{service.port}/filter",
    )
    wait_routed(router, "bound.example.com")
    response = router.get("/orders?id=7", host="bound.example.com")
    assert response.status == 200
    assert response.header("X-Route-Service") == "route-service"
    echo = response.json()
    assert echo["backend"] == "app"
    assert echo["path"] == "/orders?id=7"
    received = {name.lower() for name, _ in echo["headers"]}
    assert not received & {"x-cf-proxy-signature", "x-cf-proxy-metadata", "x-cf-forwarded-url"}
    seen = service.requests_seen()[-1]
    assert seen["path"] == "/filter"
    assert seen["forwarded_url"] == "https://bound.example.com/orders?id=7"
    # The signature is Gorouter's: it decrypts with the shared secret and names the URL.
    contents = RouteServiceKeys(SECRET).verify(seen["signature"], seen["metadata"])
    assert not isinstance(contents, Expired)
    assert contents.forwarded_url == "https://bound.example.com/orders?id=7"


def test_route_services_disabled_is_502(routerd_factory, nats_client, backend_factory):
    app = backend_factory(name="app")
    router = routerd_factory()
    register(nats_client, app.port, ["nors.example.com"], route_service_url="https://rs.invalid/")
    wait_routed(router, "nors.example.com")
    response = router.get("/", host="nors.example.com")
    assert response.status == 502
    assert response.text == "502 Bad Gateway: Support for route services is disabled.\n"
    assert response.header("X-Cf-RouterError") == "route_service_unsupported"
    assert app.requests_seen() == []


def test_forged_signature_never_reaches_the_app(
    routerd_factory, nats_client, backend_factory, service_cert
):
    app = backend_factory(name="app")
    router = rs_router(routerd_factory, service_cert)
    register(nats_client, app.port, ["forged.example.com"], route_service_url="https://rs.invalid/")
    wait_routed(router, "forged.example.com")
    wrong = RouteServiceKeys("some other secret")
    signature, metadata = wrong.sign("https://forged.example.com/")
    response = router.get(
        "/",
        host="forged.example.com",
        headers={"X-CF-Proxy-Signature": signature, "X-CF-Proxy-Metadata": metadata},
    )
    assert response.status == 502
    assert response.text.startswith("502 Bad Gateway: Failed to validate Route Service Signature")
    garbage = base64.urlsafe_b64encode(b"not a signature").decode()
    response = router.get("/", host="forged.example.com", headers={"X-CF-Proxy-Signature": garbage})
    assert response.status == 502
    assert app.requests_seen() == []


def test_signature_for_another_route_is_rejected(
    routerd_factory, nats_client, backend_factory, service_cert
):
    app = backend_factory(name="app")
    router = rs_router(routerd_factory, service_cert)
    register(nats_client, app.port, ["one.example.com"], route_service_url="https://rs.invalid/")
    register(nats_client, app.port, ["two.example.com"], route_service_url="https://rs.invalid/")
    wait_routed(router, "two.example.com")
    signature, metadata = RouteServiceKeys(SECRET).sign("https://one.example.com/")
    response = router.get(
        "/",
        host="two.example.com",
        headers={"X-CF-Proxy-Signature": signature, "X-CF-Proxy-Metadata": metadata},
    )
    assert response.status == 502
    assert "does not match" in response.text
    assert app.requests_seen() == []


def test_expired_signature_is_504(routerd_factory, nats_client, backend_factory, service_cert):
    app = backend_factory(name="app")
    router = rs_router(routerd_factory, service_cert, route_services_timeout="1s")
    service = start_service(backend_factory, router, service_cert, "--delay", "1.5")
    register(
        nats_client,
        app.port,
        ["slowrs.example.com"],
        route_service_url=f"https://localhost:{service.port}/",
    )
    wait_routed(router, "slowrs.example.com")
    response = router.get("/", host="slowrs.example.com")
    assert response.status == 504
    assert "route service request expired" in response.text
    assert app.requests_seen() == []


def test_keys_sign_verify_rotate_and_expire():
    old = RouteServiceKeys("old-secret")
    signature, metadata = old.sign("https://app.example.com/x?y=1")
    rotated = RouteServiceKeys("new-secret", decrypt_only="old-secret")
    contents = rotated.verify(signature, metadata)
    assert contents.forwarded_url == "https://app.example.com/x?y=1"
    assert not RouteServiceKeys("new-secret").verify(signature, metadata)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=61)
    assert isinstance(rotated.verify(signature, metadata, now=later), Expired)
    tampered = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    assert not rotated.verify(tampered, metadata)

"""TLS to backends that register a tls_port: verified against the SAN and the configured CAs."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.certs import CertificateAuthority
from tests.support.ports import free_port, is_listening
from tests.support.routerd import Response
from tests.support.routes import register
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
SAN = "backend.internal"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority()
    stranger = CertificateAuthority("someone else's CA")
    good = ca.issue(SAN).write(directory, "good")
    untrusted = stranger.issue(SAN).write(directory, "untrusted")
    client_ca = directory / "client-ca.crt"
    client_ca.write_text(ca.cert_pem)
    return {"ca": ca, "good": good, "untrusted": untrusted, "client_ca": client_ca}


@pytest.fixture
def tls_router(routerd_factory, pki):
    return routerd_factory({"ca_certs": [pki["ca"].cert_pem]})


def route_tls(nats_client, router, port, host, san=SAN) -> Response:
    """Register a TLS endpoint; the first response routed to it. A TLS failure prunes the
    endpoint (as Gorouter does), so the first response is the one that shows the failure."""
    register(nats_client, 0, [host], tls_port=port, server_cert_domain_san=san)

    def routed() -> Response | None:
        response = router.get("/", host=host)
        return None if response.header("X-Cf-RouterError") == "unknown_route" else response

    return wait_until(routed, what=f"route {host} to be served")


def test_good_san_is_served(tls_router, nats_client, backend_factory, pki):
    cert, key = pki["good"]
    backend = backend_factory("--cert", str(cert), "--key", str(key), name="tls-good")
    route_tls(nats_client, tls_router, backend.port, "tls-good.example.com")
    response = tls_router.get("/", host="tls-good.example.com")
    assert response.status == 200
    assert response.header("X-Backend") == "tls-good"


def test_wrong_san_is_503_and_never_plaintext(tls_router, nats_client, backend_factory, pki):
    cert, key = pki["good"]
    backend = backend_factory("--cert", str(cert), "--key", str(key), name="tls-badsan")
    response = route_tls(
        nats_client, tls_router, backend.port, "tls-badsan.example.com", san="other.internal"
    )
    assert response.status == 503
    assert response.text == "503 Service Unavailable\n"
    assert response.header("X-Cf-RouterError").startswith("endpoint_failure (x509:")
    assert backend.requests_seen() == []


def test_untrusted_certificate_is_526(tls_router, nats_client, backend_factory, pki):
    cert, key = pki["untrusted"]
    backend = backend_factory("--cert", str(cert), "--key", str(key), name="tls-untrusted")
    response = route_tls(nats_client, tls_router, backend.port, "tls-untrusted.example.com")
    assert response.status == 526
    assert response.text == "526 Invalid SSL Certificate\n"
    assert backend.requests_seen() == []


def test_plaintext_server_on_tls_port_is_525(tls_router, nats_client, backend_factory):
    backend = backend_factory(name="plain-on-tls")
    response = route_tls(nats_client, tls_router, backend.port, "tls-plain.example.com")
    assert response.status == 525
    assert response.text == "525 SSL Handshake Failed\n"
    assert backend.requests_seen() == []


def test_backend_requiring_a_client_certificate_is_496(tls_router, nats_client, pki):
    # openssl s_server is a TLS peer that reports a missing client certificate with its alert
    # (TLS 1.3 certificate_required), as production servers do.
    cert, key = pki["good"]
    port = free_port()
    server = subprocess.Popen(
        [
            "openssl",
            "s_server",
            "-accept",
            str(port),
            "-cert",
            str(cert),
            "-key",
            str(key),
            "-CAfile",
            str(pki["client_ca"]),
            "-Verify",
            "1",
            "-www",
            "-quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: is_listening(port), what="openssl s_server")
        response = route_tls(nats_client, tls_router, port, "tls-mtls.example.com")
        assert response.status == 496
        assert response.text == "496 SSL Certificate Required\n"
    finally:
        server.kill()
        server.wait()


def test_client_certificate_from_config_is_presented(
    routerd_factory, nats_client, backend_factory, pki
):
    cert, key = pki["good"]
    client = pki["ca"].issue("router.internal", client=True)
    router = routerd_factory(
        {
            "ca_certs": [pki["ca"].cert_pem],
            "backends": {"cert_chain": client.cert_pem, "private_key": client.key_pem},
        }
    )
    backend = backend_factory(
        "--cert", str(cert), "--key", str(key), "--client-ca", str(pki["client_ca"]), name="mtls-ok"
    )
    route_tls(nats_client, router, backend.port, "tls-mtls-ok.example.com")
    assert router.get("/", host="tls-mtls-ok.example.com").status == 200


def test_tls_port_without_san_is_verified_against_the_host(
    tls_router, nats_client, backend_factory, pki, tmp_path
):
    # As Gorouter (Go's transport verifies against the dialled host when ServerName is empty).
    cert, key = pki["ca"].issue("127.0.0.1").write(tmp_path, "ip")
    by_ip = backend_factory("--cert", str(cert), "--key", str(key), name="tls-ip")
    response = route_tls(nats_client, tls_router, by_ip.port, "tls-nosan.example.com", san="")
    assert (response.status, response.header("X-Backend")) == (200, "tls-ip")
    named_cert, named_key = pki["good"]
    by_name = backend_factory("--cert", str(named_cert), "--key", str(named_key), name="tls-name")
    # A certificate without the host's IP is refused, never served in plaintext: a hostname
    # mismatch, Gorouter's 503 (OpenSSL says IP address mismatch; Go, HostnameError).
    mismatch = route_tls(
        nats_client, tls_router, by_name.port, "tls-nosan-name.example.com", san=""
    )
    assert mismatch.status == 503
    assert by_name.requests_seen() == []
    warnings = tls_router.events_named("tls-endpoint-without-server-cert-domain-san")
    assert len(warnings) == 2
    assert "'127.0.0.1'" in warnings[0]["data"]["reason"]

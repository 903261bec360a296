"""TLS termination on ssl_port: SNI, TLS versions, cipher suites, client certificates, and the
X-Forwarded-Client-Cert / X-Forwarded-Proto the backend receives."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.certs import CertificateAuthority
from tests.support.nats import NatsClient
from tests.support.ports import free_port
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register, wait_routed
from tests.support.tls_client import client_context, der_of, get, pem_body
from tests.support.websocket import websocket_replies

pytestmark = pytest.mark.integration

HOST = "echo.example.com"
FIRST = "first.example.com"
SECOND = "app.second.example.com"


class Pki:
    def __init__(self, directory: Path) -> None:
        self.ca = CertificateAuthority("router server CA")
        self.first = self.ca.issue(FIRST)
        self.second = self.ca.issue("*.second.example.com")
        self.client_ca = CertificateAuthority("client CA")
        self.stranger_ca = CertificateAuthority("someone else's CA")
        self.client = self.client_ca.issue("client.example.com", client=True)
        self.client_files = self.client.write(directory, "client")
        self.stranger_files = self.stranger_ca.issue("x.example.com", client=True).write(
            directory, "stranger"
        )
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_text(self.ca.cert_pem)

    def tls_config(self, **overrides: Any) -> dict[str, Any]:
        return {
            "enable_ssl": True,
            "ssl_port": free_port(),
            "tls_pem": [
                {"cert_chain": self.first.cert_pem, "private_key": self.first.key_pem},
                {"cert_chain": self.second.cert_pem, "private_key": self.second.key_pem},
            ],
            "client_ca_certs": self.client_ca.cert_pem,
            "only_trust_client_ca_certs": True,
            **overrides,
        }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("tls-listener"))


@pytest.fixture(scope="module")
def start_router(module_nats, module_backends) -> Iterator[Callable[[dict[str, Any]], Routerd]]:
    backend = module_backends(name="echo")
    started: list[Routerd] = []

    def start(config: dict[str, Any]) -> Routerd:
        router = new_routerd(module_nats.port, config)
        started.append(router)
        router.start()
        with NatsClient(module_nats.port) as nats:
            register(nats, backend.port, [HOST, FIRST])
            wait_routed(router, HOST)
        return router

    yield start
    for router in started:
        router.stop()


@pytest.fixture(scope="module")
def sanitizing(start_router, pki) -> Routerd:
    """client_cert_validation request, sanitize_set, sanitize_forwarded_proto, two ciphers."""
    return start_router(
        pki.tls_config(
            client_cert_validation="request",
            forwarded_client_cert="sanitize_set",
            sanitize_forwarded_proto=True,
            cipher_suites="ECDHE-ECDSA-AES128-GCM-SHA256:TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            route_services_secret="rs-secret",
            ca_certs=[pki.ca.cert_pem],
        )
    )


@pytest.fixture(scope="module")
def requiring(start_router, pki) -> Routerd:
    return start_router(
        pki.tls_config(client_cert_validation="require", forwarded_client_cert="forward")
    )


@pytest.fixture(scope="module")
def tls13_only(start_router, pki) -> Routerd:
    """Gorouter's defaults for the headers (always_forward), no client certificates asked."""
    return start_router(
        pki.tls_config(
            client_cert_validation="none", min_tls_version="TLSv1.3", max_tls_version="TLSv1.3"
        )
    )


def tls_port(router: Routerd) -> int:
    return int(router.config["ssl_port"])


def received(result_response) -> dict[str, list[str]]:
    assert result_response.status == 200, result_response.text
    got: dict[str, list[str]] = {}
    for name, value in result_response.json()["headers"]:
        got.setdefault(name.lower(), []).append(value)
    return got


# -- certificates and versions ----------------------------------------------------------------


def test_sni_picks_the_certificate_naming_the_host(sanitizing, pki):
    trusting = client_context(pki.ca.cert_pem)
    first = get(tls_port(sanitizing), HOST, tls=trusting, server_name=FIRST)
    second = get(tls_port(sanitizing), HOST, tls=trusting, server_name=SECOND)
    assert first.response.status == 200
    assert first.server_cert_der == der_of(pki.first)
    assert second.response.status == 200
    assert second.server_cert_der == der_of(pki.second)


def test_unknown_or_missing_sni_gets_the_first_certificate(sanitizing, pki):
    anything = client_context()
    unknown = get(tls_port(sanitizing), HOST, tls=anything, server_name="other.example.org")
    missing = get(tls_port(sanitizing), HOST, tls=anything, server_name=None)
    assert unknown.server_cert_der == der_of(pki.first)
    assert missing.server_cert_der == der_of(pki.first)


def test_min_tls_version_rejects_older_clients(tls13_only, pki):
    old = client_context(pki.ca.cert_pem, maximum=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError):
        get(tls_port(tls13_only), HOST, tls=old, server_name=FIRST)
    current = get(
        tls_port(tls13_only), HOST, tls=client_context(pki.ca.cert_pem), server_name=FIRST
    )
    assert current.response.status == 200
    assert current.version == "TLSv1.3"


def test_cipher_suites_restrict_what_is_negotiated(sanitizing, pki):
    def offering(cipher: str) -> ssl.SSLContext:
        return client_context(pki.ca.cert_pem, maximum=ssl.TLSVersion.TLSv1_2, ciphers=cipher)

    with pytest.raises(ssl.SSLError):
        get(
            tls_port(sanitizing),
            HOST,
            tls=offering("ECDHE-ECDSA-AES256-GCM-SHA384"),
            server_name=FIRST,
        )
    allowed = get(
        tls_port(sanitizing), HOST, tls=offering("ECDHE-ECDSA-CHACHA20-POLY1305"), server_name=FIRST
    )
    assert allowed.response.status == 200
    assert allowed.cipher == "ECDHE-ECDSA-CHACHA20-POLY1305"


# -- client certificates ----------------------------------------------------------------------


def test_request_mode_serves_clients_without_a_certificate(sanitizing, pki):
    result = get(tls_port(sanitizing), HOST, tls=client_context(pki.ca.cert_pem), server_name=FIRST)
    assert result.response.status == 200


def test_request_mode_refuses_a_certificate_from_an_untrusted_ca(sanitizing, pki):
    stranger = client_context(pki.ca.cert_pem, client=pki.stranger_files)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(tls_port(sanitizing), HOST, tls=stranger, server_name=FIRST)


def test_require_mode_fails_the_handshake_without_a_certificate(requiring, pki):
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(tls_port(requiring), HOST, tls=client_context(pki.ca.cert_pem), server_name=FIRST)


def test_require_mode_serves_a_certificate_from_the_client_ca(requiring, pki):
    with_cert = client_context(pki.ca.cert_pem, client=pki.client_files)
    result = get(tls_port(requiring), HOST, tls=with_cert, server_name=FIRST)
    assert result.response.status == 200


def test_none_mode_never_asks_for_a_certificate(tls13_only, sanitizing, pki):
    """A client certificate nobody trusts is never sent, so it cannot fail the handshake."""
    stranger = client_context(pki.ca.cert_pem, client=pki.stranger_files)
    result = get(tls_port(tls13_only), HOST, tls=stranger, server_name=FIRST)
    assert result.response.status == 200
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(tls_port(sanitizing), HOST, tls=stranger, server_name=FIRST)


# -- what travels over TLS --------------------------------------------------------------------


def test_a_large_response_streams_whole_over_tls(sanitizing, pki):
    size = 3 * 1024 * 1024 + 17
    result = get(
        tls_port(sanitizing),
        HOST,
        f"/bytes/{size}",
        tls=client_context(pki.ca.cert_pem),
        server_name=FIRST,
    )
    assert result.response.status == 200
    assert result.response.body == b"x" * size


def test_websocket_over_tls(sanitizing, pki):
    url = f"https://127.0.0.1:{tls_port(sanitizing)}/ws"
    tls = client_context(pki.ca.cert_pem)
    replies = websocket_replies(url, HOST, ["over", "tls"], tls=tls, server_name=FIRST)
    assert replies == ["echo: over", "echo: tls"]


# -- X-Forwarded-Client-Cert ------------------------------------------------------------------


def test_sanitize_set_replaces_xfcc_with_the_client_certificate(sanitizing, pki):
    with_cert = client_context(pki.ca.cert_pem, client=pki.client_files)
    result = get(
        tls_port(sanitizing),
        HOST,
        headers={"X-Forwarded-Client-Cert": "forged"},
        tls=with_cert,
        server_name=FIRST,
    )
    assert received(result.response)["x-forwarded-client-cert"] == [pem_body(pki.client)]


def test_sanitize_set_strips_xfcc_without_a_client_certificate(sanitizing, pki):
    over_tls = get(
        tls_port(sanitizing),
        HOST,
        headers={"X-Forwarded-Client-Cert": "forged"},
        tls=client_context(pki.ca.cert_pem),
        server_name=FIRST,
    )
    plain = sanitizing.get("/", host=HOST, headers={"X-Forwarded-Client-Cert": "forged"})
    assert "x-forwarded-client-cert" not in received(over_tls.response)
    assert "x-forwarded-client-cert" not in received(plain)


def test_forward_keeps_xfcc_only_from_clients_with_a_certificate(requiring, pki):
    with_cert = client_context(pki.ca.cert_pem, client=pki.client_files)
    result = get(
        tls_port(requiring),
        HOST,
        headers={"X-Forwarded-Client-Cert": "from-the-client"},
        tls=with_cert,
        server_name=FIRST,
    )
    plain = requiring.get("/", host=HOST, headers={"X-Forwarded-Client-Cert": "from-the-client"})
    assert received(result.response)["x-forwarded-client-cert"] == ["from-the-client"]
    assert "x-forwarded-client-cert" not in received(plain)


def test_always_forward_passes_xfcc_through_on_every_connection(tls13_only, pki):
    over_tls = get(
        tls_port(tls13_only),
        HOST,
        headers={"X-Forwarded-Client-Cert": "from-the-client"},
        tls=client_context(pki.ca.cert_pem, client=pki.client_files),
        server_name=FIRST,
    )
    plain = tls13_only.get("/", host=HOST, headers={"X-Forwarded-Client-Cert": "from-the-client"})
    assert received(over_tls.response)["x-forwarded-client-cert"] == ["from-the-client"]
    assert received(plain)["x-forwarded-client-cert"] == ["from-the-client"]


# -- X-Forwarded-Proto ------------------------------------------------------------------------


def test_forwarded_proto_is_the_scheme_when_sanitized(sanitizing, pki):
    over_tls = get(
        tls_port(sanitizing),
        HOST,
        headers={"X-Forwarded-Proto": "http"},
        tls=client_context(pki.ca.cert_pem),
        server_name=FIRST,
    )
    plain = sanitizing.get("/", host=HOST, headers={"X-Forwarded-Proto": "https"})
    assert received(over_tls.response)["x-forwarded-proto"] == ["https"]
    assert received(plain)["x-forwarded-proto"] == ["http"]


def test_forwarded_proto_is_kept_or_filled_in_when_not_sanitized(tls13_only, pki):
    trusting = client_context(pki.ca.cert_pem)
    filled = get(tls_port(tls13_only), HOST, tls=trusting, server_name=FIRST)
    kept = get(
        tls_port(tls13_only),
        HOST,
        headers={"X-Forwarded-Proto": "http"},
        tls=trusting,
        server_name=FIRST,
    )
    assert received(filled.response)["x-forwarded-proto"] == ["https"]
    assert received(kept.response)["x-forwarded-proto"] == ["http"]


def test_a_request_back_from_a_route_service_keeps_its_forwarded_proto(
    sanitizing, pki, module_nats, module_backends, tmp_path
):
    """The service calls back over plain HTTP with the https it was given; that stands."""
    cert, key = pki.ca.issue("localhost").write(tmp_path, "rs")
    app = module_backends(name="bound-app")
    service = module_backends(
        "--cert", str(cert), "--key", str(key), "--route-service-to", str(sanitizing.port)
    )
    with NatsClient(module_nats.port) as nats:
        register(
            nats,
            app.port,
            ["bound.example.com"],
            route_service_url=f"https://localhost:{service.port}/",
        )
        wait_routed(sanitizing, "bound.example.com")
    result = get(
        tls_port(sanitizing),
        "bound.example.com",
        tls=client_context(pki.ca.cert_pem),
        server_name=FIRST,
    )
    assert result.response.header("X-Route-Service") == "backend"
    assert received(result.response)["x-forwarded-proto"] == ["https"]


# -- a real client ----------------------------------------------------------------------------


def test_curl_with_a_client_certificate(sanitizing, pki):
    port = tls_port(sanitizing)
    cert, key = pki.client_files
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--cacert",
            str(pki.ca_file),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--resolve",
            f"{FIRST}:{port}:127.0.0.1",
            f"https://{FIRST}:{port}/via-curl",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    echo = json.loads(result.stdout)
    headers = {name.lower(): value for name, value in echo["headers"]}
    assert echo["path"] == "/via-curl"
    assert headers["x-forwarded-client-cert"] == pem_body(pki.client)
    assert headers["x-forwarded-proto"] == "https"

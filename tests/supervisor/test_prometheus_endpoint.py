"""Gorouter's `prometheus` block: /metrics alone on `prometheus.port`, over mutual TLS, with the
same series as the status port's /metrics (Gorouter's names beside routerd's)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from runtime.config import ConfigError, load_config_text
from runtime.config_model import PrometheusConfig
from tests.support.certs import CertificateAuthority
from tests.support.ports import free_port
from tests.support.routerd import Routerd, new_routerd
from tests.support.tls_client import client_context, get

SERVER_NAME = "127.0.0.1"


@pytest.mark.parametrize(
    ("block", "enabled"),
    [
        ({}, False),
        ({"port": 9100}, True),  # v0.317's rule: a port turns it on
        ({"port": 9100, "enabled": False}, False),
        ({"port": 9100, "enabled": True}, True),
    ],
    ids=["absent", "v0.317-port", "disabled", "enabled"],
)
def test_enabled_as_either_gorouter_release_reads_it(block, enabled):
    assert PrometheusConfig(**block).is_enabled is enabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prometheus: {enabled: true}\n", "prometheus.port: expected a port when"),
        ("prometheus: {port: 9100}\n", "prometheus.cert_path: expected a file path"),
        (
            "prometheus: {port: 9100, cert_path: a, key_path: b}\n",
            "prometheus.ca_path: expected a file path",
        ),
    ],
)
def test_an_enabled_endpoint_needs_its_port_and_files(text, message):
    with pytest.raises(ConfigError) as raised:
        load_config_text(text)
    assert message in str(raised.value)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path | tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("prometheus-pki")
    ca = CertificateAuthority("scrape CA")
    stranger = CertificateAuthority("another CA")
    (directory / "ca.crt").write_text(ca.cert_pem)
    return {
        "ca": directory / "ca.crt",
        "server": ca.issue(SERVER_NAME).write(directory, "server"),
        "scraper": ca.issue("prometheus", client=True).write(directory, "scraper"),
        "stranger": stranger.issue("prometheus", client=True).write(directory, "stranger"),
    }


def prometheus_block(pki, **extra) -> dict[str, object]:
    cert, key = pki["server"]
    return {
        "enabled": True,
        "port": free_port(),
        "cert_path": str(cert),
        "key_path": str(key),
        "ca_path": str(pki["ca"]),
        **extra,
    }


@pytest.fixture(scope="module")
def router(module_nats, pki):
    router = new_routerd(module_nats.port, {"workers": 1, "prometheus": prometheus_block(pki)})
    router.start()
    yield router
    router.stop()


def scrape(router: Routerd, pki, client: str | None = "scraper", path: str = "/metrics"):
    tls = client_context(Path(pki["ca"]).read_text(), client=pki[client] if client else None)
    port = int(router.config["prometheus"]["port"])
    return get(port, SERVER_NAME, path, tls=tls, server_name=SERVER_NAME).response


@pytest.mark.integration
def test_a_scraper_with_a_client_certificate_gets_the_metrics(router, pki):
    response = scrape(router, pki)
    assert response.status == 200, response.text
    assert response.header("Content-Type").startswith("text/plain; version=0.0.4")
    series = {line.split()[2] for line in response.text.splitlines() if line.startswith("# TYPE")}
    # Gorouter's names and routerd's own, as on the status port.
    assert {"total_routes", "ms_since_last_registry_update", "total_requests"} <= series
    assert any(name.startswith("routerd_") for name in series)
    status_text = router.status_request("GET", "/metrics").text
    assert series == {
        line.split()[2] for line in status_text.splitlines() if line.startswith("# TYPE")
    }


@pytest.mark.integration
@pytest.mark.parametrize("client", [None, "stranger"], ids=["no-certificate", "other-ca"])
def test_a_scraper_without_a_trusted_certificate_is_refused(router, pki, client):
    assert scrape(router, pki).status == 200  # the port serves, with a trusted certificate
    with pytest.raises((ssl.SSLError, ConnectionError)):
        scrape(router, pki, client)


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/varz", "/routes", "/health"])
def test_only_metrics_is_served_there(router, pki, path):
    assert scrape(router, pki, path=path).status == 404


@pytest.mark.integration
@pytest.mark.parametrize("key", ["cert_path", "ca_path"])
def test_a_file_that_cannot_be_read_stops_the_start_naming_its_key(nats_server, pki, key):
    block = prometheus_block(pki, **{key: "/nonexistent/prometheus.pem"})
    router = new_routerd(nats_server.port, {"workers": 1, "prometheus": block})
    router.start(wait_healthy=False)
    try:
        assert router.wait_exit(timeout=30) != 0
        fatal = router.events_named("router-failed-to-start")
        assert fatal, router.log_text()
        assert f"prometheus.{key}: expected a readable file" in str(fatal[0]["data"])
    finally:
        router.stop()

"""TLS listener and PROXY protocol keys: Gorouter's names and defaults, and bad values that name
the key (routerd refuses to start on them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.config import ConfigError, load_config_text
from tests.support.certs import CertificateAuthority
from tests.support.routerd import run_routerd

CA = CertificateAuthority()
GOOD = CA.issue("router.example.com")
OTHER = CA.issue("other.example.com")


def tls_yaml(**overrides: Any) -> str:
    """A valid TLS config as YAML (JSON is YAML), with keys replaced or added."""
    config: dict[str, Any] = {
        "enable_ssl": True,
        "ssl_port": 8443,
        "tls_pem": [{"cert_chain": GOOD.cert_pem, "private_key": GOOD.key_pem}],
        **overrides,
    }
    return json.dumps(config)


def test_gorouter_defaults() -> None:
    config = load_config_text("")
    assert config.enable_ssl is False
    assert config.ssl_port == 443
    assert config.min_tls_version == "TLSv1.2"
    assert config.max_tls_version == "TLSv1.2"
    assert config.client_cert_validation == "request"
    assert config.forwarded_client_cert == "always_forward"
    assert config.enable_proxy is False
    assert config.sanitize_forwarded_proto is False
    assert float(config.tls_handshake_timeout) == 10


def test_a_good_tls_config_loads() -> None:
    config = load_config_text(
        tls_yaml(
            tls_pem=[
                {"cert_chain": GOOD.cert_pem, "private_key": GOOD.key_pem},
                {"cert_chain": OTHER.cert_pem, "private_key": OTHER.key_pem},
            ],
            client_cert_validation="require",
            client_ca_certs=CA.cert_pem,
            cipher_suites="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:ECDHE-RSA-AES256-GCM-SHA384",
            min_tls_version="TLSv1.3",
            max_tls_version="TLSv1.3",
            forwarded_client_cert="sanitize_set",
            enable_proxy=True,
        )
    )
    assert len(config.tls_pem) == 2
    assert config.client_cert_validation == "require"


def test_tls_keys_are_not_checked_while_enable_ssl_is_off() -> None:
    config = load_config_text(json.dumps({"tls_pem": [{"cert_chain": "x", "private_key": "y"}]}))
    assert config.enable_ssl is False


BAD = {
    "enable_ssl without tls_pem": (
        json.dumps({"enable_ssl": True}),
        "tls_pem: expected at least one cert_chain/private_key when enable_ssl",
    ),
    "a tls_pem entry without its key": (
        json.dumps({"enable_ssl": True, "tls_pem": [{"cert_chain": GOOD.cert_pem}]}),
        "tls_pem[0].private_key: required key is missing",
    ),
    "a tls_pem entry that is not PEM": (
        tls_yaml(tls_pem=[{"cert_chain": "not a certificate", "private_key": GOOD.key_pem}]),
        "tls_pem[0]: expected a PEM certificate chain and its private key (",
    ),
    "a key that does not match the certificate": (
        tls_yaml(
            tls_pem=[
                {"cert_chain": GOOD.cert_pem, "private_key": GOOD.key_pem},
                {"cert_chain": GOOD.cert_pem, "private_key": OTHER.key_pem},
            ]
        ),
        "tls_pem[1]: expected a PEM certificate chain and its private key (",
    ),
    "an unknown cipher suite": (
        tls_yaml(cipher_suites="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-SNAKEOIL"),
        "cipher_suites: expected known cipher suite names, got 'ECDHE-RSA-SNAKEOIL'",
    ),
    "an empty cipher list": (
        tls_yaml(cipher_suites=" : "),
        "cipher_suites: expected a colon-separated list of cipher suites",
    ),
    "an unknown min_tls_version": (
        tls_yaml(min_tls_version="TLSv1.4"),
        "min_tls_version: expected one of ",
    ),
    "min_tls_version above max_tls_version": (
        tls_yaml(min_tls_version="TLSv1.3"),
        "min_tls_version: expected a version no newer than max_tls_version TLSv1.2",
    ),
    "an unknown client_cert_validation": (
        tls_yaml(client_cert_validation="sometimes"),
        "client_cert_validation: expected one of ",
    ),
    "client_ca_certs that are not PEM": (
        tls_yaml(client_ca_certs="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"),
        "client_ca_certs: expected PEM CA certificates",
    ),
    "an unknown forwarded_client_cert": (
        json.dumps({"forwarded_client_cert": "sanitize"}),
        "forwarded_client_cert: expected one of ",
    ),
    "ssl_port equal to port": (
        tls_yaml(ssl_port=8081),
        "ssl_port: expected a port other than the router's own port 8081",
    ),
    "a zero proxy_protocol_timeout": (
        json.dumps({"enable_proxy": True, "proxy_protocol_timeout": 0}),
        "proxy_protocol_timeout: expected a duration > 0",
    ),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_bad_tls_config_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, source="router.yml")
    assert str(raised.value).startswith(f"router.yml: {message}")


def test_routerd_refuses_to_start_with_a_bad_tls_config(tmp_path: Path) -> None:
    path = tmp_path / "router.yml"
    path.write_text(tls_yaml(cipher_suites="NOT-A-CIPHER", run_dir=str(tmp_path / "run")))
    result = run_routerd("--config", str(path))
    assert result.returncode != 0
    assert "cipher_suites: expected known cipher suite names, got 'NOT-A-CIPHER'" in result.stderr
    assert "Traceback" not in result.stderr

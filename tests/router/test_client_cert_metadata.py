"""Gorouter's client-certificate metadata rules on a real TLS listener, over HTTP/1.1 and h2:
a client under a rule's CA is served only with an allowed subject; a refused one is cut before
any request, logged and counted; a client no rule applies to is served."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.certs import EVERY_FIELD, CertificateAuthority, Issued, subject_name
from tests.support.h2_client import H2Client
from tests.support.nats import NatsClient
from tests.support.ports import free_port
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register, wait_routed
from tests.support.tls_client import client_context, get
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

HOST = "app.example.com"
ROOT = {"common_name": "Ruled Root CA", "organization": ["Example"], "country": ["DE"]}
ISSUING = {"common_name": "Ruled Issuing CA", "organization": ["Example"]}
ALLOWED = EVERY_FIELD
# The same fields, the two organizational units the other way round.
REORDERED = dict(ALLOWED, organizational_unit=["payments", "billing"])
REFUSED = (ssl.SSLError, ConnectionError, EOFError, OSError)


class Pki:
    def __init__(self, directory: Path) -> None:
        self.server_ca = CertificateAuthority("server CA")
        self.server = self.server_ca.issue(HOST)
        root = CertificateAuthority(subject=subject_name(ROOT))
        issuing = CertificateAuthority(subject=subject_name(ISSUING), parent=root)
        hidden = CertificateAuthority("Hidden Issuing CA", parent=root)
        other = CertificateAuthority("Unruled CA")
        self.client_ca_certs = root.cert_pem + issuing.cert_pem + other.cert_pem

        def client(
            ca: CertificateAuthority, name: str, fields: dict[str, Any]
        ) -> tuple[Path, Path]:
            return ca.issue(name, client=True, subject=subject_name(fields)).write(directory, name)

        self.allowed = client(issuing, "allowed", ALLOWED)
        self.reordered = client(issuing, "reordered", REORDERED)
        self.unruled = client(other, "unruled", {"common_name": "anyone"})
        # Sends its intermediate, which client_ca_certs lacks: verified through `root`, but
        # routerd cannot see the chain.
        leaf = hidden.issue("hidden", client=True, subject=subject_name(ALLOWED))
        self.via_hidden = Issued(leaf.cert_pem + hidden.cert_pem, leaf.key_pem).write(
            directory, "via-hidden"
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("client-cert-metadata"))


@pytest.fixture(scope="module")
def router(module_nats, module_backends, pki: Pki) -> Iterator[Routerd]:
    backend = module_backends(name="echo")
    config = {
        "workers": 1,
        "enable_ssl": True,
        "ssl_port": free_port(),
        "tls_pem": [{"cert_chain": pki.server.cert_pem, "private_key": pki.server.key_pem}],
        "client_cert_validation": "request",
        "client_ca_certs": pki.client_ca_certs,
        "only_trust_client_ca_certs": True,
        "enable_verify_client_certificate_metadata": True,
        "verify_client_certificate_metadata": [
            {"issuer_in_chain": ISSUING, "valid_cert_subjects": [ALLOWED]},
        ],
    }
    started = new_routerd(module_nats.port, config)
    started.start()
    with NatsClient(module_nats.port) as nats:
        register(nats, backend.port, [HOST])
        wait_routed(started, HOST)
    yield started
    started.stop()


def https_get(router: Routerd, client: tuple[Path, Path] | None) -> int:
    context = client_context(client=client)
    result = get(int(router.config["ssl_port"]), HOST, tls=context, server_name=HOST, timeout=5)
    return result.response.status


def h2_get(router: Routerd, client: tuple[Path, Path] | None) -> int:
    with H2Client(int(router.config["ssl_port"]), timeout=5, client=client) as conn:
        return conn.request("GET", "/", HOST).status


def refused_total(router: Routerd) -> int:
    metrics = router.status_request("GET", "/metrics").text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("routerd_client_cert_refused_total ")
    )
    return int(float(line.split()[-1]))


@pytest.mark.parametrize("fetch", [https_get, h2_get], ids=["http1", "h2"])
def test_an_allowed_subject_under_the_rules_ca_is_served(router, pki, fetch):
    assert fetch(router, pki.allowed) == 200


@pytest.mark.parametrize("fetch", [https_get, h2_get], ids=["http1", "h2"])
def test_a_certificate_from_a_ca_no_rule_names_is_served(router, pki, fetch):
    assert fetch(router, pki.unruled) == 200


@pytest.mark.parametrize("fetch", [https_get, h2_get], ids=["http1", "h2"])
def test_a_client_without_a_certificate_is_served_in_request_mode(router, fetch):
    assert fetch(router, None) == 200


@pytest.mark.parametrize("fetch", [https_get, h2_get], ids=["http1", "h2"])
def test_another_subject_under_the_rules_ca_is_refused_logged_and_counted(router, pki, fetch):
    before = refused_total(router)
    logged = len(router.events_named("invalid-subject"))
    with pytest.raises(REFUSED):
        fetch(router, pki.reordered)
    events = wait_until(
        lambda: router.events_named("invalid-subject")[logged:], what="invalid-subject logged"
    )
    data = events[0]["data"]
    assert data["subject"] == (
        "SERIALNUMBER=42,CN=billing-service,OU=payments+OU=billing,O=Example,POSTALCODE=10115,"
        "STREET=Main St 1,L=Berlin,ST=Berlin,C=DE"
    )
    assert data["issuer"] == "CN=Ruled Issuing CA,O=Example"
    assert data["allowed"] == [
        "SERIALNUMBER=42,CN=billing-service,OU=billing+OU=payments,O=Example,"
        "POSTALCODE=10115,STREET=Main St 1,L=Berlin,ST=Berlin,C=DE"
    ]
    wait_until(lambda: refused_total(router) == before + 1, what="the refusal counted")


def test_a_client_sending_an_intermediate_routerd_does_not_hold_is_refused(router, pki):
    """A documented difference: Gorouter sees the chain the client sent and serves this one."""
    logged = len(router.events_named("client-cert-issuer-unknown"))
    with pytest.raises(REFUSED):
        https_get(router, pki.via_hidden)
    events = wait_until(
        lambda: router.events_named("client-cert-issuer-unknown")[logged:],
        what="client-cert-issuer-unknown logged",
    )
    assert events[0]["data"]["issuer"] == "CN=Hidden Issuing CA"

"""Gorouter's client-certificate metadata rules without sockets: how subjects compare, which
certificates a rule applies to, and the config errors that name the key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from runtime import tls_listener
from runtime.client_cert_metadata import (
    INVALID_SUBJECT,
    ISSUER_UNKNOWN,
    ClientCertRules,
    Rule,
    Subject,
    subject_of,
)
from runtime.config import ConfigError, load_config_text
from tests.support.certs import EVERY_FIELD, CertificateAuthority, subject_name

VALID = EVERY_FIELD


def subject(fields: dict[str, Any]) -> Subject:
    listed = {
        key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()
    }
    return Subject(**listed)


def attributes(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


# -- how subjects compare ---------------------------------------------------------------------


def test_a_name_with_every_field_is_the_subject_written_in_config() -> None:
    assert subject_of(subject_name(VALID)) == subject(VALID)


def test_attribute_types_compare_in_any_order() -> None:
    one = attributes((NameOID.ORGANIZATION_NAME, "Example"), (NameOID.COMMON_NAME, "svc"))
    other = attributes((NameOID.COMMON_NAME, "svc"), (NameOID.ORGANIZATION_NAME, "Example"))
    assert (
        subject_of(one)
        == subject_of(other)
        == Subject(organization=("Example",), common_name="svc")
    )


def test_values_of_one_type_compare_in_their_order() -> None:
    swapped = dict(VALID, organizational_unit=["payments", "billing"])
    assert subject_of(subject_name(swapped)) != subject(VALID)


@pytest.mark.parametrize("field", sorted(VALID))
def test_every_field_counts(field: str) -> None:
    other = "FR" if field == "country" else "other"  # a country name is two letters
    changed = dict(VALID, **{field: other if isinstance(VALID[field], str) else [other]})
    assert subject_of(subject_name(changed)) != subject(VALID)


def test_a_missing_field_counts() -> None:
    fewer = {key: value for key, value in VALID.items() if key != "postal_code"}
    assert subject_of(subject_name(fewer)) != subject(VALID)


def test_attributes_gorouter_does_not_compare_are_ignored() -> None:
    name = attributes(
        (NameOID.COMMON_NAME, "svc"),
        (NameOID.EMAIL_ADDRESS, "ops@example.com"),
        (NameOID.DOMAIN_COMPONENT, "example"),
    )
    assert subject_of(name) == Subject(common_name="svc")


def test_of_several_common_names_the_last_counts() -> None:
    name = attributes((NameOID.COMMON_NAME, "first"), (NameOID.COMMON_NAME, "last"))
    assert subject_of(name) == Subject(common_name="last")


def test_a_subject_prints_as_go_prints_it() -> None:
    printed = str(Subject(country=("DE",), organizational_unit=("a", "b"), common_name="svc"))
    assert printed == "CN=svc,OU=a+OU=b,C=DE"


# -- which certificates a rule applies to -----------------------------------------------------

ROOT = {"common_name": "Ruled Root", "organization": ["Example"]}
ISSUING = {"common_name": "Ruled Issuing CA", "organization": ["Example"]}


class Pki:
    def __init__(self) -> None:
        self.root = CertificateAuthority(subject=subject_name(ROOT))
        self.issuing = CertificateAuthority(subject=subject_name(ISSUING), parent=self.root)
        self.hidden = CertificateAuthority("Hidden Issuing CA", parent=self.root)
        self.other = CertificateAuthority("Unruled CA")

    def rules(self, issuer: dict[str, Any] = ISSUING) -> ClientCertRules:
        rule = Rule(issuer=subject(issuer), valid_subjects=(subject(VALID),))
        return ClientCertRules([rule], [self.root.cert, self.issuing.cert, self.other.cert])


def der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def test_a_valid_subject_under_the_rules_ca_is_served(pki: Pki) -> None:
    client = pki.issuing.issue("billing", client=True, subject=subject_name(VALID))
    assert pki.rules().refusal(der(client.cert_pem)) is None


def test_another_subject_under_the_rules_ca_is_refused_naming_what_is_allowed(pki: Pki) -> None:
    wrong = dict(VALID, common_name="intruder")
    client = pki.issuing.issue("intruder", client=True, subject=subject_name(wrong))
    refusal = pki.rules().refusal(der(client.cert_pem))
    assert refusal is not None
    assert refusal.event == INVALID_SUBJECT
    assert refusal.subject == (
        "SERIALNUMBER=42,CN=intruder,OU=billing+OU=payments,O=Example,POSTALCODE=10115,"
        "STREET=Main St 1,L=Berlin,ST=Berlin,C=DE"
    )
    assert refusal.issuer == "CN=Ruled Issuing CA,O=Example"
    assert refusal.allowed == (str(subject(VALID)),)


def test_a_rule_naming_a_root_applies_to_the_clients_it_signed(pki: Pki) -> None:
    client = pki.root.issue("x", client=True, subject=subject_name({"common_name": "x"}))
    assert pki.rules(issuer=ROOT).refusal(der(client.cert_pem)) is not None


def test_a_rule_naming_a_ca_above_a_trusted_issuer_does_not_apply(pki: Pki) -> None:
    """Gorouter's chain ends at the first CA of client_ca_certs: here the issuing CA."""
    client = pki.issuing.issue("x", client=True, subject=subject_name({"common_name": "x"}))
    assert pki.rules(issuer=ROOT).refusal(der(client.cert_pem)) is None


def test_a_certificate_from_a_ca_no_rule_names_is_served(pki: Pki) -> None:
    client = pki.other.issue("anyone", client=True)
    assert pki.rules().refusal(der(client.cert_pem)) is None


def test_an_issuer_routerd_does_not_hold_is_refused_while_rules_are_in_force(pki: Pki) -> None:
    """The client sent its intermediate: routerd cannot see whether a rule's CA is above it."""
    client = pki.hidden.issue("billing", client=True, subject=subject_name(VALID))
    refusal = pki.rules().refusal(der(client.cert_pem))
    assert refusal is not None
    assert refusal.event == ISSUER_UNKNOWN
    assert refusal.issuer == "CN=Hidden Issuing CA"


def test_a_forged_issuer_name_is_not_followed(pki: Pki) -> None:
    """Same issuer name as the rule's CA, signed by another key: not in the chain."""
    impostor = CertificateAuthority(subject=subject_name(ISSUING))
    client = impostor.issue("billing", client=True, subject=subject_name(VALID))
    chain, complete = pki.rules().chain_of(x509.load_pem_x509_certificate(client.cert_pem.encode()))
    assert (len(chain), complete) == (1, False)


# -- config: Gorouter's keys, and the errors naming them ----------------------------------------


def config_text(rules: list[dict[str, Any]], ca_pem: str, enabled: bool = True) -> str:
    return json.dumps(
        {
            "enable_verify_client_certificate_metadata": enabled,
            "verify_client_certificate_metadata": rules,
            "client_ca_certs": ca_pem,
        }
    )


def test_rules_load_as_gorouter_writes_them(pki: Pki) -> None:
    rule = {"issuer_in_chain": ROOT, "valid_cert_subjects": [VALID]}
    config = load_config_text(config_text([rule], pki.root.cert_pem))
    assert config.client_cert_rules == (Rule(subject(ROOT), (subject(VALID),)),)


def test_rules_are_not_in_force_unless_enabled(pki: Pki) -> None:
    rule = {"issuer_in_chain": {"common_name": "nobody"}, "valid_cert_subjects": [VALID]}
    assert load_config_text(config_text([rule], "", enabled=False)).client_cert_rules == ()


BAD = {
    "a rule without issuer_in_chain": (
        [{"valid_cert_subjects": [VALID]}],
        "verify_client_certificate_metadata[0].issuer_in_chain: expected the subject of a CA "
        "in client_ca_certs",
    ),
    "an empty issuer_in_chain": (
        [{"issuer_in_chain": ROOT}, {"issuer_in_chain": {}, "valid_cert_subjects": [VALID]}],
        "verify_client_certificate_metadata[1].issuer_in_chain: expected the subject of a CA "
        "in client_ca_certs",
    ),
    "an empty valid subject": (
        [{"issuer_in_chain": ROOT, "valid_cert_subjects": [VALID, {}]}],
        "verify_client_certificate_metadata[0].valid_cert_subjects[1]: expected a subject field",
    ),
    "an issuer no CA in client_ca_certs has": (
        [{"issuer_in_chain": dict(ROOT, common_name="Ruled Rot"), "valid_cert_subjects": [VALID]}],
        "verify_client_certificate_metadata[0].issuer_in_chain: expected the subject of a "
        "certificate in client_ca_certs, got CN=Ruled Rot,O=Example",
    ),
    "an unknown subject field": (
        [{"issuer_in_chain": {"organisation": ["Example"]}}],
        "verify_client_certificate_metadata[0].issuer_in_chain.organisation: unknown key",
    ),
}


@pytest.mark.parametrize(("rules", "message"), BAD.values(), ids=BAD.keys())
def test_a_bad_rule_is_one_error_naming_its_key(
    pki: Pki, rules: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text(config_text(rules, pki.root.cert_pem), source="gorouter.yml")
    assert str(raised.value) == f"gorouter.yml: {message}"


def test_rules_without_client_ca_certs_name_client_ca_certs() -> None:
    rule = {"issuer_in_chain": ROOT, "valid_cert_subjects": [VALID]}
    with pytest.raises(ConfigError) as raised:
        load_config_text(config_text([rule], ""), source="gorouter.yml")
    assert str(raised.value) == (
        "gorouter.yml: client_ca_certs: expected the PEM CA certificates the rules of "
        "verify_client_certificate_metadata name"
    )


@pytest.mark.parametrize(("validation", "in_force"), [("none", False), ("request", True)])
def test_rules_apply_only_where_a_client_certificate_is_asked_for(
    pki: Pki, validation: str, in_force: bool
) -> None:
    """As in Gorouter: with client_cert_validation none no certificate comes to be checked."""
    server = CertificateAuthority("server CA").issue("app.example.com")
    text = json.dumps(
        {
            "enable_ssl": True,
            "tls_pem": [{"cert_chain": server.cert_pem, "private_key": server.key_pem}],
            "client_cert_validation": validation,
            "client_ca_certs": pki.issuing.cert_pem,
            "only_trust_client_ca_certs": True,
            "enable_verify_client_certificate_metadata": True,
            "verify_client_certificate_metadata": [
                {"issuer_in_chain": ISSUING, "valid_cert_subjects": [VALID]}
            ],
        }
    )
    config = load_config_text(text)
    rules = tls_listener.client_cert_rules(config, tls_listener.server_context(config))
    assert (rules is not None) == in_force
    if rules is not None:
        assert repr(rules) == "ClientCertRules(rules=1, authorities=1)"

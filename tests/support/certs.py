"""Test PKI made with `cryptography`: a CA, server certificates for SANs, an untrusted CA,
intermediate CAs, and certificates with whole subjects (`subject_name`)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    cert_pem: str
    key_pem: str

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        cert = directory / f"{name}.crt"
        key = directory / f"{name}.key"
        cert.write_text(self.cert_pem)
        key.write_text(self.key_pem)
        return cert, key


def _general_name(san: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(san))
    except ValueError:
        return x509.DNSName(san)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# Gorouter's CertSubject keys, in the order Go writes them into a name.
_SUBJECT_OIDS = (
    ("country", NameOID.COUNTRY_NAME),
    ("province", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("street_address", NameOID.STREET_ADDRESS),
    ("postal_code", NameOID.POSTAL_CODE),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("common_name", NameOID.COMMON_NAME),
    ("serial_number", NameOID.SERIAL_NUMBER),
)

# A subject with every field, two organizational units among them (their order counts), written
# as in Gorouter's config.
EVERY_FIELD: Final[dict[str, str | list[str]]] = {
    "country": ["DE"],
    "province": ["Berlin"],
    "locality": ["Berlin"],
    "street_address": ["Main St 1"],
    "postal_code": ["10115"],
    "organization": ["Example"],
    "organizational_unit": ["billing", "payments"],
    "common_name": "billing-service",
    "serial_number": "42",
}


def subject_name(fields: dict[str, str | list[str]]) -> x509.Name:
    """The certificate name of a subject written as in Gorouter's config (the same dict)."""
    attributes = []
    for key, oid in _SUBJECT_OIDS:
        value = fields.get(key, [])
        for item in [value] if isinstance(value, str) else value:
            attributes.append(x509.NameAttribute(oid, item))
    return x509.Name(attributes)


class CertificateAuthority:
    def __init__(
        self,
        name: str = "routerd test CA",
        subject: x509.Name | None = None,
        parent: CertificateAuthority | None = None,
    ) -> None:
        """A root CA, or an intermediate signed by `parent`; `subject` overrides `name`."""
        self.key = ec.generate_private_key(ec.SECP256R1())
        if subject is None:
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if parent is None else parent.cert.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key if parent is None else parent.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, san: str, client: bool = False, subject: x509.Name | None = None) -> Issued:
        """A certificate for `san` (its common name too, unless `subject` is given)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        if subject is None:
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, san)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([_general_name(san)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))

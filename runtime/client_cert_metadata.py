"""Gorouter's client-certificate metadata rules (`verify_client_certificate_metadata`, in force
with `enable_verify_client_certificate_metadata`): which client certificates the TLS listener
accepts, by the subjects in their chain.

Theory of operation, as Gorouter (config.VerifyClientCertMetadata) decides it:
- A rule applies to a client whose certificate chain holds a CA certificate (basic constraints
  CA) with the rule's `issuer_in_chain` subject. Such a client's certificate (the chain's first
  non-CA certificate) must have one of the rule's `valid_cert_subjects`, else it is refused.
  Every rule that applies must pass; a chain no rule applies to is accepted.
- Subjects compare as Go's pkix.Name does: by nine attribute types only (country, province,
  locality, street address, postal code, organization, organizational unit, common name,
  serial number); within a type the values in the certificate's order; across types in no
  order; any other attribute (emailAddress, DC, UID) is ignored; of several common names or
  serial numbers, the last counts.
- At load, each rule's issuer must be the subject of a certificate in client_ca_certs, so that
  a typo cannot switch a rule off.

The chain is the one Go verified: the client's certificate, the intermediates the client sent,
and the first trusted CA (client_ca_certs, and the system store unless
only_trust_client_ca_certs) that signed the last of them. It ends there: a CA above a trusted
CA is not in it, so a rule naming a root does not apply to clients of an intermediate that is
itself in client_ca_certs (measured with Gorouter v0.317).

routerd on Python 3.11 sees only the client's own certificate (`getpeercert`). When its issuer
is a trusted CA (`authorities`, checked by signature) the chain is those two, as in Gorouter.
Otherwise the client sent intermediates routerd cannot see: while rules are in force such a
client is refused (`client-cert-issuer-unknown`) rather than let through unchecked; the remedy
is to put the intermediate in client_ca_certs.

No I/O here: the listener calls `ClientCertRules.refusal(der)` after the handshake and acts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

KEY: Final = "verify_client_certificate_metadata"
INVALID_SUBJECT: Final = "invalid-subject"  # Gorouter's log event
ISSUER_UNKNOWN: Final = "client-cert-issuer-unknown"


class Subject(NamedTuple):
    """A certificate subject as Go's pkix.Name compares it (see the module docstring)."""

    country: tuple[str, ...] = ()
    province: tuple[str, ...] = ()
    locality: tuple[str, ...] = ()
    street_address: tuple[str, ...] = ()
    postal_code: tuple[str, ...] = ()
    organization: tuple[str, ...] = ()
    organizational_unit: tuple[str, ...] = ()
    common_name: str = ""
    serial_number: str = ""

    @property
    def is_empty(self) -> bool:
        return self == EMPTY_SUBJECT

    def __str__(self) -> str:
        """As Go prints a name: most specific first, the values of one type joined by `+`."""
        rdns = [
            "+".join(f"{label}={value}" for value in values)
            for label, values in (
                ("C", self.country),
                ("ST", self.province),
                ("L", self.locality),
                ("STREET", self.street_address),
                ("POSTALCODE", self.postal_code),
                ("O", self.organization),
                ("OU", self.organizational_unit),
                ("CN", (self.common_name,) if self.common_name else ()),
                ("SERIALNUMBER", (self.serial_number,) if self.serial_number else ()),
            )
            if values
        ]
        return ",".join(reversed(rdns))


EMPTY_SUBJECT: Final = Subject()

_LISTED: Final = {
    NameOID.COUNTRY_NAME: "country",
    NameOID.STATE_OR_PROVINCE_NAME: "province",
    NameOID.LOCALITY_NAME: "locality",
    NameOID.STREET_ADDRESS: "street_address",
    NameOID.POSTAL_CODE: "postal_code",
    NameOID.ORGANIZATION_NAME: "organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "organizational_unit",
}


def subject_of(name: x509.Name) -> Subject:
    """The comparable subject of a certificate's name."""
    listed: dict[str, list[str]] = {field: [] for field in _LISTED.values()}
    common_name = serial_number = ""
    for attribute in name:
        value = attribute.value
        if not isinstance(value, str):
            continue
        if attribute.oid == NameOID.COMMON_NAME:
            common_name = value
        elif attribute.oid == NameOID.SERIAL_NUMBER:
            serial_number = value
        elif attribute.oid in _LISTED:
            listed[_LISTED[attribute.oid]].append(value)
    return Subject(
        **{field: tuple(values) for field, values in listed.items()},
        common_name=common_name,
        serial_number=serial_number,
    )


class Rule(NamedTuple):
    issuer: Subject  # EMPTY_SUBJECT when the file has none (refused by `problem`)
    valid_subjects: tuple[Subject, ...]


class Refusal(NamedTuple):
    """Why a client certificate is refused: the log event and its fields."""

    event: str
    subject: str
    issuer: str
    allowed: tuple[str, ...] = ()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def problem(rules: Sequence[Rule], client_ca_certs: str) -> tuple[str, str] | None:
    """(key, what was expected) for the first rule that cannot be used, or None. Gorouter
    refuses to start on a rule whose issuer no certificate in client_ca_certs has; routerd
    also refuses a rule without an issuer, or an empty subject, rather than let a rule that
    can never match pass unnoticed."""
    if not rules:
        return None
    for index, rule in enumerate(rules):
        key = f"{KEY}[{index}]"
        if rule.issuer.is_empty:
            return f"{key}.issuer_in_chain", "expected the subject of a CA in client_ca_certs"
        for position, subject in enumerate(rule.valid_subjects):
            if subject.is_empty:
                return f"{key}.valid_cert_subjects[{position}]", "expected a subject field"
    try:
        ca_certs = x509.load_pem_x509_certificates(client_ca_certs.encode())
    except ValueError:
        return "client_ca_certs", f"expected the PEM CA certificates the rules of {KEY} name"
    subjects = {subject_of(cert.subject) for cert in ca_certs}
    for index, rule in enumerate(rules):
        if rule.issuer not in subjects:
            return (
                f"{KEY}[{index}].issuer_in_chain",
                f"expected the subject of a certificate in client_ca_certs, got {rule.issuer}",
            )
    return None


class ClientCertRules:
    """The rules in force on the TLS listener, with the CA certificates chains are built from."""

    __slots__ = ("_authorities", "_rules")

    def __init__(self, rules: Sequence[Rule], authorities: Iterable[x509.Certificate]) -> None:
        self._rules = tuple(rules)
        self._authorities: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in authorities:
            known = self._authorities.setdefault(cert.subject, [])
            if cert not in known:
                known.append(cert)

    def __repr__(self) -> str:
        count = sum(len(certs) for certs in self._authorities.values())
        return f"ClientCertRules(rules={len(self._rules)}, authorities={count})"

    def refusal(self, der: bytes) -> Refusal | None:
        """None when the client certificate `der` (verified by the handshake) may be served."""
        leaf = x509.load_der_x509_certificate(der)
        chain, complete = self.chain_of(leaf)
        cas = {subject_of(cert.subject) for cert in chain if is_ca(cert)}
        client = next((cert for cert in chain if not is_ca(cert)), None)
        for rule in self._rules:
            if rule.issuer not in cas:
                continue
            if client is None or subject_of(client.subject) not in rule.valid_subjects:
                return Refusal(
                    INVALID_SUBJECT,
                    subject=str(subject_of(leaf.subject)),
                    issuer=str(subject_of(leaf.issuer)),
                    allowed=tuple(sorted(str(subject) for subject in rule.valid_subjects)),
                )
        if not complete and self._rules:
            return Refusal(
                ISSUER_UNKNOWN,
                subject=str(subject_of(leaf.subject)),
                issuer=str(subject_of(leaf.issuer)),
            )
        return None

    def chain_of(self, leaf: x509.Certificate) -> tuple[list[x509.Certificate], bool]:
        """The chain Gorouter would check (see the module docstring), and whether routerd
        knows it whole: False when the client's issuer is no trusted CA."""
        if leaf.issuer == leaf.subject:
            return [leaf], True  # trusted as it is
        candidates = self._authorities.get(leaf.issuer, ())
        issuer = next((ca for ca in candidates if is_issued_by(leaf, ca)), None)
        if issuer is None:
            return [leaf], False
        return [leaf, issuer], True

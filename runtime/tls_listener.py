"""The TLS listener's server context, built from config: certificates chosen by SNI, TLS
versions, cipher suites and client-certificate validation, with Gorouter's key names.

`problem(config)` is what config validation calls (routerd refuses to start on one);
workers call `server_context(config)` to serve the ssl_port socket. `status_context(config)` is
the TLS health listener's (`status.tls`), checked by `status_problem(config)`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from cryptography import x509
from cryptography.x509.oid import NameOID

from runtime.client_cert_metadata import ClientCertRules
from runtime.pem import load_cert_chain_from_pem

if TYPE_CHECKING:
    from runtime.config_model import Config

TLS_VERSIONS: Final = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
CLIENT_CERT_MODES: Final = {
    "none": ssl.CERT_NONE,
    "request": ssl.CERT_OPTIONAL,  # Go's VerifyClientCertIfGiven
    "require": ssl.CERT_REQUIRED,  # Go's RequireAndVerifyClientCert
}
# The suites Gorouter accepts in cipher_suites: (RFC name, OpenSSL name); either name works.
_CIPHER_PAIRS: Final = (
    ("TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA"),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE-ECDSA-RC4-SHA"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-RC4-SHA"),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"),
)
CIPHER_NAMES: Final = {
    **{rfc: openssl for rfc, openssl in _CIPHER_PAIRS},
    **{openssl: openssl for _, openssl in _CIPHER_PAIRS},
}


class TlsConfigError(ValueError):
    """A TLS key that cannot be used: (key path, what was expected)."""

    def __init__(self, key: str, expected: str) -> None:
        super().__init__(key, expected)
        self.key = key
        self.expected = expected


def problem(config: Config) -> tuple[str, str] | None:
    """(key, what was expected) for the first TLS setting that cannot be served, or None."""
    if config.tls_handshake_timeout <= 0:
        return "tls_handshake_timeout", "expected a duration > 0"
    try:
        server_context(config)
    except TlsConfigError as exc:
        return exc.key, exc.expected
    return None


def server_context(config: Config) -> ssl.SSLContext:
    """The context the TLS listener starts with; its SNI callback switches to the context of
    the certificate that names the requested host. Raises TlsConfigError."""
    if not config.tls_pem:
        raise TlsConfigError(
            "tls_pem", "expected at least one cert_chain/private_key when enable_ssl"
        )
    ciphers = openssl_ciphers(config.cipher_suites)
    by_name: dict[str, ssl.SSLContext] = {}
    contexts = []
    for index, pem in enumerate(config.tls_pem):
        key = f"tls_pem[{index}]"
        if not pem.cert_chain.strip() or not pem.private_key.strip():
            raise TlsConfigError(key, "expected both cert_chain and private_key")
        context = _base_context(config, ciphers)
        try:
            load_cert_chain_from_pem(context, pem.cert_chain, pem.private_key)
        except (ssl.SSLError, OSError) as exc:
            raise TlsConfigError(
                key, f"expected a PEM certificate chain and its private key ({exc})"
            ) from None
        for name in certificate_names(pem.cert_chain):
            by_name.setdefault(name, context)
        contexts.append(context)
    default = contexts[0]
    if len(contexts) > 1:
        default.sni_callback = _sni_chooser(by_name)
    return default


def client_cert_rules(config: Config, context: ssl.SSLContext) -> ClientCertRules | None:
    """The metadata rules the listener of `context` applies after each handshake, with the CA
    certificates it trusts for client certificates; None when no rule is in force or no
    client certificate is asked for (client_cert_validation none), as in Gorouter."""
    rules = config.client_cert_rules
    if not rules or context.verify_mode == ssl.CERT_NONE:
        return None
    authorities = [
        x509.load_der_x509_certificate(der) for der in context.get_ca_certs(binary_form=True)
    ]
    return ClientCertRules(rules, authorities)


def openssl_ciphers(cipher_suites: str) -> str:
    names = [name.strip() for name in cipher_suites.split(":") if name.strip()]
    if not names:
        raise TlsConfigError("cipher_suites", "expected a colon-separated list of cipher suites")
    unknown = [name for name in names if name not in CIPHER_NAMES]
    if unknown:
        raise TlsConfigError(
            "cipher_suites", f"expected known cipher suite names, got {unknown[0]!r}"
        )
    return ":".join(CIPHER_NAMES[name] for name in names)


def status_problem(config: Config) -> tuple[str, str] | None:
    """(key, what was expected) when status.tls cannot be served, or None."""
    try:
        status_context(config)
    except TlsConfigError as exc:
        return exc.key, exc.expected
    return None


def status_context(config: Config) -> ssl.SSLContext:
    """The TLS health listener's context (`status.tls`), as Gorouter builds it: its certificate
    with the router's TLS versions and cipher suites, and no client certificates."""
    context = _protocol_context(config, openssl_ciphers(config.cipher_suites))
    tls = config.status.tls
    try:
        load_cert_chain_from_pem(context, tls.certificate, tls.key)
    except (ssl.SSLError, OSError):
        raise TlsConfigError(
            "status.tls.certificate",
            "expected a PEM certificate chain and the private key in status.tls.key",
        ) from None
    return context


def _protocol_context(config: Config, ciphers: str) -> ssl.SSLContext:
    """A server context with the configured TLS versions and cipher suites."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    minimum = TLS_VERSIONS[config.min_tls_version]
    maximum = TLS_VERSIONS[config.max_tls_version]
    if minimum > maximum:
        raise TlsConfigError(
            "min_tls_version",
            f"expected a version no newer than max_tls_version {config.max_tls_version}",
        )
    context.minimum_version = minimum
    context.maximum_version = maximum
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError:
        raise TlsConfigError(
            "cipher_suites", "expected at least one cipher suite this OpenSSL supports"
        ) from None
    # The router's cipher order wins, as Go's server does; no TLS compression (CRIME).
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def _base_context(config: Config, ciphers: str) -> ssl.SSLContext:
    context = _protocol_context(config, ciphers)
    # ALPN: `h2` first when enabled, as Go's server offers it; the listener serves the
    # protocol the handshake chose (router/http2/alpn.py).
    context.set_alpn_protocols(["h2", "http/1.1"] if config.enable_http2 else ["http/1.1"])
    context.verify_mode = CLIENT_CERT_MODES[config.client_cert_validation]
    if context.verify_mode != ssl.CERT_NONE:
        if not config.only_trust_client_ca_certs:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        if config.client_ca_certs.strip():
            try:
                context.load_verify_locations(cadata=config.client_ca_certs)
            except (ssl.SSLError, ValueError):
                raise TlsConfigError("client_ca_certs", "expected PEM CA certificates") from None
    return context


def certificate_names(cert_chain: str) -> list[str]:
    """The DNS names the leaf certificate serves (its SANs, else its common name), lower case."""
    try:
        leaf = x509.load_pem_x509_certificate(cert_chain.encode())
    except ValueError:
        return []
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = sans.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [
            str(attribute.value)
            for attribute in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    return [name.lower() for name in names]


def _sni_chooser(
    by_name: dict[str, ssl.SSLContext],
) -> Callable[[ssl.SSLObject, str | None, ssl.SSLContext], None]:
    """Exact host first, then a wildcard for its first label, as Go picks certificates."""

    def choose(sock: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if not server_name:
            return
        name = server_name.lower().rstrip(".")
        context = by_name.get(name)
        if context is None:
            _label, dot, parent = name.partition(".")
            context = by_name.get(f"*.{parent}") if dot else None
        if context is not None:
            sock.context = context

    return choose

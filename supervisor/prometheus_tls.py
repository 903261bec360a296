"""The TLS context of Gorouter's Prometheus endpoint (`prometheus.*`).

Gorouter serves its /metrics through Cloud Foundry's metric registry, with the internal-service
TLS defaults of code.cloudfoundry.org/tlsconfig: TLS 1.2 or newer, ECDHE with AES-GCM, the
server's certificate and key read from files, and a client certificate required and verified
against the CA file alone (not the system store). This is that context; a file that cannot be
used is a `TlsConfigError` naming its key, and routerd does not start (Gorouter exits too).
"""

from __future__ import annotations

import ssl
from typing import Final

from runtime.config_model import PrometheusConfig
from runtime.tls_listener import TlsConfigError

# tlsconfig's internal-service suites (ECDHE-RSA with AES-GCM), and their ECDSA twins so that
# an ECDSA certificate works over TLS 1.2 too (TLS 1.3 suites are fixed).
CIPHERS: Final = (
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
)


def prometheus_context(prometheus: PrometheusConfig) -> ssl.SSLContext:
    for key in ("cert_path", "key_path", "ca_path"):
        path = getattr(prometheus, key)
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise TlsConfigError(
                f"prometheus.{key}", f"expected a readable file, {path!r}: {exc.strerror}"
            ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(prometheus.cert_path, prometheus.key_path)
    except ssl.SSLError:
        raise TlsConfigError(
            "prometheus.cert_path",
            "expected a PEM certificate chain, and its private key in prometheus.key_path",
        ) from None
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=prometheus.ca_path)
    except ssl.SSLError:
        raise TlsConfigError("prometheus.ca_path", "expected PEM CA certificates") from None
    return context

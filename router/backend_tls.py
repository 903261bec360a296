"""The TLS client contexts: for backends that registered a tls_port, and for route services."""

from __future__ import annotations

import ssl

from runtime.config_model import Config
from runtime.pem import load_cert_chain_from_pem


def backend_tls_context(config: Config) -> ssl.SSLContext:
    """Verify against the system store plus `ca_certs`; the SAN is checked per connection
    (it is passed as server_hostname). Never falls back to plaintext. Presents
    `backends.cert_chain` to backends that ask for a client certificate."""
    return _client_context(config, config.backends.cert_chain, config.backends.private_key)


def route_service_tls_context(config: Config) -> ssl.SSLContext:
    """As for backends (same CAs, same verification), presenting `route_services.cert_chain`."""
    route_services = config.route_services
    return _client_context(config, route_services.cert_chain, route_services.private_key)


def _client_context(config: Config, cert_chain: str, private_key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for pem in config.ca_certs:
        context.load_verify_locations(cadata=pem)
    if config.skip_ssl_validation:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_chain:
        load_cert_chain_from_pem(context, cert_chain, private_key)
    return context


def backend_h2_tls_context(config: Config) -> ssl.SSLContext:
    """As `backend_tls_context`, offering only ALPN `h2`: for backends registered with
    `protocol: http2`."""
    context = backend_tls_context(config)
    context.set_alpn_protocols(["h2"])
    return context

"""What a client connection's requests tell the backend about that connection:
`X-Forwarded-Proto` and `X-Forwarded-Client-Cert`, decided once per connection.

X-Forwarded-Proto (Gorouter's handlers/x_forwarded_proto.go): `force_forwarded_proto_https`
sends https always; `sanitize_forwarded_proto` replaces the client's value with the connection's
scheme; otherwise the client's value is kept and the scheme fills in when it sent none.

X-Forwarded-Client-Cert (handlers/clientcert.go), by `forwarded_client_cert`:
  - always_forward: the client's headers pass through, whatever the connection;
  - forward: the client's headers pass only on a TLS connection that presented a certificate;
  - sanitize_set: the client's headers are dropped; on TLS with a client certificate the router
    sets its own: the certificate's DER, standard base64 (the PEM body without its lines).
Requests coming back from a route service keep the X-Forwarded-Proto they carry, and their
X-Forwarded-Client-Cert unless the mode is `forward` (dropped) or the hop was plain HTTP under
`sanitize_set` (dropped), as Gorouter's SkipSanitize / ForceDeleteXFCCHeader decide.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.config_model import Config


class Forwarding:
    def __init__(
        self, keep_client_xfcc: bool, xfcc: bytes, fixed_proto: bytes, default_proto: bytes
    ) -> None:
        self.keep_client_xfcc = keep_client_xfcc
        self.xfcc = xfcc  # the router's own X-Forwarded-Client-Cert value, or b""
        self.fixed_proto = fixed_proto  # X-Forwarded-Proto whatever the client sent, or b""
        self.default_proto = default_proto  # X-Forwarded-Proto when the client sent none
        self.from_route_service = self

    def __repr__(self) -> str:
        return (
            f"Forwarding(keep_xfcc={self.keep_client_xfcc}, xfcc={bool(self.xfcc)}, "
            f"proto={self.fixed_proto or self.default_proto!r})"
        )


def forwarding_for(config: Config, tls: bool, client_cert_der: bytes | None = None) -> Forwarding:
    """The rules for one connection: plain or TLS, with the client's certificate if it sent one."""
    mode = config.forwarded_client_cert
    has_cert = tls and client_cert_der is not None
    xfcc = b""
    if mode == "always_forward":
        keep = True
    elif mode == "forward":
        keep = has_cert
    else:
        keep = False
        if has_cert and client_cert_der is not None:
            xfcc = base64.b64encode(client_cert_der)
    scheme = b"https" if tls else b"http"
    if config.force_forwarded_proto_https:
        fixed = b"https"
    elif config.sanitize_forwarded_proto:
        fixed = scheme
    else:
        fixed = b""
    rules = Forwarding(keep, xfcc, fixed, scheme)
    if mode != "always_forward" or fixed:
        keep_from_service = mode == "always_forward" or (mode == "sanitize_set" and tls)
        rules.from_route_service = Forwarding(keep_from_service, b"", b"", scheme)
    return rules


def tls_forwarding(config: Config, ssl_object: Any, default: Forwarding) -> Forwarding:
    """A TLS connection's rules, from the client certificate it sent (`default` without one)."""
    cert = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if cert:
        return forwarding_for(config, tls=True, client_cert_der=cert)
    return default

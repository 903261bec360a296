"""Foreign exceptions from sockets and TLS, converted once into `BackendError`s.

The messages read like Gorouter's Go errors, since operators grep for them
(`dial tcp 10.0.0.5:8080: connect: connection refused`, `x509: ...`, `remote error: tls: ...`).
"""

from __future__ import annotations

import errno
import ssl

from router.errors import BackendError, Kind


def describe_lost(exc: Exception | None, what: str) -> str:
    if exc is None:
        return f"unexpected EOF reading {what}"
    if isinstance(exc, ConnectionResetError):
        return f"read: connection reset by peer ({what})"
    return f"{exc} ({what})"


def lost_error(
    exc: Exception | None, head_done: bool, got_bytes: bool, reused: bool
) -> BackendError:
    """A backend connection lost during an exchange: what it broke, by how far it had got."""
    if head_done:
        return BackendError(Kind.BODY_FAILED, describe_lost(exc, "response body"), reused)
    if got_bytes:
        return BackendError(Kind.BAD_RESPONSE, describe_lost(exc, "response head"), reused)
    if isinstance(exc, ssl.SSLError):
        return classify_tls_error(exc)
    if isinstance(exc, ConnectionResetError):
        return BackendError(Kind.RESET, "read: connection reset by peer", reused)
    return BackendError(Kind.CLOSED, "EOF", reused)


def classify_tls_error(exc: ssl.SSLError) -> BackendError:
    """Map OpenSSL's verdicts onto Gorouter's TLS classifiers."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or str(exc)
        # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH: both Go's HostnameError.
        if exc.verify_code in (62, 64):
            return BackendError(
                Kind.TLS_HOSTNAME, f"x509: certificate is not valid for the SAN: {message}"
            )
        return BackendError(Kind.TLS_UNTRUSTED, f"x509: {message}")
    reason = (exc.reason or "").upper()
    if reason in {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNEXPECTED_RECORD",
        "HTTP_REQUEST",
        "UNKNOWN_PROTOCOL",
    }:
        return BackendError(
            Kind.TLS_NOT_TLS, "tls: first record does not look like a TLS handshake"
        )
    if "CERTIFICATE_REQUIRED" in reason or "BAD_CERTIFICATE" in reason:
        return BackendError(Kind.TLS_CLIENT_CERT, "remote error: tls: bad certificate")
    return BackendError(
        Kind.TLS_HANDSHAKE, f"remote error: tls: handshake failure ({exc.reason or exc})"
    )


def classify_dial_error(exc: BaseException, address: str) -> BackendError:
    if isinstance(exc, ssl.SSLError):
        return classify_tls_error(exc)
    if isinstance(exc, TimeoutError):
        return BackendError(Kind.DIAL, f"dial tcp {address}: i/o timeout")
    if isinstance(exc, ConnectionRefusedError):
        return BackendError(Kind.DIAL, f"dial tcp {address}: connect: connection refused")
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        # Reset during a TLS handshake: the far end is not a TLS server (or refused us).
        return BackendError(
            Kind.TLS_HANDSHAKE, f"dial tcp {address}: connection reset during handshake"
        )
    if isinstance(exc, OSError):
        text = errno.errorcode.get(exc.errno or 0, "") if exc.errno else ""
        return BackendError(
            Kind.DIAL, f"dial tcp {address}: connect: {exc.strerror or text or exc}"
        )
    return BackendError(Kind.DIAL, f"dial tcp {address}: {exc}")

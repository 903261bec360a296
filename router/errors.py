"""Errors the proxy meets, classified once, and the one table that maps them to responses.

Backend failures are converted at the boundary (upstream.py) into `BackendError`s with a `kind`.
Gorouter's classifier groups then decide, by kind, whether to retry, whether to mark the endpoint
failed, and whether to prune a TLS endpoint. `RESPONSES` maps each kind to Gorouter's status and
body; anything unmapped is the 502 fallback.
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

from registry.shm.counters import Stat


class Kind(enum.Enum):
    DIAL = "dial"  # connect refused, unreachable, timed out
    TLS_NOT_TLS = "tls_not_tls"  # the backend does not speak TLS on its tls_port
    TLS_HANDSHAKE = "tls_handshake"  # remote aborted the handshake
    TLS_HOSTNAME = "tls_hostname"  # certificate valid, but not for server_cert_domain_san
    TLS_UNTRUSTED = "tls_untrusted"  # unknown CA, expired, self-signed
    TLS_CLIENT_CERT = "tls_client_cert"  # the backend wanted a client certificate
    SEND = "send"  # the connection failed before the request head was written
    IDEMPOTENT_EOF = "idempotent_eof"  # closed before any response byte; safe to replay
    CLOSED = "closed"  # closed before any response byte
    RESET = "reset"  # reset before any response byte
    TIMEOUT = "timeout"  # no response within endpoint_timeout
    BAD_RESPONSE = "bad_response"  # not parseable as HTTP
    BODY_FAILED = "body_failed"  # failed after the response had started
    CLIENT_GONE = "client_gone"  # the client went away first
    NO_ENDPOINT = "no_endpoint"  # every endpoint failed this request or is at max_conns


class BackendError(Exception):
    """A failed attempt. `detail` reads like Gorouter's error text (it goes in X-Cf-RouterError)."""

    def __init__(self, kind: Kind, detail: str, reused: bool = False) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.reused = reused
        # The kind as first seen, when the proxy refined it for the request (e.g. a reset on an
        # idempotent request becomes a replayable EOF); failure marks go by this one.
        self.blamed: Kind | None = None

    def __repr__(self) -> str:
        return f"BackendError({self.kind.value}, {self.detail!r}, reused={self.reused})"


# Gorouter's proxy/fails classifier groups.
_TLS_SETUP: Final = frozenset(
    {
        Kind.TLS_NOT_TLS,
        Kind.TLS_HANDSHAKE,
        Kind.TLS_HOSTNAME,
        Kind.TLS_UNTRUSTED,
        Kind.TLS_CLIENT_CERT,
    }
)
# Nothing reached the backend that it could act on: safe to send elsewhere, any method.
RETRIABLE: Final = frozenset({Kind.DIAL, Kind.SEND, Kind.IDEMPOTENT_EOF} | _TLS_SETUP)
# The endpoint itself is at fault: skip it for a while.
FAILABLE: Final = frozenset({Kind.DIAL, Kind.RESET, Kind.CLOSED} | _TLS_SETUP)
# TLS endpoints failing these leave the route's pool, for every worker (Gorouter's prunable).
PRUNABLE: Final = frozenset({Kind.DIAL} | _TLS_SETUP)


def is_retriable(kind: Kind) -> bool:
    return kind in RETRIABLE


def is_failable(kind: Kind) -> bool:
    return kind in FAILABLE


def is_prunable(kind: Kind) -> bool:
    return kind in PRUNABLE


class ErrorResponse(NamedTuple):
    status: int
    body: str
    stat: int


BAD_GATEWAY_BODY: Final = "502 Bad Gateway: Registered endpoint failed to handle the request."
_BAD_GATEWAY: Final = ErrorResponse(502, BAD_GATEWAY_BODY, Stat.error_other)

# http.Error-style bodies: the message already holds the status, a newline is added on write.
RESPONSES: Final[dict[Kind, ErrorResponse]] = {
    Kind.TLS_NOT_TLS: ErrorResponse(525, "525 SSL Handshake Failed", Stat.error_tls_handshake),
    Kind.TLS_HANDSHAKE: ErrorResponse(525, "525 SSL Handshake Failed", Stat.error_tls_handshake),
    Kind.TLS_HOSTNAME: ErrorResponse(503, "503 Service Unavailable", Stat.error_tls_hostname),
    Kind.TLS_UNTRUSTED: ErrorResponse(526, "526 Invalid SSL Certificate", Stat.error_tls_untrusted),
    Kind.TLS_CLIENT_CERT: ErrorResponse(
        496, "496 SSL Certificate Required", Stat.error_tls_client_cert
    ),
    Kind.CLIENT_GONE: ErrorResponse(499, "499 Request Cancelled", Stat.client_closed),
    Kind.DIAL: _BAD_GATEWAY._replace(stat=Stat.error_dial),
    Kind.SEND: _BAD_GATEWAY._replace(stat=Stat.error_reset),
    Kind.RESET: _BAD_GATEWAY._replace(stat=Stat.error_reset),
    Kind.IDEMPOTENT_EOF: _BAD_GATEWAY._replace(stat=Stat.error_closed),
    Kind.CLOSED: _BAD_GATEWAY._replace(stat=Stat.error_closed),
    Kind.TIMEOUT: _BAD_GATEWAY._replace(stat=Stat.error_timeout),
    Kind.BAD_RESPONSE: _BAD_GATEWAY._replace(stat=Stat.error_bad_response),
    Kind.BODY_FAILED: _BAD_GATEWAY._replace(stat=Stat.error_reset),
}


def response_for(kind: Kind) -> ErrorResponse:
    return RESPONSES.get(kind, _BAD_GATEWAY)


class RouterError(NamedTuple):
    """A request the router answers itself, before any backend is tried."""

    status: int
    message: str  # goes after "<code> <Status Text>: "
    router_error: str  # X-Cf-RouterError
    cache_control: str | None
    stat: int


def empty_host() -> RouterError:
    return RouterError(
        400, "Request had empty Host header", "empty_host", "public,max-age=2", Stat.empty_host
    )


def invalid_app_instance() -> RouterError:
    return RouterError(
        400,
        "Invalid X-CF-App-Instance Header",
        "invalid_cf_app_instance_header",
        "no-cache, no-store",
        Stat.invalid_app_instance,
    )


def unknown_route(host: str) -> RouterError:
    return RouterError(
        404,
        f"Requested route ('{host}') does not exist.",
        "unknown_route",
        "no-cache, no-store",
        Stat.unknown_route,
    )


def unknown_instance(index: str, guid: str, host: str) -> RouterError:
    return RouterError(
        400,
        f"Requested instance ('{index}') with guid ('{guid}') does not exist for route ('{host}')",
        "unknown_route",
        "no-cache, no-store",
        Stat.invalid_app_instance,
    )


def no_endpoints(host: str) -> RouterError:
    return RouterError(
        503,
        f"Requested route ('{host}') has no available endpoints.",
        "no_endpoints",
        "public,max-age=2",
        Stat.no_endpoints,
    )


def connection_limit(host: str) -> RouterError:
    return RouterError(
        503,
        f"Requested route ('{host}') has reached the connection limit.",
        "Connection Limit Reached",
        None,
        Stat.connection_limit,
    )


def route_service_unsupported() -> RouterError:
    return RouterError(
        502,
        "Support for route services is disabled.",
        "route_service_unsupported",
        None,
        Stat.route_service_failures,
    )


def route_service_websocket() -> RouterError:
    return RouterError(
        503,
        "Websocket requests are not supported for routes bound to Route Services.",
        "route_service_unsupported",
        None,
        Stat.route_service_failures,
    )


def route_service_signature(reason: str, expired: bool) -> RouterError:
    # Gorouter sets no X-Cf-RouterError here; an expired signature is a gateway timeout.
    return RouterError(
        504 if expired else 502,
        f"Failed to validate Route Service Signature: {reason}",
        "",
        None,
        Stat.route_service_failures,
    )


def stray_signature(reason: str, expired: bool) -> RouterError:
    """A route-service signature on a route without a route service, refused under
    route_services.strict_signature_validation (Gorouter's texts: only an expired one says why)."""
    if expired:
        return RouterError(
            504,
            f"Failed to validate Route Service Signature: {reason}",
            "expired_route_service_signature",
            None,
            Stat.route_service_failures,
        )
    return RouterError(
        400,
        "invalid route service signature detected",
        "invalid_route_service_signature",
        None,
        Stat.route_service_failures,
    )

"""`router.register` / `router.unregister` messages: Gorouter's wire model and its validation.

`parse_registration(data, ...)` never raises: it returns a `Registration` (validated, with the
effective address, TLS flag and stale threshold worked out) or a `Rejection` carrying a reason.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from registry.rejection import Rejection
from registry.routekey import RouteKey, route_key_from_uri

Uint16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]

# Gorouter reads these fields; anything else in a message is ignored, as Gorouter ignores it.
MAX_URIS: Final = 4096
MAX_URI_LENGTH: Final = 4096
MAX_MESSAGE_BYTES: Final = 1 << 20


class RegistryOptions(msgspec.Struct, frozen=True):
    loadbalancing: str = ""


class RegistryMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    """Gorouter's `RegistryMessage`, field for field (json names as on the wire)."""

    host: str = ""
    port: Uint16 = 0
    tls_port: Uint16 = 0
    protocol: str = ""
    uris: list[str] = []
    tags: dict[str, str] = {}
    app: str = ""
    private_instance_id: str = ""
    private_instance_index: str = ""
    stale_threshold_in_seconds: Annotated[int, msgspec.Meta(ge=0)] = 0
    route_service_url: str = ""
    server_cert_domain_san: str = ""
    isolation_segment: str = ""
    availability_zone: str = ""
    endpoint_updated_at_ns: int = 0
    options: RegistryOptions = RegistryOptions()


class Registration(msgspec.Struct, frozen=True):
    """A validated message: what the registry acts on."""

    message: RegistryMessage
    routes: tuple[RouteKey, ...]
    host: str
    port: int
    tls: bool
    stale_threshold: int
    load_balancing: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


LOAD_BALANCING_ALGORITHMS: Final = frozenset({"round-robin", "least-connection"})
PROTOCOLS: Final = frozenset({"http1", "http2"})

_decoder = msgspec.json.Decoder(RegistryMessage)


def decode_message(data: bytes) -> RegistryMessage | Rejection:
    if len(data) > MAX_MESSAGE_BYTES:
        return Rejection(f"message too large: {len(data)} bytes (limit {MAX_MESSAGE_BYTES})")
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError as exc:
        return Rejection(f"invalid field: {exc}")
    # msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8.
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Rejection(f"invalid JSON: {exc}")


def parse_registration(
    data: bytes, router_stale_threshold: int, for_unregister: bool = False
) -> Registration | Rejection:
    """Decode and validate one message body, as Gorouter's subscriber does."""
    message = decode_message(data)
    if isinstance(message, Rejection):
        return message
    return validate_message(message, router_stale_threshold, for_unregister)


def validate_message(
    message: RegistryMessage, router_stale_threshold: int, for_unregister: bool = False
) -> Registration | Rejection:
    if message.route_service_url and not message.route_service_url.startswith("https"):
        return Rejection("route_service_url must be https")
    if not message.host:
        return Rejection("host is required")
    if not message.uris:
        return Rejection("uris must list at least one route")
    if len(message.uris) > MAX_URIS:
        return Rejection(f"too many uris: {len(message.uris)} (limit {MAX_URIS})")
    # Gorouter prefers the TLS port: the router never falls back to plaintext for it.
    tls = message.tls_port != 0
    port = message.tls_port if tls else message.port
    if port == 0:
        return Rejection("port or tls_port is required")
    if tls and not message.server_cert_domain_san and not for_unregister:
        return Rejection("server_cert_domain_san is required with tls_port")
    lb = message.options.loadbalancing
    if lb and lb not in LOAD_BALANCING_ALGORITHMS:
        return Rejection(
            f"options.loadbalancing must be one of {sorted(LOAD_BALANCING_ALGORITHMS)}"
        )
    routes = []
    for uri in message.uris:
        if not uri or len(uri) > MAX_URI_LENGTH:
            return Rejection("uris must be non-empty and at most 4096 characters")
        key = route_key_from_uri(uri)
        if isinstance(key, Rejection):
            return key
        routes.append(key)
    # A message may only shorten the router's stale threshold, never lengthen it.
    threshold = router_stale_threshold
    if 0 < message.stale_threshold_in_seconds < router_stale_threshold:
        threshold = message.stale_threshold_in_seconds
    return Registration(
        message=message,
        routes=tuple(dict.fromkeys(routes)),
        host=message.host,
        port=port,
        tls=tls,
        stale_threshold=threshold,
        load_balancing=lb,
    )

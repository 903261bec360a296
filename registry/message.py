"""`router.register` / `router.unregister` messages: Gorouter's wire model and its validation.

`parse_registration(data, ...)` never raises: it returns a `Registration` (validated, with the
effective address, TLS flag and stale threshold worked out) or a `Rejection` carrying a reason.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from registry.backend_host import host_port, is_backend_host
from registry.rejection import Rejection
from registry.routekey import RouteKey, route_key_from_uri

Uint16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]

# Gorouter reads these fields; anything else in a message is ignored, as Gorouter ignores it.
MAX_URIS: Final = 4096
# Bounds on what one message can make the router copy into every access log line, backend
# header and /routes entry. Gorouter checks only route_service_url (mbus/subscriber.go), so
# these are ours: identifiers (CF GUIDs are 36 characters, names at most 255 in the Cloud
# Controller) fit in 255; a route is a host name (at most 253) and a context path, which the
# Cloud Controller caps at 128 characters, so 2048 leaves a wide margin.
MAX_URI_LENGTH: Final = 2048
MAX_FIELD_LENGTH: Final = 255
MAX_URL_LENGTH: Final = 2048
MAX_TAGS: Final = 64
MAX_TAG_VALUE_LENGTH: Final = 1024
IDENTIFIER_FIELDS: Final = (
    "app",
    "private_instance_id",
    "private_instance_index",
    "server_cert_domain_san",
    "isolation_segment",
    "availability_zone",
    "protocol",
    "host",
)
# NATS's own default max_payload: no larger message reaches a default server anyway.
MAX_MESSAGE_BYTES: Final = 1 << 20
# How much of an offending value a reason quotes.
QUOTE_LENGTH: Final = 64


# The parsed types are not tracked by the garbage collector (`gc=False`): they hold no cycles,
# and the supervisor keeps one parsed registration per endpoint for its heartbeats.
class RegistryOptions(msgspec.Struct, frozen=True, gc=False):
    """Gorouter's `RegistryMessageOpts`. A key it does not know is ignored, as Gorouter ignores
    it (with a caveat, below); a known key with a value of the wrong JSON type fails the whole
    message, as Go's json.Unmarshal fails it."""

    loadbalancing: str = ""
    hash_header: str = ""
    hash_balance: float = 0.0
    # Gorouter v0.317's name for `loadbalancing`: read when `loadbalancing` is absent, so route
    # emitters of either release are understood; `loadbalancing` wins when both are set.
    lb_algo: str = ""


OPTION_KEYS: Final = frozenset(RegistryOptions.__struct_fields__)


class RegistryMessage(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
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


class Caveat(msgspec.Struct, frozen=True, gc=False):
    """Something in an accepted message that Gorouter tolerates but an operator should hear of:
    `event` is the kebab-case log event, `reason` says what was made of it."""

    event: str
    reason: str


class Registration(msgspec.Struct, frozen=True, gc=False):
    """A validated message: what the registry acts on."""

    message: RegistryMessage
    routes: tuple[RouteKey, ...]
    host: str
    port: int
    tls: bool
    stale_threshold: int
    load_balancing: str
    # Hash-based balancing's request header and balance factor: set only with
    # load_balancing "hash" and a header, as Gorouter's route.NewEndpoint keeps them.
    hash_header: str = ""
    hash_balance: float = 0.0
    caveats: tuple[Caveat, ...] = ()

    @property
    def address(self) -> str:
        return host_port(self.host, self.port)


HASH_BASED: Final = "hash"
LOAD_BALANCING_ALGORITHMS: Final = frozenset({"round-robin", "least-connection", HASH_BASED})
PROTOCOLS: Final = frozenset({"http1", "http2"})
UNKNOWN_LOAD_BALANCING: Final = (
    "invalid-endpoint-load-balancing-algorithm-provided-keeping-pool-lb-algo"
)
TLS_WITHOUT_SAN: Final = "tls-endpoint-without-server-cert-domain-san"
UNKNOWN_OPTIONS: Final = "registration-options-unknown"
HASH_HEADER_MISSING: Final = "hash-routing-properties-missing"
# How many unknown option keys a caveat names.
NAMED_OPTION_KEYS: Final = 8


class _OptionKeys(msgspec.Struct, gc=False):
    """Only the key names of `options`, to find the ones Gorouter ignores."""

    options: dict[str, msgspec.Raw] = {}


_decoder = msgspec.json.Decoder(RegistryMessage)
_option_keys_decoder = msgspec.json.Decoder(_OptionKeys)


def decode_message(data: bytes) -> RegistryMessage | Rejection:
    if len(data) > MAX_MESSAGE_BYTES:
        return Rejection(
            f"message too large: {len(data)} bytes (limit {MAX_MESSAGE_BYTES})", "too_large"
        )
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError as exc:
        return Rejection(f"invalid field: {quote(str(exc), 2 * QUOTE_LENGTH)}", "invalid_field")
    # msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8.
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return Rejection(f"invalid JSON: {quote(str(exc), 2 * QUOTE_LENGTH)}", "invalid_json")


def quote(text: str, limit: int = QUOTE_LENGTH) -> str:
    """`text` shortened to `limit` characters for a reason, saying how long it really was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_registration(
    data: bytes, router_stale_threshold: int, for_unregister: bool = False
) -> Registration | Rejection:
    """Decode and validate one message body, as Gorouter's subscriber does."""
    message = decode_message(data)
    if isinstance(message, Rejection):
        return message
    reg = validate_message(message, router_stale_threshold, for_unregister)
    # Only a message that carries options pays for the second look at their keys.
    if isinstance(reg, Registration) and not for_unregister and b'"options"' in data:
        unknown = unknown_option_keys(data)
        if unknown:
            return msgspec.structs.replace(reg, caveats=(*reg.caveats, unknown_options(unknown)))
    return reg


def unknown_option_keys(data: bytes) -> list[str]:
    """The keys of `options` that Gorouter does not read, in message order."""
    try:
        keys = _option_keys_decoder.decode(data).options
    except (msgspec.DecodeError, UnicodeDecodeError):  # the full decode already accepted it
        return []
    return [key for key in keys if key not in OPTION_KEYS]


def unknown_options(keys: list[str]) -> Caveat:
    named = ", ".join(repr(quote(key)) for key in keys[:NAMED_OPTION_KEYS])
    more = f" and {len(keys) - NAMED_OPTION_KEYS} more" if len(keys) > NAMED_OPTION_KEYS else ""
    return Caveat(
        UNKNOWN_OPTIONS,
        f"options {named}{more} ignored: Gorouter reads only {sorted(OPTION_KEYS)}",
    )


def oversized_field(message: RegistryMessage) -> Rejection | None:
    """The first field longer than its cap, if any (before anything else looks at them)."""
    longest = max(
        len(message.app),
        len(message.private_instance_id),
        len(message.private_instance_index),
        len(message.server_cert_domain_san),
        len(message.isolation_segment),
        len(message.availability_zone),
        len(message.protocol),
        len(message.host),
    )
    if longest > MAX_FIELD_LENGTH:  # rare: only now work out which field it is
        for name in IDENTIFIER_FIELDS:
            length = len(getattr(message, name))
            if length > MAX_FIELD_LENGTH:
                return Rejection(
                    f"{name} is {length} characters (limit {MAX_FIELD_LENGTH})", "field_too_long"
                )
    if len(message.route_service_url) > MAX_URL_LENGTH:
        return Rejection(
            f"route_service_url is {len(message.route_service_url)} characters "
            f"(limit {MAX_URL_LENGTH})",
            "field_too_long",
        )
    tags = message.tags
    if len(tags) > MAX_TAGS:
        return Rejection(f"too many tags: {len(tags)} (limit {MAX_TAGS})", "too_many_tags")
    for key, value in tags.items():
        if len(key) > MAX_FIELD_LENGTH or len(value) > MAX_TAG_VALUE_LENGTH:
            return Rejection(
                f"tag {quote(key)!r} is too long (limits: {MAX_FIELD_LENGTH} characters for a "
                f"key, {MAX_TAG_VALUE_LENGTH} for a value)",
                "field_too_long",
            )
    return None


def validate_message(
    message: RegistryMessage, router_stale_threshold: int, for_unregister: bool = False
) -> Registration | Rejection:
    oversized = oversized_field(message)
    if oversized is not None:
        return oversized
    if message.route_service_url and not message.route_service_url.startswith("https"):
        return Rejection("route_service_url must be https", "route_service_url_not_https")
    if not message.host:
        return Rejection("host is required", "host_missing")
    if not is_backend_host(message.host):
        return Rejection(
            f"host {quote(message.host)!r} is not an IP address or a DNS name", "host_invalid"
        )
    if not message.uris:
        return Rejection("uris must list at least one route", "uris_missing")
    if len(message.uris) > MAX_URIS:
        return Rejection(f"too many uris: {len(message.uris)} (limit {MAX_URIS})", "too_many_uris")
    # Gorouter prefers the TLS port: the router never falls back to plaintext for it.
    tls = message.tls_port != 0
    port = message.tls_port if tls else message.port
    if port == 0:
        return Rejection("port or tls_port is required", "port_missing")
    caveats: list[Caveat] = []
    if tls and not message.server_cert_domain_san and not for_unregister:
        # Gorouter registers it: its backend TLS config then has an empty ServerName, and Go's
        # transport verifies the certificate against the host it dials (`host`, an IP address
        # as a rule, so the certificate needs that IP among its SANs). The worker does the
        # same: it verifies against `host` when there is no SAN (router/upstream_pool.py).
        caveats.append(
            Caveat(
                TLS_WITHOUT_SAN,
                f"tls_port without server_cert_domain_san: the certificate is verified "
                f"against the host {quote(message.host)!r}",
            )
        )
    lb_key, lb = "options.loadbalancing", message.options.loadbalancing
    if not lb and message.options.lb_algo:
        lb_key, lb = "options.lb_algo", message.options.lb_algo
    if lb and lb not in LOAD_BALANCING_ALGORITHMS:
        # Gorouter registers the endpoint and its pool keeps the algorithm it has (the
        # router's balancing_algorithm, or the last valid one a registration gave it):
        # route/pool.go setPoolLoadBalancingAlgorithm logs this event and changes nothing.
        if not for_unregister:
            caveats.append(
                Caveat(
                    UNKNOWN_LOAD_BALANCING,
                    f"{lb_key} {quote(lb)!r} is not one of "
                    f"{sorted(LOAD_BALANCING_ALGORITHMS)}: the route keeps its algorithm",
                )
            )
        lb = ""
    hash_header, hash_balance = "", 0.0
    if lb == HASH_BASED:
        hash_header = message.options.hash_header
        if hash_header:
            hash_balance = message.options.hash_balance
        elif not for_unregister:
            # Gorouter takes the algorithm but, with no header to hash, balances every request
            # of the route with the router's balancing_algorithm (and logs this per request).
            caveats.append(
                Caveat(
                    HASH_HEADER_MISSING,
                    f"{lb_key} 'hash' without options.hash_header: requests are "
                    "balanced with the router's balancing_algorithm",
                )
            )
    routes = []
    for uri in message.uris:
        if not uri or len(uri) > MAX_URI_LENGTH:
            return Rejection(
                f"uris must be non-empty and at most {MAX_URI_LENGTH} characters", "uri_invalid"
            )
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
        hash_header=hash_header,
        hash_balance=hash_balance,
        caveats=tuple(caveats),
    )

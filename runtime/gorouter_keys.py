"""Gorouter's config keys that routerd reads but does not act on, with Gorouter's types.

An operator's BOSH-rendered gorouter.yml carries the keys of Gorouter's `config/config.go`
(routing-release v0.317 and later). routerd loads such a file: the keys it implements are in
runtime/config_model.py's `Config`; the others are declared here, each with the type Gorouter
decodes it as, so a wrong type is still an error naming the key and what was expected, and a
key Gorouter does not know either is still "unknown key". The keys of this model present in a
file are named in one `config-keys-not-implemented` warning at start and by
`routerd --check-config`.

A key in both models belongs to `Config`: `split` hands it there, so implementing a key is adding
it to `Config` (and deleting it here; tests/runtime/test_gorouter_keys.py finds leftovers).

No field here has a value routerd uses; every default is None, meaning "absent from the file".
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, NamedTuple

import msgspec

from runtime.durations import Duration

# Go's unsigned integer types, as yaml.v3 checks them.
Uint = Annotated[int, msgspec.Meta(ge=0)]
Uint16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Uint32 = Annotated[int, msgspec.Meta(ge=0, le=(1 << 32) - 1)]
Strings = tuple[str, ...]
Floats = tuple[float, ...]


class _Keys(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class LoggingKeys(_Keys, frozen=True):
    loggregator_enabled: bool | None = None
    metron_address: str | None = None


class MetersKeys(_Keys, frozen=True):
    route_lookup_time_histogram_buckets: Floats | None = None
    gorouter_time_histogram_buckets: Floats | None = None
    route_registration_latency_histogram_buckets: Floats | None = None
    routing_response_latency_histogram_buckets: Floats | None = None
    http_latency_histogram_buckets: Floats | None = None


class PrometheusKeys(_Keys, frozen=True):
    # routerd's latency histograms count into fixed buckets in shared memory.
    meters: MetersKeys | None = None


class OAuthKeys(_Keys, frozen=True):
    token_endpoint: str | None = None
    port: Uint16 | None = None
    skip_ssl_validation: bool | None = None
    client_name: str | None = None
    client_secret: str | None = None
    ca_certs: str | None = None


class RoutingApiKeys(_Keys, frozen=True):
    uri: str | None = None
    port: int | None = None
    auth_disabled: bool | None = None
    ca_certs: str | None = None
    cert_chain: str | None = None
    private_key: str | None = None


class GorouterKeys(_Keys, frozen=True):
    """The top level of gorouter.yml, less what `Config` implements."""

    logging: LoggingKeys | None = None
    prometheus: PrometheusKeys | None = None
    go_max_procs: int | None = None
    debug_addr: str | None = None
    enable_http1_concurrent_read_write: bool | None = None
    publish_active_apps_interval: Duration | None = None
    http_1_endpoint_timeout: Duration | None = None
    http_2_endpoint_timeout: Duration | None = None
    route_latency_metric_muzzle_duration: Duration | None = None
    oauth: OAuthKeys | None = None
    routing_api: RoutingApiKeys | None = None
    # routerd hairpins route services within the worker (router/route_service_hop.py): no internal
    # listener to put on a port.
    route_services_internal_server_port: Uint16 | None = None
    token_fetcher_max_retries: Uint32 | None = None
    token_fetcher_retry_interval: Duration | None = None
    token_fetcher_expiration_buffer_time: int | None = None
    # Gorouter before max_request_header_bytes; see RENAMED.
    max_header_bytes: int | None = None
    per_request_metrics_reporting: bool | None = None
    enable_envelope_v1_metrics: bool | None = None
    send_http_start_stop_server_event: bool | None = None
    send_http_start_stop_client_event: bool | None = None
    per_app_prometheus_http_metrics_reporting: bool | None = None
    healthcheck_poll_interval: Duration | None = None
    healthcheck_timeout: Duration | None = None


# Old Gorouter names of keys routerd implements under the current name: the value carries over
# unless the file also has the current key, which then wins (a file rendered for both releases).
RENAMED: dict[str, str] = {"max_header_bytes": "max_request_header_bytes"}


class Split(NamedTuple):
    """A decoded YAML document, divided between the two models."""

    implemented: Any  # for `Config` (with what neither model knows, so it is refused there)
    gorouter_only: dict[str, Any]  # for `GorouterKeys`
    names: tuple[str, ...]  # dotted paths of what went to `gorouter_only`, in file order


def split(document: Any, implemented: type) -> Split:
    """Move the keys that only `GorouterKeys` knows out of `document` (a YAML mapping)."""
    if not isinstance(document, dict):
        return Split(document, {}, ())
    kept, moved, names = _split(document, implemented, GorouterKeys, "")
    for old, new in RENAMED.items():
        if old in moved:  # left in `moved` too, where a wrong type is reported under `old`
            kept.setdefault(new, moved[old])
            names = tuple(name for name in names if name != old)
    return Split(kept, moved, names)


def _split(
    document: dict[Any, Any], own: type, theirs: type, prefix: str
) -> tuple[dict[Any, Any], dict[str, Any], tuple[str, ...]]:
    own_fields, their_fields = _fields(own), _fields(theirs)
    kept: dict[Any, Any] = {}
    moved: dict[str, Any] = {}
    names: list[str] = []
    for key, value in document.items():
        if key in own_fields:
            own_struct, their_struct = own_fields[key], their_fields.get(key)
            if own_struct is not None and their_struct is not None and isinstance(value, dict):
                kept[key], inner, inner_names = _split(
                    value, own_struct, their_struct, f"{prefix}{key}."
                )
                if inner:
                    moved[key] = inner
                    names.extend(inner_names)
            else:
                kept[key] = value
        elif key in their_fields:
            moved[key] = value
            names.append(f"{prefix}{key}")
        else:
            kept[key] = value
    return kept, moved, tuple(names)


def _fields(struct: type) -> dict[str, type | None]:
    """Each key of a model, with the model its value is when that is a mapping."""
    return {field.encode_name: struct_in(field.type) for field in msgspec.structs.fields(struct)}


def struct_in(annotation: Any) -> type | None:
    """The model a field's value is when it is a mapping (`StatusKeys | None`: StatusKeys)."""
    candidates = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    return None


def _is_union(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union

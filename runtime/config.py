"""Reading the router's configuration (config_model.py): YAML decoded into the model, Gorouter's
keys sorted from routerd's, the values Gorouter gives a meaning beyond themselves applied, and the
checks across keys that types cannot express; every problem one line naming its key.
"""

from __future__ import annotations

import datetime
import re
import ssl
from typing import Any, Final, NamedTuple

import msgspec

from registry.message import validate_message
from registry.rejection import Rejection
from runtime import client_cert_metadata, error_template, gorouter_keys, tls_listener
from runtime.config_model import (
    MAX_REQUEST_HEADER_BYTES,
    MAX_RESPONSE_HEADER_BYTES,
    TIMESTAMP_FORMATS,
    Config,
    HeaderNameValue,
)
from runtime.durations import Duration, parse_duration
from runtime.pem import load_cert_chain_from_pem


def _dec_hook(tp: type, obj: Any) -> Any:
    if tp is Duration:
        return parse_duration(obj)
    raise NotImplementedError(f"no decoder for {tp!r}")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Duration):
        return float(obj)
    raise NotImplementedError(f"cannot encode {type(obj)!r}")


class ConfigError(Exception):
    """A configuration problem, as one line naming the key path and what was expected."""


class ConfigFile(NamedTuple):
    """A loaded config, with what the operator should hear about the file."""

    config: Config
    # Gorouter keys in the file that routerd accepts and does not act on (runtime/gorouter_keys).
    not_implemented: tuple[str, ...]
    # Values that take effect otherwise than written, as Gorouter applies them; one line each.
    adjusted: tuple[str, ...]


def read_config_text(text: str | bytes, source: str = "config") -> ConfigFile:
    """Decode and validate YAML text; raise ConfigError with a one-line message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        document = msgspec.yaml.decode(text)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid YAML: {_first_line(str(exc))}") from None
    if document is None:
        document = {}  # an empty file, comments only, or `---`: every key at its default
    parts = gorouter_keys.split(document, Config)
    _convert(parts.gorouter_only, gorouter_keys.GorouterKeys, source)
    config = _convert(parts.implemented, Config, source)
    config, adjusted = with_gorouter_meanings(config, present=frozenset(parts.implemented))
    validate(config, source)
    return ConfigFile(config, parts.names, adjusted)


def load_config_text(text: str | bytes, source: str = "config") -> Config:
    return read_config_text(text, source).config


def read_config(path: str) -> ConfigFile:
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    return read_config_text(text, source=path)


def load_config(path: str) -> Config:
    return read_config(path).config


def _convert(document: Any, model: type[msgspec.Struct], source: str) -> Any:
    try:
        return msgspec.convert(
            document,
            model,
            dec_hook=_dec_hook,
            builtin_types=(datetime.datetime, datetime.date),  # YAML's timestamps, as decoded
            str_keys=True,
        )
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_describe_validation_error(str(exc), model)}") from None


def with_gorouter_meanings(
    config: Config, present: frozenset[str] = frozenset()
) -> tuple[Config, tuple[str, ...]]:
    """Values Gorouter's config.Process gives a meaning beyond the value itself, applied;
    `present`: the top-level keys the file sets."""
    changes: dict[str, Any] = {}
    adjusted: list[str] = []
    per_endpoint = config.backends.max_idle_conns_per_endpoint
    if per_endpoint is not None:
        if "max_idle_conns_per_host" in present:
            adjusted.append(
                "backends.max_idle_conns_per_endpoint: ignored, max_idle_conns_per_host "
                f"({config.max_idle_conns_per_host}) applies"
            )
        else:
            changes["max_idle_conns_per_host"] = per_endpoint
    header_bytes = config.max_request_header_bytes
    if header_bytes == 0:
        changes["max_request_header_bytes"] = MAX_REQUEST_HEADER_BYTES
    elif header_bytes > MAX_REQUEST_HEADER_BYTES:
        changes["max_request_header_bytes"] = MAX_REQUEST_HEADER_BYTES
        adjusted.append(
            f"max_request_header_bytes: {header_bytes} is over Gorouter's cap; "
            f"{MAX_REQUEST_HEADER_BYTES} applies"
        )
    if config.drain_timeout <= 0:
        changes["drain_timeout"] = config.endpoint_timeout
    if config.max_response_header_bytes <= 0:
        changes["max_response_header_bytes"] = MAX_RESPONSE_HEADER_BYTES
    if config.start_response_delay_interval > config.droplet_stale_threshold:
        # A route must not go stale while the router is still waiting for registrations.
        changes["droplet_stale_threshold"] = config.start_response_delay_interval
        adjusted.append(
            "droplet_stale_threshold: raised to start_response_delay_interval "
            f"({float(config.start_response_delay_interval):g}s), as in Gorouter"
        )
    timestamp = config.logging.format.timestamp
    if timestamp not in TIMESTAMP_FORMATS:
        # Gorouter takes any value but "rfc3339" as seconds since the epoch.
        adjusted.append(
            f"logging.format.timestamp: {timestamp!r} is none of "
            f"{', '.join(TIMESTAMP_FORMATS)}; unix-epoch applies, as in Gorouter"
        )
    if changes:
        config = msgspec.structs.replace(config, **changes)
    return config, tuple(adjusted)


def encode_config(config: Config) -> bytes:
    """JSON for handing the validated config to worker processes."""
    return msgspec.json.encode(config, enc_hook=_enc_hook)


def decode_config(data: bytes) -> Config:
    return msgspec.json.decode(data, type=Config, dec_hook=_dec_hook)


def validate(config: Config, source: str = "config") -> None:
    """Checks across keys that the types alone cannot express."""

    def fail(key: str, expected: str) -> None:
        raise ConfigError(f"{source}: {key}: {expected}")

    if not config.nats.hosts:
        fail("nats.hosts", "expected at least one NATS host")
    for index, host in enumerate(config.nats.hosts):
        if not host.hostname.strip():
            fail(f"nats.hosts[{index}].hostname", "expected a host name, got an empty string")
    if config.nats_client_ping_interval <= 0:
        fail("nats_client_ping_interval", "expected a duration > 0")
    if config.prune_stale_droplets_interval <= 0:
        fail("prune_stale_droplets_interval", "expected a duration > 0")
    if config.droplet_stale_threshold <= 0:
        fail("droplet_stale_threshold", "expected a duration > 0")
    if config.endpoint_dial_timeout <= 0:
        fail("endpoint_dial_timeout", "expected a duration > 0")
    if config.endpoint_timeout <= 0:
        fail("endpoint_timeout", "expected a duration > 0")
    if config.request_body_timeout <= 0:
        fail("request_body_timeout", "expected a duration > 0")
    if config.worker_liveness_timeout <= 0:
        fail("worker_liveness_timeout", "expected a duration > 0")
    if config.route_table.publish_interval <= 0:
        fail("route_table.publish_interval", "expected a duration > 0")
    if config.logging.error_sample_interval <= 0:
        fail("logging.error_sample_interval", "expected a duration > 0")
    if config.routing_table_sharding_mode == "segments" and not config.isolation_segments:
        fail(
            "isolation_segments",
            'expected at least one segment when routing_table_sharding_mode is "segments"',
        )
    if config.route_services_secret_decrypt_only and not config.route_services_secret:
        fail(
            "route_services_secret",
            "expected a secret when route_services_secret_decrypt_only is set",
        )
    for index, entry in enumerate(config.route_services_hairpinning_allowlist):
        if not is_allowlist_entry(entry):
            fail(
                f"route_services_hairpinning_allowlist[{index}]",
                f"expected a host name (host.domain.com) or a wildcard (*.domain.com), "
                f"got {entry!r}",
            )
    route_services = config.route_services
    if bool(route_services.cert_chain) != bool(route_services.private_key):
        fail(
            "route_services.private_key",
            "expected cert_chain and private_key to be set together",
        )
    if route_services.cert_chain:
        unusable = _key_pair_problem(route_services.cert_chain, route_services.private_key)
        if unusable is not None:
            fail("route_services.cert_chain", unusable)
    for index, pem in enumerate(config.ca_certs):
        if "-----BEGIN CERTIFICATE-----" not in pem:
            fail(f"ca_certs[{index}]", "expected a PEM certificate")
    if bool(config.backends.cert_chain) != bool(config.backends.private_key):
        fail("backends.private_key", "expected cert_chain and private_key to be set together")
    if config.enable_proxy and config.proxy_protocol_timeout <= 0:
        fail("proxy_protocol_timeout", "expected a duration > 0")
    # Gorouter checks the rules against client_ca_certs whether or not enable_ssl is on.
    rules_problem = client_cert_metadata.problem(config.client_cert_rules, config.client_ca_certs)
    if rules_problem is not None:
        fail(*rules_problem)
    if config.enable_ssl:
        problem = tls_listener.problem(config)
        if problem is not None:
            fail(*problem)
    elif config.disable_http:
        # Gorouter's check: neither listener would serve.
        fail("disable_http", "expected enable_ssl: true when the plain-HTTP listener is disabled")
    for index, header in enumerate(config.http_rewrite.responses.add_headers_if_not_present):
        if not header_problem_free(header):
            fail(
                f"http_rewrite.responses.add_headers_if_not_present[{index}]",
                "expected a header name (token characters) and a value without CR, LF or NUL",
            )
    for index, header in enumerate(config.http_rewrite.responses.remove_headers):
        if not header_problem_free(header):
            fail(
                f"http_rewrite.responses.remove_headers[{index}]",
                "expected a header name (token characters)",
            )
    if config.html_error_template_file:
        try:
            error_template.load(config.html_error_template_file)
        except error_template.TemplateError as exc:
            fail("html_error_template_file", str(exc))
    status_tls = config.status.tls
    if status_tls.is_enabled:
        # Gorouter's checks, in its order.
        if not status_tls.key.strip():
            fail("status.tls.key", "expected a PEM private key when status.tls is set")
        if not status_tls.certificate.strip():
            fail("status.tls.certificate", "expected a PEM certificate when status.tls is set")
        problem = tls_listener.status_problem(config)
        if problem is not None:
            fail(*problem)
    elif not config.status.enable_nontls_health_checks:
        fail(
            "status.enable_nontls_health_checks",
            "expected true unless status.tls serves /health: a load balancer needs one of them",
        )
    prometheus = config.prometheus
    if prometheus.is_enabled:
        if prometheus.port == 0:
            fail("prometheus.port", "expected a port when prometheus.enabled is true")
        # Gorouter's endpoint is mutual TLS only; it does not start without these.
        for key in ("cert_path", "key_path", "ca_path"):
            if not getattr(prometheus, key).strip():
                fail(f"prometheus.{key}", "expected a file path when prometheus is enabled")
    clash = _listener_clash(config)
    if clash is not None:
        fail(*clash)
    for index, route in enumerate(config.static_routes):
        verdict = validate_message(route, config.stale_threshold_seconds)
        if isinstance(verdict, Rejection):
            fail(f"static_routes[{index}]", f"expected a valid registration: {verdict.reason}")
    if not config.run_dir:
        fail("run_dir", "expected a directory path")
    if config.access_log.enable_streaming:
        network, address = config.logging.syslog_network, config.logging.syslog_addr
        if network.startswith("udp") and not address.rpartition(":")[2].isdigit():
            fail("logging.syslog_addr", f"expected host:port for syslog over {network}")
        if network == "unixgram" and not address:
            fail("logging.syslog_addr", "expected the syslog socket's path")


def _key_pair_problem(cert_chain: str, private_key: str) -> str | None:
    """Why a PEM certificate chain and key cannot be presented (Gorouter refuses to start)."""
    try:
        load_cert_chain_from_pem(ssl.create_default_context(), cert_chain, private_key)
    except ssl.SSLError as exc:
        # OpenSSL names no reason when the text is no PEM at all.
        why = exc.reason or "not readable as PEM"
        return f"expected a PEM certificate chain and its private key: {why}"
    return None


# Gorouter's check of a hairpinning allowlist entry (case-insensitive): a DNS name of two
# labels or more, optionally behind one leading "*." wildcard label.
_ALLOWLIST_ENTRY: Final = re.compile(r"(?i)^(\*\.)?[a-z\d-]+(\.[a-z\d-]+)+$")


def is_allowlist_entry(entry: str) -> bool:
    return _ALLOWLIST_ENTRY.fullmatch(entry) is not None


# RFC 9110 5.6.2's token characters: what a header name is made of.
_TOKEN: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def header_problem_free(header: HeaderNameValue) -> bool:
    """A header the router can write as it is: a token name, a value with no line breaks."""
    name = header.name.encode("utf-8", "replace")
    value = header.value
    return (
        bool(name)
        and all(byte in _TOKEN for byte in name)
        and not any(char in value for char in "\r\n\0")
    )


def _listener_clash(config: Config) -> tuple[str, str] | None:
    """(key, what was expected) for a listener on a port another listener binds on the same
    interface: the one place every listener's port is checked against the others."""
    listeners = [("status.port", config.status.port, config.status.host)]
    if not config.disable_http:
        listeners.insert(0, ("port", config.port, config.bind_address))
    if config.enable_ssl:
        listeners.append(("ssl_port", config.ssl_port, config.bind_address))
    # The /routes listener binds 127.0.0.1, which a wildcard address covers too.
    listeners.append(("status.routes.port", config.status.routes.port, "127.0.0.1"))
    if config.status.tls.is_enabled:
        listeners.append(("status.tls.port", config.status.tls.port, config.status.host))
    if config.prometheus.is_enabled:
        listeners.append(("prometheus.port", config.prometheus.port, config.status.host))
    for index, (key, port, address) in enumerate(listeners):
        for other, other_port, other_address in listeners[:index]:
            if port == other_port and _same_interface(address, other_address):
                named = "the router's own port" if other == "port" else other
                return key, f"expected a port other than {named} {port}"
    return None


def _same_interface(a: str, b: str) -> bool:
    wildcard = {"0.0.0.0", "::", ""}
    return a == b or a in wildcard or b in wildcard


def _describe_validation_error(message: str, model: type = Config) -> str:
    """msgspec says "Expected `int`, got `str` - at `$.backends.max_conns`"; name the key first."""
    text, _, where = message.partition(" - at `")
    key = where.rstrip("`").removeprefix("$").removeprefix(".") or None
    # The Gorouter-only keys are all optional: "expected int | null" means "expected int".
    text = text.replace("`", "").replace(" | null,", ",")
    if text.startswith("Object contains unknown field "):
        field = text.removeprefix("Object contains unknown field ")
        full = f"{key}.{field}" if key else field
        return f"{full}: unknown key"
    if text.startswith("Object missing required field "):
        field = text.removeprefix("Object missing required field ")
        full = f"{key}.{field}" if key else field
        return f"{full}: required key is missing"
    if text.startswith("Invalid enum value ") and key is not None:
        choices = _choices_at(key, model)
        if choices:
            got = text.removeprefix("Invalid enum value ")
            return f"{key}: expected one of {', '.join(map(repr, choices))}, got {got}"
    text = text[:1].lower() + text[1:]
    if key is None:
        return f"top level: {text}"
    return f"{key}: {text}"


def _choices_at(key: str, model: type) -> tuple[object, ...]:
    """The values a Literal-typed key accepts ("balancing_algorithm", "logging.level")."""
    node: Any = msgspec.inspect.type_info(model)
    for name in key.split("."):
        types = {field.encode_name: field.type for field in getattr(_unwrapped(node), "fields", ())}
        node = types.get(name)
        if node is None:
            return ()
    return tuple(getattr(_unwrapped(node), "values", ()))


def _unwrapped(node: Any) -> Any:
    """`X | None` as X, for the Gorouter-only keys (all optional)."""
    for member in getattr(node, "types", ()):
        if not isinstance(member, msgspec.inspect.NoneType):
            return member
    return node


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "decode error"

"""Gorouter's keys: the ones routerd implements keep Gorouter's meaning (0 = no limit, ...), the
ones it does not are accepted with Gorouter's types and named, and anything else is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from router.client_deadlines import HEADER, NONE, ClientDeadlines
from router.http1.rules import Limits
from runtime.config import ConfigError, read_config_text
from runtime.config_model import Config
from runtime.gorouter_keys import GorouterKeys, struct_in

MIB = 1 << 20


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        # Gorouter's defaults, as its BOSH job renders them.
        ("read_header_timeout: 0s\n", "read_header_timeout", 0.0),
        ("max_request_headers: 0\n", "max_request_headers", 0),
        # Gorouter: "< 1" means its 1 MiB cap; more than the cap is lowered to it.
        ("max_request_header_bytes: 0\n", "max_request_header_bytes", MIB),
        ("max_request_header_bytes: 2000000\n", "max_request_header_bytes", MIB),
        ("max_request_header_bytes: 512\n", "max_request_header_bytes", 512),
        # Gorouter before max_request_header_bytes existed.
        ("max_header_bytes: 65536\n", "max_request_header_bytes", 65536),
        (
            "max_header_bytes: 4096\nmax_request_header_bytes: 8192\n",
            "max_request_header_bytes",
            8192,
        ),
        # Gorouter: drain_timeout 0 means endpoint_timeout.
        ("drain_timeout: 0\nendpoint_timeout: 45s\n", "drain_timeout", 45.0),
        ("frontend_idle_timeout: 0\n", "frontend_idle_timeout", 0.0),
        ("backends:\n  max_conns: 0\n", "backends.max_conns", 0),
        ("route_services:\n  max_attempts: 5\n", "route_services.max_attempts", 5),
        ("route_services_hairpinning: false\n", "route_services_hairpinning", False),
        # Gorouter: the stale threshold is never below the start-up delay.
        (
            "start_response_delay_interval: 30s\ndroplet_stale_threshold: 10s\n",
            "droplet_stale_threshold",
            30.0,
        ),
    ],
)
def test_implemented_keys_take_gorouters_meaning(text: str, key: str, value: Any) -> None:
    config: Any = read_config_text(text).config
    for name in key.split("."):
        config = getattr(config, name)
    assert config == value


@pytest.mark.parametrize(
    ("text", "per_endpoint", "total"),
    [
        # Gorouter's production (BOSH) values are routerd's defaults.
        ("", 100, 100),
        ("max_idle_conns_per_host: 7\nmax_idle_conns: 9\n", 7, 9),
        # Go's zeros: MaxIdleConnsPerHost 0 is DefaultMaxIdleConnsPerHost (2), MaxIdleConns 0
        # no limit; below 0 neither keeps any.
        ("max_idle_conns_per_host: 0\nmax_idle_conns: 0\n", 2, None),
        ("max_idle_conns_per_host: -1\nmax_idle_conns: -1\n", 0, 0),
        # Gorouter's binary default: nothing is kept, whatever the caps.
        ("disable_keep_alives: true\nmax_idle_conns_per_host: 50\n", 0, 0),
        # routerd's older key sets the per-endpoint cap, unless the Gorouter key is there too.
        ("backends:\n  max_idle_conns_per_endpoint: 16\n", 16, 100),
        (
            "backends:\n  max_idle_conns_per_endpoint: 16\nmax_idle_conns_per_host: 4\n",
            4,
            100,
        ),
    ],
)
def test_backend_keep_alive_keys_take_gos_meaning(
    text: str, per_endpoint: int, total: int | None
) -> None:
    config = read_config_text(text).config
    assert (config.idle_conns_per_endpoint, config.idle_conns_total) == (per_endpoint, total)


def test_both_per_endpoint_idle_keys_set_is_reported() -> None:
    loaded = read_config_text(
        "backends:\n  max_idle_conns_per_endpoint: 16\nmax_idle_conns_per_host: 4\n"
    )
    assert loaded.adjusted == (
        "backends.max_idle_conns_per_endpoint: ignored, max_idle_conns_per_host (4) applies",
    )
    assert read_config_text("backends:\n  max_idle_conns_per_endpoint: 16\n").adjusted == ()


def test_values_taken_otherwise_than_written_are_reported() -> None:
    loaded = read_config_text(
        "max_request_header_bytes: 2000000\n"
        "start_response_delay_interval: 30s\ndroplet_stale_threshold: 10s\n"
    )
    assert loaded.adjusted == (
        "max_request_header_bytes: 2000000 is over Gorouter's cap; 1048576 applies",
        "droplet_stale_threshold: raised to start_response_delay_interval (30s), as in Gorouter",
    )
    assert read_config_text("max_request_header_bytes: 0\n").adjusted == ()


def test_zero_header_count_is_no_count_limit_for_the_parser() -> None:
    assert Limits(MIB, 0).header_count >= MIB // 3  # more lines than 1 MiB can hold
    assert Limits(MIB, 100).header_count == 100


class Client:
    deadline = 0.0
    deadline_kind = NONE

    def expire(self) -> None:
        raise AssertionError("expired")

    def is_reading_paused(self) -> bool:
        return False


def test_zero_header_timeout_never_arms_a_header_deadline() -> None:
    deadlines = ClientDeadlines(0.0, 60.0, stats=None)
    client = Client()
    deadlines.arm(client, HEADER)  # returns before it needs an event loop
    assert client.deadline_kind == NONE
    assert repr(deadlines) == "ClientDeadlines(header=0.0, body=60.0, armed=0)"
    assert deadlines.tick == 1.0  # from the body timeout alone


NOT_IMPLEMENTED = {
    "top-level keys": (
        "go_max_procs: 4\ndebug_addr: 127.0.0.1:17002\n",
        ("go_max_procs", "debug_addr"),
    ),
    "nested keys beside implemented ones": (
        "status:\n  port: 8080\n  tls:\n    port: 8443\n  routes:\n    port: 8082\n"
        "logging:\n  level: info\n  format:\n    timestamp: rfc3339\n  metron_address: x:3457\n"
        "tracing:\n  enable_zipkin: true\n  enable_w3c: true\n",
        ("logging.metron_address",),
    ),
    "whole blocks": (
        "prometheus:\n  meters:\n    http_latency_histogram_buckets: [0.1, 1]\n"
        "oauth:\n  port: 443\n  client_name: gorouter\nrouting_api:\n  port: 3000\n",
        ("prometheus.meters", "oauth", "routing_api"),
    ),
    "only implemented keys": ("port: 80\nstatus:\n  port: 8080\nmax_request_headers: 0\n", ()),
    "the old name of an implemented key": ("max_header_bytes: 1048576\n", ()),
}


@pytest.mark.parametrize(("text", "names"), NOT_IMPLEMENTED.values(), ids=NOT_IMPLEMENTED.keys())
def test_unimplemented_gorouter_keys_load_and_are_named(text: str, names: tuple[str, ...]) -> None:
    assert read_config_text(text).not_implemented == names


BAD = {
    "unknown top-level key": ("zonee: z1\n", "zonee: unknown key"),
    "unknown key in a Gorouter-only block": (
        "status:\n  tls:\n    prot: 1\n",
        "status.tls.prot: unknown key",
    ),
    "unknown key beside Gorouter-only keys": (
        "logging:\n  formats:\n    timestamp: rfc3339\n",
        "logging.formats: unknown key",
    ),
    "unknown key in a whole block": ("prometheus:\n  prot: 1\n", "prometheus.prot: unknown key"),
    "wrong type, nested": (
        "status:\n  tls:\n    port: tls\n",
        "status.tls.port: expected int, got str",
    ),
    "unsigned": ("index: -1\n", "index: expected int >= 0"),
    "uint16": (
        "status:\n  routes:\n    port: 70000\n",
        "status.routes.port: expected int <= 65535",
    ),
    "flag": ("enable_http2: sometimes\n", "enable_http2: expected bool, got str"),
    "list": ("extra_headers_to_log: X-Trace\n", "extra_headers_to_log: expected array, got str"),
    "duration": (
        "load_balancer_healthy_threshold: soon\n",
        "load_balancer_healthy_threshold: expected a duration: seconds as a number, or a string "
        'like "5s", "500ms", "1m30s"',
    ),
    "Gorouter's choices": (
        "logging:\n  redact_query_params: some\n",
        "logging.redact_query_params: expected one of 'all', 'hash', 'none', got 'some'",
    ),
    "AZ preference": (
        "balancing_algorithm_az_preference: nearest\n",
        "balancing_algorithm_az_preference: expected one of 'locally-optimistic', 'none', "
        "got 'nearest'",
    ),
    "list item missing its name": (
        "http_rewrite:\n  responses:\n    add_headers_if_not_present:\n      - value: x\n",
        "http_rewrite.responses.add_headers_if_not_present[0].name: required key is missing",
    ),
    "histogram buckets": (
        "prometheus:\n  meters:\n    http_latency_histogram_buckets: [fast]\n",
        "prometheus.meters.http_latency_histogram_buckets[0]: expected float, got str",
    ),
    "old name, wrong type": ("max_header_bytes: lots\n", "max_header_bytes: expected int, got str"),
    # Gorouter logs such an entry and then hairpins every route service; routerd refuses it.
    "hairpinning allowlist entry": (
        "route_services_hairpinning_allowlist: ['*.*.example.com']\n",
        "route_services_hairpinning_allowlist[0]: expected a host name (host.domain.com) or a "
        "wildcard (*.domain.com), got '*.*.example.com'",
    ),
    "route services without their key": (
        "route_services:\n  cert_chain: x\n",
        "route_services.private_key: expected cert_chain and private_key to be set together",
    ),
    "route services certificate": (
        "route_services:\n  cert_chain: x\n  private_key: y\n",
        "route_services.cert_chain: expected a PEM certificate chain and its private key: "
        "not readable as PEM",
    ),
    "route services attempts": (
        "route_services:\n  max_attempts: 0\n",
        "route_services.max_attempts: expected int >= 1",
    ),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_bad_gorouter_key_is_one_line_naming_key_and_type(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        read_config_text(text, source="gorouter.yml")
    assert str(raised.value) == f"gorouter.yml: {message}"


def leaf_paths(model: type, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for field in msgspec.structs.fields(model):
        inner = struct_in(field.type)
        if inner is None:
            paths.add(prefix + field.encode_name)
        else:
            paths |= leaf_paths(inner, f"{prefix}{field.encode_name}.")
    return paths


def test_no_key_is_both_implemented_and_listed_as_not_implemented() -> None:
    # Implementing a Gorouter key means adding it to Config and deleting it from GorouterKeys.
    assert leaf_paths(Config) & leaf_paths(GorouterKeys) == set()


def documented_not_implemented() -> set[str]:
    """The keys etc/router.yml lists as accepted but not implemented."""
    text = (Path(__file__).parents[2] / "etc" / "router.yml").read_text()
    block = text.split("# Gorouter keys routerd accepts but does not implement", 1)[1]
    listed: list[str] = []
    for line in block.splitlines():
        if line.startswith("#   "):
            listed.append(line.removeprefix("#   "))
        elif listed:
            break
    names = " ".join(listed).replace("(routes come from NATS only)", "").rstrip(".")
    return {name.strip().removesuffix(".*") for name in names.split(",")}


def test_etc_router_yml_lists_every_key_not_implemented() -> None:
    documented = documented_not_implemented()
    declared = leaf_paths(GorouterKeys) - {"max_header_bytes"}  # implemented under its new name
    undocumented = {
        path
        for path in declared
        if not any(
            path == name
            or path.startswith(f"{name}.")
            or (name.endswith("_*") and path.startswith(name[:-1]))
            for name in documented
        )
    }
    assert undocumented == set()
    for name in documented:
        stem = name[:-1] if name.endswith("_*") else name
        assert any(path == stem or path.startswith(stem) for path in declared), name

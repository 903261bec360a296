"""An operator's BOSH-rendered gorouter.yml (bosh_gorouter.yml) loads in routerd: the keys
routerd implements take effect, the rest are named in one warning, at start and by
`routerd --check-config`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runtime.config import read_config
from tests.support.routerd import new_routerd, run_routerd
from tests.support.waiting import wait_until

FIXTURE = Path(__file__).with_name("bosh_gorouter.yml")
WARNING = "warning: Gorouter keys accepted but not implemented (they have no effect): "

# Among what the file sets and routerd does not act on: each must be named.
MUST_BE_NAMED = {
    "go_max_procs",
    "logging.loggregator_enabled",
    "logging.metron_address",
    "prometheus.meters",
    "route_services_internal_server_port",
    "routing_api",
    "oauth",
    "http_1_endpoint_timeout",
    "http_2_endpoint_timeout",
}
# Keys routerd implements: never named.
IMPLEMENTED = {
    "http_rewrite",
    "html_error_template_file",
    "max_response_header_bytes",
    "max_response_headers",
    "keep_alive_100_continue_requests",
    "websocket_dial_timeout",
    "disable_http",
    "port",
    "status",
    "status.port",
    "status.user",
    "status.routes",
    "status.enable_deprecated_varz_healthz_endpoints",
    "status.enable_nontls_health_checks",
    "status.tls",
    "healthcheck_user_agent",
    "load_balancer_healthy_threshold",
    "nats",
    "logging",
    "logging.level",
    "logging.format",
    "logging.syslog",
    "logging.syslog_addr",
    "logging.syslog_network",
    "logging.syslog_truncate",
    "logging.redact_query_params",
    "logging.disable_log_forwarded_for",
    "logging.disable_log_source_ip",
    "logging.enable_attempts_details",
    "logging.extra_access_log_fields",
    "access_log.enable_streaming",
    "extra_headers_to_log",
    "tracing.enable_zipkin",
    "tracing.enable_w3c",
    "tracing.w3c_tenant_id",
    "trace_key",
    "secure_cookies",
    "sticky_sessions_for_auth_negotiate",
    "hop_by_hop_headers_to_filter",
    "access_log.file",
    "backends",
    "tls_pem",
    "enable_ssl",
    "read_header_timeout",
    "max_request_headers",
    "max_request_header_bytes",
    "max_header_bytes",
    "drain_timeout",
    "route_services_secret",
    "route_services_hairpinning",
    "route_services_hairpinning_allowlist",
    "route_services",
    "zone",
    "balancing_algorithm_az_preference",
    "index",
    "prometheus",
    "prometheus.enabled",
    "prometheus.port",
    "prometheus.cert_path",
    "prometheus.key_path",
    "prometheus.ca_path",
    "enable_verify_client_certificate_metadata",
    "verify_client_certificate_metadata",
    "pid_file",
    "disable_keep_alives",
    "max_idle_conns",
    "max_idle_conns_per_host",
}


def key_paths(document: dict[str, object], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in document.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= key_paths(value, f"{prefix}{key}.")
    return paths


def test_check_config_loads_the_bosh_file_and_names_what_it_ignores() -> None:
    result = run_routerd("--check-config", str(FIXTURE), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == f"routerd: {FIXTURE}: config is valid\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # one warning line, nothing adjusted
    prefix = f"routerd: {FIXTURE}: {WARNING}"
    assert lines[0].startswith(prefix)
    named = lines[0].removeprefix(prefix).split(", ")
    assert len(named) == len(set(named))
    assert set(named) >= MUST_BE_NAMED
    assert not IMPLEMENTED & set(named)
    assert set(named) <= key_paths(yaml.safe_load(FIXTURE.read_text()))


def test_the_bosh_files_implemented_values_take_effect() -> None:
    config = read_config(str(FIXTURE)).config
    assert config.port == 80
    assert (config.status.port, config.status.user) == (8080, "router-status")
    assert config.status.routes.port == 8082
    assert (config.status.tls.is_enabled, config.status.tls.port) == (True, 8443)
    assert config.healthcheck_user_agent == "HTTP-Monitor/1.1"
    assert config.load_balancer_healthy_threshold == 20.0
    assert [(host.hostname, host.port) for host in config.nats.hosts] == [
        ("nats.service.cf.internal", 4224)
    ]
    assert config.enable_ssl and len(config.tls_pem) == 1
    assert config.start_response_delay_interval == 20.0
    assert config.endpoint_timeout == 900.0
    # Gorouter's own defaults, with Gorouter's meaning: no header deadline, no count limit.
    assert config.read_header_timeout == 0.0
    assert config.max_request_headers == 0
    assert config.max_request_header_bytes == 1 << 20
    assert config.suspend_pruning_if_nats_unavailable is False
    assert (config.zone, config.balancing_algorithm_az_preference) == ("z1", "none")
    assert (config.backends.max_conns, config.backends.max_attempts) == (500, 3)
    assert (config.prometheus.is_enabled, config.prometheus.port) == (True, 53035)
    assert config.prometheus.ca_path.endswith("/prometheus_ca.crt")
    assert (config.max_response_header_bytes, config.max_response_headers) == (1 << 20, 0)
    assert config.upgrade_dial_timeout == 5.0 and not config.disable_http
    assert config.pid_file == "/var/vcap/sys/run/gorouter/gorouter.pid"
    assert not config.disable_keep_alives
    assert (config.idle_conns_total, config.idle_conns_per_endpoint) == (100, 100)
    rewrite = config.http_rewrite.responses
    assert [(h.name, h.value) for h in rewrite.add_headers_if_not_present] == [
        ("Strict-Transport-Security", "max-age=31536000; includeSubDomains; preload")
    ]
    assert [h.name for h in rewrite.remove_headers] == ["X-Powered-By"]


def test_a_typo_in_the_bosh_file_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "gorouter.yml"
    path.write_text(FIXTURE.read_text().replace("\nzone: z1\n", "\nzonee: z1\n"))
    result = run_routerd("--check-config", str(path), timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"routerd: {path}: zonee: unknown key\n"


@pytest.mark.integration
def test_routerd_warns_once_at_start_naming_the_keys(nats_server) -> None:
    router = new_routerd(
        nats_server.port,
        {
            "workers": 1,
            "index": 1,
            "go_max_procs": 2,
            "debug_addr": "127.0.0.1:17002",
            "tracing": {"enable_w3c": True},
            "read_header_timeout": "0s",
        },
    )
    router.start()
    try:
        wait_until(lambda: router.events_named("router-started"), timeout=30, what="router-started")
        warnings = router.events_named("config-keys-not-implemented")
        assert len(warnings) == 1
        assert warnings[0]["log_level"] == 2  # warn
        assert sorted(warnings[0]["data"]["keys"]) == ["debug_addr", "go_max_procs"]
        assert warnings[0]["data"]["config"] == str(router.config_path)
    finally:
        router.stop()

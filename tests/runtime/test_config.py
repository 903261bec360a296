"""The config model: Gorouter's keys and defaults, durations, and one-line errors for bad files."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runtime.config import ConfigError, load_config, load_config_text
from runtime.config_model import Config

REPO = Path(__file__).resolve().parents[2]


def self_signed_pem(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def indented(text: str, spaces: int) -> str:
    return textwrap.indent(text, " " * spaces)


@pytest.fixture(scope="module")
def ca_pems() -> tuple[str, str]:
    return self_signed_pem("Test CA one"), self_signed_pem("Test CA two")


def test_every_gorouter_key_is_read(ca_pems: tuple[str, str]) -> None:
    first, second = ca_pems
    text = f"""
port: 80
status:
  host: 127.0.0.1
  port: 8090
  user: status-user
  pass: "s3cret: with colon"
nats:
  hosts:
    - hostname: nats-0.service.internal
      port: 4223
    - hostname: nats-1.service.internal
  user: nats-user
  pass: nats-pass
droplet_stale_threshold: 90s
prune_stale_droplets_interval: 20
start_response_delay_interval: 2s
suspend_pruning_if_nats_unavailable: false
balancing_algorithm: least-connection
backends:
  max_conns: 100
  max_attempts: 5
endpoint_timeout: 2m
endpoint_dial_timeout: 750ms
empty_pool_response_code_503: false
drain_wait: 1m30s
drain_timeout: 300
route_services_secret: rs-secret
route_services_secret_decrypt_only: rs-old-secret
route_services_timeout: 45s
ca_certs:
  - |
{indented(first, 4)}
  - |
{indented(second, 4)}
skip_ssl_validation: true
force_forwarded_proto_https: true
tracing:
  enable_zipkin: true
access_log:
  file: /var/vcap/sys/log/routerd/access.log
bind_address: 10.0.0.5
workers: 3
run_dir: /tmp/routerd-test
"""
    config = load_config_text(text)
    assert config.port == 80
    assert (config.status.host, config.status.port) == ("127.0.0.1", 8090)
    assert (config.status.user, config.status.pass_) == ("status-user", "s3cret: with colon")
    assert [(host.hostname, host.port) for host in config.nats.hosts] == [
        ("nats-0.service.internal", 4223),
        ("nats-1.service.internal", 4222),
    ]
    assert (config.nats.user, config.nats.pass_) == ("nats-user", "nats-pass")
    assert config.droplet_stale_threshold == 90.0
    assert config.stale_threshold_seconds == 90
    assert config.prune_stale_droplets_interval == 20.0
    assert config.start_response_delay_interval == 2.0
    assert config.suspend_pruning_if_nats_unavailable is False
    assert config.balancing_algorithm == "least-connection"
    assert (config.backends.max_conns, config.backends.max_attempts) == (100, 5)
    assert config.endpoint_timeout == 120.0
    assert config.endpoint_dial_timeout == 0.75
    assert config.empty_pool_response_code_503 is False
    assert config.drain_wait == 90.0
    assert config.drain_timeout == 300.0
    assert config.route_services_secret == "rs-secret"
    assert config.route_services_secret_decrypt_only == "rs-old-secret"
    assert config.route_services_timeout == 45.0
    assert [pem.strip() for pem in config.ca_certs] == [first.strip(), second.strip()]
    assert config.skip_ssl_validation is True
    assert config.force_forwarded_proto_https is True
    assert config.tracing.enable_zipkin is True
    assert config.access_log.file == "/var/vcap/sys/log/routerd/access.log"
    assert config.bind_address == "10.0.0.5"
    assert (config.workers, config.worker_count) == (3, 3)
    assert config.run_dir == "/tmp/routerd-test"


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "{}"])
def test_gorouter_defaults(text: str) -> None:
    config = load_config_text(text)
    assert config == Config()
    assert config.port == 8081
    assert (config.status.host, config.status.port) == ("0.0.0.0", 8080)
    assert config.status.routes.port == 8082
    assert config.status.enable_deprecated_varz_healthz_endpoints is False
    assert config.healthcheck_user_agent == "HTTP-Monitor/1.1"
    assert config.load_balancer_healthy_threshold == 20.0
    assert (config.status.user, config.status.pass_) == ("", "")
    assert [(host.hostname, host.port) for host in config.nats.hosts] == [("127.0.0.1", 4222)]
    assert config.droplet_stale_threshold == 120.0
    assert config.prune_stale_droplets_interval == 30.0
    assert config.start_response_delay_interval == 5.0
    assert config.suspend_pruning_if_nats_unavailable is True
    assert config.balancing_algorithm == "round-robin"
    assert (config.backends.max_conns, config.backends.max_attempts) == (500, 3)
    assert config.endpoint_timeout == 60.0
    assert config.endpoint_dial_timeout == 5.0
    assert config.empty_pool_response_code_503 is True
    assert config.drain_wait == 20.0
    assert config.drain_timeout == 900.0
    assert config.route_services_timeout == 60.0
    assert config.ca_certs == ()
    assert config.skip_ssl_validation is False
    assert config.force_forwarded_proto_https is False
    assert config.tracing.enable_zipkin is False
    assert config.access_log.file == ""
    assert config.bind_address == "0.0.0.0"
    assert config.workers == 0
    assert config.worker_count == (os.cpu_count() or 1)
    assert config.run_dir == "/run/routerd"
    assert config.routing_table_sharding_mode == "all"
    assert config.frontend_idle_timeout == 900.0
    assert config.max_request_header_bytes == 1 << 20
    assert config.max_request_headers == 512
    assert config.read_header_timeout == 30.0
    assert config.request_body_timeout == 60.0


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("5", 5.0),
        ("2.5", 2.5),
        ('"5"', 5.0),
        ("5s", 5.0),
        ('"5s"', 5.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("0", 0.0),
    ],
)
def test_durations_accept_seconds_or_go_strings(written: str, seconds: float) -> None:
    config = load_config_text(f"drain_wait: {written}\n")
    assert config.drain_wait == pytest.approx(seconds)
    assert isinstance(config.drain_wait, float)


DURATION_EXPECTED = (
    'expected a duration: seconds as a number, or a string like "5s", "500ms", "1m30s"'
)

BAD_CONFIGS = {
    "unknown top-level key": ("prot: 80\n", "prot: unknown key"),
    "unknown nested key": ("status:\n  passwd: x\n", "status.passwd: unknown key"),
    "unknown key in a list item": (
        "nats:\n  hosts:\n    - hostname: a\n      host: b\n",
        "nats.hosts[0].host: unknown key",
    ),
    "wrong type": ("backends:\n  max_conns: lots\n", "backends.max_conns: expected int, got str"),
    "wrong type for a flag": (
        "skip_ssl_validation: sometimes\n",
        "skip_ssl_validation: expected bool, got str",
    ),
    "a list where a string belongs": (
        "route_services_secret: [a, b]\n",
        "route_services_secret: expected str, got array",
    ),
    "negative duration": ("drain_wait: -5s\n", "drain_wait: expected a duration >= 0"),
    "negative duration in seconds": (
        "endpoint_timeout: -1\n",
        "endpoint_timeout: expected a duration >= 0",
    ),
    "garbage duration": ("drain_timeout: soon\n", f"drain_timeout: {DURATION_EXPECTED}"),
    "unknown duration unit": ("drain_wait: 5d\n", f"drain_wait: {DURATION_EXPECTED}"),
    "not-a-number duration": ("drain_wait: nan\n", f"drain_wait: {DURATION_EXPECTED}"),
    "infinite duration": ("drain_timeout: .inf\n", f"drain_timeout: {DURATION_EXPECTED}"),
    "zero stale threshold": (
        "droplet_stale_threshold: 0s\nstart_response_delay_interval: 0\n",
        "droplet_stale_threshold: expected a duration > 0",
    ),
    "port 0": ("port: 0\n", "port: expected int >= 1"),
    "port 70000": ("port: 70000\n", "port: expected int <= 65535"),
    "status port 70000": ("status:\n  port: 70000\n", "status.port: expected int <= 65535"),
    "negative workers": ("workers: -2\n", "workers: expected int >= 0"),
    "max_attempts 0": (
        "backends:\n  max_attempts: 0\n",
        "backends.max_attempts: expected int >= 1",
    ),
    "bad balancing_algorithm": (
        "balancing_algorithm: random\n",
        "balancing_algorithm: expected one of 'least-connection', 'round-robin', got 'random'",
    ),
    "bad sharding mode": (
        "routing_table_sharding_mode: some\n",
        "routing_table_sharding_mode: expected one of 'all', 'segments', "
        "'shared-and-segments', got 'some'",
    ),
    "status.port equal to port": (
        "port: 9000\nstatus:\n  port: 9000\n",
        "status.port: expected a port other than the router's own port 9000",
    ),
    "status.port equal to the default port": (
        "status:\n  port: 8081\n",
        "status.port: expected a port other than the router's own port 8081",
    ),
    "empty nats.hosts": ("nats:\n  hosts: []\n", "nats.hosts: expected at least one NATS host"),
    "nats host without hostname": (
        "nats:\n  hosts:\n    - port: 4222\n",
        "nats.hosts[0].hostname: required key is missing",
    ),
    "blank nats hostname": (
        "nats:\n  hosts:\n    - hostname: ' '\n",
        "nats.hosts[0].hostname: expected a host name, got an empty string",
    ),
    "non-PEM ca_certs entry": (
        "ca_certs:\n  - /etc/ssl/certs/ca.pem\n",
        "ca_certs[0]: expected a PEM certificate",
    ),
    "ca_certs as a string": ("ca_certs: cert\n", "ca_certs: expected array, got str"),
    "invalid YAML": ("port: [8081\n", "not valid YAML: while parsing a flow sequence"),
    "invalid YAML mapping": (
        "port: 8081\n  status: x\n",
        "not valid YAML: mapping values are not allowed in this context",
    ),
    "a list instead of a mapping": ("- port\n", "top level: expected object, got array"),
    "cert_chain without private_key": (
        "backends:\n  cert_chain: PEM\n",
        "backends.private_key: expected cert_chain and private_key to be set together",
    ),
    "decrypt-only secret without a secret": (
        "route_services_secret_decrypt_only: old\n",
        "route_services_secret: expected a secret when route_services_secret_decrypt_only is set",
    ),
    "segments mode without isolation_segments": (
        "routing_table_sharding_mode: segments\n",
        "isolation_segments: expected at least one segment when routing_table_sharding_mode is "
        '"segments"',
    ),
    "static route with an http route_service_url": (
        "static_routes:\n  - host: 10.0.0.1\n    port: 8080\n    uris: [app.example.com]\n"
        "    route_service_url: http://rs.example.com\n",
        "static_routes[0]: expected a valid registration: route_service_url must be https",
    ),
    "negative header limit": (
        "max_request_header_bytes: -1\n",
        "max_request_header_bytes: expected int >= 0",
    ),
    "negative header count": (
        "max_request_headers: -1\n",
        "max_request_headers: expected int >= 0",
    ),
    "zero request_body_timeout": (
        "request_body_timeout: 0s\n",
        "request_body_timeout: expected a duration > 0",
    ),
    "zero error_sample_interval": (
        "logging:\n  error_sample_interval: 0\n",
        "logging.error_sample_interval: expected a duration > 0",
    ),
    "static route with a host and port in host": (
        "static_routes:\n  - host: 10.0.0.1:8080\n    port: 8080\n    uris: [app.example.com]\n",
        "static_routes[0]: expected a valid registration: "
        "host '10.0.0.1:8080' is not an IP address or a DNS name",
    ),
    "routes listener on the status port": (
        "status:\n  port: 9000\n  routes:\n    port: 9000\n",
        "status.routes.port: expected a port other than status.port 9000",
    ),
    "routes listener on the router's loopback port": (
        "port: 9001\nbind_address: 127.0.0.1\nstatus:\n  routes:\n    port: 9001\n",
        "status.routes.port: expected a port other than the router's own port 9001",
    ),
    "status.tls without a key": (
        "status:\n  tls:\n    port: 9443\n",
        "status.tls.key: expected a PEM private key when status.tls is set",
    ),
    "status.tls with a key that is not PEM": (
        "status:\n  tls:\n    certificate: nope\n    key: nope\n",
        "status.tls.certificate: expected a PEM certificate chain and the private key in "
        "status.tls.key",
    ),
    "no health listener at all": (
        "status:\n  enable_nontls_health_checks: false\n",
        "status.enable_nontls_health_checks: expected true unless status.tls serves /health: "
        "a load balancer needs one of them",
    ),
    "static route without a port": (
        "static_routes:\n  - host: 10.0.0.1\n    uris: [app.example.com]\n",
        "static_routes[0]: expected a valid registration: port or tls_port is required",
    ),
}


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_is_one_line_naming_key_and_expectation(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, source="router.yml")
    assert str(raised.value) == f"router.yml: {message}"


def test_segments_mode_with_isolation_segments_is_valid() -> None:
    config = load_config_text(
        "routing_table_sharding_mode: segments\nisolation_segments: [seg-a, seg-b]\n"
    )
    assert config.isolation_segments == ("seg-a", "seg-b")


def test_status_port_may_equal_port_on_another_interface() -> None:
    config = load_config_text(
        "port: 9000\nbind_address: 10.0.0.5\nstatus:\n  host: 127.0.0.1\n  port: 9000\n"
    )
    assert config.status.port == config.port == 9000


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yml"
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert str(raised.value) == f"{path}: cannot read config: No such file or directory"


def test_shipped_example_config_is_valid() -> None:
    config = load_config(str(REPO / "etc" / "router.yml"))
    assert config.port == 8081
    assert config.status.port == 8080
    assert config.status.routes.port == 8082
    assert (config.backends.max_conns, config.backends.max_attempts) == (500, 3)
    assert config.drain_wait == 20.0


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "--check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "router.yml"
    path.write_text("port: 8081\nbackends:\n  max_conns: 200\ndrain_wait: 5s\n")
    result = check_config(path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "valid" in result.stdout


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("balancing_algorithm: fastest\n", "balancing_algorithm: expected one of"),
        ("nats:\n  hosts:\n    - hostname: a\n  port: [\n", "not valid YAML"),
    ],
    ids=["bad value", "invalid YAML"],
)
def test_check_config_rejects_a_bad_file_in_one_line(tmp_path: Path, text: str, line: str) -> None:
    path = tmp_path / "router.yml"
    path.write_text(text)
    result = check_config(path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"routerd: {path}: ")
    assert line in lines[0]

"""The supervisor's lifecycle as data, and which config keys a SIGHUP can change live."""

from __future__ import annotations

import enum
from typing import Final

import msgspec

from runtime.config_model import Config


class RouterState(enum.Enum):
    STARTING = "starting"  # /health 503 until workers serve
    RUNNING = "running"  # /health 200
    DRAINING = "draining"  # /health 503; in-flight requests finishing
    STOPPING = "stopping"
    STOPPED = "stopped"


class IllegalTransition(Exception):
    def __init__(self, current: RouterState, target: RouterState) -> None:
        super().__init__(f"router cannot go from {current.value} to {target.value}")


TRANSITIONS: Final[dict[RouterState, frozenset[RouterState]]] = {
    RouterState.STARTING: frozenset({RouterState.RUNNING, RouterState.STOPPING}),
    RouterState.RUNNING: frozenset({RouterState.DRAINING, RouterState.STOPPING}),
    RouterState.DRAINING: frozenset({RouterState.STOPPING}),
    RouterState.STOPPING: frozenset({RouterState.STOPPED}),
    RouterState.STOPPED: frozenset(),
}


def transition(current: RouterState, target: RouterState) -> RouterState:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
    return target


# Keys bound to sockets, processes or memory made at start; a SIGHUP reports them instead.
RESTART_ONLY_KEYS: Final = frozenset(
    {
        "port",
        # In the uuid and router.start id made at start.
        "index",
        "bind_address",
        "workers",
        "run_dir",
        # Written once, at start.
        "pid_file",
        "status",
        "prometheus",
        "nats",
        "nats_client_ping_interval",
        "route_table",
        # Listeners are bound and set up once, when routerd starts.
        "enable_ssl",
        "ssl_port",
        "disable_http",
        "tls_pem",
        "min_tls_version",
        "max_tls_version",
        "cipher_suites",
        "client_cert_validation",
        "client_ca_certs",
        "only_trust_client_ca_certs",
        "tls_handshake_timeout",
        "enable_proxy",
        "proxy_protocol_required",
        "proxy_protocol_timeout",
        # Waited once, between turning healthy and READY=1.
        "load_balancer_healthy_threshold",
        # Workers open the access log file and the syslog socket once (a SIGHUP reopens the
        # same file, for logrotate); logging.syslog_* likewise take effect at start.
        "access_log",
    }
)


def changed_keys(old: Config, new: Config) -> list[str]:
    """Top-level keys whose values differ."""
    return [
        field
        for field in old.__struct_fields__
        if msgspec.to_builtins(getattr(old, field), enc_hook=float)
        != msgspec.to_builtins(getattr(new, field), enc_hook=float)
    ]

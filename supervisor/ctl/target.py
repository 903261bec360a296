"""Where routerctl finds the router: the config file, or what the operator passed instead.

The config is read only when something is missing from the command line, so `--url` (or
`--run-dir`, or `--nats-url`) works on a machine without /etc/routerd/router.yml. A config named
explicitly with `--config` must be readable, even when nothing is taken from it.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

from runtime.config import ConfigError, load_config
from runtime.config_model import Config
from supervisor.ctl.errors import UsageProblem
from supervisor.main import DEFAULT_CONFIG
from supervisor.nats_link import nats_tls_context

PID_FILE = "routerd.pid"
TABLE_FILE = "routes.shm"
COUNTERS_FILE = "counters.shm"


class ConfigSource:
    """The router's config file, loaded at most once and only when needed."""

    def __init__(self, path: str | None) -> None:
        self.explicit = path is not None
        self.path = path or DEFAULT_CONFIG
        self._config: Config | None = None

    def __repr__(self) -> str:
        state = "loaded" if self._config is not None else "not loaded"
        return f"ConfigSource({self.path!r}, explicit={self.explicit}, {state})"

    def load(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.path)
            except ConfigError as exc:
                hint = "" if self.explicit else " (use --config PATH, or see --help)"
                raise UsageProblem(f"{exc}{hint}") from None
        return self._config

    def load_if_present(self) -> Config | None:
        """The config when it can be read; None when the default file is simply absent."""
        if self.explicit or os.path.exists(self.path):
            return self.load()
        return None

    def check(self) -> None:
        """Fail early on an explicit `--config` that cannot be read."""
        if self.explicit:
            self.load()


@dataclass(frozen=True)
class StatusTarget:
    url: str
    user: str
    password: str


def status_url(host: str, port: int) -> str:
    """Where to connect for a status server listening on `host` (a wildcard means this machine)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def status_target(
    source: ConfigSource, url: str | None, user: str | None, password: str | None
) -> StatusTarget:
    source.check()
    if url:
        config = source.load_if_present() if user is None or password is None else None
    else:
        config = source.load()
        url = status_url(config.status.host, config.status.port)
    if user is None:
        user = config.status.user if config else ""
    if password is None:
        password = config.status.pass_ if config else ""
    return StatusTarget(url.rstrip("/"), user, password)


def run_dir(source: ConfigSource, override: str | None) -> str:
    source.check()
    return override or source.load().run_dir


@dataclass(frozen=True)
class NatsTarget:
    servers: tuple[str, ...]
    user: str
    password: str
    tls: ssl.SSLContext | None


def nats_target(source: ConfigSource, urls: tuple[str, ...]) -> NatsTarget:
    """`--nats-url` (credentials may be in the URL), else the config's `nats` section."""
    source.check()
    if urls:
        return NatsTarget(urls, "", "", None)
    nats = source.load().nats
    servers = tuple(f"nats://{host.hostname}:{host.port}" for host in nats.hosts)
    return NatsTarget(servers, nats.user, nats.pass_, _nats_tls(source.load()))


def _nats_tls(config: Config) -> ssl.SSLContext | None:
    try:
        return nats_tls_context(config.nats)
    except (ssl.SSLError, ValueError) as exc:
        raise UsageProblem(f"nats TLS settings in the config: {exc}") from None


def stale_threshold(source: ConfigSource) -> int:
    """The router's droplet_stale_threshold (seconds), or the model's default without a config."""
    config = source.load_if_present()
    return (config or Config()).stale_threshold_seconds


def drain_budget(source: ConfigSource) -> tuple[float, float]:
    """`drain_wait` and `drain_timeout`, from the config or the model's defaults."""
    config = source.load_if_present() or Config()
    return float(config.drain_wait), float(config.drain_timeout)

"""Cloud Foundry's Gorouter as an optional target of the proxy benchmark.

Given a Gorouter binary (`GOROUTER=/path/to/gorouter` or `--gorouter PATH`; an `.xz` file, as
shipped, is unpacked into the benchmark's temp dir first), the proxy benchmark starts two of
them, access log off and on, on the same nats-server as routerd, and registers the same nginx
backend with the same `router.register` message. The config is Gorouter's BOSH job defaults
where they matter for throughput: without the three keep-alive keys Gorouter closes every
backend connection after one request, which no deployed Gorouter does. The harness talks to
Gorouter on 127.0.0.1 only; use a build whose listeners bind loopback (upstream binds every
interface; the build described in the peers README carries the one-line change).
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
from pathlib import Path
from typing import Any

from benchmarks.processes import BenchmarkError
from benchmarks.proxies import BACKEND_BODY, Target, fetch, logged_name, wait_logging
from benchmarks.routerd import publish
from tests.support.launcher import ProcessGroup
from tests.support.nats import register_message
from tests.support.ports import free_port
from tests.support.waiting import wait_until

ENVIRONMENT = "GOROUTER"
STATUS_USER = "bench"
STATUS_PASS = "bench-pass"
START_TIMEOUT = 30.0
# Well past the longest proxy phase: one registration must last it, as for routerd.
STALE_THRESHOLD_S = 3600


def binary(path: Path, workdir: Path) -> Path:
    """An executable Gorouter: `path` itself, or unpacked from `path` when it ends in `.xz`."""
    if not path.is_file():
        raise BenchmarkError(f"no Gorouter binary at {path} (from --gorouter or ${ENVIRONMENT})")
    if path.suffix != ".xz":
        if not os.access(path, os.X_OK):
            raise BenchmarkError(f"{path} is not executable")
        return path
    unpacked = workdir / path.with_suffix("").name
    try:
        with lzma.open(path) as packed, open(unpacked, "wb") as out:
            shutil.copyfileobj(packed, out)
    except lzma.LZMAError as exc:
        raise BenchmarkError(f"cannot unpack {path}: {exc}") from None
    unpacked.chmod(0o755)
    return unpacked


def config(nats_port: int, access_log: Path | None) -> dict[str, Any]:
    """Gorouter's YAML (as JSON) on fresh loopback ports; key names from its config/config.go."""
    return {
        "port": free_port(),
        "index": 0,
        "status": {
            "host": "127.0.0.1",
            "port": free_port(),
            "user": STATUS_USER,
            "pass": STATUS_PASS,
            "routes": {"port": free_port()},
        },
        # Gorouter's own route-service listener; each instance needs its own port.
        "route_services_internal_server_port": free_port(),
        "nats": {"hosts": [{"hostname": "127.0.0.1", "port": nats_port}]},
        "logging": {"level": "error"},
        "access_log": {"file": str(access_log) if access_log is not None else ""},
        "start_response_delay_interval": "1s",
        "droplet_stale_threshold": f"{STALE_THRESHOLD_S}s",
        "disable_keep_alives": False,
        "max_idle_conns": 100,
        "max_idle_conns_per_host": 100,
    }


def start_gorouter(
    group: ProcessGroup,
    executable: Path,
    nats_port: int,
    backend_port: int,
    host: str,
    access_log: bool = False,
) -> Target:
    """One Gorouter serving `host` from the backend, registered over NATS; `gorouter-log` writes
    its access log to <workdir>/gorouter-log-access.log."""
    name = logged_name("gorouter", access_log)
    log_path = group.workdir / f"{name}-access.log" if access_log else None
    settings = config(nats_port, log_path)
    config_path = group.workdir / f"{name}.yml"
    config_path.write_text(json.dumps(settings, indent=2))  # JSON is YAML
    process = group.start(name, [str(executable), "-c", str(config_path)], cwd=str(group.workdir))
    status_port = int(settings["status"]["port"])
    wait_until(
        lambda: process.check_running() and fetch(status_port, "127.0.0.1", "/health")[0] == 200,
        START_TIMEOUT,
        what=f"{name} /health (log {process.log_path})",
    )
    port = int(settings["port"])
    message = register_message(backend_port, [host])

    def serves() -> bool:
        # Registered until it answers: a message sent before Gorouter subscribed is lost.
        process.check_running()
        publish(nats_port, "router.register", [message])
        return fetch(port, host) == (200, BACKEND_BODY)

    wait_until(serves, START_TIMEOUT, interval=0.25, what=f"{name} to route {host}")
    label = f"Gorouter{', access log' if access_log else ''}"
    return wait_logging(Target(name, label, port, host, process, log_path))

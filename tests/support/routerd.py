"""Start `routerd` as a real subprocess with a generated config, and talk to it.

The one way tests and benchmarks start routerd: as an operator runs it (`python -m supervisor
--config PATH`), with a config that binds 127.0.0.1 only and keeps run_dir in a temp dir,
through tests/support/launcher.py (its own session; stopping it takes its workers too).
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.launcher import Process, ProcessExited, ProcessGroup
from tests.support.ports import free_port
from tests.support.waiting import wait_until

STATUS_USER = "status-user"
STATUS_PASS = "status-pass"
# Where `python -m supervisor` is found, whatever the caller's working directory.
REPO_ROOT = Path(__file__).resolve().parents[2]


def routerd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "supervisor", *args]


def run_routerd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run routerd to completion (e.g. `--check-config`) and capture its output."""
    return subprocess.run(
        routerd_command(*args), capture_output=True, text=True, timeout=timeout, check=False
    )


def base_config(nats_port: int, run_dir: str) -> dict[str, Any]:
    """A config for tests: loopback only, short timers, two workers."""
    return {
        "port": free_port(),
        "bind_address": "127.0.0.1",
        "workers": 2,
        "run_dir": run_dir,
        "status": {
            "host": "127.0.0.1",
            "port": free_port(),
            "user": STATUS_USER,
            "pass": STATUS_PASS,
            "routes": {"port": free_port()},
        },
        "nats": {"hosts": [{"hostname": "127.0.0.1", "port": nats_port}]},
        "start_response_delay_interval": 0,
        "load_balancer_healthy_threshold": 0,
        "drain_wait": 0,
        "drain_timeout": 10,
        "droplet_stale_threshold": 120,
        "prune_stale_droplets_interval": 30,
    }


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class Routerd:
    """A running routerd; `stop()` sends SIGTERM and waits. Started through `group` (one of its
    own in `workdir` by default), its output in <group's workdir>/<name>.log."""

    config: dict[str, Any]
    workdir: Path
    process: Process | None = None
    env: dict[str, str] = field(default_factory=dict)
    # A command routerd is run under, e.g. ["prlimit", "--nofile=32:64", "--"].
    wrapper: list[str] = field(default_factory=list)
    name: str = "routerd"
    group: ProcessGroup | None = None
    # The tree whose code runs (`python -m supervisor` from there): another checkout for an A/B.
    source: Path = REPO_ROOT

    @property
    def port(self) -> int:
        return int(self.config["port"])

    @property
    def status_port(self) -> int:
        return int(self.config["status"]["port"])

    @property
    def config_path(self) -> Path:
        return self.workdir / f"{self.name}.yml"

    @property
    def log_path(self) -> Path:
        return self.launcher.workdir / f"{self.name}.log"

    @property
    def launcher(self) -> ProcessGroup:
        if self.group is None:
            self.group = ProcessGroup(self.workdir)
        return self.group

    @property
    def supervisor_pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"Routerd({self.name!r}, port={self.port}, status={self.status_port}, pid={pid})"

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config))

    def start(self, wait_healthy: bool = True, timeout: float = 30) -> None:
        self.write_config()
        argv = [*self.wrapper, *routerd_command("--config", str(self.config_path))]
        self.process = self.launcher.start(self.name, argv, env=self.env, cwd=str(self.source))
        if wait_healthy:
            self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 30) -> None:
        def healthy() -> bool:
            if self.process is not None:
                self.process.check_running()
            return self.health().status == 200

        try:
            wait_until(healthy, timeout=timeout, what=f"{self.name} /health to answer 200")
        except (AssertionError, ProcessExited) as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log ---\n{self.log_text()}") from None

    def health(self) -> Response:
        return self.status_request("GET", "/health", auth=None)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_events(self) -> Iterator[dict[str, Any]]:
        """Component log lines (JSON) written so far."""
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def events_named(self, message: str) -> list[dict[str, Any]]:
        return [event for event in self.log_events() if event.get("message") == message]

    def request(
        self,
        method: str,
        path: str,
        host: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30,
    ) -> Response:
        return http_request(self.port, method, path, host, headers, body, timeout)

    def get(self, path: str = "/", host: str | None = None, **kwargs: Any) -> Response:
        return self.request("GET", path, host=host, **kwargs)

    def status_request(
        self,
        method: str,
        path: str,
        auth: tuple[str, str] | None = (STATUS_USER, STATUS_PASS),
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return http_request(self.status_port, method, path, None, headers, None, timeout)

    def status_json(self, path: str) -> Any:
        response = self.status_request("GET", path)
        assert response.status == 200, (response.status, response.text)
        return response.json()

    def varz(self) -> dict[str, Any]:
        varz: dict[str, Any] = self.status_json("/varz")
        return varz

    def workers(self) -> list[dict[str, Any]]:
        """/varz's worker entries: index, pid, state, restarts, crashes, ..."""
        return list(self.varz()["workers"])

    def worker_pids(self) -> list[int]:
        return [int(worker["pid"]) for worker in self.workers() if worker["pid"]]

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; then SIGKILL its session, so that no worker outlives it. The exit
        status routerd gave (None if it had to be killed, or never started)."""
        if self.process is None:
            return None
        return self.launcher.stop(self.process, timeout)


def http_request(
    port: int,
    method: str,
    path: str,
    host: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None and not any(k.lower() == "content-length" for k in (headers or {})):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def logged_at(event: dict[str, Any]) -> float:
    """An event's timestamp (RFC 3339 with nanoseconds) in seconds."""
    stamp = event["timestamp"].rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    seconds = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC).timestamp()
    return seconds + float(f"0.{fraction or 0}")


def new_routerd(
    nats_port: int,
    overrides: dict[str, Any] | None = None,
    group: ProcessGroup | None = None,
    name: str = "routerd",
    run_root: Path | None = None,
) -> Routerd:
    """A routerd (not started) on `nats_port`: in a temp dir of its own, or, with `group`, in
    the group's dir with its processes; `run_root` holds its run_dir (a tmpfs, as systemd's
    /run/routerd is, where that matters)."""
    if group is None:
        workdir = Path(tempfile.mkdtemp(prefix="routerd-"))
        run_dir = (run_root or workdir) / "run"
    else:  # the group's dir may hold several routerds
        workdir = group.workdir
        run_dir = (run_root or workdir) / f"{name}-run"
    config = merge(base_config(nats_port, str(run_dir)), overrides or {})
    return Routerd(config=config, workdir=workdir, name=name, group=group)
